// Must not compile: the padding given twice.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 4> x;
  constexpr var<"w", 4> w;
  (void)conv(x, w, padding_valid, stride<2>, padding_same);
}

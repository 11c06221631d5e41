// Must not compile: a 2-d kernel for a 1-d convolution.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 3> x;
  constexpr var<"w", 4> w;
  (void)conv(x, w);
}

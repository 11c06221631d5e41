// Must not compile: two strides for a 3-d convolution.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 5> x;
  constexpr var<"w", 5> w;
  (void)conv(x, w, stride<2, 1>);
}

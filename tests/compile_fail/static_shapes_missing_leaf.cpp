// Must not compile: a compile-time shape for a network one of whose leaves has no shape given.
#include <typegrad/core/static_shapes.hpp>
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 4> x;
  constexpr var<"w", 4> w;
  constexpr shape s = static_shape({{"x", {1, 8, 8, 3}}}, conv(x, w));
  (void)s;
}

// Must not compile: conv's shape rule rejects the leaf shapes (w has 4 in-channels, x has 3), at
// compile time.
#include <typegrad/core/static_shapes.hpp>
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 4> x;
  constexpr var<"w", 4> w;
  constexpr shape s = static_shape({{"x", {1, 8, 8, 3}}, {"w", {16, 3, 3, 4}}}, relu(conv(x, w)));
  (void)s;
}

// Must not compile: matmul of a rank-1 operand.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 1> x;
  constexpr var<"w", 2> w;
  (void)matmul(x, w);
}

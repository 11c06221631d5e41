// Must not compile: grad needs a scalar function.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 2> x;
  (void)grad(x * x, x);
}

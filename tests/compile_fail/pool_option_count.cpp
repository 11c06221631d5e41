// Must not compile: three window values for two ordered dims.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 4> x;
  (void)avg_pool(x, window<2, 2, 2>);
}

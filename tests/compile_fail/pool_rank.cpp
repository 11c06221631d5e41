// Must not compile: pooling needs (batch, ordered dims..., channels), rank >= 3.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 2> x;
  (void)max_pool(x, window<2>);
}

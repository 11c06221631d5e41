// Must not compile: an axis repeated in a permutation.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 3> x;
  (void)permute<0, 1, 1>(x);
}

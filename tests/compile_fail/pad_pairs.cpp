// Must not compile: pad of a rank-2 tensor with one (low, high) pair.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 2> x;
  (void)pad<1, 1>(x);
}

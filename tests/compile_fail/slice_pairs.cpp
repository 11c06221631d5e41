// Must not compile: slice of a rank-3 tensor with two (begin, end) pairs.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 3> x;
  (void)slice<0, 2, 1, to_end>(x);
}

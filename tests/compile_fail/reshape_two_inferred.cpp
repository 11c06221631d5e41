// Must not compile: two inferred (-1) extents in a reshape.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 3> x;
  (void)reshape<-1, 4, -1>(x);
}

// Must not compile: concat of arguments of different ranks.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"a", 4> a;
  constexpr var<"b", 3> b;
  (void)concat<-1>(a, b);
}

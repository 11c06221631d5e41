// Must not compile: z is not a leaf of the program's graph.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 2> x;
  constexpr var<"z", 2> z;
  auto prog = compile<float>(sum(x * x));
  tensor<float, 2> t({2, 2});
  prog.bind(z, t);
}

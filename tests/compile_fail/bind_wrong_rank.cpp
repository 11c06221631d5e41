// Must not compile: x is declared with rank 2, the tensor has rank 3.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
int main() {
  constexpr var<"x", 2> x;
  auto prog = compile<float>(sum(x * x));
  tensor<float, 3> t({2, 2, 2});
  prog.bind(x, t);
}

// Must not compile: a user op without `name` (the op contract, core/op_concepts.hpp).
#include <typegrad/typegrad.hpp>
using namespace typegrad;
struct nameless_op {
  static constexpr std::size_t rank(std::size_t x) { return x; }
  static shape infer_shape(std::span<const shape> in) { return in[0]; }
  template <class T>
  static void forward(view<T> out, std::span<const view<const T>> in) {
    for (std::size_t i = 0; i < out.size(); ++i) out.data[i] = in[0].data[i];
  }
};
int main() {
  constexpr var<"x", 2> x;
  auto y = node<nameless_op, var<"x", 2>>{};
  (void)y;
  (void)x;
}

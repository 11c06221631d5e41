// Must not compile: differentiating through a user op that has no vjp (the op contract,
// core/op_concepts.hpp). Forming and running the node is fine; grad() needs the rule.
#include <typegrad/typegrad.hpp>
using namespace typegrad;
struct copy_op {
  static constexpr std::string_view name = "copy";
  static constexpr std::size_t rank(std::size_t x) { return x; }
  static shape infer_shape(std::span<const shape> in) { return in[0]; }
  template <class T>
  static void forward(view<T> out, std::span<const view<const T>> in) {
    for (std::size_t i = 0; i < out.size(); ++i) out.data[i] = in[0].data[i];
  }
};
int main() {
  constexpr var<"x", 2> x;
  auto f = sum(node<copy_op, var<"x", 2>>{});
  auto g = grad(f, x);
  (void)g;
}

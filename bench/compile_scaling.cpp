// Compile-time scaling probe: a chain of DEPTH dense+tanh layers and the gradient of its sum with
// respect to every weight and bias, compiled into one program. Built by bench/compile_scaling.sh
// with -DDEPTH=16/32/64 (and deeper: 256 is measured), which records the compiler's time and
// peak memory (docs/compile-time.md).
#include <cstddef>
#include <utility>

#include <typegrad/typegrad.hpp>

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
// Leaf names w01, w02, ... and b01, b02, ...: distinct compile-time names per layer.
template <std::size_t I> constexpr var<numbered<I>("w"), 2> w{};
template <std::size_t I> constexpr var<numbered<I>("b"), 1> b{};

template <std::size_t N>
constexpr auto mlp() {
  if constexpr (N == 0) return x;
  else return tanh(dense(mlp<N - 1>(), w<N>, b<N>));
}
template <std::size_t... I>
auto build(std::index_sequence<I...>) {
  return compile<float>(sum(mlp<DEPTH>()), wrt(w<I + 1>..., b<I + 1>...));
}
}  // namespace

int main() {
  auto program = build(std::make_index_sequence<DEPTH>{});
  return program.node_count() > 0 ? 0 : 1;
}

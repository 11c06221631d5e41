// Per-op overhead of the executor: a chain of 100 layers h = relu(h * a_i + b_i) on tiny tensors
// (64 floats), forward and the gradients of sum(h) with respect to x and all 200 parameters, so
// the kernels do almost nothing and the time is the program's own cost per node. Prints ns per
// elementwise op, forward + backward (3 ops per layer: total time / 300), at each thread count
// given, median of 9 repeats of 2000 runs each. bench/op_overhead_vs_pytorch.sh runs PyTorch's
// eager autograd on the same chain beside it.
//   op_overhead [threads ...]   (default: 1 2)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include <typegrad/typegrad.hpp>

using namespace typegrad;

namespace {
constexpr std::size_t layers = 100, width = 64, ops_per_layer = 3;
constexpr var<"x", 1> x;
template <std::size_t I> constexpr var<numbered<I>("a"), 1> a{};
template <std::size_t I> constexpr var<numbered<I>("b"), 1> b{};

template <std::size_t N>
constexpr auto chain() {
  if constexpr (N == 0) return x;
  else return relu(chain<N - 1>() * a<N> + b<N>);
}
template <std::size_t... I>
auto build(std::index_sequence<I...>) {
  return compile<float>(sum(chain<layers>()), wrt(x, a<I + 1>..., b<I + 1>...));
}
template <std::size_t... I>
void bind_parameters(auto& program, tensor<float, 1>& av, tensor<float, 1>& bv, std::index_sequence<I...>) {
  (program.bind(a<I + 1>, av), ...);
  (program.bind(b<I + 1>, bv), ...);
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts;
  for (int i = 1; i < argc; ++i) thread_counts.push_back(std::atoi(argv[i]));
  if (thread_counts.empty()) thread_counts = {1, 2};
  auto program = build(std::make_index_sequence<layers>{});
  tensor<float, 1> xv({width}), av({width}), bv({width});
  for (std::size_t i = 0; i < width; ++i) {
    xv[i] = 0.01f * float(i);
    av[i] = 1.0f;
    bv[i] = 0.001f;
  }
  program.bind(x, xv);
  bind_parameters(program, av, bv, std::make_index_sequence<layers>{});
  std::printf("# %zu layers relu(h * a + b) on %zu floats, forward + gradients: %zu nodes\n", layers, width,
              program.node_count());
  for (int threads : thread_counts) {
    program.set_threads(threads);
    constexpr int runs = 2000, repeats = 9;
    std::vector<double> ns;
    for (int r = 0; r < repeats; ++r) {
      program.run();  // warm
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < runs; ++i) program.run();
      const auto t1 = std::chrono::steady_clock::now();
      ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / runs / (layers * ops_per_layer));
    }
    std::sort(ns.begin(), ns.end());
    std::printf("threads=%d ns_per_op=%.1f min=%.1f max=%.1f\n", threads, ns[repeats / 2], ns.front(), ns.back());
  }
}

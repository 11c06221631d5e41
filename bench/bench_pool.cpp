// 2x2/2 max and average pooling on N=32, C=64, 56x56 float (channels last), forward and
// forward + backward, through compiled programs, with 1 and 2 threads. Median of 11 timed runs
// after a warm-up run.
//
// Forward + backward is one program computing y = pool(x) and dx = pool_backward(g, x) for a
// given upstream adjoint g (what PyTorch's y = pool(x); y.backward(g) does). GB/s counts the
// nominal traffic: forward reads x and writes y; backward reads g and x and writes dx.
//
// The machine's own limit, measured in the same run: case "copy", a copy of x (read + write, split
// into one contiguous half per thread for 2 threads), the bandwidth the pools are a fraction of.
//
// Output: one line per case, "case <name> threads <t> ms <ms> GBps <GB/s>", which
// bench/pool_vs_pytorch.sh joins with bench/pool_pytorch.py's lines.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <random>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <typegrad/typegrad.hpp>

using namespace typegrad;

namespace {

constexpr int timed_runs = 11;

template <class F>
double median_seconds(F&& f) {
  f();  // warm-up: program planning, first touch of the buffers
  std::array<double, timed_runs> t{};
  for (auto& s : t) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t.begin(), t.end());
  return t[timed_runs / 2];
}

tensor<float, 4> random_tensor(const std::array<std::size_t, 4>& extents, unsigned seed) {
  tensor<float, 4> t(extents);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : t) v = u(rng);
  return t;
}

constexpr var<"x", 4> x;
constexpr var<"g", 4> g;

constexpr std::size_t batch = 32, channels = 64, extent = 56;

void report(const std::string& name, int threads, double seconds, double bytes) {
  fmt::print("case {} threads {} ms {:.3f} GBps {:.2f}\n", name, threads, seconds * 1e3, bytes / seconds * 1e-9);
  std::fflush(stdout);
}

// y: the pooling expression; dx: its backward op applied to (g, x).
template <class Forward, class Backward>
void bench_pool(const std::string& name, Forward y, Backward dx, const tensor<float, 4>& xv,
                const tensor<float, 4>& gv) {
  const double in_bytes = double(xv.size()) * sizeof(float), out_bytes = double(gv.size()) * sizeof(float);
  auto fwd = compile<float>(y);
  fwd.bind(x, xv);
  auto both = compile<float>(y, dx);
  both.bind(x, xv).bind(g, gv);
  for (int threads : {1, 2}) {
    fwd.set_threads(threads);
    report(name + "_forward", threads, median_seconds([&] { fwd.run(); }), in_bytes + out_bytes);
    both.set_threads(threads);
    report(name + "_forward_backward", threads, median_seconds([&] { both.run(); }),
           (in_bytes + out_bytes) + (out_bytes + 2 * in_bytes));
  }
}

// GB/s of a plain copy of xv's bytes (read + write), 1 and 2 threads.
void bench_copy(const tensor<float, 4>& xv) {
  const std::size_t n = xv.size();
  std::vector<float> dst(n);
  for (int threads : {1, 2}) {
    tbb::task_arena arena(threads);
    const double s = median_seconds([&] {
      arena.execute([&] {
        tbb::parallel_for(0, threads, [&](int t) {
          const std::size_t lo = n * std::size_t(t) / std::size_t(threads), hi = n * std::size_t(t + 1) / std::size_t(threads);
          std::memcpy(dst.data() + lo, xv.data() + lo, (hi - lo) * sizeof(float));
        });
      });
    });
    report("copy", threads, s, 2.0 * double(n) * sizeof(float));
  }
}

}  // namespace

int main() {
  const auto xv = random_tensor({batch, extent, extent, channels}, 1);
  const auto gv = random_tensor({batch, extent / 2, extent / 2, channels}, 2);
  fmt::print("# typegrad pooling, N={} C={} {}x{} float, channels last, 2x2 window stride 2; median of {} runs\n",
             batch, channels, extent, extent, timed_runs);
  bench_copy(xv);
  using w2 = window_t<2>;
  using s2 = stride_t<2>;
  bench_pool("max_pool", max_pool(x, window<2>, stride<2>), node<max_pool_backward_op<w2, s2>, var<"g", 4>, var<"x", 4>>{},
             xv, gv);
  bench_pool("avg_pool", avg_pool(x, window<2>, stride<2>),
             node<avg_pool_transpose_op<w2, s2>, var<"g", 4>, var<"x", 4>>{}, xv, gv);
}

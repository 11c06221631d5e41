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
//   bench_pool                        the programs and the copy, as above
//   bench_pool --impl NAME [N H W C]  each pooling kernel alone (max_pool, avg_pool, max_pool_gather,
//                                     max_pool_backward, avg_pool_transpose), run by its
//                                     implementation NAME (kernels/pool.hpp) where the kernel has
//                                     one of that name and it applies to the 2x2/2 pool of x
//                                     (N, H, W, C), by default the case above: to compare
//                                     implementations on one shape
//
// Output: one line per case, "case <name> threads <t> ms <ms> GBps <GB/s>", which
// bench/pool_vs_pytorch.sh joins with bench/pool_pytorch.py's lines; with --impl the name is
// <kernel>/<NAME>, and a comment line for each kernel that has no NAME or where it does not apply.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <cstring>
#include <string>
#include <string_view>
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

// --impl: each pooling kernel of the 2x2/2 pool of xv (adjoint gv) alone, by implementation
// `impl`, with 1 and 2 threads. GB/s counts what the kernel reads and writes, as above (max_pool_gather
// reads x twice: it gathers x at x's argmax).
void time_implementation(std::string_view impl, const tensor<float, 4>& xv, const tensor<float, 4>& gv) {
  using kernels::pool_kernel;
  const kernels::pool_window w{2, {2, 2}, {2, 2}};
  const view<const float> x_in = xv.as_view(), g_in = gv.as_view();
  std::vector<float> out(gv.size()), dx(xv.size());
  const view<float> out_v{out.data(), gv.shape_of()}, dx_v{dx.data(), xv.shape_of()};
  const double in_bytes = double(xv.size()) * sizeof(float), out_bytes = double(gv.size()) * sizeof(float);
  for (const pool_kernel k : {pool_kernel::max_pool, pool_kernel::avg_pool, pool_kernel::max_pool_gather,
                              pool_kernel::max_pool_backward, pool_kernel::avg_pool_transpose}) {
    const char* kernel = kernels::pool_kernel_name(k);
    const auto names = kernels::pool_implementations(k);
    if (std::find(names.begin(), names.end(), impl) == names.end()) {
      fmt::print("# {}: no implementation {}\n", kernel, impl);
      continue;
    }
    if (!kernels::pool_applies<float>(k, impl, xv.shape_of(), w)) {
      fmt::print("# {}: {} does not apply\n", kernel, impl);
      continue;
    }
    double bytes = 0;
    std::function<void()> run;
    switch (k) {
      case pool_kernel::max_pool:
        bytes = in_bytes + out_bytes;
        run = [&] { kernels::max_pool_with<float>(impl, out_v, x_in, w); };
        break;
      case pool_kernel::avg_pool:
        bytes = in_bytes + out_bytes;
        run = [&] { kernels::avg_pool_with<float>(impl, out_v, x_in, w); };
        break;
      case pool_kernel::max_pool_gather:
        bytes = 2 * in_bytes + out_bytes;
        run = [&] { kernels::max_pool_gather_with<float>(impl, out_v, x_in, x_in, w); };
        break;
      case pool_kernel::max_pool_backward:
        bytes = out_bytes + 2 * in_bytes;
        run = [&] { kernels::max_pool_backward_with<float>(impl, dx_v, g_in, x_in, w); };
        break;
      case pool_kernel::avg_pool_transpose:
        bytes = out_bytes + in_bytes;
        run = [&] { kernels::avg_pool_transpose_with<float>(impl, dx_v, g_in, w); };
        break;
    }
    for (int threads : {1, 2}) {
      tbb::task_arena arena(threads);
      report(fmt::format("{}/{}", kernel, impl), threads, median_seconds([&] { arena.execute(run); }), bytes);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const bool by_implementation = !args.empty() && args[0] == "--impl";
  if ((by_implementation && args.size() != 2 && args.size() != 6) || (!by_implementation && !args.empty())) {
    fmt::print(stderr, "usage: bench_pool [--impl NAME [N H W C]]\n");
    return 2;
  }
  std::array<std::size_t, 4> x_extents{batch, extent, extent, channels};
  if (args.size() == 6)
    for (std::size_t i = 0; i < 4; ++i) x_extents[i] = std::stoul(std::string(args[2 + i]));
  const auto [n, h, w, c] = x_extents;
  const auto xv = random_tensor(x_extents, 1);
  const auto gv = random_tensor({n, (h + 1) / 2, (w + 1) / 2, c}, 2);
  if (by_implementation) {
    fmt::print("# typegrad pooling kernels by implementation {}, x ({}, {}, {}, {}) float, 2x2 window stride 2; "
               "median of {} runs\n",
               args[1], n, h, w, c, timed_runs);
    time_implementation(args[1], xv, gv);
    return 0;
  }
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

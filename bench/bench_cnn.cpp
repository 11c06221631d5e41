// Throughput of CNN ops through compiled programs: forward, and forward + backward (the gradients
// with respect to every input), median of timed runs after a warm-up, on all threads.
//
//   bench_cnn             every case
//   bench_cnn <name>...   only the named cases (e.g. bench_cnn b c)
//   bench_cnn --list      the case names, one per line
//   bench_cnn --cpu [...] one thread, timed by the process's CPU time instead of the wall clock:
//                         a per-core figure that other load on the machine hardly changes
//   bench_cnn [--cpu] --impl NAME [...]
//                         each conv direction's kernel alone (forward, input_grad, weight_grad),
//                         run by its implementation NAME (kernels/conv.hpp), where the
//                         direction has one of that name and it applies: to compare implementations
//                         on one shape. Without --impl, a comment line per case names the
//                         implementations the kernels choose.
//
// Each case is one row of `cases` below: a name, a description and a runner that returns the two
// timings and the work per run (FLOPs, or bytes for memory-bound ops such as pooling), and for a
// conv its geometry. To add a case (e.g. pooling), write its runner like conv_case and add a row.
//
// Convolution FLOPs: 2 * N * output positions * Cout * taps * Cin/groups per conv; forward +
// backward counts 3 times that (dX and dW each cost one forward). The backward pass is what
// grad() derives for an output adjoint r: dX = conv_transpose(r, w, x), dW = conv_weight_grad(x,
// r, w), built here from the op's own vjp so that no loss's elementwise work is timed with it
// (PyTorch's side does out.backward(r) likewise).
//
// Output: one line per case, `case=<name> fwd_ms=... fwd_gflops=... fwdbwd_ms=... fwdbwd_gflops=...`
// (bench/cnn_vs_pytorch.sh parses it), after a header with the GEMM kernels and the thread count;
// with --impl, one line per case and direction, `case=<name> impl=<NAME> direction=<d> ms=...
// gflops=...`.
#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <typegrad/kernels/conv.hpp>
#include <typegrad/kernels/gemm.hpp>
#include <typegrad/typegrad.hpp>

using namespace typegrad;

namespace {

constexpr int timed_runs = 7;
bool cpu_time = false;  // --cpu: one thread, process CPU time

double now_ms() {
  if (cpu_time) {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
double median_ms(F&& f) {
  f();  // warm-up: planning, first touch of buffers and scratch
  f();
  std::array<double, timed_runs> t{};
  for (auto& s : t) {
    const double t0 = now_ms();
    f();
    s = now_ms() - t0;
  }
  std::sort(t.begin(), t.end());
  return t[timed_runs / 2];
}

template <std::size_t R>
tensor<float, R> random_tensor(const std::array<std::size_t, R>& extents, unsigned seed) {
  tensor<float, R> t(extents);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (auto& v : t) v = u(rng);
  return t;
}

struct timing {
  double fwd_ms = 0, fwdbwd_ms = 0;
  double work = 0;             // per forward run, in `unit`s (FLOPs or bytes)
  double backward_factor = 3;  // forward + backward does this many times the forward's work
  const char* unit = "gflops";
};

// A D-d convolution, same padding, stride S: x (N, n..., C), w (K, k..., C).
template <std::size_t D, std::size_t S>
timing conv_case(std::size_t n_batch, std::size_t c, std::size_t extent, std::size_t k_out, std::size_t window) {
  constexpr std::size_t R = D + 2;
  constexpr var<"x", R> x;
  constexpr var<"w", R> w;
  constexpr var<"r", R> r;
  std::array<std::size_t, R> xs{}, ws{}, zs{};
  xs[0] = n_batch;
  ws[0] = k_out;
  zs[0] = n_batch;
  for (std::size_t i = 1; i <= D; ++i) {
    xs[i] = extent;
    ws[i] = window;
    zs[i] = (extent + S - 1) / S;
  }
  xs[R - 1] = c;
  ws[R - 1] = c;
  zs[R - 1] = k_out;
  auto xv = random_tensor<R>(xs, 1), wv = random_tensor<R>(ws, 2), rv = random_tensor<R>(zs, 3);

  auto z = conv(x, w, stride<S>);
  using op = typename decltype(z)::op;
  auto dx = op::template vjp<0>(r, z, x, w);
  auto dw = op::template vjp<1>(r, z, x, w);
  auto fwd = compile<float>(z);
  auto both = compile<float>(z, dx, dw);
  fwd.bind(x, xv).bind(w, wv);
  both.bind(x, xv).bind(w, wv).bind(r, rv);
  if (cpu_time) {
    fwd.set_threads(1);
    both.set_threads(1);
  }

  timing t;
  t.fwd_ms = median_ms([&] { fwd.run(); });
  t.fwdbwd_ms = median_ms([&] { both.run(); });
  double positions = 1, taps = 1;
  for (std::size_t i = 1; i <= D; ++i) {
    positions *= double(zs[i]);
    taps *= double(window);
  }
  t.work = 2.0 * double(n_batch) * positions * double(k_out) * taps * double(c);
  return t;
}

constexpr kernels::conv_direction directions[] = {kernels::conv_direction::forward, kernels::conv_direction::input_grad,
                                                  kernels::conv_direction::weight_grad};

struct bench_case {
  std::string_view name;
  std::string_view description;
  std::function<timing()> run;
  std::optional<kernels::conv_geometry> conv;  // a conv case's geometry (for --impl)
};

// A D-d conv case, same padding, stride S: conv_case's program, and its geometry.
template <std::size_t D, std::size_t S>
bench_case conv_row(std::string_view name, std::string_view description, std::size_t n_batch, std::size_t c,
                    std::size_t extent, std::size_t k_out, std::size_t window) {
  conv_params p;
  p.dims = D;
  shape xs{n_batch}, ws{k_out};
  for (std::size_t i = 0; i < D; ++i) {
    p.stride[i] = S;
    p.dilation[i] = 1;
    xs.push_back(extent);
    ws.push_back(window);
  }
  xs.push_back(c);
  ws.push_back(c);
  return {name, description, [=] { return conv_case<D, S>(n_batch, c, extent, k_out, window); },
          detail::conv_geometry_of(p, xs, ws)};
}

const std::vector<bench_case> cases{
    conv_row<2, 1>("a", "2-d N=64 C=1 28x28 K=32 3x3", 64, 1, 28, 32, 3),
    conv_row<2, 1>("b", "2-d N=32 C=64 56x56 K=64 3x3", 32, 64, 56, 64, 3),
    conv_row<2, 2>("c", "2-d N=32 C=128 28x28 K=128 3x3 stride 2", 32, 128, 28, 128, 3),
    conv_row<1, 1>("d", "1-d N=32 C=64 L=1024 K=64 k=7", 32, 64, 1024, 64, 7),
    conv_row<3, 1>("e", "3-d N=4 C=16 32^3 K=16 3x3x3", 4, 16, 32, 16, 3),
    conv_row<2, 1>("f", "2-d N=64 C=32 14x14 K=64 3x3", 64, 32, 14, 64, 3),
    // The small ResNet's (examples/fashion_mnist_resnet.cpp) first stage, downsampling conv and
    // projection shortcut.
    conv_row<2, 1>("g", "2-d N=64 C=16 28x28 K=16 3x3", 64, 16, 28, 16, 3),
    conv_row<2, 2>("h", "2-d N=64 C=16 28x28 K=32 3x3 stride 2", 64, 16, 28, 32, 3),
    conv_row<2, 2>("i", "2-d N=64 C=16 28x28 K=32 1x1 stride 2", 64, 16, 28, 32, 1),
    conv_row<2, 2>("j", "2-d N=64 C=32 14x14 K=64 3x3 stride 2", 64, 32, 14, 64, 3),  // its second downsampling
};

// --impl: each direction's kernel of conv case c alone, by implementation `impl`, on random data
// (float), timed like the programs; one line per direction it applies to.
void time_implementation(const bench_case& c, std::string_view impl) {
  const kernels::conv_geometry& g = *c.conv;
  shape xs{g.batch}, ws{g.out_channels};
  for (std::size_t i = 0; i < g.dims; ++i) {
    xs.push_back(g.in[i]);
    ws.push_back(g.window[i]);
  }
  xs.push_back(g.in_channels);
  ws.push_back(g.in_group());
  const shape zs = detail::conv_output_shape(g);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  auto random = [&](const shape& s) {
    std::vector<float> v(s.numel());
    for (auto& e : v) e = u(rng);
    return v;
  };
  const auto x = random(xs), w = random(ws), r = random(zs);
  std::vector<float> z(zs.numel()), dx(xs.numel()), dw(ws.numel());
  const view<const float> xv{x.data(), xs}, wv{w.data(), ws}, rv{r.data(), zs};
  const double work = 2.0 * double(g.batch * g.out_positions() * g.out_channels * g.taps() * g.in_group());
  tbb::task_arena arena(cpu_time ? 1 : tbb::task_arena::automatic);
  for (const auto d : directions) {
    const auto names = kernels::conv_implementations(d);
    const char* direction = kernels::conv_direction_name(d);
    if (std::find(names.begin(), names.end(), impl) == names.end()) {
      fmt::print("# {:<4} {}: no implementation {}\n", c.name, direction, impl);
      continue;
    }
    if (!kernels::conv_applies<float>(d, impl, g)) {
      fmt::print("# {:<4} {}: {} does not apply\n", c.name, direction, impl);
      continue;
    }
    const double ms = median_ms([&] {
      arena.execute([&] {
        switch (d) {
          case kernels::conv_direction::forward:
            kernels::conv_forward_with<float>(impl, view<float>{z.data(), zs}, xv, wv, g);
            break;
          case kernels::conv_direction::input_grad:
            kernels::conv_input_grad_with<float>(impl, view<float>{dx.data(), xs}, rv, wv, g);
            break;
          case kernels::conv_direction::weight_grad:
            kernels::conv_weight_grad_with<float>(impl, view<float>{dw.data(), ws}, xv, rv, g);
            break;
        }
      });
    });
    fmt::print("# {:<4} {:<42} {:>12} {:>10.2f} {:>10.1f}\n", c.name, c.description, direction, ms, work / ms * 1e-6);
    fmt::print("case={} impl={} direction={} ms={:.3f} gflops={:.1f}\n", c.name, impl, direction, ms, work / ms * 1e-6);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> only(argv + 1, argv + argc);
  if (!only.empty() && only[0] == "--cpu") {
    cpu_time = true;
    only.erase(only.begin());
  }
  if (only.size() == 1 && only[0] == "--list") {
    for (const auto& c : cases) fmt::print("{}\n", c.name);
    return 0;
  }
  std::string_view impl;  // --impl NAME
  if (only.size() >= 2 && only[0] == "--impl") {
    impl = only[1];
    only.erase(only.begin(), only.begin() + 2);
  }
  fmt::print("# typegrad bench_cnn: float, {}, {}\n",
             cpu_time ? std::string("1 thread, CPU time") : fmt::format("{} threads", tbb::info::default_concurrency()),
             kernels::gemm_description());
  if (!impl.empty())
    fmt::print("# {:<4} {:<42} {:>12} {:>10} {:>10}   (implementation {})\n", "case", "shape", "direction", "ms",
               "GFLOP/s", impl);
  else
    fmt::print("# {:<4} {:<42} {:>10} {:>10} {:>12} {:>12}\n", "case", "shape", "fwd ms", "GFLOP/s", "fwd+bwd ms",
               "GFLOP/s");
  for (const auto& c : cases) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
    if (!impl.empty()) {
      if (c.conv) time_implementation(c, impl);
      else fmt::print("# {:<4} not a conv: no implementation {}\n", c.name, impl);
      continue;
    }
    if (c.conv) {
      std::string chosen;
      for (const auto d : directions)
        chosen += fmt::format("{}{} {}", chosen.empty() ? "" : ", ", kernels::conv_direction_name(d),
                              kernels::conv_chosen<float>(d, *c.conv));
      fmt::print("# {:<4} implementations: {}\n", c.name, chosen);
    }
    const timing t = c.run();
    const double scale = 1e-6;  // work per ms -> giga-units per second
    const double fwd = t.work / t.fwd_ms * scale, both = t.backward_factor * t.work / t.fwdbwd_ms * scale;
    fmt::print("# {:<4} {:<42} {:>10.2f} {:>10.1f} {:>12.2f} {:>12.1f}\n", c.name, c.description, t.fwd_ms, fwd,
               t.fwdbwd_ms, both);
    fmt::print("case={} fwd_ms={:.3f} fwd_{}={:.1f} fwdbwd_ms={:.3f} fwdbwd_{}={:.1f}\n", c.name, t.fwd_ms, t.unit, fwd,
               t.fwdbwd_ms, t.unit, both);
    std::fflush(stdout);
  }
}

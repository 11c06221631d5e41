// Where fashion_mnist_cnn's training time goes, by op kind: conv, pooling, dense, the rest of the
// compiled step (bias adds, relu, flatten, loss, scheduling), the optimizer and the data.
//
// Each op kind is timed as its own program on the shapes of the example's step (batch 64): the op's forward and exactly the adjoints the step's gradient
// needs, built from the op's own vjp with a given upstream adjoint r (as bench_cnn does), so no
// other work is timed with it. The whole step program, the Adam step and the batch filling are
// timed as in the example. "Rest of the step" = step - (conv + pooling + dense); it can absorb the
// overlap of independent nodes inside the step, which separate programs cannot have. Then the
// step itself node by node, from the program's profiler (program.set_profiling()).
//
//   fashion_mnist_split [--threads N] [--data-dir DIR]     (defaults: all cores, the Debian data)
// Median of 31 timed runs after a warm-up, milliseconds per step, and the share of the sum.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>

#include <fmt/format.h>
#include <tbb/global_control.h>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

#include "nets/fashion_cnn.hpp"

using namespace typegrad;

namespace {
constexpr int timed_runs = 31;

template <class F>
double median_ms(F&& f) {
  f();  // warm-up: planning, first touch of the buffers
  std::array<double, timed_runs> t{};
  for (auto& s : t) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    s = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
  std::sort(t.begin(), t.end());
  return t[timed_runs / 2];
}

template <std::size_t R>
tensor<float, R> random_tensor(const std::array<std::size_t, R>& extents, unsigned seed) {
  tensor<float, R> t(extents);
  std::mt19937 rng(seed);
  std::normal_distribution<float> u(0.0f, 1.0f);
  for (auto& v : t) v = u(rng);
  return t;
}

// The example's model: examples/nets/fashion_cnn.hpp.
using namespace typegrad::nets::fashion_cnn;
constexpr std::size_t n = 64;

// Stand-ins for one op's input and upstream adjoint.
constexpr var<"a", 4> a4;
constexpr var<"r", 4> r4;
constexpr var<"a2", 2> a2;
constexpr var<"r2", 2> r2;

// conv(in, w) with dW always and dX when the step needs it (not for the image itself).
double time_conv(const tensor<float, 4>& in, const tensor<float, 4>& w, bool need_dx) {
  const std::array<std::size_t, 4> zs{in.extent(0), in.extent(1), in.extent(2), w.extent(0)};
  const auto rv = random_tensor<4>(zs, 7);
  constexpr var<"w", 4> wv;
  auto z = conv(a4, wv);
  using op = typename decltype(z)::op;
  auto dx = op::template vjp<0>(r4, z, a4, wv);
  auto dw = op::template vjp<1>(r4, z, a4, wv);
  if (need_dx) {
    auto p = compile<float>(z, dx, dw);
    p.bind(a4, in).bind(wv, w).bind(r4, rv);
    return median_ms([&] { p.run(); });
  }
  auto p = compile<float>(z, dw);
  p.bind(a4, in).bind(wv, w).bind(r4, rv);
  return median_ms([&] { p.run(); });
}

double time_pool(const tensor<float, 4>& in) {
  const auto rv = random_tensor<4>({in.extent(0), in.extent(1) / 2, in.extent(2) / 2, in.extent(3)}, 8);
  auto y = max_pool(a4, window<2>);
  using op = typename decltype(y)::op;
  auto p = compile<float>(y, op::template vjp<0>(r4, y, a4));
  p.bind(a4, in).bind(r4, rv);
  return median_ms([&] { p.run(); });
}

// The matmul of a dense layer with dX (when needed) and dW; the bias is in the rest.
double time_dense(const tensor<float, 2>& in, const tensor<float, 2>& w, bool need_dx) {
  const auto rv = random_tensor<2>({in.extent(0), w.extent(1)}, 9);
  constexpr var<"w", 2> wv;
  auto z = matmul(a2, wv);
  using op = typename decltype(z)::op;
  auto dx = op::template vjp<0>(r2, z, a2, wv);
  auto dw = op::template vjp<1>(r2, z, a2, wv);
  if (need_dx) {
    auto p = compile<float>(z, dx, dw);
    p.bind(a2, in).bind(wv, w).bind(r2, rv);
    return median_ms([&] { p.run(); });
  }
  auto p = compile<float>(z, dw);
  p.bind(a2, in).bind(wv, w).bind(r2, rv);
  return median_ms([&] { p.run(); });
}
}  // namespace

int main(int argc, char** argv) try {
  std::size_t threads = 0;
  std::string data_dir = data::default_fashion_mnist_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string opt = argv[i];
    if (opt == "--threads") threads = std::stoul(argv[i + 1]);
    else if (opt == "--data-dir") data_dir = argv[i + 1];
    else throw std::invalid_argument("unknown option " + opt);
  }
  std::optional<tbb::global_control> limit;
  if (threads) limit.emplace(tbb::global_control::max_allowed_parallelism, threads);

  const data::normalization norm{.mean = data::fashion_mnist_mean, .stddev = data::fashion_mnist_stddev};
  const auto train_set = data::load_fashion_mnist(data_dir, data::split::train, norm);
  data::batcher<float, 4> batches(train_set, n, {.seed = 1});

  auto step = compile<float>(loss, wrt(conv1_w, conv1_b, conv2_w, conv2_b, dense1_w, dense1_b, dense2_w, dense2_b));
  using namespace train;
  auto params = nets::fashion_cnn::make_parameters<float>();
  params.initialize(1);
  params.bind(step);
  adam opt(params, {.lr = 1e-6});  // a tiny rate: the timed steps barely move the parameters

  // The data: filling the example's 938 batches of an epoch, per batch.
  auto t0 = std::chrono::steady_clock::now();
  std::size_t filled = 0;
  for (int e = 0; e < 3; ++e) {
    for (const auto& b : batches.epoch(e)) {
      (void)b;
      ++filled;
    }
  }
  const double data_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / double(filled);

  // One batch for the step and the op programs.
  tensor<float, 4> images({n, 28, 28, 1});
  tensor<float, 1> label_values({n});
  for (const auto& b : batches.epoch(0)) {
    std::copy(b.images.begin(), b.images.end(), images.begin());
    std::copy(b.labels.begin(), b.labels.end(), label_values.begin());
    break;
  }
  step.bind(x, images).bind(labels, label_values);
  const double step_ms = median_ms([&] { step.run(); });
  const double opt_ms = median_ms([&] { opt.step(params, step); });

  const double conv_ms = time_conv(images, params[conv1_w], false) +
                         time_conv(random_tensor<4>({n, 14, 14, 32}, 1), params[conv2_w], true);
  const double pool_ms = time_pool(random_tensor<4>({n, 28, 28, 32}, 2)) + time_pool(random_tensor<4>({n, 14, 14, 64}, 3));
  const double dense_ms = time_dense(random_tensor<2>({n, 3136}, 4), params[dense1_w], false) +
                          time_dense(random_tensor<2>({n, 128}, 5), params[dense2_w], true);
  const double rest_ms = step_ms - conv_ms - pool_ms - dense_ms;
  const double total = step_ms + opt_ms + data_ms;

  fmt::print("# fashion_mnist_cnn, batch {}, {} threads, {}\n", n, threads ? std::to_string(threads) : "all",
             kernels::gemm_description());
  fmt::print("{:<44} {:>8} {:>7}\n", "part", "ms/step", "share");
  auto row = [&](const char* name, double ms) { fmt::print("{:<44} {:>8.2f} {:>6.1f}%\n", name, ms, 100 * ms / total); };
  row("conv (2 layers, forward + dW, dX of conv2)", conv_ms);
  row("max pooling (2 layers, forward + backward)", pool_ms);
  row("dense (2 matmuls, forward + dW, dX of 2nd)", dense_ms);
  row("rest of step (bias, relu, flatten, loss)", rest_ms);
  row("optimizer (Adam step, 421642 parameters)", opt_ms);
  row("data (filling one batch)", data_ms);
  fmt::print("{:<44} {:>8.2f}  (x {} steps = {:.1f} s per epoch; compiled step alone {:.2f} ms)\n", "total", total,
             batches.batches(), total * double(batches.batches()) / 1e3, step_ms);
  // The step itself, node by node (the profiler runs the nodes one at a time).
  step.set_profiling();
  for (int run = 0; run < timed_runs; ++run) step.run();
  fmt::print("\n{}", step.profile());
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "fashion_mnist_split: {}\n", e.what());
  return 1;
}

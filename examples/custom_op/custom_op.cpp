// A research prototype with a user-defined op: does a learnable swish slope help a small MLP?
//
//   custom_op [--steps 400] [--seed 1] [--threads 0] [--quiet]
//
// learnable_swish (learnable_swish.hpp, beside this file) is an op written outside typegrad's
// source tree: its own forward kernel, shape rule and vjp. Here it is the activation of an MLP
// 2 - 32 - 32 - 3 that classifies points of the plane by the ring they lie in (three concentric
// bands of the unit disc, a task a linear model cannot do). The same network is trained twice from
// the same initial weights: once with each channel's beta learned, once with beta fixed at 1
// (SiLU: beta is simply left out of wrt(...)). Prints loss and test accuracy of both, and the
// learned slopes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <numbers>
#include <optional>
#include <utility>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <tbb/global_control.h>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

#include "learnable_swish.hpp"

using namespace typegrad;
using research::learnable_swish;
namespace po = boost::program_options;

namespace {
constexpr var<"x", 2> x;            // (batch, 2) points
constexpr var<"labels", 1> labels;  // (batch) ring index
constexpr var<"w1", 2> w1;
constexpr var<"b1", 1> b1;
constexpr var<"beta1", 1> beta1;
constexpr var<"w2", 2> w2;
constexpr var<"b2", 1> b2;
constexpr var<"beta2", 1> beta2;
constexpr var<"w3", 2> w3;
constexpr var<"b3", 1> b3;

constexpr std::size_t hidden = 32, classes = 3, points = 2048;

// Points uniform in the unit disc; the label is the ring: radius below 0.45, 0.75, or above.
void make_rings(tensor<float, 2>& xs, tensor<float, 1>& ys, std::uint64_t seed) {
  auto g = train::make_generator({seed});
  for (std::size_t i = 0; i < ys.size(); ++i) {
    const double radius = std::sqrt(train::uniform01(g)), angle = 2 * std::numbers::pi * train::uniform01(g);
    xs(i, 0) = float(radius * std::cos(angle));
    xs(i, 1) = float(radius * std::sin(angle));
    ys[i] = radius < 0.45 ? 0.0f : radius < 0.75 ? 1.0f : 2.0f;
  }
}

struct options {
  std::size_t steps = 400, threads = 0;
  std::uint64_t seed = 1;
  bool quiet = false;
};

bool parse(int argc, char** argv, options& o) {
  po::options_description desc("custom_op: an MLP with a user-defined op (learnable swish)\nOptions");
  desc.add_options()                                                                           //
      ("help,h", "show this help")                                                             //
      ("steps", po::value(&o.steps)->default_value(o.steps), "full-batch Adam steps per run")  //
      ("seed", po::value(&o.seed)->default_value(o.seed), "seed of the data and initialisation")
      ("threads", po::value(&o.threads)->default_value(o.threads), "worker threads (0: all cores)")  //
      ("quiet", po::bool_switch(&o.quiet), "print only the final results");
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  if (vm.count("help")) {
    std::cout << desc;
    return false;
  }
  po::notify(vm);
  if (o.steps == 0) throw po::error("--steps must be positive");
  return true;
}
}  // namespace

int main(int argc, char** argv) try {
  options o;
  if (!parse(argc, argv, o)) return 0;
  std::optional<tbb::global_control> threads;
  if (o.threads) threads.emplace(tbb::global_control::max_allowed_parallelism, o.threads);

  tensor<float, 2> train_x({points, 2}), test_x({points, 2});
  tensor<float, 1> train_y({points}), test_y({points});  // class indices
  make_rings(train_x, train_y, o.seed);
  make_rings(test_x, test_y, o.seed + 1000);

  auto h1 = learnable_swish(dense(x, w1, b1), beta1);
  auto h2 = learnable_swish(dense(h1, w2, b2), beta2);
  auto logits = dense(h2, w3, b3);
  auto loss = softmax_cross_entropy(logits, labels);
  fmt::print("model: {}\n", logits);
  // The op's own adjoints, as typegrad derives them from its vjp (z stands for its input).
  constexpr var<"z", 2> z;
  const auto [dz, dbeta] = grad(sum(learnable_swish(z, beta1)), z, beta1);
  fmt::print("d/dz sum(learnable_swish(z, beta1)) = {}\nd/dbeta1 = {}\n\n", dz, dbeta);

  // Two step programs: with beta learned, and with beta fixed (left out of the gradients).
  auto learned = compile<float>(loss, wrt(w1, b1, w2, b2, w3, b3, beta1, beta2));
  auto fixed = compile<float>(loss, wrt(w1, b1, w2, b2, w3, b3));
  auto learned_eval = compile<float>(loss, logits), fixed_eval = compile<float>(loss, logits);

  // Parameters are drawn in the order given from one generator seeded by --seed, so both runs
  // start from the same weights; the betas come last and start at 1 (SiLU).
  using namespace train;
  auto learned_params = make_parameters<float>(
      param(w1, {2, hidden}, init::he_normal), param(b1, {hidden}), param(w2, {hidden, hidden}, init::he_normal),
      param(b2, {hidden}), param(w3, {hidden, classes}, init::glorot_uniform), param(b3, {classes}),
      param(beta1, {hidden}, init::constant(1)), param(beta2, {hidden}, init::constant(1)));
  auto fixed_params = make_parameters<float>(
      param(w1, {2, hidden}, init::he_normal), param(b1, {hidden}), param(w2, {hidden, hidden}, init::he_normal),
      param(b2, {hidden}), param(w3, {hidden, classes}, init::glorot_uniform), param(b3, {classes}));
  auto fixed_betas = make_parameters<float>(param(beta1, {hidden}, init::constant(1)),
                                            param(beta2, {hidden}, init::constant(1)));
  learned_params.initialize(o.seed);
  fixed_params.initialize(o.seed);
  fixed_betas.initialize(o.seed);
  learned_params.bind(learned);
  learned_params.bind(learned_eval);
  fixed_params.bind(fixed);
  fixed_params.bind(fixed_eval);
  fixed_betas.bind(fixed);
  fixed_betas.bind(fixed_eval);
  adam learned_opt(learned_params, {.lr = 0.01});
  adam fixed_opt(fixed_params, {.lr = 0.01});

  auto test_accuracy = [&](auto& eval) {
    eval.bind(x, test_x).bind(labels, test_y).run();
    accuracy_meter acc;
    acc.add(eval.value(logits), std::as_const(test_y).as_view());
    return std::pair{double(eval.scalar(loss)), acc.value()};
  };

  learned.bind(x, train_x).bind(labels, train_y);
  fixed.bind(x, train_x).bind(labels, train_y);
  if (!o.quiet) fmt::print("{:>5}  {:>22}  {:>22}\n", "step", "learned beta: loss acc", "fixed beta=1: loss acc");
  for (std::size_t step = 1; step <= o.steps; ++step) {
    learned.run();
    learned_opt.step(learned_params, learned);
    fixed.run();
    fixed_opt.step(fixed_params, fixed);
    if (!o.quiet && (step % 100 == 0 || step == 1)) {
      const auto [l1, a1] = test_accuracy(learned_eval);
      const auto [l2, a2] = test_accuracy(fixed_eval);
      fmt::print("{:>5}  {:>13.4f} {:>8.4f}  {:>13.4f} {:>8.4f}\n", step, l1, a1, l2, a2);
      std::fflush(stdout);
    }
  }
  const auto [l1, a1] = test_accuracy(learned_eval);
  const auto [l2, a2] = test_accuracy(fixed_eval);
  fmt::print("after {} steps: test accuracy {:.4f} with learned beta, {:.4f} with beta = 1 (test loss {:.4f} / {:.4f})\n",
             o.steps, a1, a2, l1, l2);
  auto summary = [](const tensor<float, 1>& b) {
    float lo = b[0], hi = b[0], sum = 0;
    for (float e : b) lo = std::min(lo, e), hi = std::max(hi, e), sum += e;
    return fmt::format("mean {:.3f}, range [{:.3f}, {:.3f}]", sum / float(b.size()), lo, hi);
  };
  fmt::print("learned slopes: layer 1 {}; layer 2 {}\n", summary(learned_params[beta1]), summary(learned_params[beta2]));
  return 0;
} catch (const po::error& e) {
  fmt::print(stderr, "custom_op: {} (see --help)\n", e.what());
  return 2;
} catch (const std::exception& e) {
  fmt::print(stderr, "custom_op: {}\n", e.what());
  return 1;
}

// A 1-d CNN on sequences: which waveform does a noisy signal carry? The same conv and pooling ops
// as the image CNN, on rank-3 data (batch, time, channels).
//
//   sequence_cnn_1d [--epochs 8] [--batch 64] [--lr 0.002] [--seed 1] [--threads 0] [--quiet]
//
// Task (synthetic, generated from --seed): 128 samples of a periodic wave, one of four shapes
// (sine, square, triangle, sawtooth), with a random period of 10-40 samples, phase, amplitude
// (0.8-1.6) and offset (+-0.5), plus Gaussian noise (sd 0.25). The class is the shape, so the
// network has to learn what the wave looks like locally (jumps, kinks, ramps), whatever its
// frequency and position: 8192 training and 2048 test sequences.
//
// Model, channels last:
//   conv 7 (32) -> relu -> max_pool 2 -> conv 5 (32) -> relu -> max_pool 2 -> conv 3 (64) -> relu
//   -> global_avg_pool -> dense 4, softmax cross-entropy, Adam with a cosine-decayed rate.
#include <chrono>
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

#include "common/training_cli.hpp"
#include "synthetic_batches.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 3> x;            // (batch, 128, 1)
constexpr var<"labels", 1> labels;  // (batch) waveform index
constexpr var<"conv1_w", 3> conv1_w;
constexpr var<"conv1_b", 1> conv1_b;
constexpr var<"conv2_w", 3> conv2_w;
constexpr var<"conv2_b", 1> conv2_b;
constexpr var<"conv3_w", 3> conv3_w;
constexpr var<"conv3_b", 1> conv3_b;
constexpr var<"dense_w", 2> dense_w;
constexpr var<"dense_b", 1> dense_b;

constexpr std::size_t length = 128, classes = 4, c1 = 32, c2 = 32, c3 = 64;
constexpr std::size_t train_size = 8192, test_size = 2048;
constexpr double noise = 0.25;  // standard deviation per sample
constexpr const char* shape_names[classes] = {"sine", "square", "triangle", "sawtooth"};

// One period of each shape at phase u in [0, 1), values in [-1, 1].
double wave(std::size_t shape, double u) {
  switch (shape) {
    case 0: return std::sin(2 * std::numbers::pi * u);
    case 1: return u < 0.5 ? 1.0 : -1.0;
    case 2: return 4 * std::abs(u - 0.5) - 1;
    default: return 2 * u - 1;
  }
}

// n sequences, classes in turn (balanced), each drawn from make_generator({seed, stream, i}).
examples::labelled_tensors<float, 3> make_waves(std::size_t n, std::uint64_t seed, std::uint64_t stream) {
  examples::labelled_tensors<float, 3> set{tensor<float, 3>({n, length, 1}), tensor<float, 1>({n})};
  for (std::size_t i = 0; i < n; ++i) {
    auto g = train::make_generator({seed, stream, i});
    const std::size_t shape = i % classes;
    const double period = 10 + 30 * train::uniform01(g), phase = train::uniform01(g);
    const double amplitude = 0.8 + 0.8 * train::uniform01(g), offset = train::uniform01(g) - 0.5;
    for (std::size_t t = 0; t < length; ++t) {
      const double u = std::fmod(double(t) / period + phase, 1.0);
      set.samples(i, t, 0) = float(offset + amplitude * wave(shape, u) + noise * train::standard_normal(g));
    }
    set.labels[i] = float(shape);
  }
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  examples::training_options o{.epochs = 8, .batch = 64, .lr = 2e-3};
  return examples::run_main("sequence_cnn_1d", [&] {
    if (!examples::parse(argc, argv, o,
                         {.name = "sequence_cnn_1d",
                          .title = "sequence_cnn_1d: a 1-d CNN classifying noisy waveforms",
                          .lr_help = "Adam learning rate (cosine-decayed over the run)",
                          .epilogue = "The default run (8 epochs) reaches about 0.95 test accuracy in about 10 s on this 2-core\n"
                                      "machine; results are repeatable for a fixed --seed, whatever --threads.\n",
                          .seed_help = "seed of the data, initialisation and shuffling",
                          .dataset_options = false}))
      return;
    examples::thread_limit threads(o.threads);

    const auto start = std::chrono::steady_clock::now();
    const auto train_set = make_waves(train_size, o.seed, 0);
    const auto test_set = make_waves(test_size, o.seed, 1);

    auto h1 = max_pool(relu(conv(x, conv1_w) + conv1_b), window<2>);
    auto h2 = max_pool(relu(conv(h1, conv2_w) + conv2_b), window<2>);
    auto h3 = relu(conv(h2, conv3_w) + conv3_b);
    auto logits = dense(global_avg_pool(h3), dense_w, dense_b);
    auto loss = softmax_cross_entropy(logits, labels);
    auto step_program =
        compile<float>(loss, logits, wrt(conv1_w, conv1_b, conv2_w, conv2_b, conv3_w, conv3_b, dense_w, dense_b));
    auto eval_program = compile<float>(loss, logits);

    using namespace train;
    auto params = make_parameters<float>(
        param(conv1_w, {c1, 7, 1}, init::he_normal), param(conv1_b, {c1}),
        param(conv2_w, {c2, 5, c1}, init::he_normal), param(conv2_b, {c2}),
        param(conv3_w, {c3, 3, c2}, init::he_normal), param(conv3_b, {c3}),
        param(dense_w, {c3, classes}, init::glorot_uniform), param(dense_b, {classes}));
    params.initialize(o.seed);
    params.bind(step_program);
    params.bind(eval_program);

    examples::tensor_batcher<float, 3> batches(train_set, o.batch, true, o.seed);
    examples::tensor_batcher<float, 3> test_batches(test_set, 512, false, 0);
    adam opt(params, {.lr = o.lr});
    const cosine_schedule schedule{.lr = o.lr, .total = o.epochs * batches.batches()};
    fmt::print("{} training / {} test sequences of {} samples; chance is {:.2f}\n", train_size, test_size, length,
               1.0 / classes);

    std::uint64_t step = 0;
    examples::train_epochs(
        o, batches,
        [&](const auto& b, accuracy_meter& train_accuracy) {
          step_program.bind(x, b.images).bind(labels, b.labels).run();
          train_accuracy.add(step_program.value(logits), b.labels.as_view());
          opt.set_lr(schedule(step++));
          opt.step(params, step_program);
          return step_program.scalar(loss);
        },
        [&] { return evaluate(eval_program, test_batches, x, labels, loss, logits); });

    const auto per_class = examples::per_class_accuracy(eval_program, test_batches, x, labels, logits, classes);
    fmt::print("test accuracy per shape:");
    for (std::size_t k = 0; k < classes; ++k) fmt::print("  {} {:.3f}", shape_names[k], per_class[k]);
    fmt::print("\n{:.1f} s in all\n", examples::seconds_since(start));
  });
}

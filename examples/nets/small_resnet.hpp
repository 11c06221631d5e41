#pragma once
// A small ResNet for 28x28 images (examples/fashion_mnist_resnet.cpp), 11 convolutions, each
// followed by batch norm; convolutions have no bias (batch norm's beta is the bias):
//   stem      3x3 conv (c1)                                         -> relu            28x28
//   block 1   identity:   3x3 conv -> relu -> 3x3 conv, + x         -> relu            28x28, c1
//   block 2   downsample: 3x3 conv stride 2 -> relu -> 3x3 conv,
//             + 1x1 conv stride 2 (the projection shortcut)         -> relu            14x14, c2
//   block 3   identity                                                                 14x14, c2
//   block 4   downsample                                                                7x7,  c3
//   global average pooling -> dense (classes) -> softmax cross-entropy
// Leaves conv01..conv11 (kernels (out, k, k, in)), gamma01.., beta01.. and, for evaluation,
// running_mean01.., running_var01...
//
// The network is built in two modes: bn_mode::batch (training: each batch norm uses its batch's
// statistics) and bn_mode::running (evaluation: the running averages, leaves of their own, as
// batch_norm_inference takes them). network<M>() also returns every convolution's output before
// its batch norm, so that a training program can output their batch moments and keep the running
// averages (docs/normalisation.md). Shared by examples/fashion_mnist_resnet.cpp and
// tests/test_net_small_resnet.cpp.
#include <array>
#include <cstddef>
#include <tuple>
#include <utility>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::small_resnet {
inline constexpr var<"x", 4> x;  // (batch, side, side, in_channels)
inline constexpr var<"labels", 1> labels;
inline constexpr var<"dense_w", 2> dense_w;
inline constexpr var<"dense_b", 1> dense_b;
template <std::size_t I> inline constexpr var<numbered<I>("conv"), 4> conv_w{};
template <std::size_t I> inline constexpr var<numbered<I>("gamma"), 1> gamma{};
template <std::size_t I> inline constexpr var<numbered<I>("beta"), 1> beta{};
template <std::size_t I> inline constexpr var<numbered<I>("running_mean"), 1> running_mean{};
template <std::size_t I> inline constexpr var<numbered<I>("running_var"), 1> running_var{};

inline constexpr std::size_t convs = 11;
// Per convolution (01..11): its output channels as an index into sizes::widths, its window, and
// how much smaller than the input its output is (for the number of values per channel).
inline constexpr std::array<std::size_t, convs> width_of{0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2};
inline constexpr std::array<std::size_t, convs> window_of{3, 3, 3, 3, 3, 1, 3, 3, 3, 3, 1};
inline constexpr std::array<std::size_t, convs> in_width_of{0, 0, 0, 0, 1, 0, 1, 1, 1, 2, 1};  // 0 of conv01: the image
inline constexpr std::array<std::size_t, convs> downscale_of{1, 1, 1, 2, 2, 2, 2, 2, 4, 4, 4};

enum class bn_mode { batch, running };

// Batch norm number I of the mode's kind.
template <bn_mode M, std::size_t I, Expression X>
constexpr auto bn(X x) {
  if constexpr (M == bn_mode::batch) return batch_norm(x, gamma<I>, beta<I>);
  else return batch_norm_inference(x, running_mean<I>, running_var<I>, gamma<I>, beta<I>);
}

// A basic block whose convs are I, I + 1 (and I + 2, the projection, when Down): its output and
// its convolutions' outputs before batch norm.
template <bn_mode M, std::size_t I, bool Down, Expression X>
constexpr auto basic_block(X x) {
  const auto c1 = conv(x, conv_w<I>, stride<Down ? 2 : 1>);
  const auto c2 = conv(relu(bn<M, I>(c1)), conv_w<I + 1>);
  if constexpr (Down) {
    const auto projection = conv(x, conv_w<I + 2>, stride<2>);
    return std::pair{relu(bn<M, I + 1>(c2) + bn<M, I + 2>(projection)), std::tuple{c1, c2, projection}};
  } else {
    return std::pair{relu(bn<M, I + 1>(c2) + x), std::tuple{c1, c2}};
  }
}

template <class Logits, class Loss, class Convs>
struct network_t {
  Logits logits;
  Loss loss;
  Convs conv_outputs;  // std::tuple of the 11 convolutions' outputs, before batch norm
};

template <bn_mode M>
constexpr auto network() {
  const auto stem_conv = conv(x, conv_w<1>);
  const auto [b1, c1] = basic_block<M, 2, false>(relu(bn<M, 1>(stem_conv)));
  const auto [b2, c2] = basic_block<M, 4, true>(b1);
  const auto [b3, c3] = basic_block<M, 7, false>(b2);
  const auto [b4, c4] = basic_block<M, 9, true>(b3);
  const auto logits = dense(global_avg_pool(b4), dense_w, dense_b);
  const auto loss = softmax_cross_entropy(logits, labels);
  const auto outputs = std::tuple_cat(std::tuple{stem_conv}, c1, c2, c3, c4);
  return network_t<decltype(logits), decltype(loss), decltype(outputs)>{logits, loss, outputs};
}

// The batch mean and the batch variance of every batch norm's input in the training network, in
// conv order: outputs of the training program, from which update_running_statistics reads.
inline constexpr auto batch_means =
    std::apply([](auto... c) { return std::tuple{batch_moments(c).mean...}; }, network<bn_mode::batch>().conv_outputs);
inline constexpr auto batch_vars =
    std::apply([](auto... c) { return std::tuple{batch_moments(c).var...}; }, network<bn_mode::batch>().conv_outputs);

// After a training step on `batch` images of side x side: for every batch norm,
//   running = (1 - momentum) * running + momentum * batch statistic,
// with the unbiased variance (count / (count - 1), count the values per channel), as PyTorch keeps it.
template <class Program, class Stats>
void update_running_statistics(const Program& step, Stats& stats, std::size_t batch, std::size_t side,
                               double momentum) {
  using T = typename Stats::value_type;
  const auto update = [&](auto mean_leaf, auto var_leaf, auto mean, auto var, std::size_t downscale) {
    const std::size_t extent = (side + downscale - 1) / downscale;  // "same" padding: ceil(side / stride)
    const double count = double(batch * extent * extent);
    const auto m = step.value(mean), v = step.value(var);
    T* rm = stats[mean_leaf].data();
    T* rv = stats[var_leaf].data();
    for (std::size_t c = 0; c < m.size(); ++c) {
      rm[c] = T((1 - momentum) * rm[c] + momentum * m.data[c]);
      rv[c] = T((1 - momentum) * rv[c] + momentum * v.data[c] * count / (count - 1));
    }
  };
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (update(running_mean<I + 1>, running_var<I + 1>, std::get<I>(batch_means), std::get<I>(batch_vars),
            downscale_of[I]),
     ...);
  }(std::make_index_sequence<convs>{});
}

// Every trained parameter, in one order (wrt(...), parameter sets, checkpoints).
inline constexpr auto weights = []<std::size_t... I>(std::index_sequence<I...>) {
  return wrt(conv_w<I + 1>..., gamma<I + 1>..., beta<I + 1>..., dense_w, dense_b);
}(std::make_index_sequence<convs>{});

struct sizes {
  std::size_t in_channels = 1;
  std::array<std::size_t, 3> widths{16, 32, 64};  // c1, c2, c3
  std::size_t classes = 10;
};

template <Scalar T>
auto make_parameters(const sizes& s) {
  using namespace train;
  const auto in = [&](std::size_t i) { return i == 0 ? s.in_channels : s.widths[in_width_of[i]]; };
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return train::make_parameters<T>(
        param(conv_w<I + 1>, {s.widths[width_of[I]], window_of[I], window_of[I], in(I)}, init::he_normal)...,
        param(gamma<I + 1>, {s.widths[width_of[I]]}, init::constant(1))...,
        param(beta<I + 1>, {s.widths[width_of[I]]})...,
        param(dense_w, {s.widths[2], s.classes}, init::glorot_uniform), param(dense_b, {s.classes}));
  }(std::make_index_sequence<convs>{});
}

// The running averages of batch norm's statistics: mean 0 and variance 1 to start with.
template <Scalar T>
auto make_running_statistics(const sizes& s) {
  using namespace train;
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return train::make_parameters<T>(param(running_mean<I + 1>, {s.widths[width_of[I]]})...,
                                     param(running_var<I + 1>, {s.widths[width_of[I]]}, init::constant(1))...);
  }(std::make_index_sequence<convs>{});
}

}  // namespace typegrad::nets::small_resnet

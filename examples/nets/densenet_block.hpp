#pragma once
// A DenseNet block of `Layers` layers: each layer sees the concatenation of the block's input and
// of every earlier layer's output, and adds `growth` channels:
//   h_0 = x,   h_k = concat(h_{k-1}, conv3x3(relu(batch_norm(h_{k-1}))))
//   out = global average pooling of h_Layers -> dense -> softmax cross-entropy
// Shared by examples/densenet_block.cpp, tests/test_net_densenet_block.cpp and
// bench/compile_densenet.cpp (12 layers: the compile-time budget of docs/compile-time.md).
#include <cstddef>
#include <utility>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::densenet_block {
inline constexpr var<"x", 4> x;
inline constexpr var<"labels", 1> labels;
inline constexpr var<"dense_w", 2> dense_w;
inline constexpr var<"dense_b", 1> dense_b;

// Per-layer leaves: conv01, gamma01, beta01, conv02, ...
template <std::size_t I> inline constexpr var<numbered<I>("conv"), 4> conv_w{};
template <std::size_t I> inline constexpr var<numbered<I>("gamma"), 1> bn_gamma{};
template <std::size_t I> inline constexpr var<numbered<I>("beta"), 1> bn_beta{};

template <std::size_t K>
constexpr auto features() {
  if constexpr (K == 0) {
    return x;
  } else {
    constexpr auto h = features<K - 1>();
    return concat<-1>(h, conv(relu(batch_norm(h, bn_gamma<K>, bn_beta<K>)), conv_w<K>));
  }
}
template <std::size_t Layers>
constexpr auto logits() {
  return dense(global_avg_pool(features<Layers>()), dense_w, dense_b);
}
template <std::size_t Layers>
constexpr auto loss() {
  return softmax_cross_entropy(logits<Layers>(), labels);
}
template <std::size_t Layers>
constexpr auto weights() {
  return []<std::size_t... I>(std::index_sequence<I...>) {
    return wrt(conv_w<I + 1>..., bn_gamma<I + 1>..., bn_beta<I + 1>..., dense_w, dense_b);
  }(std::make_index_sequence<Layers>{});
}

struct sizes {
  std::size_t in_channels = 16, growth = 12, classes = 10;
};
template <Scalar T, std::size_t Layers>
auto make_parameters(const sizes& s) {
  using namespace train;
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return train::make_parameters<T>(
        param(conv_w<I + 1>, {s.growth, 3, 3, s.in_channels + I * s.growth}, init::he_normal)...,
        param(bn_gamma<I + 1>, {s.in_channels + I * s.growth}, init::constant(1))...,
        param(bn_beta<I + 1>, {s.in_channels + I * s.growth})...,
        param(dense_w, {s.in_channels + Layers * s.growth, s.classes}, init::glorot_uniform),
        param(dense_b, {s.classes}));
  }(std::make_index_sequence<Layers>{});
}
}  // namespace typegrad::nets::densenet_block

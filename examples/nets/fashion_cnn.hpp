#pragma once
// The main example's CNN for 28x28 Fashion-MNIST images, shared by examples/fashion_mnist_cnn.cpp
// and examples/fashion_mnist_distributed.cpp:
//   conv 3x3 (32) + bias -> relu -> max pool 2x2 -> conv 3x3 (64) + bias -> relu -> max pool 2x2
//   -> dense (128) -> relu -> dense (10) -> softmax cross-entropy
#include <cstddef>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::fashion_cnn {
inline constexpr var<"x", 4> x;            // (batch, 28, 28, 1)
inline constexpr var<"labels", 1> labels;  // (batch) class indices
inline constexpr var<"conv1_w", 4> conv1_w;
inline constexpr var<"conv1_b", 1> conv1_b;
inline constexpr var<"conv2_w", 4> conv2_w;
inline constexpr var<"conv2_b", 1> conv2_b;
inline constexpr var<"dense1_w", 2> dense1_w;
inline constexpr var<"dense1_b", 1> dense1_b;
inline constexpr var<"dense2_w", 2> dense2_w;
inline constexpr var<"dense2_b", 1> dense2_b;

inline constexpr std::size_t side = 28, c1 = 32, c2 = 64, hidden = 128, classes = 10;
inline constexpr std::size_t pooled = side / 4;  // two 2x2/2 poolings of 28: 14, then 7

inline constexpr auto h1 = max_pool(relu(conv(x, conv1_w) + conv1_b), window<2>);
inline constexpr auto h2 = max_pool(relu(conv(h1, conv2_w) + conv2_b), window<2>);
inline constexpr auto logits = dense(relu(dense(flatten(h2), dense1_w, dense1_b)), dense2_w, dense2_b);
inline constexpr auto loss = softmax_cross_entropy(logits, labels);

template <Scalar T>
auto make_parameters() {
  using namespace train;
  return train::make_parameters<T>(
      param(conv1_w, {c1, 3, 3, 1}, init::he_normal), param(conv1_b, {c1}),
      param(conv2_w, {c2, 3, 3, c1}, init::he_normal), param(conv2_b, {c2}),
      param(dense1_w, {pooled * pooled * c2, hidden}, init::he_normal), param(dense1_b, {hidden}),
      param(dense2_w, {hidden, classes}, init::glorot_uniform), param(dense2_b, {classes}));
}
}  // namespace typegrad::nets::fashion_cnn

#pragma once
// A ResNet basic block with a strided projection shortcut:
//   main:     3x3 conv, stride 2 -> batch norm -> relu -> 3x3 conv -> batch norm
//   shortcut: 1x1 conv, stride 2 -> batch norm
//   out = relu(main + shortcut) -> global average pooling -> dense -> softmax cross-entropy
// Shared by examples/resnet_block.cpp and tests/test_net_resnet_block.cpp.
#include <cstddef>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::resnet_block {
inline constexpr var<"x", 4> x;
inline constexpr var<"labels", 1> labels;
inline constexpr var<"conv1_w", 4> conv1_w;
inline constexpr var<"bn1_gamma", 1> bn1_gamma;
inline constexpr var<"bn1_beta", 1> bn1_beta;
inline constexpr var<"conv2_w", 4> conv2_w;
inline constexpr var<"bn2_gamma", 1> bn2_gamma;
inline constexpr var<"bn2_beta", 1> bn2_beta;
inline constexpr var<"proj_w", 4> proj_w;
inline constexpr var<"proj_gamma", 1> proj_gamma;
inline constexpr var<"proj_beta", 1> proj_beta;
inline constexpr var<"dense_w", 2> dense_w;
inline constexpr var<"dense_b", 1> dense_b;

inline constexpr auto main_path =
    batch_norm(conv(relu(batch_norm(conv(x, conv1_w, stride<2>), bn1_gamma, bn1_beta)), conv2_w), bn2_gamma, bn2_beta);
inline constexpr auto shortcut = batch_norm(conv(x, proj_w, stride<2>), proj_gamma, proj_beta);
inline constexpr auto block = relu(main_path + shortcut);
inline constexpr auto logits = dense(global_avg_pool(block), dense_w, dense_b);
inline constexpr auto loss = softmax_cross_entropy(logits, labels);
inline constexpr auto weights = wrt(conv1_w, bn1_gamma, bn1_beta, conv2_w, bn2_gamma, bn2_beta, proj_w, proj_gamma,
                                    proj_beta, dense_w, dense_b);

struct sizes {
  std::size_t in_channels = 16, channels = 32, classes = 10;
};
template <Scalar T>
auto make_parameters(const sizes& s) {
  using namespace train;
  return train::make_parameters<T>(
      param(conv1_w, {s.channels, 3, 3, s.in_channels}, init::he_normal),
      param(bn1_gamma, {s.channels}, init::constant(1)), param(bn1_beta, {s.channels}),
      param(conv2_w, {s.channels, 3, 3, s.channels}, init::he_normal),
      param(bn2_gamma, {s.channels}, init::constant(1)), param(bn2_beta, {s.channels}),
      param(proj_w, {s.channels, 1, 1, s.in_channels}, init::he_normal),
      param(proj_gamma, {s.channels}, init::constant(1)), param(proj_beta, {s.channels}),
      param(dense_w, {s.channels, s.classes}, init::glorot_uniform), param(dense_b, {s.classes}));
}
}  // namespace typegrad::nets::resnet_block

#pragma once
// A VGG-style block: two 3x3 conv + relu layers, then 2x2 max pooling; classified by global
// average pooling and one dense layer.
// Shared by examples/vgg_block.cpp and tests/test_net_vgg_block.cpp.
#include <cstddef>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::vgg_block {
inline constexpr var<"x", 4> x;
inline constexpr var<"labels", 1> labels;
inline constexpr var<"conv1_w", 4> conv1_w;
inline constexpr var<"conv1_b", 1> conv1_b;
inline constexpr var<"conv2_w", 4> conv2_w;
inline constexpr var<"conv2_b", 1> conv2_b;
inline constexpr var<"dense_w", 2> dense_w;
inline constexpr var<"dense_b", 1> dense_b;

inline constexpr auto block = max_pool(relu(conv(relu(conv(x, conv1_w) + conv1_b), conv2_w) + conv2_b), window<2>);
inline constexpr auto logits = dense(global_avg_pool(block), dense_w, dense_b);
inline constexpr auto loss = softmax_cross_entropy(logits, labels);
inline constexpr auto weights = wrt(conv1_w, conv1_b, conv2_w, conv2_b, dense_w, dense_b);

struct sizes {
  std::size_t in_channels = 3, channels = 64, classes = 10;
};
template <Scalar T>
auto make_parameters(const sizes& s) {
  using namespace train;
  return train::make_parameters<T>(param(conv1_w, {s.channels, 3, 3, s.in_channels}, init::he_normal),
                                   param(conv1_b, {s.channels}),
                                   param(conv2_w, {s.channels, 3, 3, s.channels}, init::he_normal),
                                   param(conv2_b, {s.channels}),
                                   param(dense_w, {s.channels, s.classes}, init::glorot_uniform),
                                   param(dense_b, {s.classes}));
}
}  // namespace typegrad::nets::vgg_block

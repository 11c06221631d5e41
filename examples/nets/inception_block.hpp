#pragma once
// An Inception block: four parallel branches over the same input, joined along the channels.
//   branch 1: 1x1 conv
//   branch 2: 1x1 conv (reduce) -> relu -> 3x3 conv
//   branch 3: 1x1 conv (reduce) -> relu -> 5x5 conv
//   branch 4: 3x3 max pooling (stride 1) -> 1x1 conv
//   concat along channels -> relu -> global average pooling -> dense -> softmax cross-entropy
// The branches are independent nodes of the graph, so the program runs them concurrently.
// Shared by examples/inception_block.cpp and tests/test_net_inception_block.cpp.
#include <cstddef>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::inception_block {
inline constexpr var<"x", 4> x;
inline constexpr var<"labels", 1> labels;
inline constexpr var<"b1_w", 4> b1_w;
inline constexpr var<"b1_b", 1> b1_b;
inline constexpr var<"b2_reduce_w", 4> b2_reduce_w;
inline constexpr var<"b2_reduce_b", 1> b2_reduce_b;
inline constexpr var<"b2_w", 4> b2_w;
inline constexpr var<"b2_b", 1> b2_b;
inline constexpr var<"b3_reduce_w", 4> b3_reduce_w;
inline constexpr var<"b3_reduce_b", 1> b3_reduce_b;
inline constexpr var<"b3_w", 4> b3_w;
inline constexpr var<"b3_b", 1> b3_b;
inline constexpr var<"b4_w", 4> b4_w;
inline constexpr var<"b4_b", 1> b4_b;
inline constexpr var<"dense_w", 2> dense_w;
inline constexpr var<"dense_b", 1> dense_b;

inline constexpr auto branch1 = conv(x, b1_w) + b1_b;
inline constexpr auto branch2 = conv(relu(conv(x, b2_reduce_w) + b2_reduce_b), b2_w) + b2_b;
inline constexpr auto branch3 = conv(relu(conv(x, b3_reduce_w) + b3_reduce_b), b3_w) + b3_b;
inline constexpr auto branch4 = conv(max_pool(x, window<3>, stride<1>), b4_w) + b4_b;
inline constexpr auto block = relu(concat<-1>(branch1, branch2, branch3, branch4));
inline constexpr auto logits = dense(global_avg_pool(block), dense_w, dense_b);
inline constexpr auto loss = softmax_cross_entropy(logits, labels);
inline constexpr auto weights = wrt(b1_w, b1_b, b2_reduce_w, b2_reduce_b, b2_w, b2_b, b3_reduce_w, b3_reduce_b, b3_w,
                                    b3_b, b4_w, b4_b, dense_w, dense_b);

struct sizes {
  std::size_t in_channels = 16, branch = 16, reduce = 8, classes = 10;
};
template <Scalar T>
auto make_parameters(const sizes& s) {
  using namespace train;
  const std::size_t c = s.in_channels;
  return train::make_parameters<T>(
      param(b1_w, {s.branch, 1, 1, c}, init::he_normal), param(b1_b, {s.branch}),
      param(b2_reduce_w, {s.reduce, 1, 1, c}, init::he_normal), param(b2_reduce_b, {s.reduce}),
      param(b2_w, {s.branch, 3, 3, s.reduce}, init::he_normal), param(b2_b, {s.branch}),
      param(b3_reduce_w, {s.reduce, 1, 1, c}, init::he_normal), param(b3_reduce_b, {s.reduce}),
      param(b3_w, {s.branch, 5, 5, s.reduce}, init::he_normal), param(b3_b, {s.branch}),
      param(b4_w, {s.branch, 1, 1, c}, init::he_normal), param(b4_b, {s.branch}),
      param(dense_w, {4 * s.branch, s.classes}, init::glorot_uniform), param(dense_b, {s.classes}));
}
}  // namespace typegrad::nets::inception_block

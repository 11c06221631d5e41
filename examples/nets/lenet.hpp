#pragma once
// A LeNet-style network: two conv + relu + max-pool stages, then two dense layers.
//   x (batch, side, side, 1) -> conv 5x5 (c1) -> relu -> max_pool 2 -> conv 5x5 (c2) -> relu
//   -> max_pool 2 -> flatten -> dense (hidden) -> relu -> dense (classes) -> softmax cross-entropy
// Shared by examples/lenet.cpp (prints it and its gradients) and tests/test_net_lenet.cpp (checks
// the whole forward + gradient program by finite differences).
#include <cstddef>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::lenet {
inline constexpr var<"x", 4> x;            // (batch, side, side, 1)
inline constexpr var<"labels", 1> labels;  // (batch) class indices
inline constexpr var<"conv1_w", 4> conv1_w;
inline constexpr var<"conv1_b", 1> conv1_b;
inline constexpr var<"conv2_w", 4> conv2_w;
inline constexpr var<"conv2_b", 1> conv2_b;
inline constexpr var<"dense1_w", 2> dense1_w;
inline constexpr var<"dense1_b", 1> dense1_b;
inline constexpr var<"dense2_w", 2> dense2_w;
inline constexpr var<"dense2_b", 1> dense2_b;

inline constexpr auto features =
    max_pool(relu(conv(max_pool(relu(conv(x, conv1_w) + conv1_b), window<2>), conv2_w) + conv2_b), window<2>);
inline constexpr auto logits = dense(relu(dense(flatten(features), dense1_w, dense1_b)), dense2_w, dense2_b);
inline constexpr auto loss = softmax_cross_entropy(logits, labels);
inline constexpr auto weights = wrt(conv1_w, conv1_b, conv2_w, conv2_b, dense1_w, dense1_b, dense2_w, dense2_b);

struct sizes {
  std::size_t side = 28, c1 = 6, c2 = 16, hidden = 120, classes = 10;
};
template <Scalar T>
auto make_parameters(const sizes& s) {
  using namespace train;
  const std::size_t pooled = (s.side + 3) / 4;  // two 2x2/2 poolings: ceil(ceil(n/2)/2)
  return train::make_parameters<T>(param(conv1_w, {s.c1, 5, 5, 1}, init::he_normal), param(conv1_b, {s.c1}),
                                   param(conv2_w, {s.c2, 5, 5, s.c1}, init::he_normal), param(conv2_b, {s.c2}),
                                   param(dense1_w, {pooled * pooled * s.c2, s.hidden}, init::he_normal),
                                   param(dense1_b, {s.hidden}),
                                   param(dense2_w, {s.hidden, s.classes}, init::glorot_uniform),
                                   param(dense2_b, {s.classes}));
}
}  // namespace typegrad::nets::lenet

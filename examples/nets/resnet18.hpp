#pragma once
// A ResNet-18-sized network (20 convolutions, each followed by batch norm): a 3x3 stem, then four
// stages of two basic blocks (channels c, 2c, 4c, 8c); the first block of stages 2-4 halves the
// resolution with a stride-2 conv and a 1x1 stride-2 projection shortcut; global average pooling,
// dense, softmax cross-entropy. Leaves conv01..conv20, gamma01.., beta01..; kernels are
// (out, 3, 3, in) except the projections 08, 13 and 18, which are (out, 1, 1, in).
// Used by bench/compile_budget.sh (compile time and memory of the forward + all gradients).
#include <cstddef>
#include <utility>

#include <typegrad/typegrad.hpp>

namespace typegrad::nets::resnet18 {
inline constexpr var<"x", 4> x;
inline constexpr var<"labels", 1> labels;
inline constexpr var<"dense_w", 2> dense_w;
inline constexpr var<"dense_b", 1> dense_b;
template <std::size_t I> inline constexpr var<numbered<I>("conv"), 4> conv_w{};
template <std::size_t I> inline constexpr var<numbered<I>("gamma"), 1> gamma{};
template <std::size_t I> inline constexpr var<numbered<I>("beta"), 1> beta{};

// conv I, then its batch norm.
template <std::size_t I, std::size_t Stride = 1, Expression X>
constexpr auto conv_bn(X x) {
  return batch_norm(conv(x, conv_w<I>, stride<Stride>), gamma<I>, beta<I>);
}
// A basic block whose convs are I and I + 1 (and I + 2 for the projection when Project).
template <std::size_t I, bool Project, Expression X>
constexpr auto basic_block(X x) {
  auto main_path = conv_bn<I + 1>(relu(conv_bn<I, Project ? 2 : 1>(x)));
  if constexpr (Project) return relu(main_path + conv_bn<I + 2, 2>(x));
  else return relu(main_path + x);
}
constexpr auto features() {
  auto stem = relu(conv_bn<1>(x));
  auto stage1 = basic_block<4, false>(basic_block<2, false>(stem));
  auto stage2 = basic_block<9, false>(basic_block<6, true>(stage1));
  auto stage3 = basic_block<14, false>(basic_block<11, true>(stage2));
  return basic_block<19, false>(basic_block<16, true>(stage3));
}
inline constexpr auto logits = dense(global_avg_pool(features()), dense_w, dense_b);
inline constexpr auto loss = softmax_cross_entropy(logits, labels);
inline constexpr auto weights = []<std::size_t... I>(std::index_sequence<I...>) {
  return wrt(conv_w<I + 1>..., gamma<I + 1>..., beta<I + 1>..., dense_w, dense_b);
}(std::make_index_sequence<20>{});
}  // namespace typegrad::nets::resnet18

#pragma once
// A small Inception-style network for 28x28 grey images (Fashion-MNIST), channels last:
//   stem:     conv 3x3 (same) -> relu -> max_pool 2                     28x28x1 -> 14x14xstem
//   block 1:  four parallel branches over the same input, joined along the channels
//               1x1 | 1x1 -> relu -> 3x3 | 1x1 -> relu -> 5x5 | 3x3 max pool (stride 1) -> 1x1
//             -> relu                                                              14x14xC1
//   max_pool 2 (the downsampling step)                                             7x7xC1
//   block 2:  the same shape of block, wider                                       7x7xC2
//   global average pooling -> dense 10, softmax cross-entropy.
// The branches of a block, and their weight and data gradients, are independent nodes of the
// program, which runs them concurrently. Leaves of block B are named <role>0B ("b2_reduce_w01").
// Shared by examples/fashion_mnist_inception.cpp, bench/inception_threads.cpp and
// tests/test_net_inception_net.cpp.
#include <cstddef>
#include <tuple>

#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

namespace typegrad::nets::inception_net {
inline constexpr var<"x", 4> x;            // (batch, 28, 28, 1)
inline constexpr var<"labels", 1> labels;  // (batch) class indices
inline constexpr var<"stem_w", 4> stem_w;
inline constexpr var<"stem_b", 1> stem_b;
inline constexpr var<"dense_w", 2> dense_w;
inline constexpr var<"dense_b", 1> dense_b;
// One set per block B: branch 1 (1x1), branch 2 (1x1 reduce, 3x3), branch 3 (1x1 reduce, 5x5),
// branch 4 (1x1 after the pooling).
template <std::size_t B> inline constexpr var<numbered<B>("b1_w"), 4> b1_w{};
template <std::size_t B> inline constexpr var<numbered<B>("b1_b"), 1> b1_b{};
template <std::size_t B> inline constexpr var<numbered<B>("b2_reduce_w"), 4> b2_reduce_w{};
template <std::size_t B> inline constexpr var<numbered<B>("b2_reduce_b"), 1> b2_reduce_b{};
template <std::size_t B> inline constexpr var<numbered<B>("b2_w"), 4> b2_w{};
template <std::size_t B> inline constexpr var<numbered<B>("b2_b"), 1> b2_b{};
template <std::size_t B> inline constexpr var<numbered<B>("b3_reduce_w"), 4> b3_reduce_w{};
template <std::size_t B> inline constexpr var<numbered<B>("b3_reduce_b"), 1> b3_reduce_b{};
template <std::size_t B> inline constexpr var<numbered<B>("b3_w"), 4> b3_w{};
template <std::size_t B> inline constexpr var<numbered<B>("b3_b"), 1> b3_b{};
template <std::size_t B> inline constexpr var<numbered<B>("b4_w"), 4> b4_w{};
template <std::size_t B> inline constexpr var<numbered<B>("b4_b"), 1> b4_b{};

template <std::size_t B, Expression X>
constexpr auto inception(X in) {
  auto branch1 = conv(in, b1_w<B>) + b1_b<B>;
  auto branch2 = conv(relu(conv(in, b2_reduce_w<B>) + b2_reduce_b<B>), b2_w<B>) + b2_b<B>;
  auto branch3 = conv(relu(conv(in, b3_reduce_w<B>) + b3_reduce_b<B>), b3_w<B>) + b3_b<B>;
  auto branch4 = conv(max_pool(in, window<3>, stride<1>), b4_w<B>) + b4_b<B>;
  return relu(concat<-1>(branch1, branch2, branch3, branch4));
}

inline constexpr auto stem = max_pool(relu(conv(x, stem_w) + stem_b), window<2>);
inline constexpr auto features = inception<2>(max_pool(inception<1>(stem), window<2>));
inline constexpr auto logits = dense(global_avg_pool(features), dense_w, dense_b);
inline constexpr auto loss = softmax_cross_entropy(logits, labels);
inline constexpr auto weights =
    wrt(stem_w, stem_b, b1_w<1>, b1_b<1>, b2_reduce_w<1>, b2_reduce_b<1>, b2_w<1>, b2_b<1>, b3_reduce_w<1>,
        b3_reduce_b<1>, b3_w<1>, b3_b<1>, b4_w<1>, b4_b<1>, b1_w<2>, b1_b<2>, b2_reduce_w<2>, b2_reduce_b<2>, b2_w<2>,
        b2_b<2>, b3_reduce_w<2>, b3_reduce_b<2>, b3_w<2>, b3_b<2>, b4_w<2>, b4_b<2>, dense_w, dense_b);

// Output channels of one block's branches (the block's output has b1 + b2 + b3 + b4 channels).
struct block_sizes {
  std::size_t b1, b2_reduce, b2, b3_reduce, b3, b4;
  constexpr std::size_t out() const { return b1 + b2 + b3 + b4; }
};
struct sizes {
  std::size_t in_channels = 1, stem = 32;
  block_sizes block1{32, 24, 48, 8, 16, 32};   // 32 -> 128 channels at 14x14
  block_sizes block2{64, 48, 96, 16, 32, 64};  // 128 -> 256 channels at 7x7
  std::size_t classes = 10;
};

namespace detail {
template <std::size_t B>
auto block_params(std::size_t in, const block_sizes& s) {
  using namespace train;
  return std::tuple{param(b1_w<B>, {s.b1, 1, 1, in}, init::he_normal),
                    param(b1_b<B>, {s.b1}),
                    param(b2_reduce_w<B>, {s.b2_reduce, 1, 1, in}, init::he_normal),
                    param(b2_reduce_b<B>, {s.b2_reduce}),
                    param(b2_w<B>, {s.b2, 3, 3, s.b2_reduce}, init::he_normal),
                    param(b2_b<B>, {s.b2}),
                    param(b3_reduce_w<B>, {s.b3_reduce, 1, 1, in}, init::he_normal),
                    param(b3_reduce_b<B>, {s.b3_reduce}),
                    param(b3_w<B>, {s.b3, 5, 5, s.b3_reduce}, init::he_normal),
                    param(b3_b<B>, {s.b3}),
                    param(b4_w<B>, {s.b4, 1, 1, in}, init::he_normal),
                    param(b4_b<B>, {s.b4})};
}
}  // namespace detail

// The parameters in the order of `weights` (biases zero; tests may redraw them).
template <Scalar T>
auto make_parameters(const sizes& s) {
  using namespace train;
  return std::apply(
      [&](auto... specs) {
        return train::make_parameters<T>(specs..., param(dense_w, {s.block2.out(), s.classes}, init::glorot_uniform),
                                         param(dense_b, {s.classes}));
      },
      std::tuple_cat(std::tuple{param(stem_w, {s.stem, 3, 3, s.in_channels}, init::he_normal), param(stem_b, {s.stem})},
                     detail::block_params<1>(s.stem, s.block1), detail::block_params<2>(s.block1.out(), s.block2)));
}
}  // namespace typegrad::nets::inception_net

#pragma once
// Kernels of the convolution family (compiled in src/kernels/conv.cpp, float and double).
//
// All three see one convolution, described by its geometry: x (N, n_1..n_D, C) convolved with
// w (K, k_1..k_D, C/groups) gives z (N, m_1..m_D, K), where output position o reads the input at
//   pos_i(o, j) = o_i * stride_i + dilation_i * j_i - pad_low_i    (zero outside [0, n_i))
// for every tap j of the window. Every padding mode of ops/conv.hpp reduces to this form.
//
//   conv_forward       z = conv(x, w)
//   conv_input_grad    x-shaped dx = the adjoint of x -> conv(x, w) applied to g (conv_transpose)
//   conv_weight_grad   w-shaped dw = the adjoint of w -> conv(x, w) applied to g
//
// Each is parallel through parallel_chunks and bitwise independent of the thread count (see the
// file comment of src/kernels/conv.cpp for how). Each runs the first of its direction's
// implementations that applies to the geometry; the end of this file names them, for tests and
// benchmarks.
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "typegrad/core/shape.hpp"

namespace typegrad::kernels {

struct conv_geometry {
  std::size_t dims = 0;  // D, the number of ordered dims
  std::size_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  std::array<std::size_t, max_spatial_dims> in{}, out{}, window{}, stride{}, dilation{}, pad_low{};

  std::size_t in_group() const { return in_channels / groups; }    // w's last extent
  std::size_t out_group() const { return out_channels / groups; }  // out channels per group
  std::size_t taps() const { return product(window); }
  std::size_t in_positions() const { return product(in); }
  std::size_t out_positions() const { return product(out); }

 private:
  std::size_t product(const std::array<std::size_t, max_spatial_dims>& a) const {
    std::size_t p = 1;
    for (std::size_t i = 0; i < dims; ++i) p *= a[i];
    return p;
  }
};

// What conv_forward applies to each output tile while it is still in cache (the narrow and
// gathered products: in registers, as each block leaves them), instead of a pass of its own over
// the whole output: z + bias[k] (bias of K values, or of 1 for all channels), then relu. Bitwise
// the separate passes (binary add_relu: select(s < 0, 0, s) of the sum).
template <class T>
struct conv_epilogue {
  const T* bias = nullptr;  // none: z unchanged before the relu
  std::size_t bias_size = 0;
  bool relu = false;
};

// out (N, m..., K) = conv(x (N, n..., C), w (K, k..., C/groups)), then the epilogue.
template <class T>
void conv_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                  const conv_epilogue<T>& epilogue = {});

// out = relu(conv(x, w) + b) for a rank-1 b, broadcasting as add does: with b of K values or 1
// (out has the conv's shape) in the conv's epilogue; else (one output channel, widened by a
// longer b) through the conv's output in scratch and one broadcasting pass.
template <class T>
void conv_bias_relu(view<T> out, view<const T> x, view<const T> w, view<const T> b, const conv_geometry& g);

// dx (N, n..., C) = conv_transpose(g (N, m..., K), w): dx[p] = sum over (o, j) with pos(o, j) = p
// of w_j^T g[o].
template <class T>
void conv_input_grad(view<T> dx, view<const T> g, view<const T> w, const conv_geometry& geom);

// dw (K, k..., C/groups) = sum over batch and output positions o of g[o] x[pos(o, j)]^T.
template <class T>
void conv_weight_grad(view<T> dw, view<const T> x, view<const T> g, const conv_geometry& geom);

// ---- implementations by name: for tests and benchmarks ----------------------------------------
// Each direction has an ordered list of named implementations, each with an applicability test on
// the geometry (and element type); the kernels above run the first that applies. Any of them can
// also be run by name where it applies. The last, "reference", is the naive loop nest with long
// double sums, slow and serial: it applies to everything, and the others are tested against it.
// Programs never need these functions.

enum class conv_direction { forward, input_grad, weight_grad };

// "forward", "input_grad" or "weight_grad".
const char* conv_direction_name(conv_direction d);

// The names of d's implementations, in the order they are tried (the same for float and double),
// e.g. depthwise, pointwise, winograd, gathered, indirect, packed_gemm, reference for the forward.
std::vector<std::string_view> conv_implementations(conv_direction d);

// Whether d's implementation `name` applies to geometry g with elements T. Throws typegrad::error
// if d has no implementation of that name.
template <class T>
bool conv_applies(conv_direction d, std::string_view name, const conv_geometry& g);

// The implementation the kernels above run for g: the first in d's list that applies.
template <class T>
std::string_view conv_chosen(conv_direction d, const conv_geometry& g);

// conv_forward, conv_input_grad and conv_weight_grad with implementation `name` instead of the
// first that applies. Throw typegrad::error, naming the implementation, the direction and the
// geometry, if it does not apply to the geometry (or the direction has none of that name).
template <class T>
void conv_forward_with(std::string_view name, view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                       const conv_epilogue<T>& epilogue = {});
template <class T>
void conv_input_grad_with(std::string_view name, view<T> dx, view<const T> g, view<const T> w,
                          const conv_geometry& geom);
template <class T>
void conv_weight_grad_with(std::string_view name, view<T> dw, view<const T> x, view<const T> g,
                           const conv_geometry& geom);

// g for messages, e.g. "x (2, 9, 8, 40), w (128, 3, 3, 40), groups 1, stride (2, 2),
// dilation (1, 1), pad_low (1, 1) -> (2, 5, 4, 128)".
std::string to_string(const conv_geometry& g);

}  // namespace typegrad::kernels

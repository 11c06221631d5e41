#pragma once
// Reference convolutions for tests: each padding mode's tap position and output extent spelled
// out as DESIGN.md states them, and conv, conv_transpose and conv_weight_grad by the library's
// reference implementation (src/kernels/conv_reference.cpp: the naive loop nest with a long
// double accumulator, no tiling, no GEMM), on a geometry checked against those formulas.
#include <cstddef>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include <typegrad/core/shape.hpp>
#include <typegrad/kernels/conv.hpp>
#include <typegrad/ops/conv.hpp>

namespace typegrad::reference {

// Output extent of ordered dim i for input extent n and window k (DESIGN.md, "Normative semantics").
inline std::size_t conv_out_extent(const conv_params& p, std::size_t i, std::size_t n, std::size_t k) {
  const long s = long(p.stride[i]), d = long(p.dilation[i]), nn = long(n), kk = long(k);
  auto ceil_div = [](long a, long b) { return (a + b - 1) / b; };
  switch (p.padding) {
    case padding_mode::same:
    case padding_mode::uncentered: return std::size_t(ceil_div(nn, s));
    case padding_mode::valid: return std::size_t((nn - d * (kk - 1) - 1) / s + 1);
    case padding_mode::explicit_pads:
      return std::size_t((nn + long(p.pad_low[i] + p.pad_high[i]) - d * (kk - 1) - 1) / s + 1);
  }
  return 0;
}

// The input index output o reads through tap j (may be outside [0, n): a padding zero).
inline long conv_tap_position(const conv_params& p, std::size_t i, std::size_t o, std::size_t j, std::size_t k) {
  const long s = long(p.stride[i]), d = long(p.dilation[i]);
  switch (p.padding) {
    case padding_mode::same: return long(o) * s + d * (long(j) - (long(k) - 1) / 2);
    case padding_mode::valid:
    case padding_mode::uncentered: return long(o) * s + d * long(j);
    case padding_mode::explicit_pads: return long(o) * s + d * long(j) - long(p.pad_low[i]);
  }
  return 0;
}

inline shape conv_output_shape(const conv_params& p, const shape& x, const shape& w) {
  shape out;
  out.push_back(x[0]);
  for (std::size_t i = 0; i < p.dims; ++i) out.push_back(conv_out_extent(p, i, x[i + 1], w[i + 1]));
  out.push_back(w[0]);
  return out;
}

// The kernels' geometry of conv(x, w) under p, checked against the formulas above: every output
// extent and every tap's input position. The library's reference sees only the geometry, so this
// is where the padding modes are checked independently of the op's own conversion.
inline kernels::conv_geometry checked_geometry(const conv_params& p, const shape& xs, const shape& ws) {
  const kernels::conv_geometry g = detail::conv_geometry_of(p, xs, ws);
  for (std::size_t i = 0; i < p.dims; ++i) {
    const std::size_t k = ws[i + 1];
    if (g.out[i] != conv_out_extent(p, i, xs[i + 1], k))
      throw std::logic_error(fmt::format("conv geometry: output extent {} of dim {} differs from the formula's {}",
                                         g.out[i], i, conv_out_extent(p, i, xs[i + 1], k)));
    for (std::size_t o = 0; o < g.out[i]; ++o)
      for (std::size_t j = 0; j < k; ++j) {
        const long pos = long(o * g.stride[i] + g.dilation[i] * j) - long(g.pad_low[i]);
        if (pos != conv_tap_position(p, i, o, j, k))
          throw std::logic_error(fmt::format("conv geometry: output {} reads {} through tap {} in dim {}, not {}", o,
                                             pos, j, i, conv_tap_position(p, i, o, j, k)));
      }
  }
  return g;
}

// g must have the shape of conv(x, w), whose adjoint it is.
inline void check_adjoint_shape(const conv_params& p, const shape& g, const shape& xs, const shape& ws) {
  if (g != conv_output_shape(p, xs, ws))
    throw std::logic_error(
        fmt::format("conv adjoint: g {} is not conv's output shape {}", g, conv_output_shape(p, xs, ws)));
}

// z = conv(x, w), shape conv_output_shape(p, x, w): the library's reference implementation.
template <class T>
std::vector<T> conv(const conv_params& p, view<const T> x, view<const T> w) {
  const shape zs = conv_output_shape(p, x.shape, w.shape);
  std::vector<T> z(zs.numel());
  kernels::conv_forward_with<T>("reference", view<T>{z.data(), zs}, x, w, checked_geometry(p, x.shape, w.shape));
  return z;
}

// dx (shape xs) = the adjoint of x -> conv(x, w) applied to g.
template <class T>
std::vector<T> conv_transpose(const conv_params& p, view<const T> g, view<const T> w, const shape& xs) {
  check_adjoint_shape(p, g.shape, xs, w.shape);
  std::vector<T> dx(xs.numel());
  kernels::conv_input_grad_with<T>("reference", view<T>{dx.data(), xs}, g, w, checked_geometry(p, xs, w.shape));
  return dx;
}

// dw (shape ws) = the adjoint of w -> conv(x, w) applied to g.
template <class T>
std::vector<T> conv_weight_grad(const conv_params& p, view<const T> x, view<const T> g, const shape& ws) {
  check_adjoint_shape(p, g.shape, x.shape, ws);
  std::vector<T> dw(ws.numel());
  kernels::conv_weight_grad_with<T>("reference", view<T>{dw.data(), ws}, x, g, checked_geometry(p, x.shape, ws));
  return dw;
}

}  // namespace typegrad::reference

#pragma once
// Naive reference convolutions for tests: DESIGN.md's formulas written out loop by loop, with a
// long double accumulator. Independent of the kernels (no geometry struct, no tiling, no GEMM):
// each padding mode's tap position and output extent are spelled out as the design states them.
#include <array>
#include <cstddef>
#include <vector>

#include <typegrad/core/shape.hpp>
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

namespace conv_detail {
using index_array = std::array<std::size_t, max_rank>;
inline void unflatten(std::size_t flat, const shape& s, index_array& idx) {
  for (std::size_t i = s.rank(); i-- > 0;) {
    idx[i] = flat % s[i];
    flat /= s[i];
  }
}
inline std::size_t flatten(const index_array& idx, const shape& s) {
  std::size_t f = 0;
  for (std::size_t i = 0; i < s.rank(); ++i) f = f * s[i] + idx[i];
  return f;
}
// Calls f(x_flat, w_flat, z_flat) for every term x * w of every output element z of conv(x, w)
// that does not fall in the padding.
template <class F>
void for_each_term(const conv_params& p, const shape& xs, const shape& ws, const shape& zs, F&& f) {
  const std::size_t d = p.dims, cg = ws[d + 1], kg = ws[0] / p.groups;
  shape window;
  for (std::size_t i = 0; i < d; ++i) window.push_back(ws[i + 1]);
  index_array z{}, j{}, xi{}, wi{};
  for (std::size_t zf = 0; zf < zs.numel(); ++zf) {
    unflatten(zf, zs, z);  // (b, o..., co)
    const std::size_t co = z[d + 1], grp = co / kg;
    for (std::size_t jf = 0; jf < window.numel(); ++jf) {
      unflatten(jf, window, j);
      xi[0] = z[0];
      bool inside = true;
      for (std::size_t i = 0; i < d; ++i) {
        const long pos = conv_tap_position(p, i, z[i + 1], j[i], window[i]);
        if (pos < 0 || pos >= long(xs[i + 1])) inside = false;
        else xi[i + 1] = std::size_t(pos);
      }
      if (!inside) continue;
      wi[0] = co;
      for (std::size_t i = 0; i < d; ++i) wi[i + 1] = j[i];
      for (std::size_t ci = 0; ci < cg; ++ci) {
        xi[d + 1] = grp * cg + ci;
        wi[d + 1] = ci;
        f(flatten(xi, xs), flatten(wi, ws), zf);
      }
    }
  }
}
}  // namespace conv_detail

// z = conv(x, w), shape conv_output_shape(p, x, w).
template <class T>
std::vector<T> conv(const conv_params& p, view<const T> x, view<const T> w) {
  const shape zs = conv_output_shape(p, x.shape, w.shape);
  std::vector<long double> acc(zs.numel(), 0);
  conv_detail::for_each_term(p, x.shape, w.shape, zs, [&](std::size_t xf, std::size_t wf, std::size_t zf) {
    acc[zf] += (long double)x.data[xf] * w.data[wf];
  });
  return std::vector<T>(acc.begin(), acc.end());
}

// dx (shape xs) = the adjoint of x -> conv(x, w) applied to g.
template <class T>
std::vector<T> conv_transpose(const conv_params& p, view<const T> g, view<const T> w, const shape& xs) {
  std::vector<long double> acc(xs.numel(), 0);
  conv_detail::for_each_term(p, xs, w.shape, g.shape, [&](std::size_t xf, std::size_t wf, std::size_t zf) {
    acc[xf] += (long double)g.data[zf] * w.data[wf];
  });
  return std::vector<T>(acc.begin(), acc.end());
}

// dw (shape ws) = the adjoint of w -> conv(x, w) applied to g.
template <class T>
std::vector<T> conv_weight_grad(const conv_params& p, view<const T> x, view<const T> g, const shape& ws) {
  std::vector<long double> acc(ws.numel(), 0);
  conv_detail::for_each_term(p, x.shape, ws, g.shape, [&](std::size_t xf, std::size_t wf, std::size_t zf) {
    acc[wf] += (long double)g.data[zf] * x.data[xf];
  });
  return std::vector<T>(acc.begin(), acc.end());
}

}  // namespace typegrad::reference

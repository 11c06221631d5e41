// The reference convolution: the geometry's formula (conv_kernels.hpp) written out loop by loop,
// with no tiling, no packing, no GEMM and no threads, each sum accumulated in long double. It is
// slow and as exact as T can hold, which is what the fast implementations are compared with
// (tests/test_conv_implementations.cpp, tests/test_conv.cpp, the program fuzzer). It applies to
// every geometry and comes last in conv.cpp's lists, so a program never runs it unless asked to by
// name (conv_forward_with("reference", ...)).
#include <array>
#include <cstddef>
#include <vector>

#include "conv_reference.hpp"

namespace typegrad::kernels {
namespace {

// The multi-index of `flat` in a row-major grid of `extent` (dims entries).
void unflatten(std::size_t flat, const std::array<std::size_t, max_spatial_dims>& extent, std::size_t dims,
               std::array<std::size_t, max_spatial_dims>& at) {
  for (std::size_t i = dims; i-- > 0;) {
    at[i] = flat % extent[i];
    flat /= extent[i];
  }
}

// Calls f(x_flat, w_flat, z_flat) for every term x * w of every output element z of conv(x, w)
// that does not fall in the padding: z in order, then its taps j, then its group's channels.
template <class F>
void for_each_term(const conv_geometry& g, F&& f) {
  const std::size_t c = g.in_channels, k = g.out_channels, cg = g.in_group(), kg = g.out_group();
  const std::size_t taps = g.taps(), in_pos = g.in_positions(), out_pos = g.out_positions();
  std::array<std::size_t, max_spatial_dims> o{}, j{};
  for (std::size_t b = 0; b < g.batch; ++b)
    for (std::size_t of = 0; of < out_pos; ++of) {
      unflatten(of, g.out, g.dims, o);
      for (std::size_t co = 0; co < k; ++co)
        for (std::size_t t = 0; t < taps; ++t) {
          unflatten(t, g.window, g.dims, j);
          std::size_t p = 0;  // the flat input position o reads through j
          bool inside = true;
          for (std::size_t i = 0; i < g.dims && inside; ++i) {
            const long pos = long(o[i] * g.stride[i] + g.dilation[i] * j[i]) - long(g.pad_low[i]);
            inside = pos >= 0 && pos < long(g.in[i]);
            p = p * g.in[i] + std::size_t(pos);
          }
          if (!inside) continue;
          const std::size_t grp = co / kg;
          for (std::size_t ci = 0; ci < cg; ++ci)
            f((b * in_pos + p) * c + grp * cg + ci, (co * taps + t) * cg + ci, (b * out_pos + of) * k + co);
        }
    }
}

}  // namespace

template <class T>
void reference_conv_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                            const conv_epilogue<T>& e) {
  std::vector<long double> acc(out.size(), 0);
  for_each_term(g, [&](std::size_t xf, std::size_t wf, std::size_t zf) {
    acc[zf] += static_cast<long double>(x.data[xf]) * w.data[wf];
  });
  const std::size_t k = g.out_channels;
  for (std::size_t i = 0; i < acc.size(); ++i) {  // then the epilogue: relu(z + bias), in T
    T z = T(acc[i]);
    if (e.bias != nullptr) z += e.bias[e.bias_size == 1 ? 0 : i % k];
    out.data[i] = e.relu && z < T(0) ? T(0) : z;
  }
}

template <class T>
void reference_conv_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  std::vector<long double> acc(dx.size(), 0);
  for_each_term(g, [&](std::size_t xf, std::size_t wf, std::size_t zf) {
    acc[xf] += static_cast<long double>(gr.data[zf]) * w.data[wf];
  });
  for (std::size_t i = 0; i < acc.size(); ++i) dx.data[i] = T(acc[i]);
}

template <class T>
void reference_conv_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  std::vector<long double> acc(dw.size(), 0);
  for_each_term(g, [&](std::size_t xf, std::size_t wf, std::size_t zf) {
    acc[wf] += static_cast<long double>(gr.data[zf]) * x.data[xf];
  });
  for (std::size_t i = 0; i < acc.size(); ++i) dw.data[i] = T(acc[i]);
}

#define TYPEGRAD_INSTANTIATE(T)                                                                              \
  template void reference_conv_forward<T>(view<T>, view<const T>, view<const T>, const conv_geometry&,       \
                                          const conv_epilogue<T>&);                                          \
  template void reference_conv_input_grad<T>(view<T>, view<const T>, view<const T>, const conv_geometry&);  \
  template void reference_conv_weight_grad<T>(view<T>, view<const T>, view<const T>, const conv_geometry&);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

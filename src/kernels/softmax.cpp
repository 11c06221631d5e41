// softmax and log_softmax along one axis. The input is seen as (outer, n, inner) with n the
// softmax axis. inner == 1 (the last axis): each row is contiguous and handled by one task with
// vectorized max / exp / sum / scale passes. inner > 1: a task takes a tile of trailing
// positions and walks the axis with stride inner, vectorizing across the tile.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "../parallel/parallel_chunks.hpp"
#include "softmax_row.hpp"
#include "typegrad/kernels/softmax.hpp"

namespace typegrad::kernels {
namespace {

using namespace softmax_detail;

template <class T>
void softmax_row(T* out, const T* in, std::size_t n, bool log) {
  const T m = row_max(in, n);
  exp_shifted(out, in, n, m);
  lane_sum<T> s;
  s.add(out, n);
  if (log) {
    // (x - m) - log(s), not x - (m + log(s)): m + log(s) would round at the scale of m.
    const T ls = std::log(s.total());
    for (std::size_t j = 0; j < n; ++j) out[j] = (in[j] - m) - ls;
  } else {
    const T inv = T(1) / s.total();
    for (std::size_t j = 0; j < n; ++j) out[j] *= inv;
  }
}

// A tile of `w` <= tile trailing positions: x and y point at (o, 0, i0), the axis has stride `inner`.
inline constexpr std::size_t tile = 64;

template <class T>
void softmax_tile(T* y, const T* x, std::size_t n, std::size_t inner, std::size_t w, bool log) {
  T m[tile], s[tile];
  for (std::size_t i = 0; i < w; ++i) {
    m[i] = -std::numeric_limits<T>::infinity();
    s[i] = 0;
  }
  for (std::size_t k = 0; k < n; ++k) {
    const T* xk = x + k * inner;
    for (std::size_t i = 0; i < w; ++i) m[i] = xk[i] > m[i] ? xk[i] : m[i];
  }
  for (std::size_t k = 0; k < n; ++k) {
    const T* xk = x + k * inner;
    T* yk = y + k * inner;
    for (std::size_t i = 0; i < w; ++i) {
      const T e = math::exp(xk[i] - m[i]);
      yk[i] = e;
      s[i] += e;
    }
  }
  if (log) {
    for (std::size_t i = 0; i < w; ++i) s[i] = std::log(s[i]);
    for (std::size_t k = 0; k < n; ++k) {
      const T* xk = x + k * inner;
      T* yk = y + k * inner;
      for (std::size_t i = 0; i < w; ++i) yk[i] = (xk[i] - m[i]) - s[i];
    }
  } else {
    for (std::size_t i = 0; i < w; ++i) s[i] = T(1) / s[i];
    for (std::size_t k = 0; k < n; ++k) {
      T* yk = y + k * inner;
      for (std::size_t i = 0; i < w; ++i) yk[i] *= s[i];
    }
  }
}

}  // namespace

template <class T>
void softmax(view<T> out, view<const T> in, std::size_t axis, bool log) {
  const auto& s = in.shape;
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= s[d];
  for (std::size_t d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const std::size_t n = s[axis];
  if (outer * n * inner == 0) return;
  if (inner == 1) {
    parallel_chunks(outer, n, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t o = lo; o < hi; ++o) softmax_row(out.data + o * n, in.data + o * n, n, log);
    });
    return;
  }
  const std::size_t tiles = (inner + tile - 1) / tile;
  parallel_chunks(outer * tiles, n * std::min(inner, tile), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t item = lo; item < hi; ++item) {
      const std::size_t o = item / tiles, i0 = (item % tiles) * tile;
      const std::size_t offset = o * n * inner + i0;
      softmax_tile(out.data + offset, in.data + offset, n, inner, std::min(tile, inner - i0), log);
    }
  });
}

template void softmax<float>(view<float>, view<const float>, std::size_t, bool);
template void softmax<double>(view<double>, view<const double>, std::size_t, bool);

}  // namespace typegrad::kernels

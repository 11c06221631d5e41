// softmax and log_softmax along one axis. The input is seen as (outer, n, inner) with n the
// softmax axis. The kernel is an ordered list of implementations (the end of this file), each with
// a name and an applicability test on the input's shape and the axis, like conv.cpp's; a call
// runs the first that applies, and tests can run any of them by name
// (tests/test_softmax_implementations.cpp):
//
//   rows       the axis is contiguous (inner == 1): each row is handled by one task with
//              vectorized max / exp / sum / scale passes.
//   tiles      any axis: a task takes a tile of up to 64 trailing positions and walks the axis
//              with stride inner, vectorizing across the tile.
//   reference  any axis: the definition position by position in long double
//              (softmax_reference.cpp), the one the others are tested against.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"
#include "implementation_list.hpp"
#include "softmax_reference.hpp"
#include "softmax_row.hpp"
#include "typegrad/kernels/softmax.hpp"

namespace typegrad::kernels {
namespace {

using namespace softmax_detail;

// The input seen as (outer, n, inner), n the softmax axis.
struct axis_split {
  std::size_t outer = 1, n = 0, inner = 1;
  axis_split(const shape& s, std::size_t axis) : n(s[axis]) {
    for (std::size_t d = 0; d < axis; ++d) outer *= s[d];
    for (std::size_t d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  }
};

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

template <class T>
void softmax_rows(view<T> out, view<const T> in, std::size_t axis, bool log) {
  const axis_split a(in.shape, axis);
  if (in.size() == 0) return;
  parallel_chunks(a.outer, a.n, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t o = lo; o < hi; ++o) softmax_row(out.data + o * a.n, in.data + o * a.n, a.n, log);
  });
}

template <class T>
void softmax_tiles(view<T> out, view<const T> in, std::size_t axis, bool log) {
  const axis_split a(in.shape, axis);
  if (in.size() == 0) return;
  const std::size_t tiles = (a.inner + tile - 1) / tile;
  parallel_chunks(a.outer * tiles, a.n * std::min(a.inner, tile), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t item = lo; item < hi; ++item) {
      const std::size_t o = item / tiles, i0 = (item % tiles) * tile;
      const std::size_t offset = o * a.n * a.inner + i0;
      softmax_tile(out.data + offset, in.data + offset, a.n, a.inner, std::min(tile, a.inner - i0), log);
    }
  });
}

// ---- the implementation list ---------------------------------------------------------------------
// In the order the default dispatch tries them; it runs the first whose applies() holds for the
// input's shape and the axis. tiles applies to everything, so the reference is never the default.

template <class T>
using softmax_run = void (*)(view<T>, view<const T>, std::size_t, bool);
template <class T>
using softmax_implementation = implementation<bool (*)(const shape&, std::size_t), softmax_run<T>>;

bool contiguous_axis(const shape& x, std::size_t axis) { return axis_split(x, axis).inner == 1; }
bool always(const shape&, std::size_t) { return true; }

template <class T>
constexpr softmax_implementation<T> softmax_list[] = {
    {"rows", contiguous_axis, softmax_rows<T>},
    {"tiles", always, softmax_tiles<T>},
    {"reference", always, reference_softmax<T>},
};

}  // namespace

template <class T>
void softmax(view<T> out, view<const T> in, std::size_t axis, bool log) {
  first_applying(softmax_list<T>, in.shape, axis).run(out, in, axis, log);
}

// ---- choosing an implementation by name (tests) -------------------------------------------------

std::vector<std::string_view> softmax_implementations() { return implementation_names(softmax_list<float>); }

bool softmax_applies(std::string_view name, const shape& x, std::size_t axis) {
  return named(softmax_list<float>, "softmax", name).applies(x, axis);
}

std::string_view softmax_chosen(const shape& x, std::size_t axis) {
  return first_applying(softmax_list<float>, x, axis).name;
}

template <class T>
void softmax_with(std::string_view name, view<T> out, view<const T> in, std::size_t axis, bool log) {
  auto describe = [&] { return fmt::format("x {}, axis {}", in.shape, axis); };
  applying(softmax_list<T>, "softmax", name, describe, in.shape, axis).run(out, in, axis, log);
}

#define TYPEGRAD_INSTANTIATE(T)                                                 \
  template void softmax<T>(view<T>, view<const T>, std::size_t, bool); \
  template void softmax_with<T>(std::string_view, view<T>, view<const T>, std::size_t, bool);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

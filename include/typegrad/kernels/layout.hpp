#pragma once
// Kernels of the layout ops (ops/layout.hpp), compiled in src/kernels/layout.cpp for float and
// double. They only move data: each output element is written once by one task, so results never
// depend on the thread count. Axes that move together are merged first, so the inner loops are
// long contiguous runs (memcpy) wherever the layout allows.
#include <array>
#include <cstddef>
#include <span>

#include "typegrad/core/shape.hpp"

namespace typegrad::kernels {

// One value per axis (begin offsets, steps, a permutation); entries past the rank are unused.
using axis_values = std::array<std::size_t, max_rank>;
inline constexpr axis_values unit_steps = [] {
  axis_values s{};
  s.fill(1);
  return s;
}();

// out[i] = in[begin + i * step] per axis, for every index i of out (a box of in, possibly strided).
template <class T>
void slice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step);

// The transpose of slice: out = 0 except out[begin + i * step] = in[i] for every index i of in.
// Also pads (begin = the low padding, step 1) and places a concat part.
template <class T>
void unslice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step);

// out = the inputs joined along axis (equal ranks; extents equal except along axis).
template <class T>
void concat(view<T> out, std::span<const view<const T>> in, std::size_t axis);

// out axis k is in axis perm[k]: out[i_0, ..., i_{r-1}] = in[j] with j[perm[k]] = i_k.
// Tiled when the contiguous axis moves, so reads and writes both stay within cache lines.
template <class T>
void permute(view<T> out, view<const T> in, const axis_values& perm);

}  // namespace typegrad::kernels

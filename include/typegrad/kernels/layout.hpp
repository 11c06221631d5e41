#pragma once
// Kernels of the layout ops (ops/layout.hpp), compiled in src/kernels/layout.cpp for float and
// double. They only move data: each output element is written once by one task, so results never
// depend on the thread count. Axes that move together are merged first, so the inner loops are
// long contiguous runs (memcpy) wherever the layout allows.
//
// Each kernel runs the first of its implementations that applies; the end of this file names
// them, for tests.
#include <array>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

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

// ---- implementations by name: for tests -------------------------------------------------------
// Each kernel above has an ordered list of named implementations and runs the first that applies.
// Any of them can also be run by name where it applies. The last, "reference", is the definition
// above element by element through full multi-indices, slow and serial: it applies to everything,
// and the others are tested against it. slice, unslice and concat have one other implementation,
// which applies to everything too; permute's depend on the layout (permute_applies). Programs
// never need these functions.

enum class layout_kernel { slice, unslice, concat, permute };

// "slice", "unslice", "concat" or "permute".
const char* layout_kernel_name(layout_kernel k);

// The names of k's implementations, in the order they are tried (the same for float and double),
// e.g. in_order, runs, tiled_transpose, reference for permute.
std::vector<std::string_view> layout_implementations(layout_kernel k);

// Whether permute's implementation `name` applies to an input of shape x and perm. Throws
// typegrad::error if permute has no implementation of that name.
bool permute_applies(std::string_view name, const shape& x, const axis_values& perm);

// The implementation permute runs for x and perm: the first in its list that applies.
std::string_view permute_chosen(const shape& x, const axis_values& perm);

// The kernels above with implementation `name` instead of the first that applies. Throw
// typegrad::error naming the kernel and the implementation if the kernel has none of that name,
// and for permute also if it does not apply (naming x's shape and perm).
template <class T>
void slice_with(std::string_view name, view<T> out, view<const T> in, const axis_values& begin,
                const axis_values& step);
template <class T>
void unslice_with(std::string_view name, view<T> out, view<const T> in, const axis_values& begin,
                  const axis_values& step);
template <class T>
void concat_with(std::string_view name, view<T> out, std::span<const view<const T>> in, std::size_t axis);
template <class T>
void permute_with(std::string_view name, view<T> out, view<const T> in, const axis_values& perm);

}  // namespace typegrad::kernels

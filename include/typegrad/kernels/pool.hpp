#pragma once
// Kernels of the pooling family, compiled in src/kernels/pool.cpp (float and double).
//
// Data is (batch, ordered dims..., channels), D = rank - 2 ordered dims. Per ordered dim, with
// window v, stride s and input extent n, the output extent is ceil(n/s) and output o aggregates
// the inputs o*s ... o*s+v-1 that lie inside the input (clipped at the end, never padded at the
// start). The "argmax" of a window is its first maximum in window order (row-major over the
// window's positions), per channel.
//
// All kernels are vectorized over the channels (each window position is C contiguous values),
// parallel over (batch, output row along the first ordered dim), and deterministic: every output
// element is computed by one task, and the backward kernels accumulate the contributions of
// overlapping windows per input element in a fixed order (the windows' row-major order).
//
// Each kernel runs the first of its implementations that applies to the shapes; the end of this
// file names them, for tests and benchmarks.
#include <array>
#include <cstddef>
#include <string_view>
#include <vector>

#include "typegrad/core/shape.hpp"

namespace typegrad::kernels {

// A pooling op's compile-time options as the kernels see them: one window and stride per
// ordered dim.
struct pool_window {
  std::size_t dims = 0;
  std::array<std::size_t, max_spatial_dims> size{}, stride{};
};

// The pooled extents (of out, of g) are the op's shape rule (ops/pool.hpp, detail::pooled_shape):
// the kernels take them from their views.

// out (pooled) = the max of x over each window.
template <class T>
void max_pool(view<T> out, view<const T> x, const pool_window& w);

// out (pooled) = the mean of x over each window, divided by the number of positions in range.
template <class T>
void avg_pool(view<T> out, view<const T> x, const pool_window& w);

// out (pooled) = h (x's shape) read at each window's argmax of x.
template <class T>
void max_pool_gather(view<T> out, view<const T> h, view<const T> x, const pool_window& w);

// dx (x's shape) = at each input position, the sum of g (pooled) over the windows whose argmax
// of x is that position; the transpose of max_pool_gather. With positive_only, each result is
// then multiplied by step(x) (bitwise: kept where x > 0, times 0 elsewhere): the gradient of a
// relu before the pool, in the same pass.
template <class T>
void max_pool_backward(view<T> dx, view<const T> g, view<const T> x, const pool_window& w, bool positive_only = false);

// dx (its shape is the pooled input's) = at each input position, the sum over the windows that
// contain it of g / (the window's in-range count); the transpose of avg_pool.
template <class T>
void avg_pool_transpose(view<T> dx, view<const T> g, const pool_window& w);

// ---- implementations by name: for tests and benchmarks ----------------------------------------
// Each kernel above has an ordered list of named implementations, each with an applicability test
// on x's shape (for avg_pool_transpose, dx's) and the window; the kernel runs the first that
// applies. Any of them can also be run by name where it applies. The last, "reference", is
// DESIGN.md's definition output by output with long double sums, slow and serial: it applies to
// everything, and the others are tested against it. Programs never need these functions.

enum class pool_kernel { max_pool, avg_pool, max_pool_gather, max_pool_backward, avg_pool_transpose };

// "max_pool", "avg_pool", "max_pool_gather", "max_pool_backward" or "avg_pool_transpose".
const char* pool_kernel_name(pool_kernel k);

// The names of k's implementations, in the order they are tried (the same for float and double),
// e.g. 2x2, 2d, general, reference for max_pool.
std::vector<std::string_view> pool_implementations(pool_kernel k);

// Whether k's implementation `name` applies to x (the pooled input's shape) and w with elements T.
// Throws typegrad::error if k has no implementation of that name.
template <class T>
bool pool_applies(pool_kernel k, std::string_view name, const shape& x, const pool_window& w);

// The implementation the kernel k runs for x and w: the first in k's list that applies.
template <class T>
std::string_view pool_chosen(pool_kernel k, const shape& x, const pool_window& w);

// The kernels above with implementation `name` instead of the first that applies. Throw
// typegrad::error, naming the kernel, the implementation, x's shape and the window, if it does
// not apply (or the kernel has none of that name).
template <class T>
void max_pool_with(std::string_view name, view<T> out, view<const T> x, const pool_window& w);
template <class T>
void avg_pool_with(std::string_view name, view<T> out, view<const T> x, const pool_window& w);
template <class T>
void max_pool_gather_with(std::string_view name, view<T> out, view<const T> h, view<const T> x,
                          const pool_window& w);
template <class T>
void max_pool_backward_with(std::string_view name, view<T> dx, view<const T> g, view<const T> x,
                            const pool_window& w, bool positive_only = false);
template <class T>
void avg_pool_transpose_with(std::string_view name, view<T> dx, view<const T> g, const pool_window& w);

}  // namespace typegrad::kernels

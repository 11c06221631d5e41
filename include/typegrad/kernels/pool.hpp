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
#include <array>
#include <cstddef>

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

}  // namespace typegrad::kernels

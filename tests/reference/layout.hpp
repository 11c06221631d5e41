#pragma once
// Naive reference layout kernels for tests: one element at a time through full multi-indices,
// independent of the fast kernels' axis merging, runs and tiles.
#include <cstddef>
#include <vector>

#include <typegrad/core/shape.hpp>
#include <typegrad/kernels/layout.hpp>

namespace typegrad::reference {

using index = std::vector<std::size_t>;

inline index unravel(std::size_t flat, const shape& s) {
  index idx(s.rank());
  for (std::size_t d = s.rank(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}
inline std::size_t ravel(const index& idx, const shape& s) {
  std::size_t flat = 0;
  for (std::size_t d = 0; d < s.rank(); ++d) flat = flat * s[d] + idx[d];
  return flat;
}

// out[i] = x[begin + i * step], out of the given shape.
template <class T>
std::vector<T> slice(view<const T> x, const shape& out, const kernels::axis_values& begin,
                     const kernels::axis_values& step) {
  std::vector<T> y(out.numel());
  for (std::size_t i = 0; i < y.size(); ++i) {
    index idx = unravel(i, out);
    for (std::size_t d = 0; d < idx.size(); ++d) idx[d] = begin[d] + idx[d] * step[d];
    y[i] = x.data[ravel(idx, x.shape)];
  }
  return y;
}

// Zeros of the given shape with x[i] at begin + i * step.
template <class T>
std::vector<T> unslice(view<const T> x, const shape& out, const kernels::axis_values& begin,
                       const kernels::axis_values& step) {
  std::vector<T> y(out.numel(), T(0));
  for (std::size_t i = 0; i < x.size(); ++i) {
    index idx = unravel(i, x.shape);
    for (std::size_t d = 0; d < idx.size(); ++d) idx[d] = begin[d] + idx[d] * step[d];
    y[ravel(idx, out)] = x.data[i];
  }
  return y;
}

// The xs joined along axis.
template <class T>
std::vector<T> concat(const std::vector<view<const T>>& xs, std::size_t axis) {
  shape out = xs[0].shape;
  out[axis] = 0;
  for (const auto& x : xs) out[axis] += x.shape[axis];
  std::vector<T> y(out.numel());
  for (std::size_t i = 0; i < y.size(); ++i) {
    index idx = unravel(i, out);
    std::size_t k = 0;
    while (idx[axis] >= xs[k].shape[axis]) idx[axis] -= xs[k++].shape[axis];
    y[i] = xs[k].data[ravel(idx, xs[k].shape)];
  }
  return y;
}

// Output axis k is x's axis perm[k].
template <class T>
std::vector<T> permute(view<const T> x, const kernels::axis_values& perm) {
  shape out = x.shape;
  for (std::size_t k = 0; k < out.rank(); ++k) out[k] = x.shape[perm[k]];
  std::vector<T> y(out.numel());
  for (std::size_t i = 0; i < y.size(); ++i) {
    index o = unravel(i, out), idx(out.rank());
    for (std::size_t k = 0; k < out.rank(); ++k) idx[perm[k]] = o[k];
    y[i] = x.data[ravel(idx, x.shape)];
  }
  return y;
}

}  // namespace typegrad::reference

#pragma once
// Internal to src/: the row primitives of the softmax family (softmax, log_softmax,
// softmax_cross_entropy): exp through kernels::math (branch-free, vectorizes), and max/sum reductions over
// a fixed number of lanes. The lane count is a constant, so a row's result depends only on the
// row, never on the thread count or on how rows are split between threads.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "typegrad/kernels/unary.hpp"

namespace typegrad::kernels::softmax_detail {

// Lanes of the row reductions: the reduction order is fixed by this constant alone.
inline constexpr std::size_t lanes = 16;

template <class T>
T row_max(const T* x, std::size_t n) {
  T acc[lanes];
  for (std::size_t l = 0; l < lanes; ++l) acc[l] = -std::numeric_limits<T>::infinity();
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes)
    for (std::size_t l = 0; l < lanes; ++l) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  for (; j < n; ++j) acc[0] = x[j] > acc[0] ? x[j] : acc[0];
  T m = acc[0];
  for (std::size_t l = 1; l < lanes; ++l) m = acc[l] > m ? acc[l] : m;
  return m;
}

// Partial sums kept in lanes across calls, so a long row can be summed block by block.
template <class T>
struct lane_sum {
  T acc[lanes] = {};
  void add(const T* x, std::size_t n) {
    std::size_t j = 0;
    for (; j + lanes <= n; j += lanes)
      for (std::size_t l = 0; l < lanes; ++l) acc[l] += x[j + l];
    for (std::size_t l = 0; j < n; ++j, ++l) acc[l] += x[j];
  }
  T total() const {
    T s = 0;
    for (std::size_t l = 0; l < lanes; ++l) s += acc[l];
    return s;
  }
};

// out[j] = exp(x[j] - shift), vectorized.
template <class T>
void exp_shifted(T* out, const T* x, std::size_t n, T shift) {
  for (std::size_t j = 0; j < n; ++j) out[j] = math::exp(x[j] - shift);
}

// sum_j exp(x[j] - shift) without a row-sized buffer: exponentials go through a stack block.
template <class T>
T sum_exp_shifted(const T* x, std::size_t n, T shift) {
  constexpr std::size_t block = 256;
  T buf[block];
  lane_sum<T> s;
  for (std::size_t j = 0; j < n; j += block) {
    const std::size_t w = n - j < block ? n - j : block;
    exp_shifted(buf, x + j, w, shift);
    s.add(buf, w);
  }
  return s.total();
}

// log(sum_j exp(x[j])), stable: the row max is subtracted first.
template <class T>
T row_logsumexp(const T* x, std::size_t n) {
  const T m = row_max(x, n);
  return m + std::log(sum_exp_shifted(x, n, m));
}

}  // namespace typegrad::kernels::softmax_detail

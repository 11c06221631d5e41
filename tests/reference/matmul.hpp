#pragma once
// Naive reference matrix products for tests: the definition, written out loop by loop, with a
// long double accumulator. Independent of the GEMM kernels (and their batch folding and tiling).
#include <cstddef>
#include <vector>

#include <typegrad/core/shape.hpp>
#include <typegrad/kernels/gemm.hpp>

namespace typegrad::reference {

// The product kernels::matmul computes for `form`, with out_shape from matmul's shape rule.
template <class T>
std::vector<T> matmul(view<const T> a, view<const T> b, kernels::matmul_form form, const shape& out_shape) {
  const std::size_t ra = a.shape.rank(), rb = b.shape.rank();
  const std::size_t ar = a.shape[ra - 2], ac = a.shape[ra - 1], br = b.shape[rb - 2], bc = b.shape[rb - 1];
  const std::size_t m = form.trans_a ? ac : ar, k = form.trans_a ? ar : ac, n = form.trans_b ? br : bc;
  const std::size_t items_a = a.size() / (ar * ac ? ar * ac : 1), items_b = b.size() / (br * bc ? br * bc : 1);
  // op(a)(i, kk) of batch item `item` is a_item[i * a_i + kk * a_k] (a 2-d argument is item 0 for
  // every item); likewise op(b)(kk, j) is b_item[kk * b_k + j * b_j].
  const std::size_t a_i = form.trans_a ? 1 : ac, a_k = form.trans_a ? ac : 1;
  const std::size_t b_k = form.trans_b ? 1 : bc, b_j = form.trans_b ? bc : 1;
  const std::size_t a_item = ra > 2 ? ar * ac : 0, b_item = rb > 2 ? br * bc : 0;
  const std::size_t items = ra > 2 ? items_a : items_b;
  std::vector<T> out(out_shape.numel());
  if (form.sum_batch) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        long double acc = 0;
        for (std::size_t item = 0; item < items; ++item) {
          const T* ap = a.data + item * a_item + i * a_i;
          const T* bp = b.data + item * b_item + j * b_j;
          for (std::size_t kk = 0; kk < k; ++kk) acc += (long double)ap[kk * a_k] * bp[kk * b_k];
        }
        out[i * n + j] = T(acc);
      }
    return out;
  }
  for (std::size_t item = 0; item < items; ++item)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        const T* ap = a.data + item * a_item + i * a_i;
        const T* bp = b.data + item * b_item + j * b_j;
        long double acc = 0;
        for (std::size_t kk = 0; kk < k; ++kk) acc += (long double)ap[kk * a_k] * bp[kk * b_k];
        out[(item * m + i) * n + j] = T(acc);
      }
  return out;
}

// One product of kernels::gemm_dims d, C = op(A) op(B) (leading dimensions included), in long
// double; with each element's sum of |op(A)(i, k) op(B)(k, j)| over k, the scale of the rounding
// error of any summation order.
struct gemm_result {
  std::vector<long double> value, magnitude;  // m x n, row-major, tight
};
template <class T>
gemm_result gemm(const kernels::gemm_dims& d, const T* a, const T* b) {
  gemm_result r{std::vector<long double>(d.m * d.n), std::vector<long double>(d.m * d.n)};
  for (std::size_t i = 0; i < d.m; ++i)
    for (std::size_t j = 0; j < d.n; ++j) {
      long double acc = 0, mag = 0;
      for (std::size_t kk = 0; kk < d.k; ++kk) {
        const long double p = (long double)(d.trans_a ? a[kk * d.lda + i] : a[i * d.lda + kk]) *
                              (d.trans_b ? b[j * d.ldb + kk] : b[kk * d.ldb + j]);
        acc += p;
        mag += p < 0 ? -p : p;
      }
      r.value[i * d.n + j] = acc;
      r.magnitude[i * d.n + j] = mag;
    }
  return r;
}

}  // namespace typegrad::reference

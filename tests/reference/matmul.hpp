#pragma once
// Naive reference matrix products for tests: the definition, written out loop by loop, with a
// long double accumulator. Independent of the BLAS kernel (and its batch folding and tiling).
#include <cstddef>
#include <vector>

#include <typegrad/core/shape.hpp>
#include <typegrad/runtime/gemm.hpp>

namespace typegrad::reference {

// The product kernels::matmul computes for `form`, with out_shape from matmul's shape rule.
template <class T>
std::vector<T> matmul(view<const T> a, view<const T> b, kernels::matmul_form form, const shape& out_shape) {
  const std::size_t ra = a.shape.rank(), rb = b.shape.rank();
  const std::size_t ar = a.shape[ra - 2], ac = a.shape[ra - 1], br = b.shape[rb - 2], bc = b.shape[rb - 1];
  const std::size_t m = form.trans_a ? ac : ar, k = form.trans_a ? ar : ac, n = form.trans_b ? br : bc;
  const std::size_t items_a = a.size() / (ar * ac ? ar * ac : 1), items_b = b.size() / (br * bc ? br * bc : 1);
  // Element (i, kk) of op(a) in batch item `item` (a 2-d argument is item 0 for every item).
  auto at = [&](std::size_t item, std::size_t i, std::size_t kk) {
    const T* base = a.data + (ra > 2 ? item : 0) * ar * ac;
    return form.trans_a ? base[kk * ac + i] : base[i * ac + kk];
  };
  auto bt = [&](std::size_t item, std::size_t kk, std::size_t j) {
    const T* base = b.data + (rb > 2 ? item : 0) * br * bc;
    return form.trans_b ? base[j * bc + kk] : base[kk * bc + j];
  };
  const std::size_t items = ra > 2 ? items_a : items_b;
  std::vector<T> out(out_shape.numel());
  if (form.sum_batch) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        long double acc = 0;
        for (std::size_t item = 0; item < items; ++item)
          for (std::size_t kk = 0; kk < k; ++kk) acc += (long double)at(item, i, kk) * bt(item, kk, j);
        out[i * n + j] = T(acc);
      }
    return out;
  }
  for (std::size_t item = 0; item < items; ++item)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        long double acc = 0;
        for (std::size_t kk = 0; kk < k; ++kk) acc += (long double)at(item, i, kk) * bt(item, kk, j);
        out[(item * m + i) * n + j] = T(acc);
      }
  return out;
}

}  // namespace typegrad::reference

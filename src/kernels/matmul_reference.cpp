// The reference matrix product: every element of out on its own, straight from the definition
// (ops/matmul.hpp's shape rule, kernels/gemm.hpp's matmul_form), summed in long double over k (and
// over the batch for sum_batch, item by item). No batch folding, no tiling, no packing, no vectors
// and no threads: independent of the blocked GEMM, which is what it is compared with
// (tests/test_matmul_implementations.cpp, tests/test_matmul.cpp, tests/test_gemm.cpp). It comes
// last in gemm.cpp's list, after "blocked", which applies to everything, so a program never runs
// it unless asked to by name (matmul_with("reference", ...)).
#include <cstddef>

#include "matmul_reference.hpp"

namespace typegrad::kernels {

template <class T>
void reference_matmul(view<T> out, view<const T> a, view<const T> b, matmul_form form) {
  const shape &as = a.shape, &bs = b.shape;
  const std::size_t ra = as.rank(), rb = bs.rank();
  const std::size_t ar = as[ra - 2], ac = as[ra - 1], br = bs[rb - 2], bc = bs[rb - 1];
  const std::size_t m = form.trans_a ? ac : ar, k = form.trans_a ? ar : ac, n = form.trans_b ? br : bc;
  // op(a)(i, kk) of batch item `item` is a_item[i * a_i + kk * a_k] (a 2-d argument is item 0 for
  // every item); likewise op(b)(kk, j) is b_item[kk * b_k + j * b_j].
  const std::size_t a_i = form.trans_a ? 1 : ac, a_k = form.trans_a ? ac : 1;
  const std::size_t b_k = form.trans_b ? 1 : bc, b_j = form.trans_b ? bc : 1;
  const std::size_t a_item = ra > 2 ? ar * ac : 0, b_item = rb > 2 ? br * bc : 0;
  const shape& batched = ra > 2 ? as : bs;  // (2-d: one item)
  std::size_t items = 1;
  for (std::size_t d = 0; d + 2 < batched.rank(); ++d) items *= batched[d];
  // Every item's product goes to its own (m, n) block of out, or with sum_batch all of them to
  // the one (m, n) result.
  const std::size_t blocks = form.sum_batch ? 1 : items, terms = form.sum_batch ? items : 1;
  for (std::size_t block = 0; block < blocks; ++block)
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j) {
        long double acc = 0;
        for (std::size_t item = block; item < block + terms; ++item) {
          const T* ap = a.data + item * a_item + i * a_i;
          const T* bp = b.data + item * b_item + j * b_j;
          for (std::size_t kk = 0; kk < k; ++kk) acc += (long double)ap[kk * a_k] * bp[kk * b_k];
        }
        out.data[(block * m + i) * n + j] = T(acc);
      }
}

template void reference_matmul<float>(view<float>, view<const float>, view<const float>, matmul_form);
template void reference_matmul<double>(view<double>, view<const double>, view<const double>, matmul_form);

}  // namespace typegrad::kernels

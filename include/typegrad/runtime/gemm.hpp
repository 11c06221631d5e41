#pragma once
// The GEMM kernels behind matmul (compiled in src/kernels/gemm.cpp, float and double).
//
// Every product runs on OpenBLAS, one BLAS thread per call, inside TBB tasks: C is cut into
// fixed blocks of rows and columns that depend only on (M, N, K), never on the thread count, and K
// is never split, so each element of C is the same sequence of operations however many threads
// run: results are bitwise independent of the thread count.
#include <cstddef>
#include <string>

#include "typegrad/core/shape.hpp"

namespace typegrad::kernels {

// Which product a matmul node computes (the op's compile-time attributes, see ops/matmul.hpp):
//   op(a) = a, or its transpose over the last two dims when trans_a (likewise b);
//   out = op(a) op(b) per batch item (a or b may be a single matrix shared by the batch),
//   or, with sum_batch, out = sum over the batch of op(a_i) op(b_i) (a 2-d result).
struct matmul_form {
  bool trans_a = false;
  bool trans_b = false;
  bool sum_batch = false;
};

// out = the product `form` names of a and b. The shapes must satisfy matmul's shape rule
// (ops/matmul.hpp); out.shape is that rule's result.
template <class T>
void matmul(view<T> out, view<const T> a, view<const T> b, matmul_form form);

// One row-major product C (m x n) = op(A) op(B), with leading dimensions lda, ldb, ldc (row
// strides in elements), C overwritten, run on the blocking described above.
struct gemm_dims {
  bool trans_a = false, trans_b = false;
  std::size_t m = 0, n = 0, k = 0;
  std::size_t lda = 0, ldb = 0, ldc = 0;
};
template <class T>
void gemm(const gemm_dims& d, const T* a, const T* b, T* c);

// The same product as one serial BLAS call on the calling thread, C = op(A) op(B) + beta C: for
// kernels that cut their own work into TBB tasks (e.g. convolution tiles) and call it inside them.
template <class T>
void gemm_serial(const gemm_dims& d, const T* a, const T* b, T beta, T* c);

// The BLAS in use, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ... (core: Cooperlake, threaded build
// limited to 1 thread per call, concurrent calls)".
std::string blas_description();

// Whether BLAS calls may run concurrently (OpenBLAS's pthread/OpenMP flavours). If not (the
// serial flavour, built without locking), typegrad's calls take turns behind a mutex.
bool blas_is_reentrant();

}  // namespace typegrad::kernels

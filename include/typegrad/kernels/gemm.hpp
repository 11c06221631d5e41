#pragma once
// The GEMM kernels behind matmul (compiled in src/kernels/gemm.cpp, float and double).
//
// Every product runs on typegrad's own packed, cache-blocked GEMM, serial inside TBB tasks: C is
// cut into fixed blocks of rows and columns, and each element of C is summed over K in passes
// whose split depends on K alone, so it is the same sequence of operations however many threads
// run: results are bitwise independent of the thread count. The microkernels exist for AVX-512,
// AVX2 and plain SSE2/portable code, all in one binary; the best one the CPU runs is chosen at
// run time (docs/blas.md).
//
// matmul runs the first of its implementations that applies to the shapes; the end of this file
// names them, for tests and benchmarks.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

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

// The same product on the calling thread alone, C = op(A) op(B) + beta C (C is not read when beta
// is 0): for kernels that cut their own work into TBB tasks (e.g. convolution tiles) and call it
// inside them.
template <class T>
void gemm_serial(const gemm_dims& d, const T* a, const T* b, T beta, T* c);

// The instruction sets the GEMM kernels are built for. The first product picks the best one the
// CPU runs (AVX-512 needs F, VL, BW and DQ, and an OS that saves the zmm registers), unless the
// environment variable TYPEGRAD_ISA names one: avx512, avx2 or portable (a name the CPU cannot
// run makes every product throw typegrad::error saying so).
enum class instruction_set { portable, avx2, avx512 };

// "avx512", "avx2" or "portable" (the names TYPEGRAD_ISA takes).
const char* isa_name(instruction_set isa);

// Whether this CPU (and build: AVX kernels exist on x86 only) can run `isa`'s kernels.
bool gemm_isa_supported(instruction_set isa);

// The instruction set products run on.
instruction_set gemm_isa();

// Makes later products run on `isa` (for tests and benchmarks; not while products run). Throws
// typegrad::error if the CPU cannot run it.
void set_gemm_isa(instruction_set isa);

// The kernels in use, e.g. "typegrad GEMM, avx512 kernels (float 12x32, double 12x16 tiles)".
std::string gemm_description();

// ---- implementations by name: for tests and benchmarks ----------------------------------------
// matmul has an ordered list of named implementations, each with an applicability test on a's and
// b's shapes and the form; it runs the first that applies. Any of them can also be run by name
// where it applies. "blocked" is the GEMM above; the last, "reference", is the definition loop by
// loop with long double sums, slow and serial: it applies to everything, and the others are tested
// against it. Programs never need these functions.

// The names of matmul's implementations, in the order they are tried (the same for float and
// double): blocked, reference.
std::vector<std::string_view> matmul_implementations();

// Whether matmul's implementation `name` applies to a and b (their shapes) in `form`. Throws
// typegrad::error if matmul has no implementation of that name.
bool matmul_applies(std::string_view name, const shape& a, const shape& b, matmul_form form);

// The implementation matmul runs for a, b and form: the first in its list that applies.
std::string_view matmul_chosen(const shape& a, const shape& b, matmul_form form);

// matmul with implementation `name` instead of the first that applies. Throws typegrad::error,
// naming matmul, the implementation and the shapes, if it does not apply (or there is none of that
// name).
template <class T>
void matmul_with(std::string_view name, view<T> out, view<const T> a, view<const T> b, matmul_form form);

}  // namespace typegrad::kernels

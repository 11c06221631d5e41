#pragma once
// Internal to src/kernels: tall products with a narrow right-hand side, the channel counts of most
// conv layers (conv.cpp). The narrow kernel packs nothing: it keeps a block of rows x n outputs in
// registers for the whole sum and reads A and B in place. On conv tiles it is a little faster than
// the packed GEMM (AVX-512, one thread: (112 x 576) (576 x 64) at 175 GFLOP/s against 167,
// (112 x 576) (576 x 16) 132 against 121) and much faster than OpenBLAS, which ran the products
// before (conv's whole (100352 x 576) (576 x 64) product: 100 against 70 GFLOP/s, and 70 against 30
// with n = 16). It is compiled with the GEMM's kernels for each instruction set and runs on the
// one the GEMM uses (gemm_kernels.hpp, gemm.cpp).
#include <cstddef>

namespace typegrad::kernels {

// Whether narrow_product takes n columns of T: 1 to 8 blocks of 64 bytes (16 to 128 floats, 8 to
// 64 doubles).
template <class T>
constexpr bool narrow_fits(std::size_t n) {
  return n > 0 && n * sizeof(T) % 64 == 0 && n * sizeof(T) <= 512;
}

// The indirect product also takes a last block that n fills only in part (24 floats, say: the
// channels of many image models), when B's rows are readable up to padded_columns<T>(n): the
// values there only reach accumulator lanes that are never stored.
template <class T>
constexpr std::size_t padded_columns(std::size_t n) {
  return (n * sizeof(T) + 63) / 64 * 64 / sizeof(T);
}
template <class T>
constexpr bool indirect_fits(std::size_t n) {
  return n > 0 && padded_columns<T>(n) * sizeof(T) <= 512;
}

// C (m x n, rows ldc apart) = op(A) B, or C += op(A) B with `accumulate`, for narrow_fits<T>(n).
// op(A)(i, k) is a[i * lda + k], or a[k * lda + i] with trans_a; B's row k is at b + k * ldb. Each
// element of C is summed over k in order, then added to C when accumulating. Without
// accumulating, C = relu(op(A) B + bias) per the epilogue (bias of n values, or none) as each
// block of C leaves the registers: bitwise a pass over C afterwards, without the pass.
template <class T>
void narrow_product(bool trans_a, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                    const T* b, std::size_t ldb, T* c, std::size_t ldc, bool accumulate, const T* bias = nullptr,
                    bool relu = false);

// The same with A gathered through offsets, A(i, s) = a[ro[i] + so[s]] (ro: m row offsets, so: k
// offsets): conv's implicit GEMM without im2col, A read straight from a zero-padded input, for
// the forward (rows = output positions, s = (tap, channel)) and, with the roles of the offsets
// swapped, the weight gradient (rows = (tap, channel), s = output positions). The offsets so
// come in runs of `run` consecutive ones (so[s0 + c] = so[s0] + c for s0 a multiple of run, which
// divides k; a tap's channels), which the kernel reads as one contiguous stream; run = 1: any.
template <class T>
void gather_product(std::size_t m, std::size_t n, std::size_t k, const T* a, const std::size_t* ro,
                    const std::size_t* so, std::size_t run, const T* b, std::size_t ldb, T* c, std::size_t ldc,
                    bool accumulate, const T* bias = nullptr, bool relu = false);

// The same with A read through an indirection buffer: A(i, t * run + s) = a[i * taps + t][s], a
// pointer per row and tap to `run` contiguous elements (k = taps * run): conv's implicit GEMM
// reading each window's taps where they are (in x, or a run of zeros for the padding). For
// indirect_fits<T>(n), B's rows (ldb apart, ldb >= padded_columns<T>(n)) read to the padded width.
template <class T>
void indirect_product(std::size_t m, std::size_t n, std::size_t taps, std::size_t run, const T* const* a,
                      const T* b, std::size_t ldb, T* c, std::size_t ldc, bool accumulate, const T* bias = nullptr,
                      bool relu = false);
// The same (C = A B) with C's row i at c_rows[i]: rows scattered over a strided tensor, written in
// place instead of through a scratch copy.
template <class T>
void indirect_product_to_rows(std::size_t m, std::size_t n, std::size_t taps, std::size_t run, const T* const* a,
                              const T* b, std::size_t ldb, T* const* c_rows);

// A 2-d conv of one input channel with a 3x3 window and stride 1 along its lines, for
// narrow_fits<T>(n) output channels, read from a zero-padded input in which every window lies
// whole: `lines` lines of `width` outputs x n channels (out: rows n apart, lines width * n apart),
// out[l][p][k] = the sum over ky, kx (in that order) of x[l * line_step + ky * row_step + p + kx]
// w[(3 ky + kx) * n + k], then + bias[k] and relu as narrow_product's epilogue.
template <class T>
void direct_conv_3x3(std::size_t lines, std::size_t width, std::size_t n, const T* x, std::size_t line_step,
                     std::size_t row_step, const T* w, T* out, const T* bias = nullptr, bool relu = false);

// out (m x C, rows ldo apart) with out[i][c] = sum over taps t and k < K of a[ro[i] + to[t] + k] *
// b[(t * C + c) * K + k]: for a right-hand side narrower than a vector (conv's input gradient into
// a few channels), vectorized along the contiguous k. Each sum in a fixed order.
template <class T>
void gather_dot_product(std::size_t m, std::size_t c, std::size_t taps, std::size_t k, const T* a,
                        const std::size_t* ro, const std::size_t* to, const T* b, T* out, std::size_t ldo);

// C (m x n, rows ldc apart) = A B, or C += A B with `accumulate`, with A read k-major, A(i, s) =
// a[s * lda + i], and B gathered, B(s, j) = b[ro[s] + co[j]] (ro: k row offsets, co: n column
// offsets in runs of 64 bytes, n a multiple of 64 bytes): conv's weight gradient as dY^T times the
// patches, rows = output channels, columns = (tap, channel), read straight from a zero-padded
// input. Each element of C is summed over s in order.
template <class T>
void gather_columns_product(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
                            const std::size_t* ro, const std::size_t* co, T* c, std::size_t ldc, bool accumulate);

}  // namespace typegrad::kernels

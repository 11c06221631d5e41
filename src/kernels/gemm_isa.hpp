#pragma once
// Internal to src/kernels: what each instruction-set build of the GEMM kernels exports.
//
// src/kernels/gemm_kernels.hpp is compiled three times, with different flags, by gemm_avx512.cpp,
// gemm_avx2.cpp and gemm_portable.cpp; each exports one isa_kernels table, and gemm.cpp picks
// the table the CPU can run. This header is compiled with those flags too, so it only declares:
// an inline function defined here could be emitted by an AVX-512 translation unit and then be
// the copy the linker keeps for every caller.
#include <cstddef>

namespace typegrad::kernels {

// An operand of the macro-kernel, read in place or from a packing buffer. For A: rows
// [i, i + mr) start at data + i * panel_step, and inside such a panel element (r, k) is at
// p[k * step + r] (k_major) or p[r * step + k]. For B (always k_major): columns [j, j + nr) start
// at data + j * panel_step, element (k, j) of a panel at p[k * step + j].
template <class T>
struct gemm_panels {
  const T* data;
  std::size_t panel_step;
  std::size_t step;
  bool k_major;
};

// What the narrow and gathered products apply to each finished block of C before storing it,
// when they overwrite C (accumulate = false): + bias[j] per column j (no bias: nullptr), then
// relu (x < 0 ? 0 : x). Bitwise the same as a pass over C afterwards, without that pass.
// (No default member initializers: an aggregate without constructors, so nothing inline is
// emitted for it under the AVX-512 flags; {} is no bias, no relu.)
template <class T>
struct tile_epilogue {
  const T* bias;
  bool relu;
};

template <class T>
struct isa_gemm {
  // The microkernel's register block (tiles of C of mr x nr) and the cache blocks of gemm.cpp:
  // kc terms of the sum per pass, mc rows of A per block, nc columns of B per packed block.
  std::size_t mr, nr, kc, mc, nc;
  // op(B)'s block of kc x nc, op(B)(k, j) = trans ? b[j * ldb + k] : b[k * ldb + j], into
  // ceil(nc / nr) panels of kc x nr (row-major, each kc * nr long), zero-padded to nr columns.
  void (*pack_b)(bool trans, const T* b, std::size_t ldb, std::size_t kc, std::size_t nc, T* out);
  // C (mc x nc, row stride ldc) = A (mc x kc) B (kc x nc) + beta C; C is not read when beta is 0.
  // B is packed by pack_b, or in place when nc is a multiple of nr (no panel reads past nc).
  // Each element's sum over the kc terms runs in order.
  void (*multiply)(std::size_t mc, std::size_t nc, std::size_t kc, const gemm_panels<T>& a, const gemm_panels<T>& b,
                   T beta, T* c, std::size_t ldc);
  // The narrow product of narrow.hpp: C (+)= op(A) B, A and B read in place.
  void (*narrow)(bool trans_a, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                 const T* b, std::size_t ldb, T* c, std::size_t ldc, bool accumulate, tile_epilogue<T> epilogue);
  // The gathered product of narrow.hpp: like narrow, with A(i, s) = a[ro[i] + so[s]], so in runs.
  void (*gather)(std::size_t m, std::size_t n, std::size_t k, const T* a, const std::size_t* ro, const std::size_t* so,
                 std::size_t run, const T* b, std::size_t ldb, T* c, std::size_t ldc, bool accumulate,
                 tile_epilogue<T> epilogue);
  // The gathered dot products of narrow.hpp (gather_dot_product).
  void (*gather_dot)(std::size_t m, std::size_t c, std::size_t taps, std::size_t k, const T* a, const std::size_t* ro,
                     const std::size_t* to, const T* b, T* out, std::size_t ldo);
};

struct isa_kernels {
  isa_gemm<float> f32;
  isa_gemm<double> f64;
};

namespace avx512 {
extern const isa_kernels table;
}
namespace avx2 {
extern const isa_kernels table;
}
namespace portable {
extern const isa_kernels table;
}

}  // namespace typegrad::kernels

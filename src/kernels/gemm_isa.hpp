#pragma once
// Internal to src/kernels: what each instruction-set build of the kernels exports.
//
// src/kernels/gemm_kernels.hpp (the products) and pass_kernels.hpp (the vector passes over
// activations) are compiled three times, with different flags, by gemm_avx512.cpp, gemm_avx2.cpp
// and gemm_portable.cpp; each exports one isa_kernels table, and gemm.cpp picks the table the CPU
// can run (the same one for both: kernels/gemm.hpp's gemm_isa). This header is compiled with
// those flags too, so it only declares: an inline function defined here could be emitted by an
// AVX-512 translation unit and then be the copy the linker keeps for every caller.
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
  // The indirect product of narrow.hpp: like narrow, with A read through pointers per row and tap.
  void (*indirect)(std::size_t m, std::size_t n, std::size_t taps, std::size_t run, const T* const* a, const T* b,
                   std::size_t ldb, T* c, std::size_t ldc, T* const* c_rows, bool accumulate,
                   tile_epilogue<T> epilogue);
  // The direct 3x3 conv of one input channel of narrow.hpp (direct_conv_3x3).
  void (*direct_3x3)(std::size_t lines, std::size_t width, std::size_t n, const T* x, std::size_t line_step,
                     std::size_t row_step, const T* w, T* out, tile_epilogue<T> epilogue);
  // The gathered dot products of narrow.hpp (gather_dot_product).
  void (*gather_dot)(std::size_t m, std::size_t c, std::size_t taps, std::size_t k, const T* a, const std::size_t* ro,
                     const std::size_t* to, const T* b, T* out, std::size_t ldo);
  // The product with gathered columns of narrow.hpp (gather_columns_product).
  void (*gather_columns)(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
                         const std::size_t* ro, const std::size_t* co, T* c, std::size_t ldc, bool accumulate);
};

// Which tiles of a Winograd conv a block of transforms covers (conv.cpp): tiles [first, first +
// count) in the order (batch item, tile row, tile column), ty x tx tiles of 2x2 outputs per item,
// each transform's 16 elements `block` tiles apart in the layout (16, block, channels).
struct winograd_block {
  std::size_t first, count, block, ty, tx;
};

// The memory-bound passes, vectorised along the channels (the last, contiguous dim) with this
// instruction set's vectors and bitwise the same as their scalar form.
template <class T>
struct isa_passes {
  // o[j] (+)= the rows src + k * stride (k < count) for j < inner, in order of k (sum: +; max: the
  // larger, NaN never): the row held in registers.
  void (*sum_rows)(T* o, const T* src, std::ptrdiff_t stride, std::size_t count, std::size_t inner);
  void (*max_rows)(T* o, const T* src, std::ptrdiff_t stride, std::size_t count, std::size_t inner);
  // One output row of a 2x2 max pool with stride 2: out[j] (C channels each) = the largest of the
  // window's four positions, the input rows x and x + row, columns 2j and 2j + 1 (in row-major
  // order from -inf: v > best replaces, so NaN never does).
  void (*max_pool_2x2)(const T* x, std::size_t row, std::size_t cols, std::size_t c, T* out);
  // The same row of a 2x2 average pool: the four positions summed in that order from 0, times 1 / 4.
  void (*avg_pool_2x2)(const T* x, std::size_t row, std::size_t cols, std::size_t c, T* out);
  // Its backward for that row: each window's gradient g[j] to its first maximum, 0 elsewhere;
  // with positive_only, also 0 where x <= 0 (relu's mask fused in).
  void (*max_pool_backward_2x2)(const T* x, std::size_t row, const T* g, std::size_t cols, std::size_t c,
                                bool positive_only, T* dx);
  // Winograd F(2x2, 3x3), conv.cpp: v (16, block, c) = B^T d B for the tiles' 4x4 patches d of x
  // (n, h, w, c), the patch of the tile at output (y, x) starting at input row y - pad_top and
  // column x - pad_left; positions outside x read `zeros` (c zeros).
  void (*winograd_inputs)(const winograd_block& b, const T* x, std::size_t h, std::size_t w, std::size_t c,
                          std::size_t pad_top, std::size_t pad_left, const T* zeros, T* v);
  // out = relu?(A^T M A + bias) for m (16, block, k), clipped at the oh x ow outputs; bias: k
  // values, one value (bias_size 1) or none.
  void (*winograd_outputs)(const winograd_block& b, const T* m, std::size_t k, std::size_t oh, std::size_t ow,
                           const T* bias, std::size_t bias_size, bool relu, T* out);
  // dm (16, block, k) = A dY A^T for the tiles of dy (oh x ow outputs, k channels; 0 past the edge).
  void (*winograd_output_grads)(const winograd_block& b, const T* dy, std::size_t k, std::size_t oh, std::size_t ow,
                                T* dm);
};

struct isa_kernels {
  isa_gemm<float> f32;
  isa_gemm<double> f64;
  isa_passes<float> f32_passes;
  isa_passes<double> f64_passes;
};

// The passes of the instruction set the GEMM runs (gemm.cpp): read once per kernel call.
template <class T>
const isa_passes<T>& active_passes();

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

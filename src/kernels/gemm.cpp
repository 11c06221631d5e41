// Matrix products on typegrad's own GEMM: C is cut into tiles (over M and N, never K), each tile one
// serial blocked product inside a TBB task.
//
// One plan describes every matmul form: a batch of products C_i = op(A_i) op(B_i) with element
// strides between items (0 = a matrix shared by the batch), optionally accumulated into a single
// C (sum_batch). Two forms fold the batch into a single larger GEMM instead:
//   batched a (no transpose) times a 2-d b:  (batch*M, K) x (K, N)    - a dense layer on sequences
//   sum over the batch of a_i^T b_i:          (batch*K, M)^T (batch*K, N) - its weight gradient
// The tiles of C are fixed by (M, N, K) and the instruction set (see plan_tiles); inside a tile,
// blocked_gemm runs the Goto/BLIS loops over the kernels of the chosen instruction set
// (gemm_kernels.hpp), and the sum behind each element of C is split by K alone. So the result is
// independent of the thread count, and even of the tiling.
//
// matmul is an ordered list of implementations (near the end of this file), like conv.cpp's and
// pool.cpp's; a call runs the first that applies, and tests and benchmarks can run any of them by
// name (tests/test_matmul_implementations.cpp):
//
//   blocked    any shapes and form: the plan above on the blocked GEMM.
//   reference  any shapes and form: the definition, element by element, sums in long double
//              (matmul_reference.cpp), the one the blocked GEMM is tested against.
#include "typegrad/kernels/gemm.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "gemm_isa.hpp"
#include "implementation_list.hpp"
#include "matmul_reference.hpp"
#include "narrow.hpp"
#include "../parallel/parallel_chunks.hpp"
#include "scratch.hpp"
#include "typegrad/core/errors.hpp"

namespace typegrad::kernels {

// ---- instruction sets ---------------------------------------------------------------------------
const char* isa_name(instruction_set isa) {
  switch (isa) {
    case instruction_set::avx512: return "avx512";
    case instruction_set::avx2: return "avx2";
    case instruction_set::portable: break;
  }
  return "portable";
}

bool gemm_isa_supported(instruction_set isa) {
  if (isa == instruction_set::portable) return true;
#if TYPEGRAD_X86_KERNELS
  // libgcc's checks include the OS's support (XCR0) for the ymm and zmm registers.
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == instruction_set::avx2) return avx2;
  return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

namespace {

constexpr instruction_set all_isas[] = {instruction_set::avx512, instruction_set::avx2, instruction_set::portable};

instruction_set best_isa() {
  for (auto isa : all_isas)
    if (gemm_isa_supported(isa)) return isa;
  return instruction_set::portable;
}

instruction_set isa_from_environment() {
  const char* name = std::getenv("TYPEGRAD_ISA");
  if (name == nullptr || *name == '\0') return best_isa();
  for (auto isa : all_isas) {
    if (std::string_view(name) != isa_name(isa)) continue;
    if (!gemm_isa_supported(isa))
      throw error(fmt::format("TYPEGRAD_ISA={}: this CPU cannot run the {} kernels (the best it runs: {})", name, name,
                              isa_name(best_isa())));
    return isa;
  }
  throw error(fmt::format("TYPEGRAD_ISA={}: unknown instruction set (expected avx512, avx2 or portable)", name));
}

constexpr int unchosen = -1;
std::atomic<int> chosen_isa{unchosen};

const isa_kernels& kernels_for([[maybe_unused]] instruction_set isa) {
#if TYPEGRAD_X86_KERNELS
  if (isa == instruction_set::avx512) return avx512::table;
  if (isa == instruction_set::avx2) return avx2::table;
#endif
  return portable::table;
}

// The kernels of the chosen instruction set: read once per product, so that one product never
// mixes two (set_gemm_isa may change the choice in between).
template <class T>
const isa_gemm<T>& active_kernels() {
  const isa_kernels& k = kernels_for(gemm_isa());
  if constexpr (std::is_same_v<T, float>) return k.f32;
  else return k.f64;
}

}  // namespace

template <class T>
const isa_passes<T>& active_passes() {
  const isa_kernels& k = kernels_for(gemm_isa());
  if constexpr (std::is_same_v<T, float>) return k.f32_passes;
  else return k.f64_passes;
}
template const isa_passes<float>& active_passes<float>();
template const isa_passes<double>& active_passes<double>();

instruction_set gemm_isa() {
  int isa = chosen_isa.load(std::memory_order_acquire);
  if (isa != unchosen) return instruction_set(isa);
  const int first = int(isa_from_environment());
  // Another thread may have chosen meanwhile (then isa holds its choice).
  return instruction_set(chosen_isa.compare_exchange_strong(isa, first) ? first : isa);
}

void set_gemm_isa(instruction_set isa) {
  if (!gemm_isa_supported(isa))
    throw error(fmt::format("set_gemm_isa({}): this CPU cannot run these kernels (the best it runs: {})", isa_name(isa),
                            isa_name(best_isa())));
  chosen_isa.store(int(isa), std::memory_order_release);
}

std::string gemm_description() {
  const instruction_set isa = gemm_isa();
  const isa_kernels& k = kernels_for(isa);
  return fmt::format("typegrad GEMM, {} kernels (float {}x{}, double {}x{} tiles)", isa_name(isa), k.f32.mr, k.f32.nr,
                     k.f64.mr, k.f64.nr);
}

namespace {

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
std::size_t round_up(std::size_t a, std::size_t b) { return ceil_div(a, b) * b; }

// ---- one serial product --------------------------------------------------------------------------
// B is read in place rather than packed when few rows of A reuse it, so that packing would cost
// more than it saves (AVX-512, one thread: (64 x 3136) (3136 x 128) at 152 GFLOP/s in place
// against 140 packed, (32 x 3136) (3136 x 128) 146 against 128, 3-5% with 128 rows; from 256 rows
// on, packing wins by 0-8%), provided that B is not transposed, its panels have no ragged edge (the microkernel
// would read past it), its rows are aligned to cache lines (else every load straddles two) and
// short (longer rows, e.g. 4 KiB apart, compete for the same cache sets).
constexpr std::size_t in_place_b_rows = 128;
constexpr std::size_t in_place_b_row_bytes = 1024;
constexpr std::size_t cache_line = 64;

template <class T>
bool read_b_in_place(const isa_gemm<T>& g, const gemm_dims& d, const T* b) {
  const std::size_t row_bytes = d.ldb * sizeof(T);
  return !d.trans_b && d.m <= in_place_b_rows && d.n % g.nr == 0 && row_bytes <= in_place_b_row_bytes &&
         row_bytes % cache_line == 0 && reinterpret_cast<std::uintptr_t>(b) % cache_line == 0;
}

// C = op(A) op(B) + beta C on the calling thread, in the Goto/BLIS loop order: per block of nc
// columns and per pass over kc terms of the sum, op(B)'s block is packed into panels of nr columns
// (packing absorbs trans_b), and per block of mc rows the kernels' multiply runs the microkernel
// over every (mr x nr) tile. A is read in place: a transposed A has each k's rows contiguous, an
// untransposed one is broadcast from mr rows (measured faster than a scalar packing of it, e.g.
// 141 against 132 GFLOP/s for 1024^3). The passes split K into equal parts whose count depends on K alone, and
// each adds its partial sums to C: every element of C is the same sequence of operations
// whatever the blocking around it.
template <class T>
void blocked_gemm(const isa_gemm<T>& g, const gemm_dims& d, const T* a, const T* b, T beta, T* c) {
  if (d.m == 0 || d.n == 0) return;
  if (d.k == 0) {  // an empty sum: C = beta C
    for (std::size_t r = 0; r < d.m; ++r)
      for (std::size_t j = 0; j < d.n; ++j) c[r * d.ldc + j] = beta == T(0) ? T(0) : beta * c[r * d.ldc + j];
    return;
  }
  const std::size_t passes = ceil_div(d.k, g.kc), kc_max = ceil_div(d.k, passes);
  const bool pack_b = !read_b_in_place(g, d, b);
  // With one block of rows, B's panels are packed one at a time, each just before its use (it is
  // then still in L1): (64 x 128) (3136 x 128)^T gains 13%, at AVX-512 on one thread.
  const std::size_t pack_width = d.m <= g.mc ? g.nr : g.nc;
  auto packed_b = scratch().take<T>(pack_b ? kc_max * round_up(std::min(d.n, pack_width), g.nr) : 0);
  for (std::size_t j0 = 0; j0 < d.n; j0 += g.nc) {
    const std::size_t nc = std::min(g.nc, d.n - j0);
    for (std::size_t p = 0; p < passes; ++p) {
      const std::size_t k0 = d.k * p / passes, kc = d.k * (p + 1) / passes - k0;
      for (std::size_t jp = j0; jp < j0 + nc; jp += pack_width) {
        const std::size_t width = std::min(pack_width, j0 + nc - jp);
        gemm_panels<T> bp{b + k0 * d.ldb + jp, 1, d.ldb, true};
        if (pack_b) {
          g.pack_b(d.trans_b, b + (d.trans_b ? jp * d.ldb + k0 : k0 * d.ldb + jp), d.ldb, kc, width, packed_b.data());
          bp = {packed_b.data(), kc, g.nr, true};
        }
        for (std::size_t i0 = 0; i0 < d.m; i0 += g.mc) {
          const std::size_t mc = std::min(g.mc, d.m - i0);
          const gemm_panels<T> ap = d.trans_a ? gemm_panels<T>{a + k0 * d.lda + i0, 1, d.lda, true}
                                              : gemm_panels<T>{a + i0 * d.lda + k0, d.lda, d.lda, false};
          g.multiply(mc, width, kc, ap, bp, p == 0 ? beta : T(1), c + i0 * d.ldc + jp, d.ldc);
        }
      }
    }
  }
}

// ---- tiles of C -----------------------------------------------------------------------------------
// C is cut into tiles of mb x nb by halving the larger side (rows in multiples of the kernels' mr,
// columns of nr) while
//   - a tile keeps >= 2 * min_tile_work multiply-adds and both sides >= 2 * min_block, and
//   - there are fewer than parallel_tiles tiles, or the tiles are still very large.
// Every extra tile repacks its panels of B, so the count is kept low; products above
// large_tile_work per tile keep splitting, so big GEMMs still feed many cores. The plan depends
// on (M, N, K) and the instruction set only.
constexpr std::size_t min_tile_work = std::size_t{1} << 20;    // multiply-adds, ~10-20 us on one core
constexpr std::size_t large_tile_work = std::size_t{1} << 27;  // ~1.5 ms on one core
constexpr std::size_t parallel_tiles = 16;
constexpr std::size_t min_block = 64;

struct tiling {
  std::size_t mb, nb, m_tiles, n_tiles;
  std::size_t count() const { return m_tiles * n_tiles; }
};

// work_k: the length of the reduction behind each element of C (k, times the batch when a batch
// is accumulated into one C).
template <class T>
tiling plan_tiles(const isa_gemm<T>& g, std::size_t m, std::size_t n, std::size_t work_k) {
  std::size_t mb = m, nb = n;
  auto tiles = [&] { return ceil_div(m, mb) * ceil_div(n, nb); };
  auto work = [&] { return mb * nb * work_k; };
  while (work() >= 2 * min_tile_work && (tiles() < parallel_tiles || work() >= 2 * large_tile_work)) {
    if (mb >= 2 * min_block && (mb >= nb || nb < 2 * min_block)) mb = round_up(ceil_div(mb, 2), g.mr);
    else if (nb >= 2 * min_block) nb = round_up(ceil_div(nb, 2), g.nr);
    else break;
  }
  return {mb, nb, ceil_div(m, mb), ceil_div(n, nb)};
}

// ---- the batch plan ------------------------------------------------------------------------------
struct gemm_plan {
  gemm_dims d;
  std::size_t batch = 1;
  std::size_t stride_a = 0, stride_b = 0, stride_c = 0;  // between batch items, in elements
  bool accumulate = false;                               // C = sum over the batch
};

template <class T>
void run_plan(const gemm_plan& p, const T* a, const T* b, T* c) {
  const auto& d = p.d;
  const isa_gemm<T>& g = active_kernels<T>();
  if (d.m == 0 || d.n == 0) return;
  const std::size_t c_items = p.accumulate ? 1 : p.batch;
  if (d.k == 0 || p.batch == 0) {
    // An empty sum: zeros (the batch loop would not run).
    for (std::size_t i = 0; i < c_items; ++i)
      for (std::size_t r = 0; r < d.m; ++r) std::fill_n(c + i * p.stride_c + r * d.ldc, d.n, T(0));
    return;
  }
  const std::size_t sums = p.accumulate ? p.batch : 1;
  const tiling t = plan_tiles(g, d.m, d.n, d.k * sums);
  const std::size_t tiles = t.count();
  parallel_chunks(c_items * tiles, t.mb * t.nb * d.k * sums, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t item = lo; item < hi; ++item) {
      const std::size_t i = item / tiles, tile = item % tiles;
      const std::size_t m0 = tile / t.n_tiles * t.mb, n0 = tile % t.n_tiles * t.nb;
      const std::size_t mt = std::min(t.mb, d.m - m0), nt = std::min(t.nb, d.n - n0);
      // Rows m0.. of op(A): rows of A, or columns of a transposed A; columns n0.. of op(B) likewise.
      const std::size_t a_off = d.trans_a ? m0 : m0 * d.lda;
      const std::size_t b_off = d.trans_b ? n0 * d.ldb : n0;
      T* ct = c + m0 * d.ldc + n0;
      for (std::size_t s = 0; s < sums; ++s) {
        const std::size_t j = p.accumulate ? s : i;  // the batch item whose product is added
        blocked_gemm<T>(g, gemm_dims{d.trans_a, d.trans_b, mt, nt, d.k, d.lda, d.ldb, d.ldc}, a + j * p.stride_a + a_off,
                        b + j * p.stride_b + b_off, s == 0 ? T(0) : T(1), ct + i * p.stride_c);
      }
    }
  });
}

std::size_t leading_count(const shape& s) {
  std::size_t n = 1;
  for (std::size_t i = 0; i + 2 < s.rank(); ++i) n *= s[i];
  return n;
}

gemm_plan plan_matmul(const shape& as, const shape& bs, matmul_form f) {
  const std::size_t ra = as.rank(), rb = bs.rank();
  const std::size_t ar = as[ra - 2], ac = as[ra - 1], br = bs[rb - 2], bc = bs[rb - 1];
  gemm_plan p;
  p.d.trans_a = f.trans_a;
  p.d.trans_b = f.trans_b;
  p.d.m = f.trans_a ? ac : ar;
  p.d.k = f.trans_a ? ar : ac;
  p.d.n = f.trans_b ? br : bc;
  p.d.lda = ac;
  p.d.ldb = bc;
  p.d.ldc = p.d.n;
  const std::size_t batch_a = leading_count(as), batch_b = leading_count(bs);
  const std::size_t size_a = ar * ac, size_b = br * bc, size_c = p.d.m * p.d.n;
  if (f.sum_batch) {
    if (f.trans_a && !f.trans_b) {
      p.d.k *= batch_a;  // the batch stacks along the contraction: one GEMM
    } else {
      p.batch = batch_a;
      p.stride_a = size_a;
      p.stride_b = size_b;
      p.accumulate = true;
    }
  } else if (ra > 2 && rb > 2) {
    p.batch = batch_a;
    p.stride_a = size_a;
    p.stride_b = size_b;
    p.stride_c = size_c;
  } else if (ra > 2) {
    if (!f.trans_a) {
      p.d.m *= batch_a;  // the batch stacks along the rows: one GEMM
    } else {
      p.batch = batch_a;
      p.stride_a = size_a;
      p.stride_c = size_c;
    }
  } else if (rb > 2) {
    p.batch = batch_b;
    p.stride_b = size_b;
    p.stride_c = size_c;
  }
  return p;
}

template <class T>
void blocked_matmul(view<T> out, view<const T> a, view<const T> b, matmul_form form) {
  run_plan<T>(plan_matmul(a.shape, b.shape, form), a.data, b.data, out.data);
}

// ---- the implementation list ---------------------------------------------------------------------
// In the order the default dispatch tries them; it runs the first whose applies() holds for a's and
// b's shapes and the form. blocked applies to everything, so the reference is never the default.

template <class T>
using matmul_run = void (*)(view<T>, view<const T>, view<const T>, matmul_form);
template <class T>
using matmul_implementation = implementation<bool (*)(const shape&, const shape&, matmul_form), matmul_run<T>>;

bool always(const shape&, const shape&, matmul_form) { return true; }

template <class T>
constexpr matmul_implementation<T> matmul_list[] = {
    {"blocked", always, blocked_matmul<T>},
    {"reference", always, reference_matmul<T>},
};

}  // namespace

template <class T>
void matmul(view<T> out, view<const T> a, view<const T> b, matmul_form form) {
  first_applying(matmul_list<T>, a.shape, b.shape, form).run(out, a, b, form);
}

// ---- choosing an implementation by name (tests and benchmarks) ----------------------------------

std::vector<std::string_view> matmul_implementations() { return implementation_names(matmul_list<float>); }

bool matmul_applies(std::string_view name, const shape& a, const shape& b, matmul_form form) {
  return named(matmul_list<float>, "matmul", name).applies(a, b, form);
}

std::string_view matmul_chosen(const shape& a, const shape& b, matmul_form form) {
  return first_applying(matmul_list<float>, a, b, form).name;
}

template <class T>
void matmul_with(std::string_view name, view<T> out, view<const T> a, view<const T> b, matmul_form form) {
  // e.g. "a (3, 4, 5)^T, b (3, 4, 6), summed over the batch"
  auto describe = [&] {
    return fmt::format("a {}{}, b {}{}{}", a.shape, form.trans_a ? "^T" : "", b.shape, form.trans_b ? "^T" : "",
                       form.sum_batch ? ", summed over the batch" : "");
  };
  applying(matmul_list<T>, "matmul", name, describe, a.shape, b.shape, form).run(out, a, b, form);
}

template <class T>
void gemm(const gemm_dims& d, const T* a, const T* b, T* c) {
  gemm_plan p;
  p.d = d;
  run_plan<T>(p, a, b, c);
}

template <class T>
void gemm_serial(const gemm_dims& d, const T* a, const T* b, T beta, T* c) {
  blocked_gemm<T>(active_kernels<T>(), d, a, b, beta, c);
}

template <class T>
void narrow_product(bool trans_a, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                    const T* b, std::size_t ldb, T* c, std::size_t ldc, bool accumulate, const T* bias, bool relu) {
  active_kernels<T>().narrow(trans_a, m, n, k, a, lda, b, ldb, c, ldc, accumulate, {bias, relu});
}

template <class T>
void gather_product(std::size_t m, std::size_t n, std::size_t k, const T* a, const std::size_t* ro,
                    const std::size_t* so, std::size_t run, const T* b, std::size_t ldb, T* c, std::size_t ldc,
                    bool accumulate, const T* bias, bool relu) {
  active_kernels<T>().gather(m, n, k, a, ro, so, run, b, ldb, c, ldc, accumulate, {bias, relu});
}

template <class T>
void indirect_product(std::size_t m, std::size_t n, std::size_t taps, std::size_t run, const T* const* a,
                      const T* b, std::size_t ldb, T* c, std::size_t ldc, bool accumulate, const T* bias, bool relu) {
  active_kernels<T>().indirect(m, n, taps, run, a, b, ldb, c, ldc, nullptr, accumulate, {bias, relu});
}

template <class T>
void indirect_product_to_rows(std::size_t m, std::size_t n, std::size_t taps, std::size_t run, const T* const* a,
                              const T* b, std::size_t ldb, T* const* c_rows) {
  active_kernels<T>().indirect(m, n, taps, run, a, b, ldb, nullptr, 0, c_rows, false, {});
}

template <class T>
void direct_conv_3x3(std::size_t lines, std::size_t width, std::size_t n, const T* x, std::size_t line_step,
                     std::size_t row_step, const T* w, T* out, const T* bias, bool relu) {
  active_kernels<T>().direct_3x3(lines, width, n, x, line_step, row_step, w, out, {bias, relu});
}

template <class T>
void gather_dot_product(std::size_t m, std::size_t c, std::size_t taps, std::size_t k, const T* a,
                        const std::size_t* ro, const std::size_t* to, const T* b, T* out, std::size_t ldo) {
  active_kernels<T>().gather_dot(m, c, taps, k, a, ro, to, b, out, ldo);
}

template <class T>
void gather_columns_product(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
                            const std::size_t* ro, const std::size_t* co, T* c, std::size_t ldc, bool accumulate) {
  active_kernels<T>().gather_columns(m, n, k, a, lda, b, ro, co, c, ldc, accumulate);
}

#define TYPEGRAD_INSTANTIATE(T)                                                \
  template void matmul<T>(view<T>, view<const T>, view<const T>, matmul_form); \
  template void matmul_with<T>(std::string_view, view<T>, view<const T>, view<const T>, matmul_form); \
  template void gemm<T>(const gemm_dims&, const T*, const T*, T*);          \
  template void gemm_serial<T>(const gemm_dims&, const T*, const T*, T, T*);  \
  template void narrow_product<T>(bool, std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, \
                                  std::size_t, T*, std::size_t, bool, const T*, bool);                        \
  template void gather_product<T>(std::size_t, std::size_t, std::size_t, const T*, const std::size_t*,         \
                                  const std::size_t*, std::size_t, const T*, std::size_t, T*, std::size_t, bool, \
                                  const T*, bool);                                                            \
  template void indirect_product<T>(std::size_t, std::size_t, std::size_t, std::size_t, const T* const*,         \
                                    const T*, std::size_t, T*, std::size_t, bool, const T*, bool);              \
  template void indirect_product_to_rows<T>(std::size_t, std::size_t, std::size_t, std::size_t, const T* const*, \
                                            const T*, std::size_t, T* const*);                                   \
  template void direct_conv_3x3<T>(std::size_t, std::size_t, std::size_t, const T*, std::size_t, std::size_t,   \
                                   const T*, T*, const T*, bool);                                              \
  template void gather_dot_product<T>(std::size_t, std::size_t, std::size_t, std::size_t, const T*,            \
                                      const std::size_t*, const std::size_t*, const T*, T*, std::size_t);         \
  template void gather_columns_product<T>(std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*, \
                                          const std::size_t*, const std::size_t*, T*, std::size_t, bool);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

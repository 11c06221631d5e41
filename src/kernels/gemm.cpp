// Matrix products on OpenBLAS, one thread per call, inside TBB tasks, blocked over M and N only.
//
// One plan describes every matmul form: a batch of products C_i = op(A_i) op(B_i) with element
// strides between items (0 = a matrix shared by the batch), optionally accumulated into a single
// C (sum_batch). Two forms fold the batch into a single larger GEMM instead:
//   batched a (no transpose) times a 2-d b:  (batch*M, K) x (K, N)    - a dense layer on sequences
//   sum over the batch of a_i^T b_i:          (batch*K, M)^T (batch*K, N) - its weight gradient
// The tiles of C are fixed by (M, N, K) alone (see plan_tiles), which is what makes the result
// independent of the thread count.
#include "typegrad/runtime/gemm.hpp"

#include <algorithm>
#include <climits>
#include <mutex>
#include <cstddef>
#include <string>
#include <type_traits>

#include <cblas.h>
#include <fmt/format.h>

#include "parallel.hpp"
#include "typegrad/core/errors.hpp"

// OpenBLAS's own API (declared here too, so this file builds whichever cblas.h the system's
// alternatives select).
extern "C" {
int openblas_get_parallel(void);
void openblas_set_num_threads(int);
char* openblas_get_corename(void);
char* openblas_get_config(void);
}

namespace typegrad::kernels {

// Which OpenBLAS the loader picked (Debian's alternatives choose among the flavours at run time):
//  - a pthread or OpenMP build would start its own pool under every TBB task, so it is limited to
//    one thread per call; these builds lock their buffer allocator, so concurrent calls are safe;
//  - the serial build (libopenblas0-serial 0.3.21) has no locking: concurrent calls race in its
//    buffer allocator and corrupt results (tests/test_gemm_concurrency.cpp), so calls take turns
//    behind a mutex, correct but serialised (docs/blas.md measures the loss).
bool blas_is_reentrant() {
  static const bool reentrant = [] {
    if (openblas_get_parallel() == 0) return false;
    openblas_set_num_threads(1);
    return true;
  }();
  return reentrant;
}

namespace {

std::mutex serial_blas_mutex;

int blas_index(std::size_t v) {
  if (v > std::size_t(INT_MAX))
    throw error(fmt::format("matmul: extent {} exceeds the BLAS's 32-bit index range", v));
  return static_cast<int>(v);
}

template <class T>
void blas_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
               const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc) {
  const auto op_a = ta ? CblasTrans : CblasNoTrans, op_b = tb ? CblasTrans : CblasNoTrans;
  std::unique_lock<std::mutex> turn(serial_blas_mutex, std::defer_lock);
  if (!blas_is_reentrant()) turn.lock();
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, op_a, op_b, blas_index(m), blas_index(n), blas_index(k), 1.0f, a, blas_index(lda), b,
                blas_index(ldb), beta, c, blas_index(ldc));
  else
    cblas_dgemm(CblasRowMajor, op_a, op_b, blas_index(m), blas_index(n), blas_index(k), 1.0, a, blas_index(lda), b,
                blas_index(ldb), beta, c, blas_index(ldc));
}

// ---- blocking ------------------------------------------------------------------------------------
// C is cut into tiles of mb x nb by halving the larger side (in multiples of block_align) while
//   - a tile keeps >= 2 * min_tile_work multiply-adds and both sides >= 2 * min_block, and
//   - there are fewer than parallel_tiles tiles, or the tiles are still very large.
// Every extra tile repacks panels of A and B, so the count is kept low: single-thread sgemm
// efficiency measured here (Cooperlake kernels) drops from ~92% of one unsplit call with 16 tiles
// of a 512^3 product to ~75% with 64 tiles. Products above large_tile_work per tile keep
// splitting, so big GEMMs still feed many cores. The plan depends on (M, N, K) only.
constexpr std::size_t min_tile_work = std::size_t{1} << 20;    // multiply-adds, ~10-20 us on one core
constexpr std::size_t large_tile_work = std::size_t{1} << 27;  // ~1.5 ms on one core
constexpr std::size_t parallel_tiles = 16;
constexpr std::size_t min_block = 64;
constexpr std::size_t block_align = 16;  // a multiple of the micro-kernels' register blocking

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }
std::size_t halve(std::size_t extent) { return ceil_div(ceil_div(extent, 2), block_align) * block_align; }

struct tiling {
  std::size_t mb, nb, m_tiles, n_tiles;
  std::size_t count() const { return m_tiles * n_tiles; }
};

// work_k: the length of the reduction behind each element of C (k, times the batch when a batch
// is accumulated into one C).
tiling plan_tiles(std::size_t m, std::size_t n, std::size_t work_k) {
  std::size_t mb = m, nb = n;
  auto tiles = [&] { return ceil_div(m, mb) * ceil_div(n, nb); };
  auto work = [&] { return mb * nb * work_k; };
  while (work() >= 2 * min_tile_work && (tiles() < parallel_tiles || work() >= 2 * large_tile_work)) {
    if (mb >= 2 * min_block && (mb >= nb || nb < 2 * min_block)) mb = halve(mb);
    else if (nb >= 2 * min_block) nb = halve(nb);
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
  if (d.m == 0 || d.n == 0) return;
  const std::size_t c_items = p.accumulate ? 1 : p.batch;
  if (d.k == 0 || p.batch == 0) {
    // An empty sum: zeros (BLAS would not touch C when k == 0 and the batch loop would not run).
    for (std::size_t i = 0; i < c_items; ++i)
      for (std::size_t r = 0; r < d.m; ++r) std::fill_n(c + i * p.stride_c + r * d.ldc, d.n, T(0));
    return;
  }
  const std::size_t sums = p.accumulate ? p.batch : 1;
  const tiling t = plan_tiles(d.m, d.n, d.k * sums);
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
        blas_gemm<T>(d.trans_a, d.trans_b, mt, nt, d.k, a + j * p.stride_a + a_off, d.lda, b + j * p.stride_b + b_off,
                     d.ldb, s == 0 ? T(0) : T(1), ct + i * p.stride_c, d.ldc);
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

}  // namespace

template <class T>
void matmul(view<T> out, view<const T> a, view<const T> b, matmul_form form) {
  run_plan<T>(plan_matmul(a.shape, b.shape, form), a.data, b.data, out.data);
}

template <class T>
void gemm(const gemm_dims& d, const T* a, const T* b, T* c) {
  gemm_plan p;
  p.d = d;
  run_plan<T>(p, a, b, c);
}

template <class T>
void gemm_serial(const gemm_dims& d, const T* a, const T* b, T beta, T* c) {
  if (d.m == 0 || d.n == 0) return;
  if (d.k == 0) {  // BLAS would leave C untouched: scale it by beta by hand
    for (std::size_t r = 0; r < d.m; ++r)
      for (std::size_t j = 0; j < d.n; ++j) c[r * d.ldc + j] = beta == T(0) ? T(0) : beta * c[r * d.ldc + j];
    return;
  }
  blas_gemm<T>(d.trans_a, d.trans_b, d.m, d.n, d.k, a, d.lda, b, d.ldb, beta, c, d.ldc);
}

std::string blas_description() {
  return fmt::format("{} (core: {}, {})", openblas_get_config(), openblas_get_corename(),
                     blas_is_reentrant() ? "threaded build limited to 1 thread per call, concurrent calls"
                                         : "serial build without locking, calls serialised by a mutex");
}

#define TYPEGRAD_INSTANTIATE(T)                                                \
  template void matmul<T>(view<T>, view<const T>, view<const T>, matmul_form); \
  template void gemm<T>(const gemm_dims&, const T*, const T*, T*);          \
  template void gemm_serial<T>(const gemm_dims&, const T*, const T*, T, T*);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

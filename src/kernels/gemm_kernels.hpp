// Internal to src/kernels: the GEMM microkernel, packing and narrow products, written once over
// the vector width and compiled per instruction set by gemm_avx512.cpp, gemm_avx2.cpp and
// gemm_portable.cpp (rules: isa_vector.hpp), each of which exports an isa_kernels table built
// by make_gemm and make_passes.
//
// The microkernel (tile) keeps an R x NV-vector block of C in registers; per step k it loads NV
// vectors of B's row k, broadcasts A's R elements of column k, and accumulates with FMAs (the
// translation units are compiled with -ffp-contract=fast so that acc += a * b is one FMA where the
// ISA has it). Each element of C is summed over k in order, then added to beta C.
#include <cstddef>
#include <utility>

#include "gemm_isa.hpp"
#include "isa_vector.hpp"

namespace typegrad::kernels::TYPEGRAD_GEMM_ISA {

using std::size_t;

inline size_t smaller(size_t a, size_t b) { return a < b ? a : b; }

// Calls f.template operator()<V>() for the run-time v in [1, Max].
template <int Max, class F>
inline void with_vectors(size_t v, F&& f) {
  if constexpr (Max > 1)
    if (v < size_t(Max)) return with_vectors<Max - 1>(v, f);
  f.template operator()<Max>();
}
template <class F>
inline void with_layout(bool k_major, F&& f) {
  if (k_major) f.template operator()<true>();
  else f.template operator()<false>();
}

// c[0, count) = acc + beta c, for the first `count` lanes (count < lanes: a tile's last columns),
// through a vector, so that these elements get the same arithmetic as whole vectors.
template <class T>
[[gnu::noinline]] void update_part(T* c, vec<T> acc, T beta, size_t count) {
  vec<T> old{};
  for (size_t j = 0; j < count; ++j) old[j] = c[j];
  if (beta == T(1)) acc += old;
  else if (beta != T(0)) acc += beta * old;
  for (size_t j = 0; j < count; ++j) c[j] = acc[j];
}

// c[0, lanes) = acc + beta c; C is not read when beta is 0.
template <class T>
inline void update(T* c, vec<T> acc, T beta) {
  if (beta == T(1)) acc += load(c);
  else if (beta != T(0)) acc += beta * load(c);
  store(c, acc);
}

// C's R x cols block (cols <= NV lanes, row r at row(r)) = acc + beta C, or with beta = 0 and an
// epilogue e (bias of the block's columns), relu(acc + bias): the end of the tiles.
template <class T, int R, int NV, class RowAt>
inline void write_tile_rows(vec<T> (&acc)[R][NV], T beta, RowAt&& row, size_t cols, tile_epilogue<T> e = {}) {
  constexpr size_t L = lanes<T>;
  if (e.bias != nullptr) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      vec<T> b{};
      if (cols >= (v + 1) * L) b = load(e.bias + v * L);
      else if (cols > v * L)  // (the bound by L only tells the compiler what cols < (v + 1) L means)
        for (size_t j = 0; j < smaller(cols - v * L, L); ++j) b[j] = e.bias[v * L + j];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][v] += b;
    }
  }
  if (e.relu)
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = acc[r][v] < T(0) ? vec<T>{} : acc[r][v];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      if (cols >= (v + 1) * L) update(row(r) + v * L, acc[r][v], beta);
      else if (cols > v * L) update_part(row(r) + v * L, acc[r][v], beta, cols - v * L);
}

// The same with rows ldc apart.
template <class T, int R, int NV>
inline void write_tile(vec<T> (&acc)[R][NV], T beta, T* c, size_t ldc, size_t cols, tile_epilogue<T> e = {}) {
  write_tile_rows<T, R, NV>(acc, beta, [&](int r) { return c + r * ldc; }, cols, e);
}

// C's R x cols block (cols <= NV lanes, rows ldc apart) = A (R x kc) B (kc x NV lanes) + beta C.
// A(r, k) is a[k * as + r] (KMajor) or a[r * as + k]; B's row k starts at b + k * bs.
template <class T, int R, int NV, bool KMajor>
void tile(size_t kc, const T* a, size_t as, const T* b, size_t bs, T beta, T* c, size_t ldc, size_t cols,
          tile_epilogue<T> e) {
  constexpr size_t L = lanes<T>;
  vec<T> acc[R][NV];  // fully unrolled below, so these live in registers
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = vec<T>{};
  // Two steps per iteration: 6x4 tiles 150-167 -> 176-183 GFLOP/s per core, 12x2 +5% (operands in
  // L1, Xeon model 167); the same operations in the same order.
#pragma GCC unroll 2
  for (size_t k = 0; k < kc; ++k) {
    vec<T> bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = load(b + k * bs + v * L);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const T av = KMajor ? a[k * as + r] : a[r * as + k];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
    }
  }
  write_tile<T, R, NV>(acc, beta, c, ldc, cols, e);
}

template <class T>
using tile_fn = void (*)(size_t, const T*, size_t, const T*, size_t, T, T*, size_t, size_t, tile_epilogue<T>);
template <class T, int NV, bool KMajor, class Rows>
struct tiles_by_rows;
template <class T, int NV, bool KMajor, size_t... I>
struct tiles_by_rows<T, NV, KMajor, std::index_sequence<I...>> {
  static constexpr tile_fn<T> fn[] = {&tile<T, int(I) + 1, NV, KMajor>...};
};

// C (m x cols, cols <= NV lanes) = A (m x kc) B + beta C, in tiles of R rows (the last shorter).
template <class T, int R, int NV, bool KMajor>
void column_block(size_t m, size_t kc, const gemm_panels<T>& a, const T* b, size_t bs, T beta, T* c, size_t ldc,
                  size_t cols, tile_epilogue<T> e = {}) {
  constexpr const tile_fn<T>* by_rows = tiles_by_rows<T, NV, KMajor, std::make_index_sequence<R>>::fn;
  for (size_t i = 0; i < m; i += R)
    by_rows[smaller(R, m - i) - 1](kc, a.data + i * a.panel_step, a.step, b, bs, beta, c + i * ldc, ldc, cols, e);
}

// isa_gemm::multiply: B's panels one after another (each stays in L1 while A's rows stream past
// it); a narrower last panel runs with as few vectors as cover it.
template <class T, int MR, int NV>
void multiply(size_t mc, size_t nc, size_t kc, const gemm_panels<T>& a, const gemm_panels<T>& b, T beta, T* c,
              size_t ldc) {
  constexpr size_t L = lanes<T>, NR = NV * L;
  for (size_t j = 0; j < nc; j += NR) {
    const size_t cols = smaller(NR, nc - j);
    with_vectors<NV>((cols + L - 1) / L, [&]<int V>() {
      with_layout(a.k_major, [&]<bool KMajor>() {
        column_block<T, MR, V, KMajor>(mc, kc, a, b.data + j * b.panel_step, b.step, beta, c + j, ldc, cols);
      });
    });
  }
}

// ---- packing ------------------------------------------------------------------------------------
// Interleaves the lower (Hi = 0) or upper halves of x and y: x0 y0 x1 y1 ...
template <size_t Hi, class V, size_t... I>
inline V zip(V x, V y, std::index_sequence<I...>) {
  constexpr size_t L = sizeof...(I);
  return __builtin_shufflevector(x, y, ((I % 2) * L + Hi * L / 2 + I / 2)...);
}

// Transposes the L x L block held as L row vectors. Each round of zips rotates an element's
// (row, column) bits left by one, so log2(L) rounds swap row and column.
template <class T>
inline void transpose(vec<T> (&r)[lanes<T>]) {
  constexpr size_t L = lanes<T>;
  for (size_t round = 1; round < L; round *= 2) {
    vec<T> t[L];
#pragma GCC unroll 16
    for (size_t i = 0; i < L / 2; ++i) {
      t[2 * i] = zip<0>(r[i], r[i + L / 2], std::make_index_sequence<L>{});
      t[2 * i + 1] = zip<1>(r[i], r[i + L / 2], std::make_index_sequence<L>{});
    }
#pragma GCC unroll 16
    for (size_t i = 0; i < L; ++i) r[i] = t[i];
  }
}

// isa_gemm::pack_b.
template <class T, int NV>
void pack_b(bool trans, const T* b, size_t ldb, size_t kc, size_t nc, T* out) {
  constexpr size_t L = lanes<T>, NR = NV * L;
  for (size_t j0 = 0; j0 < nc; j0 += NR, out += kc * NR) {
    const size_t cols = smaller(NR, nc - j0);
    if (!trans) {
      for (size_t k = 0; k < kc; ++k) {
        const T* src = b + k * ldb + j0;
        T* dst = out + k * NR;
        if (cols == NR) {
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) store(dst + v * L, load(src + v * L));
        } else {
          for (size_t j = 0; j < NR; ++j) dst[j] = j < cols ? src[j] : T(0);
        }
      }
      continue;
    }
    // op(B)(k, j0 + j) = b[(j0 + j) * ldb + k]: L x L blocks through registers, then the edges.
    size_t j = 0;
    for (; j + L <= cols; j += L) {
      size_t k = 0;
      for (; k + L <= kc; k += L) {
        vec<T> r[L];
#pragma GCC unroll 16
        for (size_t i = 0; i < L; ++i) r[i] = load(b + (j0 + j + i) * ldb + k);
        transpose<T>(r);
#pragma GCC unroll 16
        for (size_t i = 0; i < L; ++i) store(out + (k + i) * NR + j, r[i]);
      }
      for (; k < kc; ++k)
        for (size_t i = 0; i < L; ++i) out[k * NR + j + i] = b[(j0 + j + i) * ldb + k];
    }
    for (size_t k = 0; k < kc; ++k)
      for (size_t jj = j; jj < NR; ++jj) out[k * NR + jj] = jj < cols ? b[(j0 + jj) * ldb + k] : T(0);
  }
}

// ---- narrow products ----------------------------------------------------------------------------
// f.template operator()<V, R>(j, cols) for each column block [j, j + cols) of n, up to
// sizeof...(Rows) vectors wide: a block of V vectors runs tiles of R = Rows[V - 1] rows, its last
// vector only partly stored when cols is not a whole number of vectors (the indirect product's
// padded B). The loop of the narrow, gathered, indirect and direct products.
template <class T, int... Rows, class F>
void by_column_blocks(size_t n, F&& f) {
  constexpr size_t L = lanes<T>;
  constexpr int max_vectors = sizeof...(Rows);
  constexpr int rows[] = {Rows...};
  for (size_t j = 0; j < n; j += max_vectors * L) {
    const size_t cols = smaller(max_vectors * L, n - j);
    with_vectors<max_vectors>((cols + L - 1) / L, [&]<int V>() { f.template operator()<V, rows[V - 1]>(j, cols); });
  }
}

// isa_gemm::narrow: A and B in place, the whole sum in registers, in column blocks of up to
// sizeof...(Rows) vectors; a block of V vectors runs tiles of Rows[V - 1] rows.
template <class T, int... Rows>
void narrow(bool trans_a, size_t m, size_t n, size_t k, const T* a, size_t lda, const T* b, size_t ldb, T* c,
            size_t ldc, bool accumulate, tile_epilogue<T> e) {
  const gemm_panels<T> ap = trans_a ? gemm_panels<T>{a, 1, lda, true} : gemm_panels<T>{a, lda, lda, false};
  by_column_blocks<T, Rows...>(n, [&]<int V, int R>(size_t j, size_t cols) {
    with_layout(trans_a, [&]<bool KMajor>() {
      column_block<T, R, V, KMajor>(m, k, ap, b + j, ldb, accumulate ? T(1) : T(0), c + j, ldc, cols,
                                    {e.bias ? e.bias + j : nullptr, e.relu});
    });
  });
}

// ---- gathered products ---------------------------------------------------------------------------
// C's R x cols block = A (R x kc) B (kc x NV lanes) + beta C with A gathered from offsets:
// A(r, s) = a[ro[r] + so[s]], where so comes in runs of `run` consecutive offsets (so[s0 + c] =
// so[s0] + c for s0 a multiple of run; run divides kc). The R row offsets stay in registers; per
// run, one offset load, then per s NV vector loads of B and R broadcasts from contiguous memory.
// The same arithmetic order as tile.
template <class T, int R, int NV>
void gather_tile(size_t kc, const T* a, const size_t* ro, const size_t* so, size_t run, const T* b, size_t bs, T beta,
                 T* c, size_t ldc, size_t cols, tile_epilogue<T> e) {
  constexpr size_t L = lanes<T>;
  vec<T> acc[R][NV];
  size_t row[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    row[r] = ro[r];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = vec<T>{};
  }
  for (size_t s0 = 0; s0 < kc; s0 += run) {
    const T* as = a + so[s0];
    const T* bs0 = b + s0 * bs;
#pragma GCC unroll 2
    for (size_t s = 0; s < run; ++s) {
      vec<T> bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = load(bs0 + s * bs + v * L);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const T av = as[row[r] + s];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
      }
    }
  }
  write_tile<T, R, NV>(acc, beta, c, ldc, cols, e);
}

template <class T>
using gather_tile_fn = void (*)(size_t, const T*, const size_t*, const size_t*, size_t, const T*, size_t, T, T*,
                                size_t, size_t, tile_epilogue<T>);
template <class T, int NV, class Rows>
struct gather_tiles_by_rows;
template <class T, int NV, size_t... I>
struct gather_tiles_by_rows<T, NV, std::index_sequence<I...>> {
  static constexpr gather_tile_fn<T> fn[] = {&gather_tile<T, int(I) + 1, NV>...};
};

// isa_gemm::gather: like narrow, with A(i, s) = a[ro[i] + so[s]], so in runs of `run`.
template <class T, int... Rows>
void gather(size_t m, size_t n, size_t k, const T* a, const size_t* ro, const size_t* so, size_t run, const T* b,
            size_t ldb, T* c, size_t ldc, bool accumulate, tile_epilogue<T> e) {
  const T beta = accumulate ? T(1) : T(0);
  by_column_blocks<T, Rows...>(n, [&]<int V, int R>(size_t j, size_t cols) {
    constexpr const gather_tile_fn<T>* by_rows = gather_tiles_by_rows<T, V, std::make_index_sequence<R>>::fn;
    for (size_t i = 0; i < m; i += R)
      by_rows[smaller(R, m - i) - 1](k, a, ro + i, so, run, b + j, ldb, beta, c + i * ldc + j, ldc, cols,
                                     {e.bias ? e.bias + j : nullptr, e.relu});
  });
}

// ---- direct 3x3 conv of one input channel ----------------------------------------------------------
// J consecutive outputs of a line x NV vectors of channels: out[j] = the sum over ky, kx, in that
// order, of x[ky * row_step + j + kx] w[3 ky + kx], with the 9 x NV weight vectors in registers
// (the caller's, loaded once per column block). Per output 9 broadcasts and 9 NV FMAs, no loads of
// B: the gathered tile's sum has only 9 terms, so its per-tile loads and stores were most of it.
template <class T, int J, int NV>
[[gnu::always_inline]] inline void direct_3x3_tile(const T* x, size_t row_step, const vec<T> (&w)[9][NV], T* out,
                                                   size_t ldo, size_t cols, tile_epilogue<T> e) {
  vec<T> acc[J][NV];
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[j][v] = vec<T>{};
#pragma GCC unroll 3
  for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx)
#pragma GCC unroll 16
      for (int j = 0; j < J; ++j) {
        const T xv = x[ky * row_step + j + kx];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[j][v] += xv * w[3 * ky + kx][v];
      }
  write_tile<T, J, NV>(acc, T(0), out, ldo, cols, e);
}

// isa_gemm::direct_3x3: columns in blocks of up to 2 vectors (18 or 9 weight vectors in registers
// and 8 accumulators), each block over every line, 8 / NV outputs at a time.
template <class T>
void direct_3x3(size_t lines, size_t width, size_t n, const T* x, size_t line_step, size_t row_step, const T* w,
                T* out, tile_epilogue<T> e) {
  constexpr size_t L = lanes<T>;
  by_column_blocks<T, 8, 4>(n, [&]<int NV, int J>(size_t j0, size_t cols) {
    vec<T> wv[9][NV];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) wv[t][v] = load(w + t * n + j0 + v * L);
    const tile_epilogue<T> ej{e.bias ? e.bias + j0 : nullptr, e.relu};
    for (size_t l = 0; l < lines; ++l) {
      const T* xl = x + l * line_step;
      T* ol = out + l * width * n + j0;
      size_t p = 0;
      for (; p + J <= width; p += J) direct_3x3_tile<T, J, NV>(xl + p, row_step, wv, ol + p * n, n, cols, ej);
      for (; p < width; ++p) direct_3x3_tile<T, 1, NV>(xl + p, row_step, wv, ol + p * n, n, cols, ej);
    }
  });
}

// ---- indirect products --------------------------------------------------------------------------
// C's R x cols block = A (R x taps * run) B + beta C with A read through an indirection buffer:
// A(r, t * run + s) = p[r * taps + t][s], a pointer per row and tap to `run` contiguous elements
// (conv's forward reads each window's taps straight from x and its padding from a run of zeros,
// as XNNPACK's convolutions do: no im2col copy). Per tap, R pointer loads; then per s NV vector
// loads of B and R broadcasts. The same arithmetic order as tile.
template <class T, int R, int NV>
void indirect_tile(size_t taps, size_t run, const T* const* p, const T* b, size_t bs, T beta, T* const* c,
                   size_t cols, tile_epilogue<T> e) {
  constexpr size_t L = lanes<T>;
  vec<T> acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = vec<T>{};
  for (size_t t = 0; t < taps; ++t) {
    const T* row[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) row[r] = p[r * taps + t];
    const T* bt = b + t * run * bs;
#pragma GCC unroll 2
    for (size_t s = 0; s < run; ++s) {
      vec<T> bv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) bv[v] = load(bt + s * bs + v * L);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const T av = row[r][s];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
      }
    }
  }
  write_tile_rows<T, R, NV>(acc, beta, [&](int r) { return c[r]; }, cols, e);
}

template <class T>
using indirect_tile_fn = void (*)(size_t, size_t, const T* const*, const T*, size_t, T, T* const*, size_t,
                                  tile_epilogue<T>);
template <class T, int NV, class Rows>
struct indirect_tiles_by_rows;
template <class T, int NV, size_t... I>
struct indirect_tiles_by_rows<T, NV, std::index_sequence<I...>> {
  static constexpr indirect_tile_fn<T> fn[] = {&indirect_tile<T, int(I) + 1, NV>...};
};

// isa_gemm::indirect: like narrow, with A read through the indirection buffer p (m x taps), and
// C's row i at c + i * ldc, or at c_rows[i] when c_rows is given. The tile takes its rows' pointers
// (a branch per row, or the pointers in a struct by value, cost (c)'s forward 18%).
template <class T, int... Rows>
void indirect(size_t m, size_t n, size_t taps, size_t run, const T* const* p, const T* b, size_t ldb, T* c,
              size_t ldc, T* const* c_rows, bool accumulate, tile_epilogue<T> e) {
  const T beta = accumulate ? T(1) : T(0);
  by_column_blocks<T, Rows...>(n, [&]<int V, int R>(size_t j, size_t cols) {
    constexpr const indirect_tile_fn<T>* by_rows = indirect_tiles_by_rows<T, V, std::make_index_sequence<R>>::fn;
    for (size_t i = 0; i < m; i += R) {
      T* rows[R];  // the tile's rows of C, from column j on
      for (size_t r = 0; r < smaller(R, m - i); ++r) rows[r] = (c_rows ? c_rows[i + r] : c + (i + r) * ldc) + j;
      by_rows[smaller(R, m - i) - 1](taps, run, p + i * taps, b + j, ldb, beta, rows, cols,
                                     {e.bias ? e.bias + j : nullptr, e.relu});
    }
  });
}

// isa_gemm::gather_dot: out[i * ldo + c] = sum over t < taps, k < K of a[ro[i] + to[t] + k] *
// b[(t * C + c) * K + k]. Products with a right-hand side narrower than a vector (conv's input
// gradient into 1-15 channels): vectors run along k, and the rows go in blocks of L (one vector's
// lanes), each with its own accumulator; the block's L accumulators are then transposed and added,
// so one vector holds the L rows' sums (in place of adding each row's lanes one after the other,
// a chain of L dependent additions per output). Each sum has a fixed order: per lane over whole
// vectors of k, the lanes added by the transpose's tree, then the remaining k in order.
template <class T>
void gather_dot(size_t m, size_t C, size_t taps, size_t K, const T* a, const size_t* ro, const size_t* to, const T* b,
                T* out, size_t ldo) {
  constexpr size_t L = lanes<T>;
  const size_t kv = K / L * L;
  for (size_t i0 = 0; i0 < m; i0 += L) {
    const size_t rows = smaller(L, m - i0);
    const T* row[L];
    for (size_t r = 0; r < L; ++r) row[r] = a + ro[i0 + smaller(r, rows - 1)];  // short blocks repeat the last
    for (size_t c = 0; c < C; ++c) {
      vec<T> acc[L] = {};
      T tail[L] = {};
      for (size_t t = 0; t < taps; ++t) {
        const T* bt = b + (t * C + c) * K;
        const size_t off = to[t];
        for (size_t k = 0; k < kv; k += L) {
          const vec<T> bv = load(bt + k);
#pragma GCC unroll 16
          for (size_t r = 0; r < L; ++r) acc[r] += load(row[r] + off + k) * bv;
        }
        for (size_t k = kv; k < K; ++k)
          for (size_t r = 0; r < rows; ++r) tail[r] += row[r][off + k] * bt[k];
      }
      transpose<T>(acc);
      vec<T> sum = acc[0];
#pragma GCC unroll 16
      for (size_t l = 1; l < L; ++l) sum += acc[l];
      for (size_t r = 0; r < rows; ++r) out[(i0 + r) * ldo + c] = sum[r] + tail[r];
    }
  }
}

// isa_gemm::gather_columns: C (m x n) (+)= A B with A read k-major, A(i, s) = a[s * lda + i], and B
// gathered by rows and columns, B(s, j) = b[ro[s] + co[j]], co in runs of 64 bytes (each vector
// of columns contiguous). Tiles of R rows x NV vectors; per s, NV vector loads of B (their offsets
// in registers) and R broadcasts of A's contiguous column s. Each element summed over s in order.
template <class T, int R, int NV>
void gather_columns_tile(size_t k, const T* a, size_t lda, const T* b, const size_t* ro, const size_t* cv, T beta,
                         T* c, size_t ldc) {
  constexpr size_t L = lanes<T>;
  vec<T> acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = vec<T>{};
  size_t col[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) col[v] = cv[v * L];
#pragma GCC unroll 2
  for (size_t s = 0; s < k; ++s) {
    const T* bs = b + ro[s];
    vec<T> bv[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bv[v] = load(bs + col[v]);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const T av = a[s * lda + r];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] += av * bv[v];
    }
  }
  write_tile<T, R, NV>(acc, beta, c, ldc, NV * L);
}

template <class T>
using gather_columns_fn = void (*)(size_t, const T*, size_t, const T*, const size_t*, const size_t*, T, T*, size_t);
template <class T, int NV, class Rows>
struct gather_columns_by_rows;
template <class T, int NV, size_t... I>
struct gather_columns_by_rows<T, NV, std::index_sequence<I...>> {
  static constexpr gather_columns_fn<T> fn[] = {&gather_columns_tile<T, int(I) + 1, NV>...};
};

// R rows x NV vectors per tile (n a multiple of 64 bytes; the last column block may be narrower):
// 8 x 3 accumulators with AVX-512's 32 registers, 4 x 2 with 16.
constexpr int gather_columns_rows = vector_bytes == 64 ? 8 : 4, gather_columns_vectors = vector_bytes == 64 ? 3 : 2;
template <class T, int R, int NV>
void gather_columns(size_t m, size_t n, size_t k, const T* a, size_t lda, const T* b, const size_t* ro,
                    const size_t* co, T* c, size_t ldc, bool accumulate) {
  constexpr size_t L = lanes<T>;
  const T beta = accumulate ? T(1) : T(0);
  for (size_t j = 0; j < n; j += NV * L)
    with_vectors<NV>(smaller(NV * L, n - j) / L, [&]<int V>() {
      constexpr const gather_columns_fn<T>* by_rows = gather_columns_by_rows<T, V, std::make_index_sequence<R>>::fn;
      for (size_t i = 0; i < m; i += R)
        by_rows[smaller(R, m - i) - 1](k, a + i, lda, b, ro, co + j, beta, c + i * ldc + j, ldc);
    });
}

// The table entry of one element type: microkernel tiles of MR x NV vectors, cache blocks kc, mc,
// nc, and the narrow (and gathered) kernels' rows per column-block width.
template <class T, int MR, int NV, int... NarrowRows>
constexpr isa_gemm<T> make_gemm(size_t kc, size_t mc, size_t nc) {
  return {MR, NV * lanes<T>, kc, mc, nc, &pack_b<T, NV>, &multiply<T, MR, NV>, &narrow<T, NarrowRows...>,
          &gather<T, NarrowRows...>, &indirect<T, NarrowRows...>, &direct_3x3<T>, &gather_dot<T>,
          &gather_columns<T, gather_columns_rows, gather_columns_vectors>};
}

}  // namespace typegrad::kernels::TYPEGRAD_GEMM_ISA

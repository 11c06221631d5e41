// Pooling kernels (kernels/pool.hpp). One task item is (batch n, output row o0 along the
// first ordered dim). A window is walked as contiguous runs along the last ordered dim; each run
// is `count` positions of C contiguous channels, and every inner loop runs over the channels, so
// it vectorizes (channel-last layout).
//
// The backward kernels write the input-shaped result in gather form: the item (n, o0) owns the
// input rows [o0*s0, (o0+1)*s0) (the last item up to the end) and adds the contributions of every
// window that reaches into them (for s0 < v0, also the earlier windows that overlap), in the
// windows' row-major order. So each input element is written by one task, in an order that
// depends only on the shapes: the result does not depend on the thread count.
//
// Each kernel is an ordered list of implementations (the end of this file), each with a name and
// an applicability test on x's shape and the window, like conv.cpp's; a call runs the first that
// applies, and tests and benchmarks can run any of them by name (tests/test_pool_implementations.cpp):
//
//   max_pool            2x2, 2d, general, reference
//   avg_pool            2x2, 2d, general, reference
//   max_pool_gather     general, reference
//   max_pool_backward   2x2, tiled_2d, argmax_map_2d, general, reference
//   avg_pool_transpose  tiled_2d, general, reference
//
//   2x2        2 ordered dims, window 2x2, stride 2, even extents: a row of windows per call of the
//              instruction set's vector passes (pass_kernels.hpp).
//   2d         2 ordered dims: the clipped window walked directly, no odometers.
//   tiled_2d   2 ordered dims, stride = window: each input written once, without zeroing.
//   argmax_map_2d  2 ordered dims: every window's argmax computed once into a map, then gathered.
//   general    any D: windows walked as runs along the last ordered dim.
//   reference  any D: DESIGN.md's definition, output by output, sums in long double
//              (pool_reference.cpp), the one the others are tested against.
// The max implementations compare in the same order (the first maximum in window order), so they
// give the same bits.
#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"
#include "gemm_isa.hpp"
#include "implementation_list.hpp"
#include "pool_reference.hpp"
#include "scratch.hpp"
#include "typegrad/kernels/pool.hpp"
#include "typegrad/kernels/unary.hpp"

namespace typegrad::kernels {

namespace {

using index_array = std::array<std::size_t, max_spatial_dims>;

// Extents and element strides of one call, per ordered dim.
struct geometry {
  std::size_t dims = 0, batch = 0, channels = 0;
  index_array in{}, out{}, window{}, stride{};
  index_array in_step{}, out_step{};  // elements between neighbours along each ordered dim
  std::size_t in_batch = 0, out_batch = 0;  // elements per batch item

  geometry(const shape& x, const shape& pooled, const pool_window& w) : dims(w.dims) {
    batch = x[0];
    channels = x[x.rank() - 1];
    const auto xs = x.strides(), os = pooled.strides();
    for (std::size_t d = 0; d < dims; ++d) {
      in[d] = x[d + 1];
      out[d] = pooled[d + 1];
      window[d] = w.size[d];
      stride[d] = w.stride[d];
      in_step[d] = xs[d + 1];
      out_step[d] = os[d + 1];
    }
    in_batch = x.numel() / std::max<std::size_t>(batch, 1);
    out_batch = pooled.numel() / std::max<std::size_t>(batch, 1);
  }
  std::size_t items() const { return batch * out[0]; }
  // Element operations of one item: every output of the row reads its window's channels.
  std::size_t item_cost() const {
    std::size_t c = channels;
    for (std::size_t d = 0; d < dims; ++d) c *= window[d] * (d ? out[d] : 1);
    return c;
  }
  // The input rows along the first ordered dim that item row o0 owns in the backward kernels.
  std::size_t block_begin(std::size_t o0) const { return o0 * stride[0]; }
  std::size_t block_end(std::size_t o0) const { return std::min((o0 + 1) * stride[0], in[0]); }
  // The first window along the first ordered dim that reaches row r: o*s + v > r.
  std::size_t first_window_reaching(std::size_t r) const {
    return r + 1 > window[0] ? (r + 1 - window[0] + stride[0] - 1) / stride[0] : 0;
  }
};

// Windows that tile the input (s == v in every dim) give each input element exactly one
// contribution: the backward kernels then write it once instead of zeroing and adding.
bool windows_tile(const pool_window& w) {
  for (std::size_t d = 0; d < w.dims; ++d)
    if (w.stride[d] != w.size[d]) return false;
  return true;
}

// One output's clipped window: per ordered dim the input range [lo, hi).
struct window_box {
  index_array lo{}, hi{};
  std::size_t volume(std::size_t dims) const {
    std::size_t v = 1;
    for (std::size_t d = 0; d < dims; ++d) v *= hi[d] - lo[d];
    return v;
  }
};

// Calls visit(out_offset, box) for every output of row o0 (all positions along the other ordered
// dims, row-major); out_offset is relative to the batch item's start.
template <class F>
void for_each_output(const geometry& g, std::size_t o0, F&& visit) {
  index_array o{};
  o[0] = o0;
  window_box box;
  for (std::size_t d = 0; d < g.dims; ++d) {
    box.lo[d] = o[d] * g.stride[d];
    box.hi[d] = std::min(box.lo[d] + g.window[d], g.in[d]);
  }
  while (true) {
    std::size_t off = 0;
    for (std::size_t d = 0; d < g.dims; ++d) off += o[d] * g.out_step[d];
    visit(off, box);
    std::size_t d = g.dims;
    for (; d-- > 1;) {  // odometer over ordered dims 1..D-1
      if (++o[d] < g.out[d]) {
        box.lo[d] = o[d] * g.stride[d];
        box.hi[d] = std::min(box.lo[d] + g.window[d], g.in[d]);
        break;
      }
      o[d] = 0;
      box.lo[d] = 0;
      box.hi[d] = std::min(g.window[d], g.in[d]);
    }
    if (d == 0) return;  // dims 1..D-1 wrapped around (or D == 1)
  }
}

// Calls run(offset, count, k) for the positions of box whose first coordinate lies in
// [row_lo, row_hi), as contiguous runs along the last ordered dim, in window order. offset is
// the element offset of the run's first position from the batch item's start, count the run's
// positions (C elements apart), k the run's first index in the whole box's row-major order.
template <class F>
void for_each_run(const geometry& g, const window_box& box, std::size_t row_lo, std::size_t row_hi, F&& run) {
  const std::size_t last = g.dims - 1;
  index_array lo = box.lo, hi = box.hi, volume_after{};
  lo[0] = std::max(lo[0], row_lo);
  hi[0] = std::min(hi[0], row_hi);
  std::size_t vol = 1;
  for (std::size_t d = g.dims; d-- > 0;) {
    if (lo[d] >= hi[d]) return;
    volume_after[d] = vol;
    vol *= box.hi[d] - box.lo[d];
  }
  const std::size_t count = hi[last] - lo[last];
  index_array p = lo;
  while (true) {
    std::size_t off = 0, k = 0;
    for (std::size_t d = 0; d < g.dims; ++d) {
      off += p[d] * g.in_step[d];
      k += (p[d] - box.lo[d]) * volume_after[d];
    }
    run(off, count, k);
    std::size_t d = last;
    for (; d-- > 0;) {  // odometer over ordered dims 0..D-2
      if (++p[d] < hi[d]) break;
      p[d] = lo[d];
    }
    if (d == std::size_t(-1)) return;  // dims 0..D-2 wrapped around (or D == 1)
  }
}

// Per-thread scratch of at least n elements; it only grows, so steady-state runs allocate nothing.
template <class T>
T* scratch(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

constexpr std::size_t all_rows = std::numeric_limits<std::size_t>::max();

// Running argmax over a window's positions: best[c] and k_best[c] (the window-order index, kept
// as T so that the compare-and-select vectorizes in one element type; exact for windows below
// 2^24 positions in float).
template <class T>
void argmax_window(const geometry& g, const T* xb, const window_box& box, T* best, T* k_best) {
  const std::size_t C = g.channels;
  std::fill(best, best + C, -std::numeric_limits<T>::infinity());
  std::fill(k_best, k_best + C, T(0));
  for_each_run(g, box, 0, all_rows, [&](std::size_t off, std::size_t count, std::size_t k) {
    for (std::size_t j = 0; j < count; ++j) {
      const T* p = xb + off + j * C;
      const T kj = T(k + j);
      for (std::size_t c = 0; c < C; ++c) {
        const bool more = p[c] > best[c];
        best[c] = more ? p[c] : best[c];
        k_best[c] = more ? kj : k_best[c];
      }
    }
  });
}

template <class T, class Body>
void for_each_item(const geometry& g, Body&& body) {
  const std::size_t rows = g.out[0];
  parallel_chunks(g.items(), g.item_cost(), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t item = lo; item < hi; ++item) body(item / rows, item % rows);
  });
}

// The gather form of the backward kernels (the file comment): item (n, o0) owns dx's input rows
// [lo, hi) along the first ordered dim, zeroed first unless the windows tile the input (each
// element is then written once), and gathers into them from every output row o whose windows
// reach them, in order: gather(n, o, lo, hi) per such row, then finish(n, lo, hi).
template <class T, class Gather, class Finish>
void gather_owned_rows(const geometry& g, bool tiles, T* dx, Gather&& gather, Finish&& finish) {
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    T* db = dx + n * g.in_batch;
    const std::size_t lo = g.block_begin(o0), hi = g.block_end(o0);
    if (!tiles) std::fill(db + lo * g.in_step[0], db + hi * g.in_step[0], T(0));
    for (std::size_t o = g.first_window_reaching(lo); o <= o0; ++o) gather(n, o, lo, hi);
    finish(n, lo, hi);
  });
}

// relu's mask fused into a max pool's backward: batch item n's finished input rows [lo, hi) of dx
// times 0 where x <= 0.
template <class T>
void mask_by_sign(const geometry& g, T* dx, const T* x, std::size_t n, std::size_t lo, std::size_t hi) {
  T* db = dx + n * g.in_batch;
  const T* xb = x + n * g.in_batch;
  for (std::size_t e = lo * g.in_step[0]; e < hi * g.in_step[0]; ++e)
    db[e] = math::select(xb[e] > T(0), db[e], db[e] * T(0));
}

// ---- 2-d fast paths ------------------------------------------------------------------------------
// Images (2 ordered dims) are the common case; their kernels walk the clipped window directly,
// without the odometers and run callbacks of the any-D code, and vectorize over the channels.
// Same window order and comparisons as the general code, so the same results. Selects are bit
// masks (math::select) so that g++ vectorizes them without AVX-512 too (the portable build).

// Calls body(out_row, x_col0, x_col1, y0, y1) for every output of item row o0 with its clipped
// window [y0, y1) x [x_col0, x_col1).
template <class F>
void for_each_window_2d(const geometry& g, std::size_t o0, F&& body) {
  const std::size_t y0 = o0 * g.stride[0], y1 = std::min(y0 + g.window[0], g.in[0]);
  for (std::size_t o1 = 0; o1 < g.out[1]; ++o1) {
    const std::size_t x0 = o1 * g.stride[1], x1 = std::min(x0 + g.window[1], g.in[1]);
    body(o1, x0, x1, y0, y1);
  }
}

// out[o][c] = finish(fold of x over o's clipped window, in row-major order, starting at init),
// the shared walk of the 2-d max and average pools.
template <class T, class Fold, class Finish>
void reduce_windows_2d(view<T> out, view<const T> x, const geometry& g, T init, Fold fold, Finish finish) {
  const std::size_t C = g.channels;
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const T* xb = x.data + n * g.in_batch;
    T* orow = out.data + n * g.out_batch + o0 * g.out_step[0];
    for_each_window_2d(g, o0, [&](std::size_t o1, std::size_t x0, std::size_t x1, std::size_t y0, std::size_t y1) {
      T* acc = orow + o1 * C;
      for (std::size_t c = 0; c < C; ++c) acc[c] = init;
      for (std::size_t yy = y0; yy < y1; ++yy)
        for (std::size_t xx = x0; xx < x1; ++xx) {
          const T* p = xb + yy * g.in_step[0] + xx * C;
          for (std::size_t c = 0; c < C; ++c) acc[c] = fold(acc[c], p[c]);
        }
      finish(acc, (y1 - y0) * (x1 - x0));
    });
  });
}

template <class T>
void max_pool_2d(view<T> out, view<const T> x, const pool_window& w) {
  reduce_windows_2d<T>(out, x, geometry(x.shape, out.shape, w), -std::numeric_limits<T>::infinity(),
                       [](T acc, T v) { return math::select(v > acc, v, acc); }, [](T*, std::size_t) {});
}

template <class T>
void avg_pool_2d(view<T> out, view<const T> x, const pool_window& w) {
  const geometry g(x.shape, out.shape, w);
  const std::size_t C = g.channels;
  reduce_windows_2d<T>(out, x, g, T(0), [](T acc, T v) { return acc + v; }, [C](T* acc, std::size_t count) {
    const T inv = T(1) / T(count);
    for (std::size_t c = 0; c < C; ++c) acc[c] *= inv;
  });
}

// avg_pool's transpose when the windows tile the input: each input element gets its window's
// g / count in one write.
template <class T>
void avg_pool_transpose_tiled_2d(view<T> dx, view<const T> g_in, const pool_window& w) {
  const geometry g(dx.shape, g_in.shape, w);
  const std::size_t C = g.channels;
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const T* grow = g_in.data + n * g.out_batch + o0 * g.out_step[0];
    T* db = dx.data + n * g.in_batch;
    for_each_window_2d(g, o0, [&](std::size_t o1, std::size_t x0, std::size_t x1, std::size_t y0, std::size_t y1) {
      const T* gv = grow + o1 * C;
      const T inv = T(1) / T((y1 - y0) * (x1 - x0));
      for (std::size_t yy = y0; yy < y1; ++yy)
        for (std::size_t xx = x0; xx < x1; ++xx) {
          T* q = db + yy * g.in_step[0] + xx * C;
          for (std::size_t c = 0; c < C; ++c) q[c] = gv[c] * inv;
        }
    });
  });
}

// argmax_window for the 2-d kernels: the clipped window [y0, y1) x [x0, x1) walked directly.
template <class T>
void argmax_window_2d(const geometry& g, const T* xb, std::size_t x0, std::size_t x1, std::size_t y0, std::size_t y1,
                      T* best, T* k_best) {
  const std::size_t C = g.channels;
  for (std::size_t c = 0; c < C; ++c) {
    best[c] = -std::numeric_limits<T>::infinity();
    k_best[c] = T(0);
  }
  T k = 0;
  for (std::size_t yy = y0; yy < y1; ++yy)
    for (std::size_t xx = x0; xx < x1; ++xx, k += 1) {
      const T* p = xb + yy * g.in_step[0] + xx * C;
      for (std::size_t c = 0; c < C; ++c) {
        const bool more = p[c] > best[c];
        best[c] = math::select(more, p[c], best[c]);
        k_best[c] = math::select(more, k, k_best[c]);
      }
    }
}

// Windows that tile the input (s == v): every input element belongs to one window and gets its
// gradient or 0 in one write. best/k_best as in argmax_window: the first maximum in window order.
template <bool PositiveOnly, class T>
void backward_tiled_2d(view<T> dx, view<const T> g_in, view<const T> x, const geometry& g) {
  const std::size_t C = g.channels;
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const T* xb = x.data + n * g.in_batch;
    const T* grow = g_in.data + n * g.out_batch + o0 * g.out_step[0];
    T* db = dx.data + n * g.in_batch;
    T* best = scratch<T>(2 * C);
    T* k_best = best + C;
    for_each_window_2d(g, o0, [&](std::size_t o1, std::size_t x0, std::size_t x1, std::size_t y0, std::size_t y1) {
      argmax_window_2d(g, xb, x0, x1, y0, y1, best, k_best);
      const T* gv = grow + o1 * C;
      T k = 0;
      for (std::size_t yy = y0; yy < y1; ++yy)
        for (std::size_t xx = x0; xx < x1; ++xx, k += 1) {
          T* q = db + yy * g.in_step[0] + xx * C;
          const T* p = xb + yy * g.in_step[0] + xx * C;
          for (std::size_t c = 0; c < C; ++c) {
            const T v = math::select(k_best[c] == k, gv[c], T(0));
            q[c] = PositiveOnly ? math::select(p[c] > T(0), v, v * T(0)) : v;
          }
        }
    });
  });
}

template <class T>
void max_pool_backward_tiled_2d(view<T> dx, view<const T> g_in, view<const T> x, const pool_window& w,
                                bool positive_only) {
  const geometry g(x.shape, g_in.shape, w);
  positive_only ? backward_tiled_2d<true>(dx, g_in, x, g) : backward_tiled_2d<false>(dx, g_in, x, g);
}

// Overlapping windows (s < v, an Inception block's 3x3/1 pooling branch): the gather form of the
// general kernel finds each window's argmax once per input row the window covers (v / s times).
// Here one pass writes every window's argmax (the window-order index per channel, as a T) into a
// map the size of g, then each item gathers its input rows' gradients from it: the same
// comparisons, and the same additions in the same order (windows by output row, then column), so
// bitwise the general kernel's result.
template <class T>
void max_pool_backward_argmax_map_2d(view<T> dx, view<const T> g_in, view<const T> x, const pool_window& w,
                                     bool positive_only) {
  const geometry g(x.shape, g_in.shape, w);
  const std::size_t C = g.channels;
  const auto map = kernels::scratch().take<T>(g_in.size());
  T* const k_map = map.data();
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const T* xb = x.data + n * g.in_batch;
    T* krow = k_map + n * g.out_batch + o0 * g.out_step[0];
    T* best = scratch<T>(C);
    for_each_window_2d(g, o0, [&](std::size_t o1, std::size_t x0, std::size_t x1, std::size_t y0, std::size_t y1) {
      argmax_window_2d(g, xb, x0, x1, y0, y1, best, krow + o1 * C);
    });
  });
  const bool tiles = windows_tile(w);
  gather_owned_rows(
      g, tiles, dx.data,
      [&](std::size_t n, std::size_t o, std::size_t lo, std::size_t hi) {
        T* db = dx.data + n * g.in_batch;
        const T* grow = g_in.data + n * g.out_batch + o * g.out_step[0];
        const T* krow = k_map + n * g.out_batch + o * g.out_step[0];
        for_each_window_2d(g, o, [&](std::size_t o1, std::size_t x0, std::size_t x1, std::size_t y0, std::size_t y1) {
          const T* gv = grow + o1 * C;
          const T* k_best = krow + o1 * C;
          for (std::size_t yy = std::max(y0, lo); yy < std::min(y1, hi); ++yy) {
            T k = T((yy - y0) * (x1 - x0));
            for (std::size_t xx = x0; xx < x1; ++xx, k += 1) {
              T* q = db + yy * g.in_step[0] + xx * C;
              if (tiles)
                for (std::size_t c = 0; c < C; ++c) q[c] = math::select(k_best[c] == k, gv[c], T(0));
              else
                for (std::size_t c = 0; c < C; ++c) q[c] += math::select(k_best[c] == k, gv[c], T(0));
            }
          }
        });
      },
      [&](std::size_t n, std::size_t lo, std::size_t hi) {
        if (positive_only) mask_by_sign(g, dx.data, x.data, n, lo, hi);
      });
}

// The CNN's 2x2 window with stride 2 over even extents (every window whole): a row of windows at
// a time by the instruction set's vector passes (pass_kernels.hpp), the four positions folded in
// registers with the same comparisons or additions in the same order as the 2-d kernels above, so
// the same results. Those keep their running maximum, sum or argmax in memory: the main example's
// first pool backward ran at 28 GB/s on 2 cores, half the copy rate, and the average pool's
// forward at half the 2x2 max pool's speed (0.57 against 0.25 ms, 2 threads, AMD EPYC Zen 5).
bool whole_2x2_windows(const shape& x, const pool_window& w) {
  return w.dims == 2 && w.size[0] == 2 && w.size[1] == 2 && w.stride[0] == 2 && w.stride[1] == 2 && x[1] % 2 == 0 &&
         x[2] % 2 == 0;
}

template <class T, bool Average>
void pool_2x2(view<T> out, view<const T> x, const pool_window& w) {
  const geometry g(x.shape, out.shape, w);
  const isa_passes<T>& passes = active_passes<T>();
  const auto row_of_windows = Average ? passes.avg_pool_2x2 : passes.max_pool_2x2;
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    row_of_windows(x.data + n * g.in_batch + 2 * o0 * g.in_step[0], g.in_step[0], g.out[1], g.channels,
                   out.data + n * g.out_batch + o0 * g.out_step[0]);
  });
}

template <class T>
void max_pool_backward_2x2(view<T> dx, view<const T> g_in, view<const T> x, const pool_window& w,
                           bool positive_only) {
  const geometry g(x.shape, g_in.shape, w);
  const isa_passes<T>& passes = active_passes<T>();
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const std::size_t top = n * g.in_batch + 2 * o0 * g.in_step[0];
    passes.max_pool_backward_2x2(x.data + top, g.in_step[0], g_in.data + n * g.out_batch + o0 * g.out_step[0],
                                 g.out[1], g.channels, positive_only, dx.data + top);
  });
}

// ---- any D ----------------------------------------------------------------------------------------

template <class T>
void max_pool_general(view<T> out, view<const T> x, const pool_window& w) {
  const geometry g(x.shape, out.shape, w);
  const std::size_t C = g.channels;
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const T* xb = x.data + n * g.in_batch;
    T* ob = out.data + n * g.out_batch;
    for_each_output(g, o0, [&](std::size_t out_off, const window_box& box) {
      T* acc = ob + out_off;
      std::fill(acc, acc + C, -std::numeric_limits<T>::infinity());
      for_each_run(g, box, 0, all_rows, [&](std::size_t off, std::size_t count, std::size_t) {
        for (std::size_t j = 0; j < count; ++j) {
          const T* p = xb + off + j * C;
          for (std::size_t c = 0; c < C; ++c) acc[c] = p[c] > acc[c] ? p[c] : acc[c];
        }
      });
    });
  });
}

template <class T>
void avg_pool_general(view<T> out, view<const T> x, const pool_window& w) {
  const geometry g(x.shape, out.shape, w);
  const std::size_t C = g.channels;
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const T* xb = x.data + n * g.in_batch;
    T* ob = out.data + n * g.out_batch;
    for_each_output(g, o0, [&](std::size_t out_off, const window_box& box) {
      T* acc = ob + out_off;
      std::fill(acc, acc + C, T(0));
      for_each_run(g, box, 0, all_rows, [&](std::size_t off, std::size_t count, std::size_t) {
        for (std::size_t j = 0; j < count; ++j) {
          const T* p = xb + off + j * C;
          for (std::size_t c = 0; c < C; ++c) acc[c] += p[c];
        }
      });
      const T inv = T(1) / T(box.volume(g.dims));
      for (std::size_t c = 0; c < C; ++c) acc[c] *= inv;
    });
  });
}

template <class T>
void max_pool_gather_general(view<T> out, view<const T> h, view<const T> x, const pool_window& w) {
  const geometry g(x.shape, out.shape, w);
  const std::size_t C = g.channels;
  for_each_item<T>(g, [&](std::size_t n, std::size_t o0) {
    const T* xb = x.data + n * g.in_batch;
    const T* hb = h.data + n * g.in_batch;
    T* ob = out.data + n * g.out_batch;
    T* best = scratch<T>(C);
    for_each_output(g, o0, [&](std::size_t out_off, const window_box& box) {
      T* picked = ob + out_off;
      std::fill(best, best + C, -std::numeric_limits<T>::infinity());
      bool first = true;
      for_each_run(g, box, 0, all_rows, [&](std::size_t off, std::size_t count, std::size_t) {
        if (first) std::copy(hb + off, hb + off + C, picked);  // the argmax when nothing exceeds -inf
        first = false;
        for (std::size_t j = 0; j < count; ++j) {
          const T* p = xb + off + j * C;
          const T* q = hb + off + j * C;
          for (std::size_t c = 0; c < C; ++c) {
            const bool more = p[c] > best[c];
            best[c] = more ? p[c] : best[c];
            picked[c] = more ? q[c] : picked[c];
          }
        }
      });
    });
  });
}

template <class T>
void max_pool_backward_general(view<T> dx, view<const T> g_in, view<const T> x, const pool_window& w,
                               bool positive_only) {
  const geometry g(x.shape, g_in.shape, w);
  const std::size_t C = g.channels;
  const bool tiles = windows_tile(w);
  gather_owned_rows(
      g, tiles, dx.data,
      [&](std::size_t n, std::size_t o, std::size_t lo, std::size_t hi) {
        const T* xb = x.data + n * g.in_batch;
        const T* gb = g_in.data + n * g.out_batch;
        T* db = dx.data + n * g.in_batch;
        T* best = scratch<T>(2 * C);
        T* k_best = best + C;
        for_each_output(g, o, [&](std::size_t out_off, const window_box& box) {
          argmax_window(g, xb, box, best, k_best);
          const T* gv = gb + out_off;
          for_each_run(g, box, lo, hi, [&](std::size_t off, std::size_t count, std::size_t k) {
            for (std::size_t j = 0; j < count; ++j) {
              T* q = db + off + j * C;
              const T kj = T(k + j);
              if (tiles)
                for (std::size_t c = 0; c < C; ++c) q[c] = k_best[c] == kj ? gv[c] : T(0);
              else
                for (std::size_t c = 0; c < C; ++c) q[c] += k_best[c] == kj ? gv[c] : T(0);
            }
          });
        });
      },
      [&](std::size_t n, std::size_t lo, std::size_t hi) {
        if (positive_only) mask_by_sign(g, dx.data, x.data, n, lo, hi);
      });
}

template <class T>
void avg_pool_transpose_general(view<T> dx, view<const T> g_in, const pool_window& w) {
  const geometry g(dx.shape, g_in.shape, w);
  const std::size_t C = g.channels;
  const bool tiles = windows_tile(w);
  gather_owned_rows(
      g, tiles, dx.data,
      [&](std::size_t n, std::size_t o, std::size_t lo, std::size_t hi) {
        const T* gb = g_in.data + n * g.out_batch;
        T* db = dx.data + n * g.in_batch;
        for_each_output(g, o, [&](std::size_t out_off, const window_box& box) {
          const T* gv = gb + out_off;
          const T inv = T(1) / T(box.volume(g.dims));
          for_each_run(g, box, lo, hi, [&](std::size_t off, std::size_t count, std::size_t) {
            for (std::size_t j = 0; j < count; ++j) {
              T* q = db + off + j * C;
              if (tiles)
                for (std::size_t c = 0; c < C; ++c) q[c] = gv[c] * inv;
              else
                for (std::size_t c = 0; c < C; ++c) q[c] += gv[c] * inv;
            }
          });
        });
      },
      [](std::size_t, std::size_t, std::size_t) {});
}

// ---- the implementation lists ------------------------------------------------------------------
// Per kernel, in the order the default dispatch tries them; it runs the first whose applies() holds
// for x's shape (dx's for avg_pool_transpose) and the window. Each is excluded only by the entries
// before it, so it can also be run by name on any shape it accepts. general applies to everything,
// so the reference is never the default.

template <class Run>
using pool_implementation = implementation<bool (*)(const shape&, const pool_window&), Run>;

template <class T>  // max_pool, avg_pool (out, x) and avg_pool_transpose (dx, g)
using pool_run = void (*)(view<T>, view<const T>, const pool_window&);
template <class T>
using gather_run = void (*)(view<T>, view<const T>, view<const T>, const pool_window&);
template <class T>
using backward_run = void (*)(view<T>, view<const T>, view<const T>, const pool_window&, bool);

bool always(const shape&, const pool_window&) { return true; }
bool two_dims(const shape&, const pool_window& w) { return w.dims == 2; }
bool tiled_two_dims(const shape&, const pool_window& w) { return w.dims == 2 && windows_tile(w); }

template <class T>
constexpr pool_implementation<pool_run<T>> max_pool_list[] = {
    {"2x2", whole_2x2_windows, pool_2x2<T, false>},
    {"2d", two_dims, max_pool_2d<T>},
    {"general", always, max_pool_general<T>},
    {"reference", always, reference_max_pool<T>},
};

template <class T>
constexpr pool_implementation<pool_run<T>> avg_pool_list[] = {
    {"2x2", whole_2x2_windows, pool_2x2<T, true>},
    {"2d", two_dims, avg_pool_2d<T>},
    {"general", always, avg_pool_general<T>},
    {"reference", always, reference_avg_pool<T>},
};

template <class T>
constexpr pool_implementation<gather_run<T>> max_pool_gather_list[] = {
    {"general", always, max_pool_gather_general<T>},
    {"reference", always, reference_max_pool_gather<T>},
};

template <class T>
constexpr pool_implementation<backward_run<T>> max_pool_backward_list[] = {
    {"2x2", whole_2x2_windows, max_pool_backward_2x2<T>},
    {"tiled_2d", tiled_two_dims, max_pool_backward_tiled_2d<T>},
    {"argmax_map_2d", two_dims, max_pool_backward_argmax_map_2d<T>},
    {"general", always, max_pool_backward_general<T>},
    {"reference", always, reference_max_pool_backward<T>},
};

template <class T>
constexpr pool_implementation<pool_run<T>> avg_pool_transpose_list[] = {
    {"tiled_2d", tiled_two_dims, avg_pool_transpose_tiled_2d<T>},
    {"general", always, avg_pool_transpose_general<T>},
    {"reference", always, reference_avg_pool_transpose<T>},
};

// f(list) with kernel k's list.
template <class T, class F>
decltype(auto) with_list(pool_kernel k, F&& f) {
  switch (k) {
    case pool_kernel::max_pool: return f(max_pool_list<T>);
    case pool_kernel::avg_pool: return f(avg_pool_list<T>);
    case pool_kernel::max_pool_gather: return f(max_pool_gather_list<T>);
    case pool_kernel::max_pool_backward: return f(max_pool_backward_list<T>);
    case pool_kernel::avg_pool_transpose: break;
  }
  return f(avg_pool_transpose_list<T>);
}

// Kernel k's implementation `name` in `list`, which must apply to x (the pooled input's shape) and w.
template <class List>
const auto& pool_applying(const List& list, pool_kernel k, std::string_view name, const shape& x,
                          const pool_window& w) {
  auto describe = [&] {
    return fmt::format("x {}, window ({}), stride ({})", x, fmt::join(w.size.begin(), w.size.begin() + w.dims, ", "),
                       fmt::join(w.stride.begin(), w.stride.begin() + w.dims, ", "));
  };
  return applying(list, pool_kernel_name(k), name, describe, x, w);
}

}  // namespace

template <class T>
void max_pool(view<T> out, view<const T> x, const pool_window& w) {
  first_applying(max_pool_list<T>, x.shape, w).run(out, x, w);
}

template <class T>
void avg_pool(view<T> out, view<const T> x, const pool_window& w) {
  first_applying(avg_pool_list<T>, x.shape, w).run(out, x, w);
}

template <class T>
void max_pool_gather(view<T> out, view<const T> h, view<const T> x, const pool_window& w) {
  first_applying(max_pool_gather_list<T>, x.shape, w).run(out, h, x, w);
}

template <class T>
void max_pool_backward(view<T> dx, view<const T> g, view<const T> x, const pool_window& w, bool positive_only) {
  first_applying(max_pool_backward_list<T>, x.shape, w).run(dx, g, x, w, positive_only);
}

template <class T>
void avg_pool_transpose(view<T> dx, view<const T> g, const pool_window& w) {
  first_applying(avg_pool_transpose_list<T>, dx.shape, w).run(dx, g, w);
}

// ---- choosing an implementation by name (tests and benchmarks) ----------------------------------

const char* pool_kernel_name(pool_kernel k) {
  switch (k) {
    case pool_kernel::max_pool: return "max_pool";
    case pool_kernel::avg_pool: return "avg_pool";
    case pool_kernel::max_pool_gather: return "max_pool_gather";
    case pool_kernel::max_pool_backward: return "max_pool_backward";
    case pool_kernel::avg_pool_transpose: break;
  }
  return "avg_pool_transpose";
}

std::vector<std::string_view> pool_implementations(pool_kernel k) {
  return with_list<float>(k, [](const auto& list) { return implementation_names(list); });
}

template <class T>
bool pool_applies(pool_kernel k, std::string_view name, const shape& x, const pool_window& w) {
  return with_list<T>(k, [&](const auto& list) { return named(list, pool_kernel_name(k), name).applies(x, w); });
}

template <class T>
std::string_view pool_chosen(pool_kernel k, const shape& x, const pool_window& w) {
  return with_list<T>(k, [&](const auto& list) { return first_applying(list, x, w).name; });
}

template <class T>
void max_pool_with(std::string_view name, view<T> out, view<const T> x, const pool_window& w) {
  pool_applying(max_pool_list<T>, pool_kernel::max_pool, name, x.shape, w).run(out, x, w);
}

template <class T>
void avg_pool_with(std::string_view name, view<T> out, view<const T> x, const pool_window& w) {
  pool_applying(avg_pool_list<T>, pool_kernel::avg_pool, name, x.shape, w).run(out, x, w);
}

template <class T>
void max_pool_gather_with(std::string_view name, view<T> out, view<const T> h, view<const T> x,
                          const pool_window& w) {
  pool_applying(max_pool_gather_list<T>, pool_kernel::max_pool_gather, name, x.shape, w).run(out, h, x, w);
}

template <class T>
void max_pool_backward_with(std::string_view name, view<T> dx, view<const T> g, view<const T> x,
                            const pool_window& w, bool positive_only) {
  pool_applying(max_pool_backward_list<T>, pool_kernel::max_pool_backward, name, x.shape, w)
      .run(dx, g, x, w, positive_only);
}

template <class T>
void avg_pool_transpose_with(std::string_view name, view<T> dx, view<const T> g, const pool_window& w) {
  pool_applying(avg_pool_transpose_list<T>, pool_kernel::avg_pool_transpose, name, dx.shape, w).run(dx, g, w);
}

#define TYPEGRAD_INSTANTIATE(T)                                                                                    \
  template void max_pool<T>(view<T>, view<const T>, const pool_window&);                                           \
  template void avg_pool<T>(view<T>, view<const T>, const pool_window&);                                           \
  template void max_pool_gather<T>(view<T>, view<const T>, view<const T>, const pool_window&);                     \
  template void max_pool_backward<T>(view<T>, view<const T>, view<const T>, const pool_window&, bool);             \
  template void avg_pool_transpose<T>(view<T>, view<const T>, const pool_window&);                                 \
  template bool pool_applies<T>(pool_kernel, std::string_view, const shape&, const pool_window&);                  \
  template std::string_view pool_chosen<T>(pool_kernel, const shape&, const pool_window&);                         \
  template void max_pool_with<T>(std::string_view, view<T>, view<const T>, const pool_window&);                    \
  template void avg_pool_with<T>(std::string_view, view<T>, view<const T>, const pool_window&);                    \
  template void max_pool_gather_with<T>(std::string_view, view<T>, view<const T>, view<const T>, const pool_window&); \
  template void max_pool_backward_with<T>(std::string_view, view<T>, view<const T>, view<const T>, const pool_window&, \
                                          bool);                                                                   \
  template void avg_pool_transpose_with<T>(std::string_view, view<T>, view<const T>, const pool_window&);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

// Convolution kernels: forward, input gradient (conv_transpose) and weight gradient, as implicit
// GEMMs (serial, gemm.cpp) inside TBB tasks, plus a channel-vectorised path for depthwise convs.
//
// Channel-last layout makes every patch row a sequence of contiguous runs of C/groups channels,
// one run per tap. Rows are the flat (batch, output position) indices, cut into tiles whose size
// depends only on the geometry:
//
//   forward       per tile and group: one product  out[rows, group's Kg] = patches * w_group^T
//                 straight into the output, its patches (rows x taps*Cg) read through a pointer
//                 per row and tap (indirect) or packed into scratch (im2col).
//   input grad    gather form, per input position p: dx[p] = sum over taps j whose output
//                 o = (p + pad - d*j) / s is whole and in range of w_j^T g[o]. Input positions are
//                 split by phase ((p + pad) mod s per dim), and each phase only meets the taps
//                 with d*j = phase (mod s): no zero work for strided convs. Per phase tile and
//                 group: g rows (rows x phase_taps*Kg), read through pointers or packed, times the
//                 phase's taps of w, rearranged once per call as (phase_taps*Kg x Cg).
//   weight grad   dw = sum over rows of g_row^T patch_row: a reduction, split into a fixed number
//                 of partial sums chosen from the sizes only; each partial is a sequence of
//                 GEMMs (beta = 1) over its rows' tiles into its own buffer, and the partials are
//                 added in order.
//
// Each direction is an ordered list of implementations (the end of this file), each with a name
// and an applicability test on the geometry, like oneDNN's and XNNPACK's kernel lists; a call runs
// the first that applies, and tests and benchmarks can run any of them by name
// (conv_kernels.hpp). The order holds the measured choices, so a new variant is one function and
// one row, and each row is tested against the reference on every shape it claims
// (tests/test_conv_implementations.cpp):
//
//   forward       depthwise, pointwise, winograd, direct, gathered, indirect, packed_gemm, reference
//   input grad    depthwise, few_channel_dots, pointwise, winograd, indirect, gathered, pairs,
//                 phases, reference
//   weight grad   depthwise, pointwise, winograd, gathered_columns, gathered, narrow, packed_gemm,
//                 reference
//
//   depthwise     one input channel per group (groups > 1): GEMMs with N = 1 would waste the
//                 vector, so own loops, vectorised over channels.
//   pointwise     1x1 window, stride 1, no padding: the products read x or g in place, no packing.
//   direct        2-d, one input channel, 3x3, stride 1 along lines, K narrow: the 9 weight
//                 vectors in registers, along the lines of a zero-padded copy of x.
//   gathered      one group, at most 16 input channels (32 for the forward), K narrow: im2col
//                 would copy runs as short as the product it feeds, so the products gather their
//                 rows from a zero-padded copy of x (see padded_input).
//   winograd      3x3 window, stride 1, 2-d, one group, at least 16 channels summed over, K (C for
//                 the input gradient) narrow: F(2x2, 3x3), 2.25x fewer multiplies, in all three
//                 directions (see below).
//   indirect      Kg fits in 8 blocks of 64 bytes (the last may be partly filled: the weights are
//                 padded to whole blocks): the narrow kernel (narrow.hpp) reading each window's
//                 taps in place through a pointer per (row, tap), zeros for the padding
//                 (indirect_forward): no copy of x at all.
//   narrow (weight grad)  Kg is 1 to 4 blocks of 64 bytes: packed patches, and the narrow kernel
//                 instead of the packed GEMM, which is slower on such tall, narrow products.
//   packed_gemm   anything: packed patches and the packed GEMM.
//   few_channel_dots  one group, stride 1, at most 16 input channels and not a narrow width (an
//                 image model's 1 or 3): the transposed product would have N = C, so dx is a
//                 correlation of g with the flipped kernel, dot products along g's channels.
//   gathered_columns (weight grad)  one group, C a multiple of 64 bytes: dw = dY^T times the
//                 patches, gathered by rows and columns from a zero-padded copy of x.
//   indirect, gathered (input grad)  one group, stride 1: dx is the forward conv of g with the
//                 flipped kernel, run as the indirect forward (more than 32 channels K, C as the
//                 indirect forward's Kg) or the gathered one (C narrow; no packing of g rows).
//   pairs (input grad)  2-d, stride 2, C of half a vector or one: phases of rows only, each
//                 row's column pairs one row of a product 2C wide (see pairs_input_grad).
//   phases        anything: the phase decomposition above; each product on the narrow kernel
//                 (reading g's rows through pointers) or the packed GEMM as Cg fits.
//   reference     anything: DESIGN.md's formula as a loop nest in long double
//                 (conv_reference.cpp), the one the others are tested against.
// Sums of no terms (no channels, taps or output positions) are zeros before any of them runs.
//
// Determinism: every output element (of the forward and input gradient) is computed by one GEMM
// call or loop of one task, with tiles fixed by the sizes; the weight gradient's partial count is
// fixed by the sizes too. So results are bitwise independent of the thread count.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "conv_reference.hpp"
#include "implementation_list.hpp"
#include "narrow.hpp"
#include "../parallel/parallel_chunks.hpp"
#include "scratch.hpp"
#include "gemm_isa.hpp"
#include "typegrad/core/errors.hpp"
#include "typegrad/kernels/broadcast.hpp"
#include "typegrad/kernels/conv.hpp"
#include "typegrad/kernels/gemm.hpp"
#include "typegrad/kernels/layout.hpp"
#include "typegrad/kernels/unary.hpp"

namespace typegrad::kernels {
namespace {

using index = std::ptrdiff_t;
using per_dim = std::array<std::size_t, max_spatial_dims>;  // one value per spatial dim

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// Rows per tile for a packed matrix with `width` elements per row: about 64 K elements (a
// quarter MiB of floats, which stays in L2 with the GEMM's own packing), in multiples of 16.
std::size_t tile_rows_for(std::size_t width, std::size_t target = std::size_t{1} << 16) {
  std::size_t r = target / std::max<std::size_t>(width, 1);
  r = std::clamp<std::size_t>(r, 32, 1024);
  return r / 16 * 16;
}

bool is_pointwise(const conv_geometry& g) {
  for (std::size_t i = 0; i < g.dims; ++i)
    if (g.window[i] != 1 || g.stride[i] != 1 || g.pad_low[i] != 0 || g.in[i] != g.out[i]) return false;
  return true;
}
bool is_depthwise(const conv_geometry& g) { return g.in_group() == 1 && g.groups > 1; }

// Whether the narrow and gathered products can apply e themselves as each block of the output
// leaves the registers (a bias of one value per channel, or none) instead of finish_rows' pass.
template <class T>
bool epilogue_in_registers(const conv_epilogue<T>& e, std::size_t k) {
  return e.bias == nullptr || e.bias_size == k;
}

// The epilogue on m finished output rows of k channels (conv_epilogue).
template <class T>
void finish_rows(T* out, std::size_t m, std::size_t k, const conv_epilogue<T>& e) {
  if (e.bias == nullptr && !e.relu) return;
  for (std::size_t r = 0; r < m; ++r) {
    T* o = out + r * k;  // (rows are in L1: two short passes vectorise better than one)
    if (e.bias != nullptr && e.bias_size == 1) {
      const T b = e.bias[0];
      for (std::size_t c = 0; c < k; ++c) o[c] += b;
    } else if (e.bias != nullptr) {
      for (std::size_t c = 0; c < k; ++c) o[c] += e.bias[c];
    }
    if (e.relu)
      for (std::size_t c = 0; c < k; ++c) o[c] = math::select(o[c] < T(0), T(0), o[c]);
  }
}

// An odometer over (batch, position multi-index) for a grid of `extent` per dim.
struct grid_cursor {
  std::size_t dims;
  per_dim extent{}, at{};
  std::size_t batch = 0;
  grid_cursor(std::size_t d, const per_dim& e, std::size_t flat) : dims(d), extent(e) {
    std::size_t per_item = 1;
    for (std::size_t i = 0; i < d; ++i) per_item *= e[i];
    batch = per_item ? flat / per_item : 0;
    std::size_t rem = per_item ? flat % per_item : 0;
    for (std::size_t i = d; i-- > 0;) {
      at[i] = rem % e[i];
      rem /= e[i];
    }
  }
  void next() {
    for (std::size_t i = dims; i-- > 0;) {
      if (++at[i] < extent[i]) return;
      at[i] = 0;
    }
    ++batch;
  }
};

// Walks the grid positions [q0, q0 + rows) (row-major over `extent`, batch items outermost) a
// line at a time: f(cur, count, r) per stretch of count positions along the last dim, cur at its
// first position, r that position's index from q0. For work that depends on the leading dims once
// per line.
template <class F>
void for_each_line_segment(std::size_t dims, const per_dim& extent, std::size_t q0, std::size_t rows, F&& f) {
  const std::size_t last = dims - 1;
  grid_cursor cur(dims, extent, q0);
  for (std::size_t r = 0; r < rows;) {
    const std::size_t count = std::min(rows - r, extent[last] - cur.at[last]);
    f(std::as_const(cur), count, r);
    r += count;
    cur.at[last] += count - 1;
    cur.next();
  }
}

// f(tap, j, flipped) for every tap of g's window in row-major order: j its index per dim, flipped
// the index of the tap mirrored in every dim (the input gradient reads w through it).
template <class F>
void for_each_tap(const conv_geometry& g, F&& f) {
  per_dim j{};
  for (std::size_t tap = 0; tap < g.taps(); ++tap) {
    std::size_t flipped = 0;
    for (std::size_t d = 0; d < g.dims; ++d) flipped = flipped * g.window[d] + (g.window[d] - 1 - j[d]);
    f(tap, j, flipped);
    for (std::size_t d = g.dims; d-- > 0;) {  // next tap
      if (++j[d] < g.window[d]) break;
      j[d] = 0;
    }
  }
}

// The offsets of rows [q0, q0 + m) of the grid (batch, extent...) into a buffer of batch items
// batch_step apart, element strides `step` per dim: batch * batch_step + sum over d of (at_d *
// scale_d + shift_d) * step_d. Line by line (the last dim): each row of a line is one scale * step
// on from the one before, so only a line's first row computes the whole sum (the gathered weight
// gradient of a one-channel conv asks for an offset per 9 x K multiply-adds).
void grid_offsets(std::size_t dims, const per_dim& extent, const per_dim& scale, const per_dim& shift,
                  const per_dim& step, std::size_t batch_step, std::size_t q0, std::size_t m, std::size_t* ro) {
  const std::size_t last = dims - 1, line_step = scale[last] * step[last], line = extent[last];
  grid_cursor cur(dims, extent, q0);
  for (std::size_t r = 0; r < m;) {
    std::size_t at = cur.batch * batch_step;
    for (std::size_t d = 0; d < dims; ++d) at += (cur.at[d] * scale[d] + shift[d]) * step[d];
    const std::size_t n = std::min(line - cur.at[last], m - r);
    for (std::size_t i = 0; i < n; ++i) ro[r + i] = at + i * line_step;
    r += n;
    cur.at[last] = line - 1;  // the line's last row: next() moves to the next line's first
    cur.next();
  }
}

// Per-tap offsets d_i * j_i - pad_i, tap-major (taps x dims), and each tap's offset within the
// input in positions, sum_i d_i j_i * (input stride of dim i), for windows that lie inside.
struct tap_table {
  scratch_pool::lease<index> offset;
  scratch_pool::lease<std::size_t> relative;
  std::size_t dims;
  const index* at(std::size_t tap) const { return offset.data() + tap * dims; }
};
tap_table make_taps(const conv_geometry& g) {
  tap_table t{scratch().take<index>(g.taps() * g.dims), scratch().take<std::size_t>(g.taps()), g.dims};
  index* o = t.offset.data();
  for_each_tap(g, [&](std::size_t tap, const per_dim& j, std::size_t) {
    std::size_t rel = 0;
    for (std::size_t i = 0; i < g.dims; ++i) {
      o[tap * g.dims + i] = index(g.dilation[i] * j[i]) - index(g.pad_low[i]);
      rel = rel * g.in[i] + g.dilation[i] * j[i];
    }
    t.relative.data()[tap] = rel;
  });
  return t;
}

// The flat input position read by output position `o` through a tap with offsets `off`, or -1
// when it falls in the padding.
inline index input_position(const conv_geometry& g, const per_dim& o, const index* off) {
  index flat = 0;
  for (std::size_t i = 0; i < g.dims; ++i) {
    const index p = index(o[i] * g.stride[i]) + off[i];
    if (p < 0 || p >= index(g.in[i])) return -1;
    flat = flat * index(g.in[i]) + p;
  }
  return flat;
}

// Calls f(at, batch, origin) for the output rows [q0, q0 + rows) in order: at the row's output
// position, batch its batch item, origin the flat input position of its window's first tap when
// the whole window lies inside the input, else -1 (a border row). Walks output lines: the leading
// dims' part of the origins once per line, then per row one multiply-add and the last dim's
// bounds. (Computed per row from all dims, the pointers of an indirect product's tile cost as
// much as the product itself for a 1x1 strided conv, (i): 40% of its forward.)
template <class F>
void for_each_window(const conv_geometry& g, std::size_t q0, std::size_t rows, F&& f) {
  const std::size_t last = g.dims - 1;
  const index stride = index(g.stride[last]), pad = index(g.pad_low[last]), in = index(g.in[last]);
  const index reach = index(g.dilation[last] * (g.window[last] - 1));
  const index lo = (pad + stride - 1) / stride;                             // o * stride - pad >= 0
  const index hi = in + pad > reach ? (in + pad - reach - 1) / stride + 1 : 0;  // ... + reach < in
  for_each_line_segment(g.dims, g.out, q0, rows, [&](const grid_cursor& cur, std::size_t n, std::size_t) {
    index line = 0;  // the line's leading dims, flat
    bool inside = true;
    for (std::size_t i = 0; i < last && inside; ++i) {
      const index p = index(cur.at[i] * g.stride[i]) - index(g.pad_low[i]);
      inside = p >= 0 && p + index(g.dilation[i] * (g.window[i] - 1)) < index(g.in[i]);
      line = line * index(g.in[i]) + p;
    }
    line = line * in - pad;
    per_dim at = cur.at;
    for (std::size_t o = cur.at[last]; o < cur.at[last] + n; ++o) {
      at[last] = o;
      f(at, cur.batch, inside && index(o) >= lo && index(o) < hi ? line + index(o) * stride : index(-1));
    }
  });
}

// Copies the channels of one position (up to a few vectors) as an inlined loop: scattering a
// product's rows to strided places in dx, a memcpy call per row measured 12% slower (phases,
// C = 32) than the loop.
template <class T>
inline void copy_short_run(T* dst, const T* src, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
}

// Copies n elements; short runs (a few channels) without a call.
template <class T>
inline void copy_run(T* dst, const T* src, std::size_t n) {
  if (n < 16) copy_short_run(dst, src, n);
  else std::memcpy(dst, src, n * sizeof(T));
}

// im2col for output rows [q0, q0 + rows): row r gets, per tap, the channels [c0, c0 + cg) of the
// input position it reads (zeros in the padding). Rows whose window lies inside the input copy
// from precomputed tap offsets; with all channels and dilation 1 along the last dim, the taps of
// one window line are a single contiguous run.
template <class T>
void pack_patches(T* dst, const T* x, const conv_geometry& g, const tap_table& taps, std::size_t q0, std::size_t rows,
                  std::size_t c0, std::size_t cg) {
  const std::size_t taps_n = g.taps(), in_pos = g.in_positions(), c = g.in_channels;
  const std::size_t last = g.window[g.dims - 1];
  const bool line_runs = cg == c && g.dilation[g.dims - 1] == 1;
  const std::size_t run = line_runs ? last * c : cg, step = line_runs ? last : 1;
  const std::size_t* rel = taps.relative.data();
  for_each_window(g, q0, rows, [&](const per_dim& at, std::size_t batch, index origin) {
    const T* xb = x + batch * in_pos * c + c0;
    if (origin >= 0) {
      const T* xo = xb + std::size_t(origin) * c;
      for (std::size_t t = 0; t < taps_n; t += step, dst += run) copy_run(dst, xo + rel[t] * c, run);
      return;
    }
    for (std::size_t t = 0; t < taps_n; ++t, dst += cg) {
      const index p = input_position(g, at, taps.at(t));
      if (p < 0) std::fill_n(dst, cg, T(0));
      else copy_run(dst, xb + std::size_t(p) * c, cg);
    }
  });
}

// ---- gathered patches (few input channels) --------------------------------------------------------
// With few input channels (the first layer of an image model, small 3-d convs), im2col copies
// short runs per tap and costs as much as the product it feeds. Instead the input is copied once
// per call into a zero-padded buffer in which every window lies whole, and the products gather A
// straight from it (gather_product): an offset per output position (rows) plus an offset per
// (tap, channel) in w's order (columns). Same sums in the same order as the packed path.
// Measured (bench_cnn --cpu, AVX-512, 1 core): C = 1 forward 22 -> 65 GFLOP/s, C = 16 (3-d)
// 76 -> 102 (-> 113 since each tap's C channels are read as one run); from C = 32 on, im2col and
// the packed narrow product are as fast or faster (C = 32: 146 against 150, C = 64: 148 against
// 128 on a Xeon model 167), so larger C keeps them.
// Needs the narrow kernel (n = K, one group); a 1x1 window comes earlier in the lists (pointwise).
// The forward gathers up to 32 channels; from 64 on the indirect forward (below), which reads x
// in place, is ahead: (d) (1-d, C = K = 64, k = 7) 193 -> 204 GFLOP/s, (b) 210 -> 222; at C = 32
// the two are even (190 / 188), at 16 ((e)) gathering is (145 against 118; medians of 5, 1 core,
// Xeon model 167). This weight gradient stays at 16: the packed product is ahead from C = 32 on
// ((d): 144 against 127), and gathered_columns (below) ahead of both where it applies.
inline constexpr std::size_t max_gathered_channels = 16, max_gathered_forward_channels = 32;
template <class T, std::size_t MaxChannels = max_gathered_channels>
bool gathers_patches(const conv_geometry& g) {
  return g.groups == 1 && g.in_channels <= MaxChannels && narrow_fits<T>(g.out_channels);
}

// The copy is of the whole input, while a strided conv's windows start at only one position in
// stride^d: from 8 channels on, reading x in place is then ahead, the indirect forward (N = 64,
// 3x3 stride 2, K = 32; C = 8: 112 -> 123 GFLOP/s, 16: 108 -> 140; C = 3: 94 against 82) and the
// packed patches of the narrow weight gradient (C = 8: 90 -> 109, 16: 93 -> 114; even at C = 32,
// ahead again at C = 128, (c): 162 against 148; one core, medians of 9, Xeon model 167).
bool strided(const conv_geometry& g) {
  for (std::size_t d = 0; d < g.dims; ++d)
    if (g.stride[d] > 1) return true;
  return false;
}
template <class T>
bool gathers_forward(const conv_geometry& g) {
  return gathers_patches<T, max_gathered_forward_channels>(g) && (!strided(g) || g.in_channels < 8);
}
bool gathering_pays_for_weight_grad(const conv_geometry& g) {
  return !strided(g) || g.in_channels < 8 || g.in_channels >= 32;
}

// A zero-padded copy's layout: src (batch, extent..., channels) shifted by `low` per dim within
// `padded` extents, zeros around it; batch items of item() elements.
struct padded_layout {
  std::size_t dims = 0, channels = 0;
  per_dim extent{}, low{}, padded{};
  std::size_t item() const {
    std::size_t n = channels;
    for (std::size_t d = 0; d < dims; ++d) n *= padded[d];
    return n;
  }
};

// Writes the padded copy's elements [lo, hi) to dst[0, hi - lo): line by line in address order,
// zeros and src's runs each written once (a zero fill of the whole copy first was 3% of conv
// (c)'s forward+backward).
template <class T>
void copy_padded_range(const T* src, T* dst, std::size_t lo, std::size_t hi, const padded_layout& p) {
  const std::size_t last = p.dims - 1, c = p.channels, line = p.padded[last] * c;
  const std::size_t data_lo = p.low[last] * c, data_hi = data_lo + p.extent[last] * c;  // src's run in a line
  std::size_t lines_per_item = 1, src_lines_per_item = 1;
  for (std::size_t d = 0; d < last; ++d) {
    lines_per_item *= p.padded[d];
    src_lines_per_item *= p.extent[d];
  }
  for (std::size_t l = lo / line; l * line < hi; ++l) {
    std::size_t rem = l % lines_per_item, src_line = 0, scale = 1;
    bool inside = true;  // a line holding one of src
    for (std::size_t d = last; d-- > 0 && inside;) {
      const std::size_t at = rem % p.padded[d];
      rem /= p.padded[d];
      inside = at >= p.low[d] && at - p.low[d] < p.extent[d];
      src_line += (at - p.low[d]) * scale;
      scale *= p.extent[d];
    }
    const std::size_t begin = std::max(lo, l * line) - l * line, end = std::min(hi, (l + 1) * line) - l * line;
    T* out = dst + (l * line + begin - lo);
    const std::size_t copy_lo = inside ? std::clamp(data_lo, begin, end) : end;
    const std::size_t copy_hi = inside ? std::clamp(data_hi, copy_lo, end) : end;
    std::fill(out, out + (copy_lo - begin), T(0));
    if (copy_hi > copy_lo) {
      const T* from = src + ((l / lines_per_item) * src_lines_per_item + src_line) * p.extent[last] * c;
      std::copy(from + (copy_lo - data_lo), from + (copy_hi - data_lo), out + (copy_lo - begin));
    }
    std::fill(out + (copy_hi - begin), out + (end - begin), T(0));
  }
}

// The whole copy of `batch` items, items in parallel (it was a serial section of every gathered conv).
template <class T>
void copy_padded(const T* src, T* dst, std::size_t batch, const padded_layout& p) {
  const std::size_t item = p.item();
  parallel_chunks(batch, item, [&](std::size_t lo, std::size_t hi) {
    copy_padded_range(src, dst + lo * item, lo * item, hi * item, p);
  });
}

// x's zero-padded copy, in which every window lies whole: x shifted by pad_low per dim, zeros
// around it. Whole (the forward's gathered and direct implementations), or, given slab_rows and
// where slabs() pays, only its layout, the stretch that a tile of slab_rows output rows reads
// written by fill() on demand (the gathered weight gradients: a slab that stays in cache, instead
// of a copy of all of x written to memory and read back).
template <class T>
class padded_input {
 public:
  padded_input(const T* x, const conv_geometry& g, std::size_t slab_rows = 0)
      : g_(g),
        x_(x),
        batch_step_(layout(g, extent_, step_)),
        slabs_(slab_rows > 0 && slabs_pay(slab_rows)),
        data_(scratch().take<T>(slabs_ ? 0 : g.batch * batch_step_)),
        columns_(scratch().take<std::size_t>(g.taps() * g.in_channels)) {
    const std::size_t c = g.in_channels;
    if (!slabs_) copy_padded(x, data_.data(), g.batch, padding());
    for_each_tap(g, [&](std::size_t t, const per_dim& j, std::size_t) {
      std::size_t off = 0;
      for (std::size_t d = 0; d < g.dims; ++d) off += j[d] * g.dilation[d] * step_[d];
      for (std::size_t ch = 0; ch < c; ++ch) columns_.data()[t * c + ch] = off + ch;
    });
  }
  // Whether the copy comes in slabs (fill()), else whole (data()).
  bool slabs() const { return slabs_; }
  const T* data() const { return data_.data(); }
  // Elements per batch item, and between positions one apart along ordered dim d.
  std::size_t batch_step() const { return batch_step_; }
  std::size_t step(std::size_t d) const { return step_[d]; }
  // Per (tap, channel), in w's order: the offset from a window's first element.
  const std::size_t* columns() const { return columns_.data(); }
  // The length of the runs of consecutive offsets in columns(): a tap's channels, and with
  // dilation 1 along the last axis the whole line of taps (C = 1, 3x3: 3 instead of 1).
  std::size_t columns_run() const {
    const std::size_t last = g_.dims - 1;
    return g_.in_channels * (g_.dilation[last] == 1 ? g_.window[last] : 1);
  }
  // The offsets of the windows of output rows [q0, q0 + m) into ro (increasing with the row).
  void rows(std::size_t q0, std::size_t m, std::size_t* ro) const {
    grid_offsets(g_.dims, g_.out, g_.stride, per_dim{}, step_, batch_step_, q0, m, ro);
  }
  // The elements a window reads, from its offset on: [ro, ro + window_span()).
  std::size_t window_span() const {
    std::size_t span = g_.in_channels;
    for (std::size_t d = 0; d < g_.dims; ++d) span += g_.dilation[d] * (g_.window[d] - 1) * step_[d];
    return span;
  }
  // A bound on the elements the windows of m consecutive output rows read, first to last: they
  // lie in at most (m - 1) / (output positions per item) + 2 batch items.
  std::size_t span_bound(std::size_t m) const {
    return std::min(g_.batch, (std::max<std::size_t>(m, 1) - 1) / std::max<std::size_t>(g_.out_positions(), 1) + 2) *
           batch_step_;
  }
  // Writes the copy's elements [lo, hi) to dst[0, hi - lo).
  void fill(T* dst, std::size_t lo, std::size_t hi) const { copy_padded_range(x_, dst, lo, hi, padding()); }

 private:
  padded_layout padding() const { return {g_.dims, g_.in_channels, g_.in, g_.pad_low, extent_}; }
  // Whether slabs of m output rows' windows copy at most 1.5 times the whole copy together (a
  // 2-d conv's slab repeats the rows its windows reach past the tile's last line, a few percent;
  // a 3-d one's whole planes: (e)'s slabs would copy x 7 times over).
  bool slabs_pay(std::size_t m) const {
    const std::size_t total = g_.batch * g_.out_positions();
    if (total == 0) return false;
    m = std::min(m, total);
    std::size_t last_row = 0;  // the offset of row m - 1's window (row 0's is 0)
    rows(m - 1, 1, &last_row);
    const double slab = double(last_row + window_span()), tiles = std::ceil(double(total) / double(m));
    return slab * tiles <= 1.5 * double(g_.batch * batch_step_);
  }
  // Padded extents (every window whole) and element strides; returns the elements per batch item.
  static std::size_t layout(const conv_geometry& g, per_dim& extent, per_dim& step) {
    std::size_t positions = 1;
    for (std::size_t d = g.dims; d-- > 0;) {
      extent[d] = std::max(g.in[d] + g.pad_low[d], (g.out[d] - 1) * g.stride[d] + g.dilation[d] * (g.window[d] - 1) + 1);
      step[d] = positions * g.in_channels;
      positions *= extent[d];
    }
    return positions * g.in_channels;
  }

  const conv_geometry& g_;
  const T* x_;
  per_dim extent_{}, step_{};
  std::size_t batch_step_ = 0;
  bool slabs_ = false;
  scratch_pool::lease<T> data_;
  scratch_pool::lease<std::size_t> columns_;
};

// ---- input gradient into few channels ----------------------------------------------------------
// dx has fewer channels than a vector holds (an image model's first layer: 1 or 3), so the
// transposed product would be a GEMM with n = C. With stride 1, dx is instead a correlation of g
// (zero-padded so that every window lies whole) with the flipped kernel, as dot products along g's
// contiguous channels (gather_dot_product): dx[p, c] = sum over taps t' and k of
// gpad[origin(p) + offset(t') + k] w[k, flip(t'), c].
template <class T>
bool dots_into_few_channels(const conv_geometry& g) {
  if (g.groups != 1 || narrow_fits<T>(g.in_channels) || g.in_channels > max_gathered_channels) return false;
  for (std::size_t d = 0; d < g.dims; ++d)
    if (g.stride[d] != 1) return false;
  return true;
}

template <class T>
void few_channel_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  const std::size_t c = g.in_channels, k = g.out_channels, taps_n = g.taps();
  // g's padding: `low` before each dim so that every read index is >= 0, whole windows after.
  per_dim low{}, extent{}, step{};
  std::size_t positions = 1;
  for (std::size_t d = g.dims; d-- > 0;) {
    const std::size_t reach = g.dilation[d] * (g.window[d] - 1);
    low[d] = reach > g.pad_low[d] ? reach - g.pad_low[d] : 0;
    extent[d] = std::max(g.out[d], g.in[d] + g.pad_low[d]) + low[d];
    step[d] = positions * k;
    positions *= extent[d];
  }
  const std::size_t batch_step = positions * k;
  // Input position p's first read of gpad: p + pad_low + low - d (k - 1) per dim.
  per_dim ones{}, shift{};
  for (std::size_t d = 0; d < g.dims; ++d) {
    ones[d] = 1;
    shift[d] = g.pad_low[d] + low[d] - g.dilation[d] * (g.window[d] - 1);
  }
  auto gpad = scratch().take<T>(g.batch * batch_step);
  copy_padded(gr.data, gpad.data(), g.batch, padded_layout{g.dims, k, g.out, low, extent});
  // Per flipped tap t': its offset in gpad, and the kernel rearranged as wr[(t' * C + c) * K + k].
  auto tap_offsets = scratch().take<std::size_t>(taps_n);
  auto wr = scratch().take<T>(taps_n * c * k);
  for_each_tap(g, [&](std::size_t t, const per_dim& j, std::size_t flipped) {
    std::size_t off = 0;
    for (std::size_t d = 0; d < g.dims; ++d) off += j[d] * g.dilation[d] * step[d];
    tap_offsets.data()[t] = off;
    for (std::size_t ch = 0; ch < c; ++ch)
      for (std::size_t kk = 0; kk < k; ++kk) wr.data()[(t * c + ch) * k + kk] = w.data[(kk * taps_n + flipped) * c + ch];
  });
  const std::size_t rows = g.batch * g.in_positions(), tile = tile_rows_for(taps_n * k);
  parallel_chunks(ceil_div(rows, tile), tile * taps_n * k * c, [&](std::size_t lo, std::size_t hi) {
    auto ro = scratch().take<std::size_t>(tile);
    for (std::size_t ti = lo; ti < hi; ++ti) {
      const std::size_t p0 = ti * tile, m = std::min(tile, rows - p0);
      grid_offsets(g.dims, g.in, ones, shift, step, batch_step, p0, m, ro.data());
      gather_dot_product<T>(m, c, taps_n, k, gpad.data(), ro.data(), tap_offsets.data(), wr.data(), dx.data + p0 * c, c);
    }
  });
}

// ---- depthwise --------------------------------------------------------------------------------
// One input channel per group; mult = out channels per group. w is (K, taps, 1).

template <class T>
void depthwise_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g, const conv_epilogue<T>& e) {
  const std::size_t k = g.out_channels, c = g.in_channels, mult = g.out_group(), taps_n = g.taps();
  const std::size_t rows = g.batch * g.out_positions(), in_pos = g.in_positions();
  auto wt = scratch().take<T>(taps_n * k);  // (taps, K): contiguous over channels per tap
  for (std::size_t ch = 0; ch < k; ++ch)
    for (std::size_t t = 0; t < taps_n; ++t) wt.data()[t * k + ch] = w.data[ch * taps_n + t];
  const auto taps = make_taps(g);
  parallel_chunks(rows, taps_n * k, [&](std::size_t lo, std::size_t hi) {
    grid_cursor cur(g.dims, g.out, lo);
    for (std::size_t q = lo; q < hi; ++q, cur.next()) {
      T* o = out.data + q * k;
      std::fill_n(o, k, T(0));
      for (std::size_t t = 0; t < taps_n; ++t) {
        const index p = input_position(g, cur.at, taps.at(t));
        if (p < 0) continue;
        const T* xr = x.data + (cur.batch * in_pos + std::size_t(p)) * c;
        const T* wr = wt.data() + t * k;
        if (mult == 1)
          for (std::size_t ch = 0; ch < k; ++ch) o[ch] += xr[ch] * wr[ch];
        else
          for (std::size_t ch = 0; ch < k; ++ch) o[ch] += xr[ch / mult] * wr[ch];
      }
    }
    finish_rows(out.data + lo * k, hi - lo, k, e);
  });
}

// The output position that reads input position p (multi-index) through tap offsets `off`, or -1.
inline index output_position(const conv_geometry& g, const per_dim& p, const index* off) {
  index flat = 0;
  for (std::size_t i = 0; i < g.dims; ++i) {
    const index num = index(p[i]) - off[i];  // = o * s
    if (num < 0 || num % index(g.stride[i]) != 0) return -1;
    const index o = num / index(g.stride[i]);
    if (o >= index(g.out[i])) return -1;
    flat = flat * index(g.out[i]) + o;
  }
  return flat;
}

template <class T>
void depthwise_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  const std::size_t k = g.out_channels, c = g.in_channels, mult = g.out_group(), taps_n = g.taps();
  const std::size_t rows = g.batch * g.in_positions(), out_pos = g.out_positions();
  auto wt = scratch().take<T>(taps_n * k);
  for (std::size_t ch = 0; ch < k; ++ch)
    for (std::size_t t = 0; t < taps_n; ++t) wt.data()[t * k + ch] = w.data[ch * taps_n + t];
  const auto taps = make_taps(g);
  parallel_chunks(rows, taps_n * k, [&](std::size_t lo, std::size_t hi) {
    grid_cursor cur(g.dims, g.in, lo);
    for (std::size_t q = lo; q < hi; ++q, cur.next()) {
      T* d = dx.data + q * c;
      std::fill_n(d, c, T(0));
      for (std::size_t t = 0; t < taps_n; ++t) {
        const index o = output_position(g, cur.at, taps.at(t));
        if (o < 0) continue;
        const T* gr_row = gr.data + (cur.batch * out_pos + std::size_t(o)) * k;
        const T* wr = wt.data() + t * k;
        if (mult == 1)
          for (std::size_t ch = 0; ch < c; ++ch) d[ch] += gr_row[ch] * wr[ch];
        else
          for (std::size_t ch = 0; ch < c; ++ch)
            for (std::size_t m = 0; m < mult; ++m) d[ch] += gr_row[ch * mult + m] * wr[ch * mult + m];
      }
    }
  });
}

// The number of partial sums a reduction over `rows` rows of `work_per_row` multiply-adds is
// split into: a function of the sizes only (never of the thread count), so the order in which
// the partials are added, and the result, is the same however many threads run them.
std::size_t partial_count(std::size_t rows, std::size_t work_per_row, std::size_t partial_bytes, std::size_t min_rows) {
  constexpr std::size_t max_partials = 16;
  // Per partial: ~0.5 ms on one core or more, and small enough that a few ms of work splits into
  // parts that two cores share evenly (conv (a)'s dW: 3 parts -> 6, 0.35 -> 0.27 ms on 2 threads).
  constexpr std::size_t min_work = std::size_t{1} << 21;
  std::size_t p = std::min(max_partials, rows * work_per_row / min_work);
  p = std::min(p, rows / std::max<std::size_t>(min_rows, 1));
  // Partials of more than ~1 MiB together leave the caches: each one's accumulation then reads and
  // writes memory, and the final sum reads them all back ((c)'s dW, 590 KB a partial: 16 -> 4
  // parts, 13.6 -> 10.8 ms on one core, 6.8 -> 6.4 on two; AMD EPYC Zen 5). Then as many as fit,
  // but at least 4 (or all there were), in multiples of 4 so that 1, 2 or 4 threads share them evenly.
  constexpr std::size_t cache_bytes = std::size_t{1} << 20;
  const std::size_t fit = cache_bytes / std::max<std::size_t>(partial_bytes, 1);
  if (p > fit) p = std::max(std::min<std::size_t>(p, 4), fit / 4 * 4);
  return std::max<std::size_t>(p, 1);
}

// dst[e] = sum over p of parts[p * size + e], in order of p.
template <class T>
void add_partials(T* dst, const T* parts, std::size_t count, std::size_t size) {
  parallel_chunks(size, count, [&](std::size_t lo, std::size_t hi) {
    std::copy(parts + lo, parts + hi, dst + lo);
    for (std::size_t p = 1; p < count; ++p) {
      const T* src = parts + p * size;
      for (std::size_t e = lo; e < hi; ++e) dst[e] += src[e];
    }
  });
}

template <class T>
void depthwise_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  const std::size_t k = g.out_channels, c = g.in_channels, mult = g.out_group(), taps_n = g.taps();
  const std::size_t rows = g.batch * g.out_positions(), in_pos = g.in_positions();
  const std::size_t size = taps_n * k;  // one partial, laid out (taps, K)
  const std::size_t parts = partial_count(rows, taps_n * k, size * sizeof(T), 64);
  auto buf = scratch().take<T>(parts * size + size);
  T* partial = buf.data();
  const auto taps = make_taps(g);
  parallel_chunks(parts, std::size_t{1} << 20, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t part = lo; part < hi; ++part) {
      T* acc = partial + part * size;
      std::fill_n(acc, size, T(0));
      const std::size_t q0 = rows * part / parts, q1 = rows * (part + 1) / parts;
      grid_cursor cur(g.dims, g.out, q0);
      for (std::size_t q = q0; q < q1; ++q, cur.next()) {
        const T* gr_row = gr.data + q * k;
        for (std::size_t t = 0; t < taps_n; ++t) {
          const index p = input_position(g, cur.at, taps.at(t));
          if (p < 0) continue;
          const T* xr = x.data + (cur.batch * in_pos + std::size_t(p)) * c;
          T* a = acc + t * k;
          if (mult == 1)
            for (std::size_t ch = 0; ch < k; ++ch) a[ch] += gr_row[ch] * xr[ch];
          else
            for (std::size_t ch = 0; ch < k; ++ch) a[ch] += gr_row[ch] * xr[ch / mult];
        }
      }
    }
  });
  T* sum = partial + parts * size;
  add_partials(sum, partial, parts, size);
  for (std::size_t ch = 0; ch < k; ++ch)
    for (std::size_t t = 0; t < taps_n; ++t) dw.data[ch * taps_n + t] = sum[t * k + ch];
}

// ---- input-gradient phases -------------------------------------------------------------------
// Input positions p with (p_i + pad_i) mod s_i = phase_i form a grid p_i = first_i + s_i * t_i; an
// output o reaches them through tap j iff d_i j_i = phase_i (mod s_i).
// Along dim i, the output fed through the phase's tap tt is o_i = t_i + shift_i(tt), where t_i
// numbers the phase's input positions: (p_i + pad_i - d_i j_i) / s_i, exact within a phase.
struct phase_info {
  per_dim first{}, count{};
  std::array<index, max_spatial_dims> shift_min{}, shift_max{};  // over the phase's taps
  std::size_t tap_begin = 0, tap_count = 0;  // into the phase-sorted tap list
  std::size_t rows = 0, tile_rows = 0, item_begin = 0, items = 0;
  std::size_t w_offset = 0;  // of this phase's rearranged weights
};

// C (+)= op(A) B with B's rows ldb apart: the narrow kernel when it applies, else the GEMM.
template <class T>
void product(bool trans_a, std::size_t m, std::size_t n, std::size_t kk, const T* a, std::size_t lda, const T* b,
             std::size_t ldb, T* c, std::size_t ldc, bool accumulate = false) {
  if (narrow_fits<T>(n)) narrow_product<T>(trans_a, m, n, kk, a, lda, b, ldb, c, ldc, accumulate);
  else gemm_serial<T>(gemm_dims{trans_a, false, m, n, kk, lda, ldb, ldc}, a, b, accumulate ? T(1) : T(0), c);
}

// ---- forward implementations -------------------------------------------------------------------

// wt = w_g^T per group (patch x Kg, rows ldw >= Kg apart, zeros past Kg): the layout the narrow
// kernel reads.
template <class T>
void transpose_weights(const T* w, const conv_geometry& g, T* wt, std::size_t ldw) {
  const std::size_t kg = g.out_group(), patch = g.taps() * g.in_group();
  if (ldw == kg) {  // permute's tiled transpose: (c)'s 128 x 1152 took 2% of its forward as the loop below
    permute(view<T>{wt, shape{g.groups, patch, kg}}, view<const T>{w, shape{g.groups, kg, patch}}, axis_values{0, 2, 1});
    return;
  }
  for (std::size_t grp = 0; grp < g.groups; ++grp) {
    T* wg = wt + grp * ldw * patch;
    for (std::size_t e = 0; e < patch; ++e) std::fill(wg + e * ldw + kg, wg + (e + 1) * ldw, T(0));
    for (std::size_t co = 0; co < kg; ++co)
      for (std::size_t e = 0; e < patch; ++e) wg[e * ldw + co] = w[(grp * kg + co) * patch + e];
  }
}

// The gathered forward with the weights already as the narrow kernel reads them: wt = w^T
// (patch x K, rows in w's (tap, channel) order).
template <class T>
void gathered_product_forward(view<T> out, view<const T> x, const T* wt, const conv_geometry& g,
                              const conv_epilogue<T>& e) {
  const std::size_t rows = g.batch * g.out_positions(), k = g.out_channels, patch = g.taps() * g.in_channels;
  const std::size_t tile = tile_rows_for(patch), tiles = ceil_div(rows, tile);
  const padded_input<T> xp(x.data, g);
  const bool fused = epilogue_in_registers(e, k);
  parallel_chunks(tiles, tile * patch * k, [&](std::size_t lo, std::size_t hi) {
    auto ro = scratch().take<std::size_t>(tile);
    for (std::size_t ti = lo; ti < hi; ++ti) {
      const std::size_t q0 = ti * tile, m = std::min(tile, rows - q0);
      xp.rows(q0, m, ro.data());
      gather_product<T>(m, k, patch, xp.data(), ro.data(), xp.columns(), xp.columns_run(), wt, k, out.data + q0 * k, k,
                        false, fused ? e.bias : nullptr, fused && e.relu);
      if (!fused) finish_rows(out.data + q0 * k, m, k, e);
    }
  });
}

template <class T>
void gathered_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                      const conv_epilogue<T>& e) {
  auto wt = scratch().take<T>(w.size());
  transpose_weights(w.data, g, wt.data(), g.out_group());
  gathered_product_forward(out, x, wt.data(), g, e);
}

// ---- direct forward: one input channel, 3x3 --------------------------------------------------
// The first layer of a grayscale image model: 9 terms per output, too few for the gathered tile,
// whose loads and stores per tile then outweigh its multiply-adds (conv (a), N = 64 C = 1 28x28
// K = 32, one core: 80-95 GFLOP/s). direct_conv_3x3 holds the 9 taps' weights in registers and
// runs along each line of the zero-padded copy of x (padded_input): 134-141 GFLOP/s (bench_cnn
// --cpu, AMD EPYC Zen 5; PyTorch 36-44 in the same runs).
// Same sums, in the same order (tap by tap), as the gathered forward.
template <class T>
bool direct_applies(const conv_geometry& g) {
  return g.groups == 1 && g.in_channels == 1 && g.dims == 2 && g.window[0] == 3 && g.window[1] == 3 &&
         g.stride[1] == 1 && g.dilation[1] == 1 && narrow_fits<T>(g.out_channels);
}

template <class T>
void direct_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                    const conv_epilogue<T>& e) {
  const std::size_t k = g.out_channels, oh = g.out[0], ow = g.out[1], lines = g.batch * oh;
  auto wt = scratch().take<T>(w.size());
  transpose_weights(w.data, g, wt.data(), k);
  const padded_input<T> xp(x.data, g);
  const std::size_t line_step = g.stride[0] * xp.step(0), row_step = g.dilation[0] * xp.step(0);
  const bool fused = epilogue_in_registers(e, k);
  // Tasks of whole lines, about as many outputs as the gathered forward's tiles (a task of a few
  // lines is too short for its scheduling and floating-point mode switch: 10% of the time).
  const std::size_t block = std::max<std::size_t>(1, tile_rows_for(9) / ow), blocks = ceil_div(lines, block);
  parallel_chunks(blocks, block * ow * k * 9, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t l = lo * block, end = std::min(hi * block, lines), count; l < end; l += count) {
      const std::size_t item = l / oh, y = l % oh;  // the lines of one batch item at a time
      count = std::min(end - l, oh - y);
      T* o = out.data + l * ow * k;
      direct_conv_3x3<T>(count, ow, k, xp.data() + item * xp.batch_step() + y * line_step, line_step, row_step,
                         wt.data(), o, fused ? e.bias : nullptr, fused && e.relu);
      if (!fused) finish_rows(o, count * ow, k, e);
    }
  });
}

// ---- indirect forward ---------------------------------------------------------------------------
// Per tile: a pointer per (row, tap) to the channels [c0, c0 + cg) that tap reads, in x or in a
// run of zeros for the padding (an indirection buffer, as XNNPACK's convolutions use), then one
// indirect product per group: the products read each window where it is, so there is neither an
// im2col copy (12% of (c)'s time when the narrow kernel read packed patches) nor a padded copy of
// x. One core, medians of 5 (Xeon model 167), against the packed patches on the same kernel: (c)
// 186 -> 199 GFLOP/s (AVX2 kernels: 113 -> 115), 3-d (e) (C = 16) 90 -> 118, C = 1 31 -> 38; so
// it replaced that implementation wherever Kg is a narrow width.
template <class T>
void window_pointers(const T** dst, const T* x, const T* zeros, const conv_geometry& g, const tap_table& taps,
                     std::size_t q0, std::size_t rows, std::size_t c0) {
  const std::size_t taps_n = g.taps(), in_pos = g.in_positions(), c = g.in_channels;
  const std::size_t* rel = taps.relative.data();
  for_each_window(g, q0, rows, [&](const per_dim& at, std::size_t batch, index origin) {
    const T* xb = x + batch * in_pos * c + c0;
    if (origin >= 0)
      for (std::size_t t = 0; t < taps_n; ++t) dst[t] = xb + (std::size_t(origin) + rel[t]) * c;
    else
      for (std::size_t t = 0; t < taps_n; ++t) {
        const index pos = input_position(g, at, taps.at(t));
        dst[t] = pos < 0 ? zeros : xb + std::size_t(pos) * c;
      }
    dst += taps_n;
  });
}

// With one group and dilation 1 along the last dim, the taps of a window line are one run of
// (last window extent) * C elements of x: window_lines gives a pointer per row and line instead
// of per tap; in a border row (some tap in the padding), a line partly in the padding is copied,
// zeros and all, into `border` (rows * taps * C elements) first, as one copy of its taps inside x
// and zeros, a line wholly outside reads `zeros` (a line's worth), one wholly inside x reads x
// (copies were 2.8% of (c)'s forward). Taken for lines of at least 1 KiB: one core, medians of 5
// (Xeon model 167), (d) (k = 7, C = 64) 188 -> 203 GFLOP/s, (c) 205 -> 212; shorter lines gain
// nothing ((h), 48 floats per line: 143 / 139; C = 8: even).
inline constexpr std::size_t min_line_bytes = 1024;
template <class T>
void window_lines(const T** dst, T* border, const T* x, const T* zeros, const conv_geometry& g, const tap_table& taps,
                  std::size_t q0, std::size_t rows) {
  const std::size_t taps_n = g.taps(), in_pos = g.in_positions(), c = g.in_channels;
  const std::size_t last = g.dims - 1, kx = g.window[last], lines = taps_n / kx, run = kx * c;
  const std::size_t* rel = taps.relative.data();
  std::size_t r = 0;
  for_each_window(g, q0, rows, [&](const per_dim& at, std::size_t batch, index origin) {
    const T* xb = x + batch * in_pos * c;
    const T** row = dst + r * lines;
    T* b = border + r++ * taps_n * c;
    if (origin >= 0) {
      for (std::size_t l = 0; l < lines; ++l) row[l] = xb + (std::size_t(origin) + rel[l * kx]) * c;
      return;
    }
    // A border row: per line, the taps inside x are one run of columns [lo, hi) (dilation 1), the
    // rest zeros; a line outside along a leading dim is all zeros.
    for (std::size_t l = 0; l < lines; ++l, b += run) {
      const index* off = taps.at(l * kx);
      index line = 0;
      bool inside = true;
      for (std::size_t d = 0; d < last && inside; ++d) {
        const index p = index(at[d] * g.stride[d]) + off[d];
        inside = p >= 0 && p < index(g.in[d]);
        line = line * index(g.in[d]) + p;
      }
      const index x0 = index(at[last] * g.stride[last]) + off[last], w = index(g.in[last]);
      const index lo = inside ? std::clamp<index>(-x0, 0, index(kx)) : index(kx);
      const index hi = inside ? std::clamp<index>(w - x0, lo, index(kx)) : index(kx);
      if (lo == hi || (lo == 0 && hi == index(kx))) {
        row[l] = lo == hi ? zeros : xb + std::size_t(line * w + x0) * c;
        continue;
      }
      std::fill_n(b, std::size_t(lo) * c, T(0));
      if (hi > lo)
        std::memcpy(b + lo * c, xb + std::size_t(line * w + x0 + lo) * c, std::size_t(hi - lo) * c * sizeof(T));
      std::fill_n(b + hi * c, std::size_t(index(kx) - hi) * c, T(0));
      row[l] = b;
    }
  });
}

// The indirect forward with the weights already as the indirect product reads them: wt = w_g^T
// per group (patch x Kg, rows in w's (tap, channel) order, ldw apart: padded_columns<T>(Kg)).
template <class T>
void indirect_product_forward(view<T> out, view<const T> x, const T* wt, std::size_t ldw, const conv_geometry& g,
                              const conv_epilogue<T>& e) {
  const std::size_t rows = g.batch * g.out_positions(), k = g.out_channels, taps_n = g.taps();
  const std::size_t cg = g.in_group(), kg = g.out_group(), patch = taps_n * cg;
  const std::size_t tile = tile_rows_for(patch), tiles = ceil_div(rows, tile);
  const bool lines = g.groups == 1 && g.dilation[g.dims - 1] == 1 && g.window[g.dims - 1] > 1 &&
                     g.window[g.dims - 1] * cg * sizeof(T) >= min_line_bytes;
  const std::size_t run = lines ? g.window[g.dims - 1] * cg : cg, per_row = patch / run;
  const auto taps = make_taps(g);
  auto zeros = scratch().take<T>(run);  // a tap's (a window line's) worth of padding
  std::fill_n(zeros.data(), run, T(0));
  const bool fused = epilogue_in_registers(e, k);
  parallel_chunks(tiles, tile * patch * k, [&](std::size_t lo, std::size_t hi) {
    auto pointers = scratch().take<const T*>(tile * per_row);
    auto border = scratch().take<T>(lines ? tile * patch : 0);
    for (std::size_t ti = lo; ti < hi; ++ti) {
      const std::size_t q0 = ti * tile, m = std::min(tile, rows - q0);
      for (std::size_t grp = 0; grp < g.groups; ++grp) {
        if (lines) window_lines(pointers.data(), border.data(), x.data, zeros.data(), g, taps, q0, m);
        else window_pointers(pointers.data(), x.data, zeros.data(), g, taps, q0, m, grp * cg);
        indirect_product<T>(m, kg, per_row, run, pointers.data(), wt + grp * ldw * patch, ldw,
                            out.data + q0 * k + grp * kg, k, false, fused && e.bias ? e.bias + grp * kg : nullptr,
                            fused && e.relu);
      }
      if (!fused) finish_rows(out.data + q0 * k, m, k, e);
    }
  });
}

template <class T>
void indirect_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                      const conv_epilogue<T>& e) {
  const std::size_t ldw = padded_columns<T>(g.out_group());
  auto wt = scratch().take<T>(g.groups * g.taps() * g.in_group() * ldw);
  transpose_weights(w.data, g, wt.data(), ldw);
  indirect_product_forward(out, x, wt.data(), ldw, g, e);
}

// ---- Winograd F(2x2, 3x3) ---------------------------------------------------------------------------
// 3x3 windows, stride 1, dilation 1, one group, 2 ordered dims: each 2x2 block of outputs (a tile)
// comes from its 4x4 input patch d as A^T [(G w G^T) .* (B^T d B)] A (Lavin and Gray, "Fast
// Algorithms for Convolutional Neural Networks", 2016): per tile, input and output channel 16
// multiplies instead of 36. The 16 element-wise products summed over C are 16 GEMMs (tiles x C)
// (C x K) on the narrow kernel, for blocks of tiles whose transforms stay in L2; the input and
// output transforms are additions along channel runs. The sums run in another order than the
// direct conv's and pass through the transforms' roundings (halves: exact): the implementation
// test holds it to the same tolerance as the others. Chosen where measured faster (bench_cnn
// --cpu, Xeon model 167, against the narrow product and the gathered input gradient): (b) C = K =
// 64 on 56x56, forward 165-182 -> 287-311 effective GFLOP/s, input gradient 162 -> 300-325; (f)
// C = 32, K = 64 on 14x14, forward 159-171 -> 265-272, input gradient 158 -> 231-242; (g) C = K
// = 16 on 28x28 (medians of 9, against gathering), forward 128 -> 164, input gradient 126 -> 169,
// weight gradient even (160 / 158). The transforms cost per channel what the products save per
// channel pair, and a tile covers 2x2 outputs: so at least 16 channels summed over, and outputs
// of at least 4x4.
constexpr std::size_t winograd_min_channels = 16;

bool winograd_window(const conv_geometry& g) {
  return g.dims == 2 && g.groups == 1 && g.window[0] == 3 && g.window[1] == 3 && g.stride[0] == 1 &&
         g.stride[1] == 1 && g.dilation[0] == 1 && g.dilation[1] == 1;
}

template <class T>
bool winograd_applies(const conv_geometry& g) {
  return winograd_window(g) && g.in_channels >= winograd_min_channels && narrow_fits<T>(g.out_channels) &&
         g.out[0] >= 4 && g.out[1] >= 4;
}

// u (16 x C x K) = G w G^T for every (k, c), w laid out (K, 3, 3, C); G = [1 0 0; 1/2 1/2 1/2;
// 1/2 -1/2 1/2; 0 0 1].
template <class T>
void winograd_weights(const T* w, std::size_t c_n, std::size_t k_n, T* u) {
  const T half(0.5);
  parallel_chunks(k_n, 64 * c_n, [&](std::size_t lo, std::size_t hi) {  // (~5% of a call when serial)
    for (std::size_t k = lo; k < hi; ++k)
      for (std::size_t c = 0; c < c_n; ++c) {
        T h[4][3];  // G w
        for (std::size_t j = 0; j < 3; ++j) {
          const T w0 = w[(k * 9 + j) * c_n + c], w1 = w[(k * 9 + 3 + j) * c_n + c], w2 = w[(k * 9 + 6 + j) * c_n + c];
          h[0][j] = w0;
          h[1][j] = half * (w0 + w1 + w2);
          h[2][j] = half * (w0 - w1 + w2);
          h[3][j] = w2;
        }
        for (std::size_t r = 0; r < 4; ++r) {  // (G w) G^T
          const T row[4] = {h[r][0], half * (h[r][0] + h[r][1] + h[r][2]), half * (h[r][0] - h[r][1] + h[r][2]),
                            h[r][2]};
          for (std::size_t s = 0; s < 4; ++s) u[((r * 4 + s) * c_n + c) * k_n + k] = row[s];
        }
      }
  });
}

// The 2x2 output tiles of a Winograd conv and its input, in blocks of tiles whose transforms stay
// in L2. The input transform reads x in place, zeros where a patch reaches past the edge: a
// zero-padded copy per call cost a write and a read of the whole input ((f)'s input gradient:
// 3.2 MB read, 4.2 MB written).
template <class T>
class winograd_tiles {
 public:
  winograd_tiles(const T* x, const conv_geometry& g)
      : g_(g), x_(x), ty_n_((g.out[0] + 1) / 2), tx_n_((g.out[1] + 1) / 2), zeros_(scratch().take<T>(g.in_channels)) {
    std::fill_n(zeros_.data(), g.in_channels, T(0));
  }
  std::size_t count() const { return g_.batch * ty_n_ * tx_n_; }
  // Tiles per block: a block's transforms (16 x tiles x (C + K)) about half a MiB of floats, in
  // multiples of the narrow kernel's 12-row blocks.
  std::size_t block() const {
    return std::max<std::size_t>(12, (std::size_t{1} << 17) / (16 * (g_.in_channels + g_.out_channels)) / 12 * 12);
  }
  // Tiles [t0, t0 + nt) as a block of transforms.
  winograd_block block_of(std::size_t t0, std::size_t nt) const { return {t0, nt, block(), ty_n_, tx_n_}; }
  // v (16, block, C) = B^T d B for the block's tiles.
  void transform_inputs(const isa_passes<T>& passes, const winograd_block& b, T* v) const {
    passes.winograd_inputs(b, x_, g_.in[0], g_.in[1], g_.in_channels, g_.pad_low[0], g_.pad_low[1], zeros_.data(), v);
  }

 private:
  const conv_geometry& g_;
  const T* x_;
  std::size_t ty_n_, tx_n_;
  scratch_pool::lease<T> zeros_;  // C zeros: the channels of a position outside the input
};

// out = conv(x, w) then the epilogue, w already transformed into u (winograd_weights).
template <class T>
void winograd_product_forward(view<T> out, view<const T> x, const T* u, const conv_geometry& g,
                              const conv_epilogue<T>& e) {
  const std::size_t C = g.in_channels, K = g.out_channels, oh = g.out[0], ow = g.out[1];
  const winograd_tiles<T> tiles(x.data, g);
  const std::size_t block = tiles.block(), blocks = ceil_div(tiles.count(), block);
  const isa_passes<T>& passes = active_passes<T>();
  parallel_chunks(blocks, block * 16 * C * K, [&](std::size_t lo, std::size_t hi) {
    auto work = scratch().take<T>(16 * block * (C + K));
    T* v = work.data();                   // (16, block, C): B^T d B
    T* m = work.data() + 16 * block * C;  // (16, block, K): the products
    for (std::size_t bi = lo; bi < hi; ++bi) {
      const std::size_t t0 = bi * block, nt = std::min(block, tiles.count() - t0);
      const winograd_block b = tiles.block_of(t0, nt);
      tiles.transform_inputs(passes, b, v);
      for (std::size_t xi = 0; xi < 16; ++xi)
        narrow_product<T>(false, nt, K, C, v + xi * block * C, C, u + xi * C * K, K, m + xi * block * K, K, false);
      passes.winograd_outputs(b, m, K, oh, ow, e.bias, e.bias_size, e.relu, out.data);
    }
  });
}

template <class T>
void winograd_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                      const conv_epilogue<T>& e) {
  auto u = scratch().take<T>(16 * g.in_channels * g.out_channels);
  winograd_weights(w.data, g.in_channels, g.out_channels, u.data());
  winograd_product_forward(out, x, u.data(), g, e);
}

// The input gradient with stride 1 is the forward conv of g with the flipped kernel (see the
// gathered input gradient below), here on Winograd's tiles: K input channels, C output channels.
template <class T>
bool winograd_applies_input_grad(const conv_geometry& g) {
  return winograd_window(g) && g.pad_low[0] <= 2 && g.pad_low[1] <= 2 && g.out_channels >= winograd_min_channels &&
         narrow_fits<T>(g.in_channels) && g.in[0] >= 4 && g.in[1] >= 4;
}

template <class T>
void winograd_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  const std::size_t c_n = g.in_channels, k_n = g.out_channels;
  conv_geometry t = g;
  t.in = g.out;
  t.out = g.in;
  t.in_channels = k_n;
  t.out_channels = c_n;
  for (std::size_t d = 0; d < 2; ++d) t.pad_low[d] = 2 - g.pad_low[d];
  // The flipped kernel laid out as a forward's (C, 3, 3, K): wf[c, j'] = w[., flip(j'), c].
  auto wf = scratch().take<T>(w.size());
  for (std::size_t c = 0; c < c_n; ++c)
    for (std::size_t tap = 0; tap < 9; ++tap)
      for (std::size_t k = 0; k < k_n; ++k) wf.data()[(c * 9 + tap) * k_n + k] = w.data[(k * 9 + 8 - tap) * c_n + c];
  auto u = scratch().take<T>(16 * c_n * k_n);
  winograd_weights(wf.data(), k_n, c_n, u.data());
  winograd_product_forward<T>(dx, gr, u.data(), t, {});
}

// The weight gradient through the same tiles: the forward is linear in U = G w G^T, so
// dU = sum over tiles of (A dY A^T) .* (B^T d B) per channel pair, and dw = G^T dU G: per block of
// tiles 16 products V^T (C x tiles) dM (tiles x K) accumulated on the narrow kernel, in
// partial sums over ranges of tiles fixed by the sizes (added in order: results independent of
// the thread count). Outputs past the edge (a clipped tile's) count as dY = 0.
template <class T>
bool winograd_applies_weight_grad(const conv_geometry& g) {
  return winograd_applies<T>(g);
}

template <class T>
void winograd_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  const std::size_t C = g.in_channels, K = g.out_channels, oh = g.out[0], ow = g.out[1], size = 16 * C * K;
  const winograd_tiles<T> tiles(x.data, g);
  const std::size_t block = tiles.block(), count = tiles.count(), blocks = ceil_div(count, block);
  const std::size_t parts = std::min(blocks, partial_count(count, size, size * sizeof(T), block));  // whole blocks each
  auto partial = scratch().take<T>(parts * size + size);
  const isa_passes<T>& passes = active_passes<T>();
  parallel_chunks(parts, std::size_t{1} << 20, [&](std::size_t lo, std::size_t hi) {
    auto work = scratch().take<T>(16 * block * (C + K));
    T* v = work.data();                    // (16, block, C): B^T d B
    T* dm = work.data() + 16 * block * C;  // (16, block, K): A dY A^T
    for (std::size_t part = lo; part < hi; ++part) {
      T* du = partial.data() + part * size;  // (16, C, K)
      const std::size_t first = blocks * part / parts * block;
      const std::size_t last = std::min(count, blocks * (part + 1) / parts * block);
      for (std::size_t t0 = first; t0 < last; t0 += block) {
        const std::size_t nt = std::min(block, last - t0);
        const winograd_block b = tiles.block_of(t0, nt);
        tiles.transform_inputs(passes, b, v);
        passes.winograd_output_grads(b, gr.data, K, oh, ow, dm);
        for (std::size_t xi = 0; xi < 16; ++xi)
          narrow_product<T>(true, C, K, nt, v + xi * block * C, C, dm + xi * block * K, K, du + xi * C * K, K,
                            t0 != first);
      }
    }
  });
  T* du = partial.data() + parts * size;
  add_partials(du, partial.data(), parts, size);
  // dw = G^T dU G per (k, c), G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1].
  const T half(0.5);
  parallel_chunks(K, 64 * C, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t k = lo; k < hi; ++k)
      for (std::size_t c = 0; c < C; ++c) {
        T h[3][4];  // G^T dU
        for (std::size_t s = 0; s < 4; ++s) {
          const T u0 = du[((0 + s) * C + c) * K + k], u1 = du[((4 + s) * C + c) * K + k],
                  u2 = du[((8 + s) * C + c) * K + k], u3 = du[((12 + s) * C + c) * K + k];
          h[0][s] = u0 + half * (u1 + u2);
          h[1][s] = half * (u1 - u2);
          h[2][s] = half * (u1 + u2) + u3;
        }
        for (std::size_t i = 0; i < 3; ++i) {  // (G^T dU) G
          T* out = dw.data + (k * 9 + i * 3) * C + c;
          out[0] = h[i][0] + half * (h[i][1] + h[i][2]);
          out[C] = half * (h[i][1] - h[i][2]);
          out[2 * C] = half * (h[i][1] + h[i][2]) + h[i][3];
        }
      }
  });
}

// ---- input gradient as a gathered forward ------------------------------------------------------
// With stride 1, dx = conv_transpose(g, w) is itself a forward conv: g (N, m..., K) correlated with
// the flipped kernel w' (C, k..., K), w'[c, j'] = w[., flip(j'), c], padded low by d (k - 1) -
// pad_low so that output p reads g at p - d j + pad_low through tap j = flip(j'). That forward
// runs as gathered_forward: no packing of g rows (the phases' cost: a quarter of conv (f)'s input
// gradient), A read straight from a zero-padded copy of g in runs of K channels.
bool input_grad_is_a_forward(const conv_geometry& g) {
  if (g.groups != 1) return false;
  for (std::size_t d = 0; d < g.dims; ++d)
    if (g.stride[d] != 1 || g.pad_low[d] > g.dilation[d] * (g.window[d] - 1)) return false;
  return true;
}
template <class T>
bool gathers_input_grad(const conv_geometry& g) {
  return input_grad_is_a_forward(g) && narrow_fits<T>(g.in_channels);
}

// The forward conv that is g's input gradient (above): its geometry, and its weights, the flipped
// kernel as the narrow kernel reads it (rows (tap, k) of the window, columns c, ldw >= C apart,
// zeros past C) into wt.
template <class T>
conv_geometry input_grad_as_forward(const conv_geometry& g, const T* w, T* wt, std::size_t ldw) {
  const std::size_t c = g.in_channels, k = g.out_channels, taps_n = g.taps();
  conv_geometry t = g;
  t.in = g.out;
  t.out = g.in;
  t.in_channels = k;
  t.out_channels = c;
  for (std::size_t d = 0; d < g.dims; ++d) t.pad_low[d] = g.dilation[d] * (g.window[d] - 1) - g.pad_low[d];
  for_each_tap(g, [&](std::size_t tap, const per_dim&, std::size_t flipped) {
    for (std::size_t kk = 0; kk < k; ++kk) {
      T* row = wt + (tap * k + kk) * ldw;
      for (std::size_t ch = 0; ch < c; ++ch) row[ch] = w[(kk * taps_n + flipped) * c + ch];
      std::fill(row + c, row + ldw, T(0));
    }
  });
  return t;
}

template <class T>
void gathered_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  auto wt = scratch().take<T>(w.size());
  gathered_product_forward<T>(dx, gr, wt.data(), input_grad_as_forward(g, w.data, wt.data(), g.in_channels), {});
}

// The same forward on the indirect product: ahead of the gathered one from K = 64 on, as in the
// forward (indirect_forward). C need not fill whole vectors (its weights padded, indirect_fits):
// measured against phases, the only other choice then (one core, N = 64, 3x3, GFLOP/s): C = 24, K = 48 (an Inception block's)
// 140 / 74-102, C = 12, K = 40 106 / 76, C = 40, K = 64 155 / 115 (AMD EPYC Zen 5).
template <class T>
bool indirect_input_grad_applies(const conv_geometry& g) {
  return input_grad_is_a_forward(g) && indirect_fits<T>(g.in_channels) &&
         g.out_channels > max_gathered_forward_channels;
}

template <class T>
void indirect_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  const std::size_t ldw = padded_columns<T>(g.in_channels);
  auto wt = scratch().take<T>(g.taps() * g.out_channels * ldw);
  indirect_product_forward<T>(dx, gr, wt.data(), ldw, input_grad_as_forward(g, w.data, wt.data(), ldw), {});
}

// Per tile and group: pack the patches (or, `direct`, read a pointwise geometry's x in place),
// then one product, on the narrow kernel (`narrow`, for narrow_fits<T>(Kg)) or the packed GEMM.
template <class T>
void patch_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g, const conv_epilogue<T>& e,
                   bool direct, bool narrow) {
  const std::size_t rows = g.batch * g.out_positions(), k = g.out_channels;
  const std::size_t cg = g.in_group(), kg = g.out_group(), patch = g.taps() * cg;
  const std::size_t tile = tile_rows_for(patch), tiles = ceil_div(rows, tile);
  const auto taps = make_taps(g);
  auto wt = scratch().take<T>(narrow ? w.size() : 0);
  if (narrow) transpose_weights(w.data, g, wt.data(), kg);
  const bool fused = narrow && epilogue_in_registers(e, k);
  parallel_chunks(tiles, tile * patch * k, [&](std::size_t lo, std::size_t hi) {
    auto buf = scratch().take<T>(direct ? 0 : tile * patch);
    for (std::size_t ti = lo; ti < hi; ++ti) {
      const std::size_t q0 = ti * tile, m = std::min(tile, rows - q0);
      for (std::size_t grp = 0; grp < g.groups; ++grp) {
        const T* a = direct ? x.data + q0 * g.in_channels + grp * cg : buf.data();
        const std::size_t lda = direct ? g.in_channels : patch;
        if (!direct) pack_patches(buf.data(), x.data, g, taps, q0, m, grp * cg, cg);
        T* c = out.data + q0 * k + grp * kg;
        if (narrow)
          narrow_product<T>(false, m, kg, patch, a, lda, wt.data() + grp * kg * patch, kg, c, k, false,
                            fused && e.bias ? e.bias + grp * kg : nullptr, fused && e.relu);
        else gemm_serial<T>(gemm_dims{false, true, m, kg, patch, lda, patch, k}, a, w.data + grp * kg * patch, T(0), c);
      }
      if (!fused) finish_rows(out.data + q0 * k, m, k, e);
    }
  });
}

template <class T>
void pointwise_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g, const conv_epilogue<T>& e) {
  patch_forward(out, x, w, g, e, true, narrow_fits<T>(g.out_group()));
}
template <class T>
void packed_gemm_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                         const conv_epilogue<T>& e) {
  patch_forward(out, x, w, g, e, false, false);
}

// ---- input-gradient implementations --------------------------------------------------------------

// The gather form by phases (see the file comment); `direct` (a pointwise geometry only): the
// products read g in place instead of packing its rows.
template <class T>
void phase_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g, bool direct) {
  const std::size_t c = g.in_channels, k = g.out_channels, cg = g.in_group(), kg = g.out_group();
  const std::size_t taps_n = g.taps(), out_pos = g.out_positions();

  // Phases: the product of the strides, each with its grid of input positions and its taps.
  std::size_t phases = 1;
  for (std::size_t i = 0; i < g.dims; ++i) phases *= g.stride[i];
  auto info_buf = scratch().take<phase_info>(phases);
  auto tap_list = scratch().take<std::size_t>(taps_n);
  auto shift = scratch().take<index>(taps_n * g.dims);  // per phase-sorted tap: shift_i
  auto shift_rel = scratch().take<index>(taps_n);        // and sum_i shift_i * (output stride of i)
  phase_info* info = info_buf.data();
  const auto taps = make_taps(g);
  std::size_t next_tap = 0, next_item = 0, w_size = 0;
  bool strided = phases > 1, zero_phases = false;
  for (std::size_t ph = 0; ph < phases; ++ph) {
    phase_info& pi = info[ph];
    pi = phase_info{};
    per_dim phase{};
    for (std::size_t i = g.dims, rem = ph; i-- > 0;) {
      phase[i] = rem % g.stride[i];
      rem /= g.stride[i];
    }
    std::size_t grid = 1;
    for (std::size_t i = 0; i < g.dims; ++i) {
      const std::size_t s = g.stride[i];
      pi.first[i] = (phase[i] + s - g.pad_low[i] % s) % s;  // p = phase - pad (mod s)
      pi.count[i] = pi.first[i] < g.in[i] ? ceil_div(g.in[i] - pi.first[i], s) : 0;
      grid *= pi.count[i];
    }
    pi.tap_begin = next_tap;
    for (std::size_t t = 0; t < taps_n; ++t) {
      bool in_phase = true;
      for (std::size_t i = 0; i < g.dims && in_phase; ++i) {
        // offset = d j - pad, so d j = offset + pad; it must equal the phase mod s
        const std::size_t dj = std::size_t(taps.at(t)[i] + index(g.pad_low[i]));
        in_phase = dj % g.stride[i] == phase[i];
      }
      if (in_phase) tap_list.data()[next_tap++] = t;
    }
    pi.tap_count = next_tap - pi.tap_begin;
    for (std::size_t tt = pi.tap_begin; tt < next_tap; ++tt) {
      index rel = 0;
      for (std::size_t i = 0; i < g.dims; ++i) {
        const index dj = taps.at(tap_list.data()[tt])[i] + index(g.pad_low[i]);
        const index sh = (index(pi.first[i] + g.pad_low[i]) - dj) / index(g.stride[i]);
        shift.data()[tt * g.dims + i] = sh;
        pi.shift_min[i] = tt == pi.tap_begin ? sh : std::min(pi.shift_min[i], sh);
        pi.shift_max[i] = tt == pi.tap_begin ? sh : std::max(pi.shift_max[i], sh);
        rel = rel * index(g.out[i]) + sh;
      }
      shift_rel.data()[tt] = rel;
    }
    pi.rows = g.batch * grid;
    pi.tile_rows = tile_rows_for(std::max<std::size_t>(pi.tap_count * kg, 1));
    // A phase no tap reaches (a 1x1 window's, but one phase of stride^d) is zeros: written below
    // with all of dx at once, not row by row.
    pi.items = pi.tap_count == 0 ? 0 : ceil_div(pi.rows, pi.tile_rows);
    zero_phases = zero_phases || pi.tap_count == 0;
    pi.item_begin = next_item;
    next_item += pi.items;
    pi.w_offset = w_size;
    w_size += pi.tap_count * k * cg;
  }

  // The weights rearranged per phase and group: (phase taps * Kg) x Cg, row (tt, co) = w[co, tap].
  auto wr_buf = scratch().take<T>(w_size);
  T* wr = wr_buf.data();
  for (std::size_t ph = 0; ph < phases; ++ph) {
    const phase_info& pi = info[ph];
    for (std::size_t grp = 0; grp < g.groups; ++grp)
      for (std::size_t tt = 0; tt < pi.tap_count; ++tt)
        for (std::size_t co = 0; co < kg; ++co) {
          const std::size_t tap = tap_list.data()[pi.tap_begin + tt];
          std::memcpy(wr + pi.w_offset + ((grp * pi.tap_count + tt) * kg + co) * cg,
                      w.data + ((grp * kg + co) * taps_n + tap) * cg, cg * sizeof(T));
        }
  }

  std::size_t max_tile = 0, max_width = 0, max_taps = 0;
  for (std::size_t ph = 0; ph < phases; ++ph) {
    max_tile = std::max(max_tile, info[ph].tile_rows);
    max_width = std::max(max_width, info[ph].tap_count * kg);
    max_taps = std::max(max_taps, info[ph].tap_count);
  }
  // With Cg a narrow width the products read g's rows where they are, through a pointer per row
  // and phase tap (indirect_product; (c), stride 2: 165 -> 178 GFLOP/s on one core); else the
  // rows are packed for the GEMM.
  const bool indirect = !direct && narrow_fits<T>(cg);
  auto zeros = scratch().take<T>(kg);
  std::fill_n(zeros.data(), kg, T(0));
  if (zero_phases) fill<T>(dx, T(0));
  per_dim dx_step{};  // dx's element strides per spatial dim
  for (std::size_t i = g.dims, step = c; i-- > 0; step *= g.in[i]) dx_step[i] = step;
  const std::size_t cost = max_tile * max_width * c;
  parallel_chunks(next_item, std::max<std::size_t>(cost, 1), [&](std::size_t lo, std::size_t hi) {
    auto pointers = scratch().take<const T*>(direct ? 0 : max_tile * max_taps);
    auto pack = scratch().take<T>(direct || indirect ? 0 : max_tile * max_width);
    auto result = scratch().take<T>(strided && !indirect ? max_tile * cg : 0);
    auto offsets = scratch().take<std::size_t>(strided ? max_tile : 0);
    auto rows_out = scratch().take<T*>(strided && indirect ? max_tile : 0);
    std::size_t ph = 0;
    for (std::size_t item = lo; item < hi; ++item) {
      while (item >= info[ph].item_begin + info[ph].items) ++ph;
      const phase_info& pi = info[ph];
      const std::size_t r0 = (item - pi.item_begin) * pi.tile_rows, m = std::min(pi.tile_rows, pi.rows - r0);
      const std::size_t width = pi.tap_count * kg;
      for (std::size_t grp = 0; grp < g.groups; ++grp) {
        // The tile's rows of g: per row, per phase tap, the Kg channels of the output it feeds
        // (zeros where that output is outside g).
        if (!direct) {
          const T** dst = pointers.data();
          grid_cursor cur(g.dims, pi.count, r0);
          const index* sh = shift.data() + pi.tap_begin * g.dims;
          const index* rel = shift_rel.data() + pi.tap_begin;
          for (std::size_t r = 0; r < m; ++r, cur.next()) {
            const T* gb = gr.data + cur.batch * out_pos * k + grp * kg;
            index base = 0;  // sum_i t_i * (output stride of i)
            bool interior = true;
            for (std::size_t i = 0; i < g.dims; ++i) {
              const index t = index(cur.at[i]);
              interior = interior && t + pi.shift_min[i] >= 0 && t + pi.shift_max[i] < index(g.out[i]);
              base = base * index(g.out[i]) + t;
            }
            if (interior) {  // every tap feeds an output: no bounds checks
              for (std::size_t tt = 0; tt < pi.tap_count; ++tt) *dst++ = gb + std::size_t(base + rel[tt]) * k;
              continue;
            }
            for (std::size_t tt = 0; tt < pi.tap_count; ++tt) {
              index o = 0;
              bool inside = true;
              for (std::size_t i = 0; i < g.dims && inside; ++i) {
                const index oi = index(cur.at[i]) + sh[tt * g.dims + i];
                inside = oi >= 0 && oi < index(g.out[i]);
                o = o * index(g.out[i]) + oi;
              }
              *dst++ = inside ? gb + std::size_t(o) * k : zeros.data();
            }
          }
          if (!indirect)
            for (std::size_t e = 0; e < m * pi.tap_count; ++e) copy_run(pack.data() + e * kg, pointers.data()[e], kg);
        }
        // Unstrided, the phase's rows are dx's rows, written in place. Strided, they are scattered
        // over dx: the indirect product writes them there through a pointer per row (against a
        // scratch tile and a copy: (c)'s forward+backward 177 -> 182 GFLOP/s on one core, 315 ->
        // 328 on two, ABBA-ordered runs on the Zen 5), the packed one into scratch, copied after.
        const T* wg = wr + pi.w_offset + grp * width * cg;
        if (strided && indirect) {
          grid_offsets(g.dims, pi.count, g.stride, pi.first, dx_step, g.in_positions() * c, r0, m, offsets.data());
          for (std::size_t r = 0; r < m; ++r) rows_out.data()[r] = dx.data + offsets.data()[r] + grp * cg;
          indirect_product_to_rows<T>(m, cg, pi.tap_count, kg, pointers.data(), wg, cg, rows_out.data());
          continue;
        }
        T* res = strided ? result.data() : dx.data + r0 * c + grp * cg;
        const std::size_t ldr = strided ? cg : c;
        if (indirect) indirect_product<T>(m, cg, pi.tap_count, kg, pointers.data(), wg, cg, res, ldr, false);
        else product<T>(false, m, cg, width, direct ? gr.data + r0 * k + grp * kg : pack.data(), direct ? k : width,
                        wg, cg, res, ldr);
        if (strided) {  // the phase's rows to their places in dx
          grid_offsets(g.dims, pi.count, g.stride, pi.first, dx_step, g.in_positions() * c, r0, m, offsets.data());
          for (std::size_t r = 0; r < m; ++r) copy_short_run(dx.data + offsets.data()[r] + grp * cg, res + r * cg, cg);
        }
      }
    }
  });
}

template <class T>
void pointwise_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  phase_input_grad(dx, gr, w, g, true);
}
template <class T>
void phases_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  phase_input_grad(dx, gr, w, g, false);
}

// ---- input gradient of a 2-d stride-2 conv, pairs of columns ---------------------------------------
// The phases above split dx's positions four ways for stride (2, 2); with a few channels C each
// phase's product is one vector wide (load-bound, 73 GFLOP/s on (h)). Here only the rows are split
// by phase: the two columns 2u + phi - pad (phi = 0, 1) of a row are one row of the product, 2C
// wide, contiguous in dx. Column tap t reaches column phase t mod 2 from output column u - t / 2,
// so such a row reads g at the window rows of its row phase and the columns u - q, q = 0 ..
// (kx - 1) / 2, through pointers (zeros outside g), times the weights rearranged per row phase as
// ((row tap, q, k) x (phi, c)), zero where 2q + phi is no tap: with a 3-wide window a quarter of
// the multiplies are by zeros, for products twice as wide. For C of half a vector or one (one
// core, N = 64, Xeon model 167, against the phases): 3x3 on 28x28, C = 8, K = 32 31 -> 67
// GFLOP/s; C = 16, K = 16 52 -> 73, K = 32 ((h)) 78 -> 95; 56x56, K = 64 103 -> 116; a 4x4 window
// (no zeros) 102 -> 136. At C = 32 the phases' product is two vectors wide already and ahead
// (137 against 118).
template <class T>
bool pairs_input_grad_applies(const conv_geometry& g) {
  return g.dims == 2 && g.groups == 1 && g.stride[0] == 2 && g.stride[1] == 2 && g.dilation[0] == 1 &&
         g.dilation[1] == 1 && g.window[0] >= 2 && g.window[1] >= 2 && narrow_fits<T>(2 * g.in_channels) &&
         g.in_channels * sizeof(T) <= 64;
}

template <class T>
void pairs_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  const std::size_t c = g.in_channels, k = g.out_channels, h = g.in[0], wd = g.in[1], oh = g.out[0], ow = g.out[1];
  const std::size_t ky = g.window[0], kx = g.window[1], pad_y = g.pad_low[0], pad_x = g.pad_low[1];
  const std::size_t offsets = (kx - 1) / 2 + 1, width = 2 * c;
  // Pair u covers columns 2u - pad_x and 2u + 1 - pad_x; the pairs that cover a column of dx.
  const std::size_t u0 = pad_x / 2, u1 = (wd - 1 + pad_x) / 2, pairs = u1 - u0 + 1;
  auto zeros = scratch().take<T>(k);
  std::fill_n(zeros.data(), k, T(0));
  for (std::size_t phase = 0; phase < 2; ++phase) {
    // Rows p with p + pad_y = phase (mod 2), taps ty = phase (mod 2).
    const std::size_t first = (phase + 2 - pad_y % 2) % 2;
    const std::size_t count = first < h ? (h - first + 1) / 2 : 0, row_taps = (ky - phase + 1) / 2;
    const std::size_t rows = g.batch * count * pairs, depth = row_taps * offsets;
    if (rows == 0) continue;
    const per_dim grid{count, pairs};
    auto wr = scratch().take<T>(depth * k * width);
    for (std::size_t i = 0; i < row_taps; ++i)
      for (std::size_t q = 0; q < offsets; ++q)
        for (std::size_t kk = 0; kk < k; ++kk)
          for (std::size_t phi = 0; phi < 2; ++phi) {
            T* dst = wr.data() + ((i * offsets + q) * k + kk) * width + phi * c;
            const std::size_t ty = phase + 2 * i, tx = 2 * q + phi;
            if (tx < kx) std::copy_n(w.data + ((kk * ky + ty) * kx + tx) * c, c, dst);
            else std::fill_n(dst, c, T(0));
          }
    const std::size_t tile = tile_rows_for(depth * k);
    parallel_chunks(ceil_div(rows, tile), tile * depth * k * width, [&](std::size_t lo, std::size_t hi) {
      auto pointers = scratch().take<const T*>(tile * depth);
      auto result = scratch().take<T>(tile * width);
      auto lines = scratch().take<const T*>(row_taps);  // per row tap, g's output row (or none)
      // f(n, y, p, count, r): the tile's rows r .. r + count - 1 are the pairs p .. p + count - 1
      // of dx's row y in batch item n (rows in order: batch item, row of the phase, pair).
      auto for_each_line = [&](std::size_t r0, std::size_t m, auto&& f) {
        for_each_line_segment(2, grid, r0, m, [&](const grid_cursor& cur, std::size_t count, std::size_t r) {
          f(cur.batch, first + 2 * cur.at[0], cur.at[1], count, r);
        });
      };
      for (std::size_t ti = lo; ti < hi; ++ti) {
        const std::size_t r0 = ti * tile, m = std::min(tile, rows - r0);
        for_each_line(r0, m, [&](std::size_t n, std::size_t y, std::size_t p, std::size_t count, std::size_t r) {
          for (std::size_t i = 0; i < row_taps; ++i) {
            const index oy2 = index(y + pad_y) - index(phase + 2 * i);  // 2 * the output row
            lines.data()[i] = oy2 >= 0 && oy2 / 2 < index(oh) ? gr.data + (n * oh + std::size_t(oy2 / 2)) * ow * k
                                                             : nullptr;
          }
          const T** dst = pointers.data() + r * depth;
          for (std::size_t u = u0 + p; u < u0 + p + count; ++u)
            for (std::size_t i = 0; i < row_taps; ++i) {
              const T* line = lines.data()[i];
              for (std::size_t q = 0; q < offsets; ++q) {
                const index ox = index(u) - index(q);
                *dst++ = line && ox >= 0 && ox < index(ow) ? line + std::size_t(ox) * k : zeros.data();
              }
            }
        });
        indirect_product<T>(m, width, depth, k, pointers.data(), wr.data(), width, result.data(), width, false);
        // Consecutive pairs are consecutive in dx: a line's pairs are one copy, but for the
        // columns of its first and last pair outside dx.
        for_each_line(r0, m, [&](std::size_t n, std::size_t y, std::size_t p, std::size_t count, std::size_t r) {
          const index x0 = index(2 * (u0 + p)) - index(pad_x);  // the first pair's first column
          const std::size_t skip = x0 < 0 ? 1 : 0;
          const std::size_t end = std::size_t(std::min<index>(x0 + index(2 * count), index(wd)) - x0);
          std::copy(result.data() + r * width + skip * c, result.data() + r * width + end * c,
                    dx.data + ((n * h + y) * wd + std::size_t(x0 + index(skip))) * c);
        });
      }
    });
  }
}

// ---- weight-gradient implementations -------------------------------------------------------------

// The reduction dw = sum over rows of g_row^T patch_row as partial_count() partial sums over
// ranges of rows: accumulate(acc, q_begin, q_end) sums rows [q_begin, q_end) into acc, which is
// laid out as dw, or, with `transposed` (the narrow kernel's dw_g^T = patches^T g), as
// (groups, patch, Kg). The partials are then added in order, and a transposed sum is turned into dw.
template <class T, class Accumulate>
void weight_grad_partials(view<T> dw, const conv_geometry& g, std::size_t tile, bool transposed,
                          Accumulate&& accumulate) {
  const std::size_t rows = g.batch * g.out_positions(), kg = g.out_group(), patch = g.taps() * g.in_group();
  const std::size_t size = dw.size();
  const std::size_t parts = partial_count(rows, patch * g.out_channels, size * sizeof(T), tile);
  auto buf = scratch().take<T>(parts > 1 ? parts * size : 0);
  auto sum = scratch().take<T>(transposed ? size : 0);
  parallel_chunks(parts, std::size_t{1} << 20, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t part = lo; part < hi; ++part) {
      T* acc = parts > 1 ? buf.data() + part * size : transposed ? sum.data() : dw.data;
      accumulate(acc, rows * part / parts, rows * (part + 1) / parts);
    }
  });
  if (parts > 1) add_partials(transposed ? sum.data() : dw.data, buf.data(), parts, size);
  if (transposed)  // (groups, patch, Kg) -> (groups, Kg, patch)
    permute(view<T>{dw.data, shape{g.groups, kg, patch}}, view<const T>{sum.data(), shape{g.groups, patch, kg}},
            axis_values{0, 2, 1});
}

// dw (K x taps C, its own layout) = dY^T (K x positions) times the patches (positions x taps C),
// the patches gathered from the zero-padded input by row (window) and column (tap, channel)
// offsets: whole vectors of channels, each used for up to 8 output channels, where the gathered
// product below broadcasts one input element per (tap, channel) row. Against the best of the
// others (medians of 3, one core, Xeon model 167): (e) 98 -> 181 GFLOP/s, (d) 150 -> 174, (c)
// 151 -> 157; Winograd stays ahead where it applies ((f) 269 against 179). Strided with 16 to 31
// channels too where the windows reach every input position, so that none of the padded copy is
// wasted: the small ResNet's downsampling conv (h), C = 16 -> 32 3x3 stride 2, 127 -> 144-157
// against `narrow` (one core, AMD EPYC Zen 5); not its 1x1 stride-2 shortcut (i) (59 against 88).
bool windows_reach_every_position(const conv_geometry& g) {
  for (std::size_t d = 0; d < g.dims; ++d)
    if (g.dilation[d] * (g.window[d] - 1) + 1 < g.stride[d]) return false;
  return true;
}
template <class T>
bool gathers_weight_grad_columns(const conv_geometry& g) {
  return g.groups == 1 && g.in_channels * sizeof(T) % 64 == 0 &&
         (gathering_pays_for_weight_grad(g) || windows_reach_every_position(g));
}
template <class T>
bool gathers_weight_grad(const conv_geometry& g) {
  return gathers_patches<T>(g) && gathering_pays_for_weight_grad(g);
}

// The weight gradient over tiles of output positions [q0, q0 + m): product(acc, xs, co, ro, q0, m,
// accumulate) adds one tile's terms, its windows at offsets ro into xs, x's zero-padded copy (co:
// the (tap, channel) offsets in a window). Where slabs pay (padded_input::slabs()), xs is
// the stretch of the copy that the tile's windows read, written per tile into cache and read from
// it: (c)'s dW 13.1 -> 10.5 ms on one core against a copy of all of x first, written to memory and
// read back (medians of 3 alternated runs, AMD EPYC Zen 5; bench_cnn --impl: 175 -> 184 GFLOP/s).
template <class T, class Product>
void gathered_weight_grad_tiles(view<T> dw, view<const T> x, const conv_geometry& g, bool transposed,
                                Product&& product) {
  const std::size_t tile = tile_rows_for(g.taps() * g.in_channels, std::size_t{1} << 17);
  const padded_input<T> xp(x.data, g, tile);
  const bool slabs = xp.slabs();
  const std::size_t span = slabs ? xp.span_bound(tile) : 0, window = xp.window_span();
  weight_grad_partials(dw, g, tile, transposed, [&](T* acc, std::size_t q_begin, std::size_t q_end) {
    auto ro = scratch().take<std::size_t>(tile);
    auto slab = scratch().take<T>(span);
    for (std::size_t q0 = q_begin; q0 < q_end; q0 += tile) {
      const std::size_t m = std::min(tile, q_end - q0);
      xp.rows(q0, m, ro.data());
      if (slabs) {
        const std::size_t first = ro.data()[0];
        xp.fill(slab.data(), first, ro.data()[m - 1] + window);
        for (std::size_t r = 0; r < m; ++r) ro.data()[r] -= first;
      }
      product(acc, slabs ? slab.data() : xp.data(), xp.columns(), ro.data(), q0, m, q0 != q_begin);
    }
  });
}

template <class T>
void gathered_columns_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  const std::size_t k = g.out_channels, patch = g.taps() * g.in_channels;
  gathered_weight_grad_tiles(dw, x, g, false, [&](T* acc, const T* xs, const std::size_t* co, const std::size_t* ro,
                                                  std::size_t q0, std::size_t m, bool accumulate) {
    gather_columns_product<T>(k, patch, m, gr.data + q0 * k, k, xs, ro, co, acc, patch, accumulate);
  });
}

// sum = A^T g with A gathered: rows (tap, channel), summed over output positions.
template <class T>
void gathered_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  const std::size_t k = g.out_channels, patch = g.taps() * g.in_channels;
  gathered_weight_grad_tiles(dw, x, g, true, [&](T* acc, const T* xs, const std::size_t* co, const std::size_t* ro,
                                                 std::size_t q0, std::size_t m, bool accumulate) {
    gather_product<T>(patch, k, m, xs, co, ro, 1, gr.data + q0 * k, k, acc, k, accumulate);
  });
}

// Per tile and group: pack the patches (or, `direct`, read a pointwise geometry's x in place),
// then accumulate dw_g^T = patches^T g on the narrow kernel (`narrow`, for narrow_fits<T>(Kg)),
// else dw_g = g^T patches on the packed GEMM.
template <class T>
void patch_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g, bool direct,
                       bool narrow) {
  const std::size_t k = g.out_channels, cg = g.in_group(), kg = g.out_group(), patch = g.taps() * cg;
  // The narrow kernel holds a block of dw in registers over a tile's rows and streams the tile's
  // patches and g rows past it: tiles of 32-64 rows keep them in L1 and L2 (bench_cnn --cpu, Xeon
  // model 167, dW of (b), (c), (d), (f): 126-134 -> 139-148 GFLOP/s per core against tiles of 128K
  // elements; (f) on 2 threads 1.86 -> 1.70 ms).
  const std::size_t tile = tile_rows_for(patch, narrow ? std::size_t{1} << 14 : std::size_t{1} << 17);
  const auto taps = make_taps(g);
  weight_grad_partials(dw, g, tile, narrow, [&](T* acc, std::size_t q_begin, std::size_t q_end) {
    auto pack = scratch().take<T>(direct ? 0 : tile * patch);
    for (std::size_t q0 = q_begin; q0 < q_end; q0 += tile) {
      const std::size_t m = std::min(tile, q_end - q0);
      for (std::size_t grp = 0; grp < g.groups; ++grp) {
        const T* p = direct ? x.data + q0 * g.in_channels + grp * cg : pack.data();
        const std::size_t ldp = direct ? g.in_channels : patch;
        if (!direct) pack_patches(pack.data(), x.data, g, taps, q0, m, grp * cg, cg);
        const T* gq = gr.data + q0 * k + grp * kg;
        T* a = acc + grp * kg * patch;
        if (narrow) product<T>(true, patch, kg, m, p, ldp, gq, k, a, kg, q0 != q_begin);
        else gemm_serial<T>(gemm_dims{true, false, kg, patch, m, k, ldp, patch}, gq, p, q0 == q_begin ? T(0) : T(1), a);
      }
    }
  });
}

template <class T>
void pointwise_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  patch_weight_grad(dw, x, gr, g, true, narrow_fits<T>(g.out_group()));
}
template <class T>
void narrow_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  patch_weight_grad(dw, x, gr, g, false, true);
}
template <class T>
void packed_gemm_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  patch_weight_grad(dw, x, gr, g, false, false);
}

// ---- the implementation lists ------------------------------------------------------------------
// Per direction, in the order the default dispatch tries them; it runs the first whose applies()
// holds. applies() states where an implementation is right and was measured to beat the entries
// after it; the entries before it are excluded by the order alone, so each can also be run by name
// on any geometry it accepts (to test it against the reference, or to time it against the others).
// The reference applies to everything; packed_gemm and phases do too, so it is never the default.

template <class Run>
using conv_implementation = implementation<bool (*)(const conv_geometry&), Run>;

template <class T>
using forward_run = void (*)(view<T>, view<const T>, view<const T>, const conv_geometry&, const conv_epilogue<T>&);
template <class T>  // input gradient (dx, g, w) and weight gradient (dw, x, g)
using gradient_run = void (*)(view<T>, view<const T>, view<const T>, const conv_geometry&);

bool always(const conv_geometry&) { return true; }
// Kg need not fill whole vectors either, against packed_gemm (one core, N = 64, 14x14, 3x3,
// GFLOP/s): C = 12, K = 40 122 / 84, C = 48, K = 24 141 / 74-100, C = 48, K = 40 159 / 91, C = 16,
// K = 8 (28x28) 44 / 44 (AMD EPYC Zen 5).
template <class T>
bool indirect_fits_out_group(const conv_geometry& g) {
  return indirect_fits<T>(g.out_group());
}

// The weight gradient's narrow product runs a column block (256 bytes) at a time, reading the
// patches again per block; from two blocks on the packed GEMM is ahead: (c), K = 128, 142 -> 152
// GFLOP/s per core (medians of 5, Xeon model 167; at K = 64, (d), the two are even).
template <class T>
bool narrow_weight_grad_fits(const conv_geometry& g) {
  return narrow_fits<T>(g.out_group()) && g.out_group() * sizeof(T) <= 256;
}

template <class T>
constexpr conv_implementation<forward_run<T>> forward_list[] = {
    {"depthwise", is_depthwise, depthwise_forward<T>},
    {"pointwise", is_pointwise, pointwise_forward<T>},
    {"winograd", winograd_applies<T>, winograd_forward<T>},
    {"direct", direct_applies<T>, direct_forward<T>},
    {"gathered", gathers_forward<T>, gathered_forward<T>},
    {"indirect", indirect_fits_out_group<T>, indirect_forward<T>},
    {"packed_gemm", always, packed_gemm_forward<T>},
    {"reference", always, reference_conv_forward<T>},
};

// Dot products along g's channels lose to the indirect input gradient from 8 channels on, where
// that applies (one core, N = 64, 3x3, K = 48 or 40, GFLOP/s: C = 4 61 / 35, C = 6 63 / 54, C = 8
// 70 / 72, C = 12 20 / 106; AMD EPYC Zen 5).
template <class T>
bool few_channel_dots_applies(const conv_geometry& g) {
  return dots_into_few_channels<T>(g) && !(g.in_channels >= 8 && indirect_input_grad_applies<T>(g));
}

template <class T>
constexpr conv_implementation<gradient_run<T>> input_grad_list[] = {
    {"depthwise", is_depthwise, depthwise_input_grad<T>},
    {"few_channel_dots", few_channel_dots_applies<T>, few_channel_input_grad<T>},
    {"pointwise", is_pointwise, pointwise_input_grad<T>},
    {"winograd", winograd_applies_input_grad<T>, winograd_input_grad<T>},
    {"indirect", indirect_input_grad_applies<T>, indirect_input_grad<T>},
    {"gathered", gathers_input_grad<T>, gathered_input_grad<T>},
    {"pairs", pairs_input_grad_applies<T>, pairs_input_grad<T>},
    {"phases", always, phases_input_grad<T>},
    {"reference", always, reference_conv_input_grad<T>},
};

template <class T>
constexpr conv_implementation<gradient_run<T>> weight_grad_list[] = {
    {"depthwise", is_depthwise, depthwise_weight_grad<T>},
    {"pointwise", is_pointwise, pointwise_weight_grad<T>},
    {"winograd", winograd_applies_weight_grad<T>, winograd_weight_grad<T>},
    {"gathered_columns", gathers_weight_grad_columns<T>, gathered_columns_weight_grad<T>},
    {"gathered", gathers_weight_grad<T>, gathered_weight_grad<T>},
    {"narrow", narrow_weight_grad_fits<T>, narrow_weight_grad<T>},
    {"packed_gemm", always, packed_gemm_weight_grad<T>},
    {"reference", always, reference_conv_weight_grad<T>},
};

// f(list) with direction d's list.
template <class T, class F>
decltype(auto) with_list(conv_direction d, F&& f) {
  switch (d) {
    case conv_direction::forward: return f(forward_list<T>);
    case conv_direction::input_grad: return f(input_grad_list<T>);
    case conv_direction::weight_grad: break;
  }
  return f(weight_grad_list<T>);
}

// How errors name direction d's list, e.g. "conv forward".
std::string list_name(conv_direction d) { return fmt::format("conv {}", conv_direction_name(d)); }

// Direction d's implementation `name` in `list`, which must apply to g.
template <class List>
const auto& conv_applying(const List& list, conv_direction d, std::string_view name, const conv_geometry& g) {
  return applying(list, list_name(d), name, [&] { return to_string(g); }, g);
}

// The sums of no terms (no channels, no taps, no output positions) are zero whatever the
// implementation; these run before it so that none has to handle them.
template <class T>
void run_forward(forward_run<T> run, view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                 const conv_epilogue<T>& e) {
  if (out.size() == 0) return;
  if (g.in_group() == 0 || g.taps() == 0) {
    std::fill_n(out.data, out.size(), T(0));
    finish_rows(out.data, g.batch * g.out_positions(), g.out_channels, e);
    return;
  }
  run(out, x, w, g, e);
}

template <class T>
void run_input_grad(gradient_run<T> run, view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  if (dx.size() == 0) return;
  if (g.out_group() == 0 || g.taps() == 0 || g.out_positions() == 0) {
    std::fill_n(dx.data, dx.size(), T(0));
    return;
  }
  run(dx, gr, w, g);
}

template <class T>
void run_weight_grad(gradient_run<T> run, view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  if (dw.size() == 0) return;
  if (g.batch * g.out_positions() == 0 || g.in_group() == 0) {
    std::fill_n(dw.data, dw.size(), T(0));
    return;
  }
  run(dw, x, gr, g);
}

}  // namespace

template <class T>
void conv_forward(view<T> out, view<const T> x, view<const T> w, const conv_geometry& g, const conv_epilogue<T>& e) {
  run_forward(first_applying(forward_list<T>, g).run, out, x, w, g, e);
}

template <class T>
void conv_bias_relu(view<T> out, view<const T> x, view<const T> w, view<const T> b, const conv_geometry& g) {
  const std::size_t positions = g.batch * g.out_positions();
  if (out.size() == positions * g.out_channels)
    return conv_forward<T>(out, x, w, g, {.bias = b.data, .bias_size = b.size(), .relu = true});
  shape zs = out.shape;
  zs[zs.rank() - 1] = g.out_channels;
  auto z = scratch().take<T>(positions * g.out_channels);
  conv_forward<T>(view<T>{z.data(), zs}, x, w, g);
  binary<T>(binary_kind::add_relu, out, view<const T>{z.data(), zs}, b);
}

template <class T>
void conv_input_grad(view<T> dx, view<const T> gr, view<const T> w, const conv_geometry& g) {
  run_input_grad(first_applying(input_grad_list<T>, g).run, dx, gr, w, g);
}

template <class T>
void conv_weight_grad(view<T> dw, view<const T> x, view<const T> gr, const conv_geometry& g) {
  run_weight_grad(first_applying(weight_grad_list<T>, g).run, dw, x, gr, g);
}

// ---- choosing an implementation by name (tests and benchmarks) ----------------------------------

const char* conv_direction_name(conv_direction d) {
  switch (d) {
    case conv_direction::forward: return "forward";
    case conv_direction::input_grad: return "input_grad";
    case conv_direction::weight_grad: break;
  }
  return "weight_grad";
}

std::vector<std::string_view> conv_implementations(conv_direction d) {
  return with_list<float>(d, [](const auto& list) { return implementation_names(list); });
}

template <class T>
bool conv_applies(conv_direction d, std::string_view name, const conv_geometry& g) {
  return with_list<T>(d, [&](const auto& list) { return named(list, list_name(d), name).applies(g); });
}

template <class T>
std::string_view conv_chosen(conv_direction d, const conv_geometry& g) {
  return with_list<T>(d, [&](const auto& list) { return first_applying(list, g).name; });
}

template <class T>
void conv_forward_with(std::string_view name, view<T> out, view<const T> x, view<const T> w, const conv_geometry& g,
                       const conv_epilogue<T>& e) {
  run_forward(conv_applying(forward_list<T>, conv_direction::forward, name, g).run, out, x, w, g, e);
}

template <class T>
void conv_input_grad_with(std::string_view name, view<T> dx, view<const T> gr, view<const T> w,
                          const conv_geometry& g) {
  run_input_grad(conv_applying(input_grad_list<T>, conv_direction::input_grad, name, g).run, dx, gr, w, g);
}

template <class T>
void conv_weight_grad_with(std::string_view name, view<T> dw, view<const T> x, view<const T> gr,
                           const conv_geometry& g) {
  run_weight_grad(conv_applying(weight_grad_list<T>, conv_direction::weight_grad, name, g).run, dw, x, gr, g);
}

std::string to_string(const conv_geometry& g) {
  auto dims = [&](const per_dim& a) {
    return fmt::format("{}", fmt::join(a.begin(), a.begin() + g.dims, ", "));
  };
  return fmt::format(
      "x ({}, {}, {}), w ({}, {}, {}), groups {}, stride ({}), dilation ({}), pad_low ({}) -> ({}, {}, {})", g.batch,
      dims(g.in), g.in_channels, g.out_channels, dims(g.window), g.in_group(), g.groups, dims(g.stride),
      dims(g.dilation), dims(g.pad_low), g.batch, dims(g.out), g.out_channels);
}

#define TYPEGRAD_INSTANTIATE(T)                                                                                     \
  template void conv_forward<T>(view<T>, view<const T>, view<const T>, const conv_geometry&,                        \
                                const conv_epilogue<T>&);                                                           \
  template void conv_bias_relu<T>(view<T>, view<const T>, view<const T>, view<const T>, const conv_geometry&);      \
  template void conv_input_grad<T>(view<T>, view<const T>, view<const T>, const conv_geometry&);                    \
  template void conv_weight_grad<T>(view<T>, view<const T>, view<const T>, const conv_geometry&);                   \
  template bool conv_applies<T>(conv_direction, std::string_view, const conv_geometry&);                            \
  template std::string_view conv_chosen<T>(conv_direction, const conv_geometry&);                                   \
  template void conv_forward_with<T>(std::string_view, view<T>, view<const T>, view<const T>, const conv_geometry&, \
                                     const conv_epilogue<T>&);                                                      \
  template void conv_input_grad_with<T>(std::string_view, view<T>, view<const T>, view<const T>,                    \
                                        const conv_geometry&);                                                      \
  template void conv_weight_grad_with<T>(std::string_view, view<T>, view<const T>, view<const T>,                   \
                                         const conv_geometry&);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

// Layout kernels: slice / unslice (strided boxes), concat and permute. Pure data movement, each
// output element written once by one task (deterministic by construction). Axes that move
// together are merged first, so the inner loops are contiguous runs wherever the layout allows.
//
// Each kernel is an ordered list of implementations (the end of this file), like conv.cpp's; a
// call runs the first that applies, and tests can run any of them by name
// (tests/test_layout_implementations.cpp):
//
//   slice, unslice, concat  runs, reference
//   permute                 in_order, runs, tiled_transpose, reference
//
//   runs             contiguous runs along the last merged axis (slice, unslice, concat: any
//                    shapes; permute: where the contiguous input axis stays last), long runs split
//                    so that they still run in parallel.
//   in_order         permute that keeps the memory order (at most one axis after merging): a copy.
//   tiled_transpose  permute that moves the contiguous axis: a batched transpose in 32 x 32 tiles.
//   reference        any shapes: one element at a time through its multi-index
//                    (layout_reference.cpp), the one the others are tested against.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"
#include "implementation_list.hpp"
#include "layout_reference.hpp"
#include "typegrad/kernels/layout.hpp"

namespace typegrad::kernels {
namespace {

// A box inside a larger ("big") tensor: per axis the big extent, the first index, the count of
// indices taken and the step between them. The box's own elements form a dense tensor.
struct box {
  std::size_t rank = 0;
  axis_values big{}, begin{}, count{}, step{};
  axis_values big_strides() const {
    axis_values s{};
    std::size_t acc = 1;
    for (std::size_t d = rank; d-- > 0;) {
      s[d] = acc;
      acc *= big[d];
    }
    return s;
  }
};

// The box with extent-1 axes dropped and an axis merged into the one before it when it is taken
// whole (begin 0, step 1) and the one before has step 1: slicing channels of an image then
// copies runs of whole rows, not one row of channels at a time. Assumes the box is not empty.
box make_box(const shape& big, const shape& small, const axis_values& begin, const axis_values& step) {
  box b;
  for (std::size_t d = 0; d < big.rank(); ++d) {
    if (big[d] == 1) continue;  // then count 1, begin 0
    const bool whole = begin[d] == 0 && step[d] == 1 && small[d] == big[d];
    if (b.rank > 0 && whole && b.step[b.rank - 1] == 1) {
      const std::size_t p = b.rank - 1;
      b.big[p] *= big[d];
      b.begin[p] *= big[d];
      b.count[p] *= big[d];
      continue;
    }
    b.big[b.rank] = big[d];
    b.begin[b.rank] = begin[d];
    b.count[b.rank] = small[d];
    b.step[b.rank] = step[d];
    ++b.rank;
  }
  if (b.rank == 0) {  // a single element
    b.rank = 1;
    b.big[0] = b.count[0] = b.step[0] = 1;
  }
  return b;
}

// Splits a flat index over the first `axes` extents into per-axis indices (last axis fastest).
void unflatten(std::size_t flat, const axis_values& extents, std::size_t axes, axis_values& idx) {
  for (std::size_t d = axes; d-- > 0;) {
    idx[d] = flat % extents[d];
    flat /= extents[d];
  }
}

// A full B x B tile: dst[i * ds + j] = src[j * ss + i]. The input rows are read whole into an
// L1 buffer first, so power-of-two strides cannot make the tile's lines evict each other, and
// the transposition itself runs on the buffer in 8 x 8 blocks the compiler keeps in registers.
template <class T, std::size_t B>
void transpose_tile(T* dst, std::size_t ds, const T* src, std::size_t ss) {
  alignas(64) T buf[B][B];
  for (std::size_t j = 0; j < B; ++j)
    for (std::size_t i = 0; i < B; ++i) buf[j][i] = src[j * ss + i];
  for (std::size_t i0 = 0; i0 < B; i0 += 8)
    for (std::size_t j0 = 0; j0 < B; j0 += 8)
      for (std::size_t i = i0; i < i0 + 8; ++i)
        for (std::size_t j = j0; j < j0 + 8; ++j) dst[i * ds + j] = buf[j][i];
}

template <class T>
void fill_zero(T* p, std::size_t n) {
  std::fill(p, p + n, T(0));
}

template <class T>
void slice_runs(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step) {
  const std::size_t n = out.size();
  if (n == 0) return;
  const box b = make_box(in.shape, out.shape, begin, step);
  const std::size_t r = b.rank, run = b.count[r - 1], inner_step = b.step[r - 1];
  const axis_values bs = b.big_strides();
  std::size_t base = 0;
  for (std::size_t d = 0; d < r; ++d) base += b.begin[d] * bs[d];
  const std::size_t rows = n / run;
  if (inner_step == 1 && run >= 2 * serial_cutoff) {
    // Few long runs (a slice of the batch axis is one run): split them so they still run in
    // parallel. The pieces depend on the sizes only.
    const std::size_t pieces = run / serial_cutoff, piece = (run + pieces - 1) / pieces;
    parallel_chunks(rows * pieces, piece, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t item = lo; item < hi; ++item) {
        const std::size_t row = item / pieces, j0 = item % pieces * piece, j1 = std::min(run, j0 + piece);
        axis_values k{};
        unflatten(row, b.count, r - 1, k);
        std::size_t src = base;
        for (std::size_t d = 0; d + 1 < r; ++d) src += k[d] * b.step[d] * bs[d];
        std::copy(in.data + src + j0, in.data + src + j1, out.data + row * run + j0);
      }
    });
    return;
  }
  // One item per run along the last (merged) axis; an odometer walks the outer box axes.
  parallel_chunks(rows, run, [&](std::size_t lo, std::size_t hi) {
    axis_values k{};
    unflatten(lo, b.count, r - 1, k);
    std::size_t src = base;
    for (std::size_t d = 0; d + 1 < r; ++d) src += k[d] * b.step[d] * bs[d];
    for (std::size_t row = lo; row < hi; ++row) {
      T* dst = out.data + row * run;
      const T* s = in.data + src;
      if (inner_step == 1) std::copy_n(s, run, dst);
      else
        for (std::size_t j = 0; j < run; ++j) dst[j] = s[j * inner_step];
      for (std::size_t d = r - 1; d-- > 0;) {
        src += b.step[d] * bs[d];
        if (++k[d] < b.count[d]) break;
        src -= b.count[d] * b.step[d] * bs[d];
        k[d] = 0;
      }
    }
  });
}

template <class T>
void unslice_runs(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step) {
  const std::size_t n = out.size();
  if (n == 0) return;
  if (in.size() == 0) {
    parallel_chunks(n, 1, [&](std::size_t lo, std::size_t hi) { fill_zero(out.data + lo, hi - lo); });
    return;
  }
  const box b = make_box(out.shape, in.shape, begin, step);
  const std::size_t r = b.rank, row_len = b.big[r - 1];
  const std::size_t b0 = b.begin[r - 1], run = b.count[r - 1], inner_step = b.step[r - 1];
  // Whether the out row at outer index j holds a row of in, and which.
  auto locate = [&](const axis_values& j, std::size_t& src_row) {
    src_row = 0;
    for (std::size_t d = 0; d + 1 < r; ++d) {
      const std::size_t t = j[d] - b.begin[d];  // wraps when j < begin: then t >= count * step
      if (j[d] < b.begin[d] || t % b.step[d] != 0 || t / b.step[d] >= b.count[d]) return false;
      src_row = src_row * b.count[d] + t / b.step[d];
    }
    return true;
  };
  const std::size_t rows = n / row_len;
  if (inner_step == 1 && row_len >= 2 * serial_cutoff) {
    // Few long rows (a pad of the batch axis is one row): split them, as slice does.
    const std::size_t pieces = row_len / serial_cutoff, piece = (row_len + pieces - 1) / pieces;
    parallel_chunks(rows * pieces, piece, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t item = lo; item < hi; ++item) {
        const std::size_t row = item / pieces, p0 = item % pieces * piece, p1 = std::min(row_len, p0 + piece);
        T* dst = out.data + row * row_len;
        axis_values j{};
        unflatten(row, b.big, r - 1, j);
        std::size_t src_row = 0;
        if (!locate(j, src_row)) {
          fill_zero(dst + p0, p1 - p0);
          continue;
        }
        // This piece [p0, p1) of the row: zeros, then the part of the run [b0, b0 + run) in it, zeros.
        const std::size_t c0 = std::clamp(b0, p0, p1), c1 = std::clamp(b0 + run, p0, p1);
        fill_zero(dst + p0, c0 - p0);
        std::copy(in.data + src_row * run + (c0 - b0), in.data + src_row * run + (c1 - b0), dst + c0);
        fill_zero(dst + c1, p1 - c1);
      }
    });
    return;
  }
  // One item per row of out along the last (merged) axis: every element is written once, zero
  // or copied, so out needs no separate clearing pass.
  parallel_chunks(rows, row_len, [&](std::size_t lo, std::size_t hi) {
    axis_values j{};
    unflatten(lo, b.big, r - 1, j);
    for (std::size_t row = lo; row < hi; ++row) {
      T* dst = out.data + row * row_len;
      std::size_t src_row = 0;
      const bool inside = locate(j, src_row);
      if (!inside) {
        fill_zero(dst, row_len);
      } else if (inner_step == 1) {
        fill_zero(dst, b0);
        std::copy_n(in.data + src_row * run, run, dst + b0);
        fill_zero(dst + b0 + run, row_len - b0 - run);
      } else {
        fill_zero(dst, row_len);
        const T* s = in.data + src_row * run;
        for (std::size_t i = 0; i < run; ++i) dst[b0 + i * inner_step] = s[i];
      }
      for (std::size_t d = r - 1; d-- > 0;) {
        if (++j[d] < b.big[d]) break;
        j[d] = 0;
      }
    }
  });
}

template <class T>
void concat_runs(view<T> out, std::span<const view<const T>> in, std::size_t axis) {
  if (out.size() == 0) return;
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= out.shape[d];
  for (std::size_t d = axis + 1; d < out.shape.rank(); ++d) inner *= out.shape[d];
  const std::size_t row_len = out.shape[axis] * inner;
  // Each output row (one index of the axes before `axis`) is the inputs' rows side by side.
  if (outer >= 8 || row_len < serial_cutoff) {
    parallel_chunks(outer, row_len, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t o = lo; o < hi; ++o) {
        T* dst = out.data + o * row_len;
        for (const auto& x : in) {
          const std::size_t seg = x.shape[axis] * inner;
          std::copy_n(x.data + o * seg, seg, dst);
          dst += seg;
        }
      }
    });
    return;
  }
  // Few long rows (e.g. concat along the batch axis): split each contiguous segment instead.
  for (std::size_t o = 0; o < outer; ++o) {
    T* dst = out.data + o * row_len;
    for (const auto& x : in) {
      const std::size_t seg = x.shape[axis] * inner;
      const T* src = x.data + o * seg;
      parallel_chunks(seg, 1, [&](std::size_t lo, std::size_t hi) { std::copy(src + lo, src + hi, dst + lo); });
      dst += seg;
    }
  }
}

// permute's canonical form: extent-1 axes dropped, then input axes that stay adjacent and in
// order in the output merged into one axis (a group). For example (N, H, W, C) -> (N, C, H, W) is
// a transpose of a (N, H*W, C) tensor to (N, C, H*W).
struct permute_form {
  std::size_t r = 0;  // canonical rank
  // p[k]: the canonical input axis of output axis k; input extents and strides; output extents.
  axis_values p{}, ie{}, is{}, oe{};

  permute_form(const shape& s, const axis_values& perm) {
    axis_values first{}, last{};  // per group (in output order): its first and last input axis
    std::size_t groups = 0;
    for (std::size_t k = 0; k < s.rank(); ++k) {
      const std::size_t a = perm[k];
      if (s[a] == 1) continue;
      if (groups > 0) {
        // a continues the previous group when the input axes between it and the group's last are
        // all of extent 1 (dropped) and a follows them in the input.
        std::size_t prev = last[groups - 1];
        bool follows = a > prev;
        for (std::size_t m = prev + 1; follows && m < a; ++m) follows = s[m] == 1;
        if (follows) {
          last[groups - 1] = a;
          continue;
        }
      }
      first[groups] = last[groups] = a;
      ++groups;
    }
    // The groups in input order give the canonical input axes.
    axis_values order{};
    for (std::size_t g = 0; g < groups; ++g) order[g] = g;
    std::sort(order.begin(), order.begin() + groups, [&](std::size_t x, std::size_t y) { return first[x] < first[y]; });
    for (std::size_t i = 0; i < groups; ++i) {
      const std::size_t g = order[i];
      p[g] = i;
      ie[i] = 1;
      for (std::size_t a = first[g]; a <= last[g]; ++a) ie[i] *= s[a];
    }
    std::size_t acc = 1;
    for (std::size_t i = groups; i-- > 0;) {
      is[i] = acc;
      acc *= ie[i];
    }
    r = groups;
    for (std::size_t k = 0; k < r; ++k) oe[k] = ie[p[k]];
  }

  // The permutation keeps the memory order.
  bool in_order() const { return r <= 1; }
  // The contiguous input axis stays last.
  bool keeps_last_axis() const { return r >= 1 && p[r - 1] == r - 1; }
};

template <class T>
void permute_in_order(view<T> out, view<const T> in, const axis_values&) {
  const std::size_t n = out.size();
  if (n == 0) return;
  parallel_chunks(n, 1, [&](std::size_t lo, std::size_t hi) { std::copy(in.data + lo, in.data + hi, out.data + lo); });
}

// The contiguous input axis stays last: copy runs of it, an odometer over the output rows.
template <class T>
void permute_runs(view<T> out, view<const T> in, const axis_values& perm) {
  const std::size_t n = out.size();
  if (n == 0) return;
  const permute_form f(in.shape, perm);
  const std::size_t r = f.r, run = f.ie[r - 1];
  const axis_values &p = f.p, &is = f.is, &oe = f.oe;
  parallel_chunks(n / run, run, [&](std::size_t lo, std::size_t hi) {
    axis_values k{};
    unflatten(lo, oe, r - 1, k);
    std::size_t src = 0;
    for (std::size_t d = 0; d + 1 < r; ++d) src += k[d] * is[p[d]];
    for (std::size_t row = lo; row < hi; ++row) {
      std::copy_n(in.data + src, run, out.data + row * run);
      for (std::size_t d = r - 1; d-- > 0;) {
        src += is[p[d]];
        if (++k[d] < oe[d]) break;
        src -= oe[d] * is[p[d]];
        k[d] = 0;
      }
    }
  });
}

// The contiguous input axis moves: a transpose of two axes, batched over the others. The input's
// contiguous axis i sits at output position q, the output's contiguous axis j is input axis
// p[r-1]. Tiles of tile x tile (i, j) read `tile` input cache lines and write `tile` output lines,
// both reused across the tile.
template <class T>
void permute_tiled_transpose(view<T> out, view<const T> in, const axis_values& perm) {
  if (out.size() == 0) return;
  const permute_form f(in.shape, perm);
  const std::size_t r = f.r;
  const axis_values &p = f.p, &is = f.is, &oe = f.oe;
  constexpr std::size_t tile = 32;
  std::size_t q = 0;
  while (p[q] != r - 1) ++q;
  axis_values os{};
  std::size_t acc = 1;
  for (std::size_t k = r; k-- > 0;) {
    os[k] = acc;
    acc *= oe[k];
  }
  const std::size_t ni = oe[q], nj = oe[r - 1], sj = is[p[r - 1]], osi = os[q];
  // The remaining ("batch") output axes, outermost first.
  axis_values bk{}, be{};
  std::size_t nb = 0, batches = 1;
  for (std::size_t k = 0; k + 1 < r; ++k)
    if (k != q) {
      bk[nb] = k;
      be[nb++] = oe[k];
      batches *= oe[k];
    }
  // An item is a strip of `tile` i's by up to `strip` j's, so that a single image with few
  // channels (ni < tile) still splits along j.
  constexpr std::size_t strip = 32 * tile;
  const std::size_t tiles_i = (ni + tile - 1) / tile, strips_j = (nj + strip - 1) / strip;
  parallel_chunks(batches * tiles_i * strips_j, std::min(ni, tile) * std::min(nj, strip), [&](std::size_t lo, std::size_t hi) {
    for (std::size_t item = lo; item < hi; ++item) {
      axis_values idx{};
      unflatten(item / (tiles_i * strips_j), be, nb, idx);
      std::size_t src0 = 0, dst0 = 0;
      for (std::size_t m = 0; m < nb; ++m) {
        src0 += idx[m] * is[p[bk[m]]];
        dst0 += idx[m] * os[bk[m]];
      }
      const std::size_t i0 = (item / strips_j % tiles_i) * tile, i1 = std::min(ni, i0 + tile);
      const std::size_t js = (item % strips_j) * strip, je = std::min(nj, js + strip);
      for (std::size_t j0 = js; j0 < je; j0 += tile) {
        const std::size_t j1 = std::min(je, j0 + tile);
        if (i1 - i0 == tile && j1 - j0 == tile) {
          transpose_tile<T, tile>(out.data + dst0 + i0 * osi + j0, osi, in.data + src0 + i0 + j0 * sj, sj);
          continue;
        }
        for (std::size_t i = i0; i < i1; ++i) {
          T* dst = out.data + dst0 + i * osi;
          const T* src = in.data + src0 + i;
          for (std::size_t j = j0; j < j1; ++j) dst[j] = src[j * sj];
        }
      }
    }
  });
}

// ---- the implementation lists ------------------------------------------------------------------
// Per kernel, in the order the default dispatch tries them; it runs the first whose applies()
// holds (for permute: on the input's shape and the permutation). Each list has an entry before the
// reference that applies to everything, so the reference is never the default.

template <class T>
using box_run = void (*)(view<T>, view<const T>, const axis_values&, const axis_values&);  // slice, unslice
template <class T>
using concat_run = void (*)(view<T>, std::span<const view<const T>>, std::size_t);
template <class T>
using permute_run = void (*)(view<T>, view<const T>, const axis_values&);

// slice, unslice and concat: no entry has a condition.
template <class Run>
using unconditional_implementation = implementation<bool (*)(), Run>;
template <class Run>
using permute_implementation = implementation<bool (*)(const shape&, const axis_values&), Run>;

bool always() { return true; }
bool always(const shape&, const axis_values&) { return true; }
bool keeps_memory_order(const shape& x, const axis_values& perm) { return permute_form(x, perm).in_order(); }
bool keeps_last_axis(const shape& x, const axis_values& perm) { return permute_form(x, perm).keeps_last_axis(); }
bool moves_last_axis(const shape& x, const axis_values& perm) {
  const permute_form f(x, perm);
  return !f.in_order() && !f.keeps_last_axis();
}

template <class T>
constexpr unconditional_implementation<box_run<T>> slice_list[] = {
    {"runs", always, slice_runs<T>},
    {"reference", always, reference_slice<T>},
};

template <class T>
constexpr unconditional_implementation<box_run<T>> unslice_list[] = {
    {"runs", always, unslice_runs<T>},
    {"reference", always, reference_unslice<T>},
};

template <class T>
constexpr unconditional_implementation<concat_run<T>> concat_list[] = {
    {"runs", always, concat_runs<T>},
    {"reference", always, reference_concat<T>},
};

template <class T>
constexpr permute_implementation<permute_run<T>> permute_list[] = {
    {"in_order", keeps_memory_order, permute_in_order<T>},
    {"runs", keeps_last_axis, permute_runs<T>},
    {"tiled_transpose", moves_last_axis, permute_tiled_transpose<T>},
    {"reference", always, reference_permute<T>},
};

// f(list) with kernel k's list.
template <class T, class F>
decltype(auto) with_list(layout_kernel k, F&& f) {
  switch (k) {
    case layout_kernel::slice: return f(slice_list<T>);
    case layout_kernel::unslice: return f(unslice_list<T>);
    case layout_kernel::concat: return f(concat_list<T>);
    case layout_kernel::permute: break;
  }
  return f(permute_list<T>);
}

}  // namespace

template <class T>
void slice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step) {
  first_applying(slice_list<T>).run(out, in, begin, step);
}

template <class T>
void unslice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step) {
  first_applying(unslice_list<T>).run(out, in, begin, step);
}

template <class T>
void concat(view<T> out, std::span<const view<const T>> in, std::size_t axis) {
  first_applying(concat_list<T>).run(out, in, axis);
}

template <class T>
void permute(view<T> out, view<const T> in, const axis_values& perm) {
  first_applying(permute_list<T>, in.shape, perm).run(out, in, perm);
}

// ---- choosing an implementation by name (tests) -------------------------------------------------

const char* layout_kernel_name(layout_kernel k) {
  switch (k) {
    case layout_kernel::slice: return "slice";
    case layout_kernel::unslice: return "unslice";
    case layout_kernel::concat: return "concat";
    case layout_kernel::permute: break;
  }
  return "permute";
}

std::vector<std::string_view> layout_implementations(layout_kernel k) {
  return with_list<float>(k, [](const auto& list) { return implementation_names(list); });
}

bool permute_applies(std::string_view name, const shape& x, const axis_values& perm) {
  return named(permute_list<float>, "permute", name).applies(x, perm);
}

std::string_view permute_chosen(const shape& x, const axis_values& perm) {
  return first_applying(permute_list<float>, x, perm).name;
}

template <class T>
void slice_with(std::string_view name, view<T> out, view<const T> in, const axis_values& begin,
                const axis_values& step) {
  named(slice_list<T>, "slice", name).run(out, in, begin, step);
}

template <class T>
void unslice_with(std::string_view name, view<T> out, view<const T> in, const axis_values& begin,
                  const axis_values& step) {
  named(unslice_list<T>, "unslice", name).run(out, in, begin, step);
}

template <class T>
void concat_with(std::string_view name, view<T> out, std::span<const view<const T>> in, std::size_t axis) {
  named(concat_list<T>, "concat", name).run(out, in, axis);
}

template <class T>
void permute_with(std::string_view name, view<T> out, view<const T> in, const axis_values& perm) {
  auto describe = [&] {
    return fmt::format("x {}, perm ({})", in.shape, fmt::join(perm.begin(), perm.begin() + in.shape.rank(), ", "));
  };
  applying(permute_list<T>, "permute", name, describe, in.shape, perm).run(out, in, perm);
}

#define TYPEGRAD_INSTANTIATE(T)                                                                            \
  template void slice<T>(view<T>, view<const T>, const axis_values&, const axis_values&);                 \
  template void unslice<T>(view<T>, view<const T>, const axis_values&, const axis_values&);               \
  template void concat<T>(view<T>, std::span<const view<const T>>, std::size_t);                          \
  template void permute<T>(view<T>, view<const T>, const axis_values&);                                   \
  template void slice_with<T>(std::string_view, view<T>, view<const T>, const axis_values&, const axis_values&); \
  template void unslice_with<T>(std::string_view, view<T>, view<const T>, const axis_values&,             \
                                const axis_values&);                                                      \
  template void concat_with<T>(std::string_view, view<T>, std::span<const view<const T>>, std::size_t);   \
  template void permute_with<T>(std::string_view, view<T>, view<const T>, const axis_values&);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

// Broadcasting binary arithmetic, the strided reductions behind sum/unbroadcast/max, fill and copy.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

#include <fmt/format.h>
#include "../parallel/parallel_chunks.hpp"
#include "gemm_isa.hpp"
#include "scratch.hpp"
#include "typegrad/kernels/broadcast.hpp"
#include "typegrad/kernels/unary.hpp"

namespace typegrad::kernels {
namespace {

// Strides of `s` aligned to an output of rank r, 0 where s broadcasts.
std::array<std::ptrdiff_t, max_rank> broadcast_strides(const shape& s, const shape& out) {
  std::array<std::ptrdiff_t, max_rank> st{};
  auto own = s.strides();
  std::size_t off = out.rank() - s.rank();
  for (std::size_t i = 0; i < s.rank(); ++i) st[off + i] = s[i] == 1 ? 0 : std::ptrdiff_t(own[i]);
  return st;
}

// Reduction plan: for every output element, the input offset of its first term (out_strides,
// 0 along broadcast dims) and the reduced dims walked from there (red_extents, red_strides).
struct reduction {
  shape out;
  std::array<std::ptrdiff_t, max_rank> out_strides{};
  std::array<std::size_t, max_rank> red_extents{};
  std::array<std::ptrdiff_t, max_rank> red_strides{};
  std::size_t red_rank = 0;
  std::size_t red_count = 1;
};

reduction plan_reduction(const shape& out, const shape& in, const char* what) {
  reduction p;
  p.out = out;
  const std::size_t r = std::max(out.rank(), in.rank());
  auto in_strides = in.strides();
  const std::size_t in_off = r - in.rank(), out_off = r - out.rank();
  for (std::size_t d = 0; d < r; ++d) {
    std::size_t ie = d >= in_off ? in[d - in_off] : 1;
    std::size_t oe = d >= out_off ? out[d - out_off] : 1;
    std::ptrdiff_t is = d >= in_off ? std::ptrdiff_t(in_strides[d - in_off]) : 0;
    if (ie == oe) {
      if (d >= out_off) p.out_strides[d - out_off] = ie == 1 ? 0 : is;
    } else if (oe == 1) {
      p.red_extents[p.red_rank] = ie;
      p.red_strides[p.red_rank++] = is;
      p.red_count *= ie;
    } else if (ie == 1) {
      if (d >= out_off) p.out_strides[d - out_off] = 0;
    } else {
      throw shape_rule_violation(fmt::format("{}: cannot fit shape {} to {}", what, in, out));
    }
  }
  // Reduced dims that step evenly into each other are one (N, H, W of a contiguous (N, H, W, K)
  // are N*H*W rows K apart): the same terms in the same order, walked as longer runs.
  std::size_t merged = 0;
  for (std::size_t d = 0; d < p.red_rank; ++d) {
    if (merged > 0 && p.red_strides[merged - 1] == p.red_strides[d] * std::ptrdiff_t(p.red_extents[d])) {
      p.red_extents[merged - 1] *= p.red_extents[d];
      p.red_strides[merged - 1] = p.red_strides[d];
    } else {
      p.red_extents[merged] = p.red_extents[d];
      p.red_strides[merged++] = p.red_strides[d];
    }
  }
  p.red_rank = merged;
  return p;
}

constexpr std::size_t max_reduction_parts = 16;

// combine_rows(o, src, stride, count, inner): o[j] = combine(o[j], row_k[j]) for j < inner, over
// the rows k < count at src + k * stride, in order of k: the instruction set's vector pass
// (isa_passes::sum_rows, max_rows) that holds o's values in registers across the rows. (Through
// memory, each row waited on the previous row's stores: a conv bias's gradient, (64, 28, 28, 32)
// -> (32), ran at 24 GB/s on one core and no faster on two.)
template <class T>
using combine_rows_fn = void (*)(T* o, const T* src, std::ptrdiff_t stride, std::size_t count, std::size_t inner);

template <class T, class Combine>
void reduce_loop(view<T> out, view<const T> in, const reduction& p, T init, Combine combine,
                 combine_rows_fn<T> combine_rows) {
  const std::size_t n = out.size();
  if (n == 0) return;
  const std::size_t r = out.shape.rank();
  const std::size_t inner = r ? out.shape[r - 1] : 1;
  const bool row_contiguous = r && p.out_strides[r - 1] == 1 && inner > 1;
  auto base_offset = [&](std::size_t flat_out) {
    std::ptrdiff_t off = 0;
    for (std::size_t d = r; d-- > 0;) {
      off += std::ptrdiff_t(flat_out % out.shape[d]) * p.out_strides[d];
      flat_out /= out.shape[d];
    }
    return off;
  };
  // body(offset) for the reduced indices [first, first + count), in order.
  auto for_each_reduced_in = [&](std::size_t first, std::size_t count, auto&& body) {
    std::array<std::size_t, max_rank> idx{};
    std::ptrdiff_t off = 0;
    for (std::size_t d = p.red_rank, rest = first; d-- > 0;) {
      idx[d] = rest % p.red_extents[d];
      rest /= p.red_extents[d];
      off += std::ptrdiff_t(idx[d]) * p.red_strides[d];
    }
    for (std::size_t k = 0; k < count; ++k) {
      body(off);
      for (std::size_t d = p.red_rank; d-- > 0;) {
        off += p.red_strides[d];
        if (++idx[d] < p.red_extents[d]) break;
        off -= std::ptrdiff_t(idx[d]) * p.red_strides[d];
        idx[d] = 0;
      }
    }
  };
  auto for_each_reduced = [&](auto&& body) { for_each_reduced_in(0, p.red_count, body); };
  // combine_rows into o of the reduced rows [first, first + count) from base, a run along the last
  // reduced dim at a time.
  // (No reduced dims, as when sum_to only expands: the one row at base.)
  auto combine_reduced_rows = [&](T* o, const T* base, std::size_t first, std::size_t count) {
    if (p.red_rank == 0) return combine_rows(o, base, 0, count, inner);
    const std::size_t last = p.red_rank - 1, run = p.red_extents[last];
    const std::ptrdiff_t stride = p.red_strides[last];
    for (std::size_t k = first; k < first + count;) {
      const std::size_t at = k % run, n = std::min(run - at, first + count - k);
      std::ptrdiff_t off = std::ptrdiff_t(at) * stride;
      for (std::size_t d = last, rest = k / run; d-- > 0;) {
        off += std::ptrdiff_t(rest % p.red_extents[d]) * p.red_strides[d];
        rest /= p.red_extents[d];
      }
      combine_rows(o, base + off, stride, n, inner);
      k += n;
    }
  };
  // One output row over many reduced ones (a bias's gradient, (N, H, W, K) -> (K)) would be one
  // serial task: the reduced range is cut into parts whose number depends on the sizes only (so
  // results do not depend on the thread count), each combined into its own row (the first into
  // out), and the rows then combined in order.
  const std::size_t parts = row_contiguous && n == inner ? reduction_parts(p.red_count * inner) : 0;
  if (parts > 1) {
    auto partial_rows = scratch().take<T>((parts - 1) * inner);
    auto row_of = [&](std::size_t part) { return part == 0 ? out.data : partial_rows.data() + (part - 1) * inner; };
    const T* base = in.data + base_offset(0);
    parallel_chunks(parts, p.red_count / parts * inner, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t part = lo; part < hi; ++part) {
        T* o = row_of(part);
        std::fill_n(o, inner, init);
        const std::size_t first = p.red_count * part / parts, last = p.red_count * (part + 1) / parts;
        combine_reduced_rows(o, base, first, last - first);
      }
    });
    for (std::size_t part = 1; part < parts; ++part) {
      const T* src = row_of(part);
      for (std::size_t j = 0; j < inner; ++j) out.data[j] = combine(out.data[j], src[j]);
    }
    return;
  }
  if (row_contiguous) {
    // Output rows contiguous in the input: vector combine of whole rows per reduced index.
    const std::size_t rows = n / inner;
    parallel_chunks(rows, inner * p.red_count, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t row = lo; row < hi; ++row) {
        T* o = out.data + row * inner;
        const T* base = in.data + base_offset(row * inner);
        std::fill_n(o, inner, init);
        combine_reduced_rows(o, base, 0, p.red_count);
      }
    });
  } else {
    parallel_chunks(n, p.red_count, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) {
        const T* base = in.data + base_offset(i);
        T acc = init;
        if (p.red_rank && p.red_strides[p.red_rank - 1] == 1 && p.red_rank == 1) {
          for (std::size_t k = 0; k < p.red_count; ++k) acc = combine(acc, base[k]);
        } else {
          for_each_reduced([&](std::ptrdiff_t off) { acc = combine(acc, base[off]); });
        }
        out.data[i] = acc;
      }
    });
  }
}

}  // namespace

// How many parts a long reduction of `elements` terms is cut into: fixed by the size alone, so
// results do not depend on the thread count (at most max_reduction_parts; 0 or 1: not cut).
std::size_t reduction_parts(std::size_t elements) {
  return std::min(max_reduction_parts, elements / (std::size_t{1} << 16));
}

template <class T>
void add_rows(T* o, const T* rows, std::size_t count, std::size_t cols) {
  active_passes<T>().sum_rows(o, rows, std::ptrdiff_t(cols), count, cols);
}

// Calls body(f) with kind's scalar function f(x, y): the one place the arithmetic of each kind is
// written, for the broadcasting kernel and for region blocks alike.
template <class T, class Body>
void with_binary_fn(binary_kind kind, Body&& body) {
  switch (kind) {
    case binary_kind::add: return body([](T x, T y) { return x + y; });
    case binary_kind::sub: return body([](T x, T y) { return x - y; });
    case binary_kind::mul: return body([](T x, T y) { return x * y; });
    case binary_kind::div: return body([](T x, T y) { return x / y; });
    // Selects written as bit masks (math::select): g++ leaves ?: in these loops unvectorized
    // without AVX-512's masked moves, i.e. in the default (portable) build.
    case binary_kind::maximum: return body([](T x, T y) { return math::select(x > y, x, y); });
    case binary_kind::minimum: return body([](T x, T y) { return math::select(x < y, x, y); });
    case binary_kind::greater: return body([](T x, T y) { return math::select(x > y, T(1), T(0)); });
    case binary_kind::equal: return body([](T x, T y) { return math::select(x == y, T(1), T(0)); });
    case binary_kind::mul_step:  // x * step(y), bitwise: x * 1 is x
      return body([](T x, T y) { return math::select(y > T(0), x, x * T(0)); });
    case binary_kind::add_relu:  // relu_fn::apply of the sum, bitwise
      return body([](T x, T y) {
        const T sum = x + y;
        return math::select(sum < T(0), T(0), sum);
      });
  }
}

// Broadcasting runs as blocks of binary_block, the loops elementwise regions run, so each kind's
// loops exist once. Where each operand is out's shape (full), one value (scalar) or a suffix of
// it (column: a bias over the channels, a row vector), out is rows of the suffix's size cut into
// chunks; otherwise each row of out's last extent is one block.
template <class T>
void binary(binary_kind kind, view<T> out, view<const T> a, view<const T> b) {
  using enum operand_kind;
  const std::size_t n = out.size();
  if (n == 0) return;
  const std::size_t r = out.shape.rank();
  auto is_suffix = [&](const shape& s) {
    if (s.rank() > r) return false;
    for (std::size_t d = 0; d < s.rank(); ++d)
      if (s[d] != out.shape[r - s.rank() + d]) return false;
    return true;
  };
  std::size_t width = 1;  // the columns' size, 1 without one
  auto covers = [&](const view<const T>& v, operand_kind& k) {
    if (v.size() == n) k = full;
    else if (v.size() == 1) k = scalar;
    else if (is_suffix(v.shape) && (width == 1 || width == v.size())) k = column, width = v.size();
    else return false;
    return true;
  };
  operand_kind ka{}, kb{};
  if (covers(a, ka) && covers(b, kb)) {
    auto from = [](const view<const T>& v, operand_kind k, std::size_t first) {
      return block_operand<T>{k == full ? v.data + first : v.data, k};
    };
    parallel_chunks(n / width, width, [&](std::size_t lo, std::size_t hi) {
      binary_block(kind, out.data + lo * width, from(a, ka, lo * width), from(b, kb, lo * width), hi - lo, width);
    });
    return;
  }
  const auto sa = broadcast_strides(a.shape, out.shape);
  const auto sb = broadcast_strides(b.shape, out.shape);
  const std::size_t inner = out.shape[r - 1];
  const operand_kind ra = sa[r - 1] == 0 ? scalar : full, rb = sb[r - 1] == 0 ? scalar : full;
  parallel_chunks(n / inner, inner, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t row = lo; row < hi; ++row) {
      std::ptrdiff_t oa = 0, ob = 0;
      std::size_t rest = row;
      for (std::size_t d = r - 1; d-- > 0;) {
        const std::size_t idx = rest % out.shape[d];
        rest /= out.shape[d];
        oa += std::ptrdiff_t(idx) * sa[d];
        ob += std::ptrdiff_t(idx) * sb[d];
      }
      binary_block(kind, out.data + row * inner, block_operand<T>{a.data + oa, ra}, block_operand<T>{b.data + ob, rb},
                   1, inner);
    }
  });
}

template <class T>
void binary_block(binary_kind kind, T* out, block_operand<T> a, block_operand<T> b, std::size_t rows,
                  std::size_t cols) {
  with_binary_fn<T>(kind, [&](auto f) { zip_block(out, a, b, rows, cols, f); });
}

namespace {
// Equal extents once both shapes are right-aligned and padded with 1s on the left.
bool same_extents(const shape& a, const shape& b) {
  const std::size_t r = std::max(a.rank(), b.rank());
  for (std::size_t d = 0; d < r; ++d) {
    std::size_t ea = d < a.rank() ? a[a.rank() - 1 - d] : 1;
    std::size_t eb = d < b.rank() ? b[b.rank() - 1 - d] : 1;
    if (ea != eb) return false;
  }
  return true;
}
}  // namespace

template <class T>
void sum_to(view<T> out, view<const T> in) {
  // The common cases in gradients: a shape-preserving fit (a copy) and a scalar expanded.
  if (same_extents(out.shape, in.shape)) return copy<T>(out, in);
  if (in.size() == 1) return fill<T>(out, in.data[0]);
  auto p = plan_reduction(out.shape, in.shape, "sum_to");
  reduce_loop<T>(out, in, p, T(0), [](T x, T y) { return x + y; }, active_passes<T>().sum_rows);
}

template <class T>
void max_to(view<T> out, view<const T> in) {
  auto p = plan_reduction(out.shape, in.shape, "max_to");
  reduce_loop<T>(out, in, p, -std::numeric_limits<T>::infinity(), [](T x, T y) { return math::select(y > x, y, x); },
                 active_passes<T>().max_rows);
}

template <class T>
void dot(view<T> out, view<const T> a, view<const T> b) {
  // Parts and lanes fixed by the size: the same sum at every thread count, vectorised (each lane
  // is its own sum; lanes and parts are added in order at the end).
  constexpr std::size_t lanes = 16;
  const std::size_t n = a.size(), parts = std::max<std::size_t>(1, reduction_parts(n));
  std::array<T, max_reduction_parts> partial{};
  parallel_chunks(parts, n / parts + 1, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t part = lo; part < hi; ++part) {
      const std::size_t first = n * part / parts, last = n * (part + 1) / parts;
      std::array<T, lanes> acc{};
      std::size_t i = first;
      for (; i + lanes <= last; i += lanes)
        for (std::size_t l = 0; l < lanes; ++l) acc[l] += a.data[i + l] * b.data[i + l];
      for (std::size_t l = 0; i + l < last; ++l) acc[l] += a.data[i + l] * b.data[i + l];
      T s = T(0);
      for (T v : acc) s += v;
      partial[part] = s;
    }
  });
  T s = T(0);
  for (std::size_t part = 0; part < parts; ++part) s += partial[part];
  out.data[0] = s;
}

template <class T>
void fill(view<T> out, T value) {
  parallel_chunks(out.size(), 1, [&](std::size_t lo, std::size_t hi) { std::fill(out.data + lo, out.data + hi, value); });
}

template <class T>
void copy(view<T> out, view<const T> in) {
  parallel_chunks(out.size(), 1, [&](std::size_t lo, std::size_t hi) { std::copy(in.data + lo, in.data + hi, out.data + lo); });
}

#define TYPEGRAD_INSTANTIATE(T)                                              \
  template void binary<T>(binary_kind, view<T>, view<const T>, view<const T>); \
  template void binary_block<T>(binary_kind, T*, block_operand<T>, block_operand<T>, std::size_t, std::size_t); \
  template void add_rows<T>(T*, const T*, std::size_t, std::size_t);          \
  template void sum_to<T>(view<T>, view<const T>);                           \
  template void max_to<T>(view<T>, view<const T>);                           \
  template void dot<T>(view<T>, view<const T>, view<const T>);              \
  template void fill<T>(view<T>, T);                                         \
  template void copy<T>(view<T>, view<const T>);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

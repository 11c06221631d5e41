#define BOOST_TEST_MODULE fuzz_programs
// A program-level differential fuzzer. A fixed set of compiled programs (graphs are types, so the
// set is fixed at compile time): convolutions in 1, 2 and 3 ordered dims with every padding mode,
// strides, dilations and groups, composed with max and average pooling, concat, slice, pad,
// reshape, relu and bias adds, each ending in the scalar f = sum(y * r). Every configuration draws
// its extents at run time (batch, channels and extents from 1, windows larger than the input,
// sometimes one extent perturbed on purpose) and then either
//   - the reference shape rule and the library both reject the shapes (a typegrad::shape_error,
//     nothing else), or
//   - f and its gradient with respect to every leaf (inputs, weights, biases, r), computed by the
//     program in float and in double at 1 and at 2 threads, match the naive references (the
//     library's reference implementations, and tests/reference/conv.hpp) chained by hand (the
//     chain rule written out per program below), and the 1- and 2-thread results are bitwise
//     identical.
// The data is uniform in [-1, 1) and exact in float; data whose relu signs or max-pool argmaxes
// are near a tie (where float rounding could decide otherwise) is drawn again.
//
//   TYPEGRAD_FUZZ_PROGRAMS=N  configurations (default 1000; docs/reliability.md runs 10,000)
//   TYPEGRAD_FUZZ_SEED=S      the seed (default 12); configuration i draws from (S, i) alone, so
//   TYPEGRAD_FUZZ_FIRST=I     starts at configuration I: with TYPEGRAD_FUZZ_PROGRAMS=1 it replays
//                             the one a failure names.
// The counts compared and rejected are printed (--log_level=message, and on stdout).
#include <boost/test/unit_test.hpp>

#include <typegrad/typegrad.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "reference/conv.hpp"
#include "support.hpp"

using namespace typegrad;
using test_support::multi_index;
using test_support::ravel;
using test_support::unravel;

namespace {

// ---- the reference: naive ops on (shape, values) in double -------------------------------------

// A reference value: its shape and row-major values (no values while only shapes are propagated).
struct rt {
  shape s;
  std::vector<double> v;
  view<const double> cv() const { return {v.data(), s}; }
};

// The reference shape rule's verdict that the shapes do not fit: the library must reject them too.
struct invalid {
  std::string why;
};

// NumPy broadcasting (right-aligned; an extent 1 stretches).
shape broadcast_shape(const shape& a, const shape& b) {
  const std::size_t r = std::max(a.rank(), b.rank());
  shape out = shape::of_rank(r);
  for (std::size_t d = 0; d < r; ++d) {
    const std::size_t ea = d + a.rank() >= r ? a[d + a.rank() - r] : 1;
    const std::size_t eb = d + b.rank() >= r ? b[d + b.rank() - r] : 1;
    if (ea != eb && ea != 1 && eb != 1) throw invalid{fmt::format("{} and {} do not broadcast", a, b)};
    out[d] = ea == 1 ? eb : ea;
  }
  return out;
}
// The flat index, in an operand of shape s, of the element that output index idx reads.
std::size_t broadcast_index(const multi_index& idx, const shape& s) {
  const std::size_t offset = idx.size() - s.rank();
  std::size_t flat = 0;
  for (std::size_t d = 0; d < s.rank(); ++d) flat = flat * s[d] + (s[d] == 1 ? 0 : idx[offset + d]);
  return flat;
}

// conv_params spelled out by hand from a program's options (a one-value list applies to every dim).
struct conv_spec {
  std::size_t dims = 1;
  padding_mode padding = padding_mode::same;
  std::vector<std::size_t> stride{1}, dilation{1}, low{0}, high{0};
  std::size_t groups = 1;
};
conv_params params(const conv_spec& c) {
  auto at = [](const std::vector<std::size_t>& v, std::size_t i) { return v.size() == 1 ? v[0] : v[i]; };
  conv_params p;
  p.dims = c.dims;
  p.padding = c.padding;
  p.groups = c.groups;
  for (std::size_t i = 0; i < c.dims; ++i) {
    p.stride[i] = at(c.stride, i);
    p.dilation[i] = at(c.dilation, i);
    p.pad_low[i] = at(c.low, i);
    p.pad_high[i] = at(c.high, i);
  }
  return p;
}

// What the reference gives for one configuration: f, the scale of f's terms (sum |y r|), the
// gradient of every leaf (in the program's leaf order, r last), and y's shape.
struct result {
  double loss = 0, scale = 0;
  std::vector<rt> grads;
  shape y_shape;
};

// The naive ops, forward and adjoint. A shapes-only evaluator checks the shape rules and
// propagates shapes; a computing one also computes, and records the smallest decision margin it
// met (a relu input's distance from 0, a max-pool window's gap between its maximum and any other
// value not equal to it, each relative to the largest |value| of the tensor decided on, which is
// what rounding errors scale with): rounding must not be able to flip a decision.
class evaluator {
 public:
  explicit evaluator(bool compute) : compute_(compute) {}
  double margin() const { return margin_; }
  // The most elements a conv's input, weights and output hold together: from 2^15 on (the
  // executor's serial cutoff) the conv's input and weight gradients, which touch the same tensors,
  // are both heavy and independent, and below 2^17 (two chunks per thread) too narrow to fill 2
  // threads alone, so the flow graph runs them concurrently at 2 threads; larger ones run in order.
  std::size_t conv_elements() const { return conv_elements_; }

  rt conv(const conv_params& p, const rt& x, const rt& w) {
    const std::size_t d = p.dims;
    if (w.s[d + 1] * p.groups != x.s[d + 1])
      throw invalid{fmt::format("conv: w's in-channels {} times groups {} differ from x's channels {}", w.s[d + 1],
                                p.groups, x.s[d + 1])};
    if (w.s[0] % p.groups != 0)
      throw invalid{fmt::format("conv: w's out channels {} are not divisible by groups {}", w.s[0], p.groups)};
    for (std::size_t i = 0; i < d; ++i) {
      const std::size_t span = p.dilation[i] * (w.s[i + 1] - 1) + 1;
      const std::size_t padded = x.s[i + 1] + (p.padding == padding_mode::explicit_pads ? p.pad_low[i] + p.pad_high[i] : 0);
      if ((p.padding == padding_mode::valid || p.padding == padding_mode::explicit_pads) && span > padded)
        throw invalid{fmt::format("conv: dilated window {} larger than the padded input {} in dim {}", span, padded, i)};
    }
    rt z{reference::conv_output_shape(p, x.s, w.s), {}};
    conv_elements_ = std::max(conv_elements_, x.s.numel() + w.s.numel() + z.s.numel());
    if (compute_) z.v = reference::conv<double>(p, x.cv(), w.cv());
    return z;
  }
  rt conv_transpose(const conv_params& p, const rt& g, const rt& w, const shape& xs) const {
    return {xs, reference::conv_transpose<double>(p, g.cv(), w.cv(), xs)};
  }
  rt conv_weight_grad(const conv_params& p, const rt& x, const rt& g, const shape& ws) const {
    return {ws, reference::conv_weight_grad<double>(p, x.cv(), g.cv(), ws)};
  }

  // a + b with broadcasting (a bias add, or the sum of two adjoints).
  rt add(const rt& a, const rt& b) {
    rt y{broadcast_shape(a.s, b.s), {}};
    if (!compute_) return y;
    y.v.resize(y.s.numel());
    for (std::size_t i = 0; i < y.v.size(); ++i) {
      const auto idx = unravel(i, y.s);
      y.v[i] = a.v[broadcast_index(idx, a.s)] + b.v[broadcast_index(idx, b.s)];
    }
    return y;
  }
  // g summed over the axes broadcast to reach g's shape from s.
  rt sum_to(const rt& g, const shape& s) const {
    std::vector<long double> acc(s.numel(), 0);
    for (std::size_t i = 0; i < g.v.size(); ++i) acc[broadcast_index(unravel(i, g.s), s)] += g.v[i];
    return {s, std::vector<double>(acc.begin(), acc.end())};
  }

  rt relu(const rt& a) {
    rt y{a.s, {}};
    if (!compute_) return y;
    const double scale = largest(a.v);
    y.v.resize(a.v.size());
    for (std::size_t i = 0; i < a.v.size(); ++i) {
      y.v[i] = a.v[i] > 0 ? a.v[i] : 0;
      if (a.v[i] != 0) margin_ = std::min(margin_, std::abs(a.v[i]) / scale);
    }
    return y;
  }
  // g * step(a): relu'(0) = 0.
  rt relu_backward(const rt& g, const rt& a) const {
    rt y{a.s, std::vector<double>(a.v.size())};
    for (std::size_t i = 0; i < a.v.size(); ++i) y.v[i] = a.v[i] > 0 ? g.v[i] : 0;
    return y;
  }

  // The pools by the library's reference implementation (kernels/pool.hpp, "reference").
  rt max_pool(const rt& x, const kernels::pool_window& w) {
    rt y{pooled(x.s, w), {}};
    if (!compute_) return y;
    y.v.resize(y.s.numel());
    kernels::max_pool_with<double>("reference", {y.v.data(), y.s}, x.cv(), w);
    record_window_gaps(x, y, w);
    return y;
  }
  rt max_pool_backward(const rt& g, const rt& x, const kernels::pool_window& w) const {
    rt dx{x.s, std::vector<double>(x.v.size())};
    kernels::max_pool_backward_with<double>("reference", {dx.v.data(), dx.s}, g.cv(), x.cv(), w);
    return dx;
  }
  rt avg_pool(const rt& x, const kernels::pool_window& w) {
    rt y{pooled(x.s, w), {}};
    if (!compute_) return y;
    y.v.resize(y.s.numel());
    kernels::avg_pool_with<double>("reference", {y.v.data(), y.s}, x.cv(), w);
    return y;
  }
  rt avg_pool_transpose(const rt& g, const shape& xs, const kernels::pool_window& w) const {
    rt dx{xs, std::vector<double>(xs.numel())};
    kernels::avg_pool_transpose_with<double>("reference", {dx.v.data(), xs}, g.cv(), w);
    return dx;
  }

  // A resolved slice: first index and step per axis.
  struct box {
    kernels::axis_values begin{}, step{};
  };
  // x[b0:e0:s0, ...]: a negative bound counts from the extent, to_end is the extent; no clipping.
  rt slice(const rt& x, const std::vector<std::ptrdiff_t>& begin_end, const std::vector<std::size_t>& steps, box& b) {
    shape out = x.s;
    for (std::size_t d = 0; d < x.s.rank(); ++d) {
      const auto n = std::ptrdiff_t(x.s[d]);
      std::ptrdiff_t lo = begin_end[2 * d], hi = begin_end[2 * d + 1];
      if (lo < 0) lo += n;
      if (hi == to_end) hi = n;
      else if (hi < 0) hi += n;
      if (lo < 0 || hi > n || lo > hi)
        throw invalid{fmt::format("slice: range {}:{} of axis {} outside its extent {}", lo, hi, d, n)};
      b.begin[d] = std::size_t(lo);
      b.step[d] = steps[d];
      out[d] = (std::size_t(hi - lo) + steps[d] - 1) / steps[d];
    }
    rt y{out, {}};
    if (compute_) y.v = reference_slice(x, out, b.begin, b.step);
    return y;
  }
  rt unslice(const rt& g, const shape& xs, const box& b) const {
    return {xs, reference_unslice(g, xs, b.begin, b.step)};
  }

  // low_high: (low, high) zeros per axis.
  rt pad(const rt& x, const std::vector<std::size_t>& low_high) {
    shape out = x.s;
    for (std::size_t d = 0; d < x.s.rank(); ++d) out[d] += low_high[2 * d] + low_high[2 * d + 1];
    rt y{out, {}};
    if (compute_) y.v = reference_unslice(x, out, lows(low_high), kernels::unit_steps);
    return y;
  }
  rt pad_backward(const rt& g, const shape& xs, const std::vector<std::size_t>& low_high) const {
    return {xs, reference_slice(g, xs, lows(low_high), kernels::unit_steps)};
  }

  rt concat(const std::vector<const rt*>& parts, std::size_t axis) {
    shape out = parts[0]->s;
    for (std::size_t k = 1; k < parts.size(); ++k) {
      for (std::size_t d = 0; d < out.rank(); ++d)
        if (d != axis && parts[k]->s[d] != parts[0]->s[d])
          throw invalid{fmt::format("concat on axis {}: {} and {} differ off the axis", axis, parts[0]->s, parts[k]->s)};
      out[axis] += parts[k]->s[axis];
    }
    rt y{out, {}};
    if (!compute_) return y;
    std::vector<view<const double>> views;
    for (auto* p : parts) views.push_back(p->cv());
    y.v.resize(out.numel());
    kernels::concat_with<double>("reference", {y.v.data(), out}, views, axis);
    return y;
  }
  // The block of g that part k of the concat came from.
  rt concat_part(const rt& g, const std::vector<const rt*>& parts, std::size_t axis, std::size_t k) const {
    kernels::axis_values begin{};
    for (std::size_t j = 0; j < k; ++j) begin[axis] += parts[j]->s[axis];
    return {parts[k]->s, reference_slice(g, parts[k]->s, begin, kernels::unit_steps)};
  }

  // target extents: positive, 0 (x's extent there) or one -1 (inferred); row-major order kept.
  rt reshape(const rt& x, const std::vector<std::ptrdiff_t>& target) {
    shape out = shape::of_rank(target.size());
    std::size_t known = 1, inferred = target.size();
    for (std::size_t i = 0; i < target.size(); ++i) {
      if (target[i] == -1) {
        inferred = i;
        continue;
      }
      out[i] = target[i] == 0 ? x.s[i] : std::size_t(target[i]);
      known *= out[i];
    }
    if (inferred < target.size()) {
      if (known == 0 || x.s.numel() % known != 0)
        throw invalid{fmt::format("reshape: {} elements do not divide by {}", x.s.numel(), known)};
      out[inferred] = x.s.numel() / known;
    } else if (known != x.s.numel()) {
      throw invalid{fmt::format("reshape: {} elements, target holds {}", x.s.numel(), known)};
    }
    return {out, x.v};
  }

  // f = sum(y * r) with broadcasting. Shapes only: records y's shape and returns nothing. Else
  // records f, sum |y r| and r's gradient (the last leaf's) and returns y's gradient.
  std::optional<rt> loss(const rt& y, const rt& r, result& out) const {
    out.y_shape = y.s;
    if (!compute_) return std::nullopt;
    const shape s = broadcast_shape(y.s, r.s);
    long double f = 0, scale = 0;
    std::vector<long double> gy(y.v.size(), 0), gr(r.v.size(), 0);
    for (std::size_t i = 0; i < s.numel(); ++i) {
      const auto idx = unravel(i, s);
      const std::size_t a = broadcast_index(idx, y.s), b = broadcast_index(idx, r.s);
      f += (long double)y.v[a] * r.v[b];
      scale += std::abs((long double)y.v[a] * r.v[b]);
      gy[a] += r.v[b];
      gr[b] += y.v[a];
    }
    out.loss = double(f);
    out.scale = double(scale);
    out.grads.back() = rt{r.s, std::vector<double>(gr.begin(), gr.end())};
    return rt{y.s, std::vector<double>(gy.begin(), gy.end())};
  }

 private:
  static double largest(const std::vector<double>& v) {
    double m = 0;
    for (double e : v) m = std::max(m, std::abs(e));
    return m;
  }
  // (N, ceil(n_d / s_d)..., C).
  static shape pooled(const shape& x, const kernels::pool_window& w) {
    shape out = x;
    for (std::size_t d = 0; d + 2 < x.rank(); ++d) {
      if (x[d + 1] == 0) throw invalid{fmt::format("pool: ordered dim {} of {} is empty", d, x)};
      out[d + 1] = (x[d + 1] + w.stride[d] - 1) / w.stride[d];
    }
    return out;
  }
  // The max pool's decisions: each window's gap between its maximum (y) and the other values of x
  // in it.
  void record_window_gaps(const rt& x, const rt& y, const kernels::pool_window& w) {
    const double scale = largest(x.v);
    shape window = shape::of_rank(w.dims);
    for (std::size_t d = 0; d < w.dims; ++d) window[d] = w.size[d];
    for (std::size_t i = 0; i < y.v.size(); ++i) {
      const auto o = unravel(i, y.s);  // (n, o..., c)
      for (std::size_t t = 0; t < window.numel(); ++t) {
        const auto j = unravel(t, window);
        auto p = o;
        bool inside = true;
        for (std::size_t d = 0; d < w.dims; ++d) {
          p[d + 1] = o[d + 1] * w.stride[d] + j[d];
          inside = inside && p[d + 1] < x.s[d + 1];
        }
        if (!inside) continue;
        const double v = x.v[ravel(p, x.s)];
        if (v != y.v[i]) margin_ = std::min(margin_, (y.v[i] - v) / scale);
      }
    }
  }
  // slice and unslice by the library's reference implementation (kernels/layout.hpp, "reference").
  static std::vector<double> reference_slice(const rt& x, const shape& out, const kernels::axis_values& begin,
                                             const kernels::axis_values& step) {
    std::vector<double> y(out.numel());
    kernels::slice_with<double>("reference", {y.data(), out}, x.cv(), begin, step);
    return y;
  }
  static std::vector<double> reference_unslice(const rt& x, const shape& out, const kernels::axis_values& begin,
                                               const kernels::axis_values& step) {
    std::vector<double> y(out.numel());
    kernels::unslice_with<double>("reference", {y.data(), out}, x.cv(), begin, step);
    return y;
  }
  static kernels::axis_values lows(const std::vector<std::size_t>& low_high) {
    kernels::axis_values lo{};
    for (std::size_t d = 0; 2 * d < low_high.size(); ++d) lo[d] = low_high[2 * d];
    return lo;
  }

  bool compute_;
  std::size_t conv_elements_ = 0;
  double margin_ = std::numeric_limits<double>::infinity();
};

// The chain rule through a = conv(x, w) + b with x, w, b = in[0], in[1], in[2] (the first layer of
// most programs below): their gradients from a's gradient ga, z = conv(x, w) of shape zs.
void conv_bias_gradients(evaluator& R, const conv_params& p, const rt& ga, const shape& zs, const std::vector<rt>& in,
                         result& out) {
  out.grads[2] = R.sum_to(ga, in[2].s);
  const rt gz = R.sum_to(ga, zs);
  out.grads[0] = R.conv_transpose(p, gz, in[1], in[0].s);
  out.grads[1] = R.conv_weight_grad(p, in[0], gz, in[1].s);
}

// ---- drawing shapes ----------------------------------------------------------------------------

// Extents for one configuration. Small ones (extents, channels and batch from 1, windows up to 4,
// often larger than the input) run in microseconds; one configuration in six is large enough that
// the kernels split their work over threads, and independent nodes (a conv's input and weight
// gradients) run concurrently where they are too narrow to fill the threads alone: what the 1-
// vs 2-thread comparison needs.
struct drawer {
  std::mt19937& rng;
  bool large;
  std::size_t pick(std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); }
  bool one_in(std::size_t n) { return pick(1, n) == 1; }
  std::size_t batch() { return large ? pick(2, 4) : pick(1, 3); }
  std::size_t channels() { return large ? pick(8, 28) : pick(1, 5); }
  std::size_t extent(std::size_t dims) {
    if (large) return dims == 1 ? pick(150, 400) : dims == 2 ? pick(16, 28) : pick(8, 12);
    return dims == 1 ? pick(1, 14) : dims == 2 ? pick(1, 9) : pick(1, 6);
  }
  std::size_t window(std::size_t dims) { return pick(1, dims == 3 ? 3 : 4); }
};

// ---- the programs ------------------------------------------------------------------------------
// Each: its leaves (r last), y, f = sum(y * r), how its leaf shapes are drawn, and its reference:
// the forward pass with the naive ops, then the chain rule by hand, one adjoint per line.

// 1-d, same padding (even or odd window), bias, relu, overlapping max pool.
struct conv1d_same_relu_maxpool {
  static constexpr var<"x", 3> x{};
  static constexpr var<"w", 3> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 3> r{};
  static constexpr auto y = max_pool(relu(conv(x, w) + b), window<3>, stride<2>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k = d.channels();
    return {{n, d.extent(1), c}, {k, d.window(1), c}, {k}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 1});
    const kernels::pool_window pool{1, {3}, {2}};
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), h = R.relu(a), yv = R.max_pool(h, pool);
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.relu_backward(R.max_pool_backward(*gy, h, pool), a);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// 1-d, valid padding, stride 2, dilation 2; average pool (clipped last window); a strided slice
// (its adjoint is unslice, not a pad).
struct conv1d_valid_dilated_avgpool_slice {
  static constexpr var<"x", 3> x{};
  static constexpr var<"w", 3> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 3> r{};
  static constexpr auto y =
      slice<0, to_end, 1, to_end, 0, to_end>(avg_pool(conv(x, w, padding_valid, stride<2>, dilation<2>) + b, window<2>),
                                             stride<1, 2, 1>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k = d.channels();
    return {{n, d.extent(1), c}, {k, d.window(1), c}, {k}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 1, .padding = padding_mode::valid, .stride = {2}, .dilation = {2}});
    const kernels::pool_window pool{1, {2}, {2}};
    evaluator::box box;
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), q = R.avg_pool(a, pool);
    const rt yv = R.slice(q, {0, to_end, 1, to_end, 0, to_end}, {1, 2, 1}, box);
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.avg_pool_transpose(R.unslice(*gy, q.s, box), a.s, pool);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// 1-d, two groups, explicit padding (2, 0), stride 3; reshaped to pairs of channels; max pool with
// stride 1 (overlapping) straight on the conv's output.
struct conv1d_groups_explicit_reshape_maxpool {
  static constexpr var<"x", 3> x{};
  static constexpr var<"w", 3> w{};
  static constexpr var<"r", 3> r{};
  static constexpr auto y =
      max_pool(reshape<0, -1, 2>(conv(x, w, groups<2>, explicit_padding<2, 0>, stride<3>)), window<2>, stride<1>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), cg = d.channels(), kg = d.channels();
    return {{n, d.extent(1), 2 * cg}, {2 * kg, d.window(1), cg}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 1, .padding = padding_mode::explicit_pads, .stride = {3}, .low = {2},
                                  .high = {0}, .groups = 2});
    const kernels::pool_window pool{1, {2}, {1}};
    const rt z = R.conv(p, in[0], in[1]), q = R.reshape(z, {0, -1, 2}), yv = R.max_pool(q, pool);
    const auto gy = R.loss(yv, in[2], out);
    if (!gy) return;
    const rt gz{z.s, R.max_pool_backward(*gy, q, pool).v};  // reshape's adjoint: the same values in z's shape
    out.grads[0] = R.conv_transpose(p, gz, in[1], in[0].s);
    out.grads[1] = R.conv_weight_grad(p, in[0], gz, in[1].s);
  }
};

// 2-d, uncentered padding, stride 2; relu; 2x2 max pool; flatten to (batch, features).
struct conv2d_uncentered_maxpool_flatten {
  static constexpr var<"x", 4> x{};
  static constexpr var<"w", 4> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 2> r{};
  static constexpr auto y = flatten(max_pool(relu(conv(x, w, stride<2>, padding_uncentered) + b), window<2>));
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k = d.channels();
    return {{n, d.extent(2), d.extent(2), c}, {k, d.window(2), d.window(2), c}, {k}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 2, .padding = padding_mode::uncentered, .stride = {2}});
    const kernels::pool_window pool{2, {2, 2}, {2, 2}};
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), h = R.relu(a), q = R.max_pool(h, pool);
    const rt yv = R.reshape(q, {0, -1});
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.relu_backward(R.max_pool_backward(rt{q.s, gy->v}, h, pool), a);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// 2-d, two branches read x (an Inception block): same padding with relu, and explicit per-dim
// padding with dilation (1, 2); joined along the channels; overlapping 3x3 average pool. The
// branches' extents agree only for a 2x2 second window, which is drawn 7 times in 8.
struct conv2d_two_branches_concat_avgpool {
  static constexpr var<"x", 4> x{};
  static constexpr var<"w1", 4> w1{};
  static constexpr var<"b1", 1> b1{};
  static constexpr var<"w2", 4> w2{};
  static constexpr var<"r", 4> r{};
  static constexpr auto y = avg_pool(
      concat<-1>(relu(conv(x, w1) + b1), conv(x, w2, explicit_padding<1, 0, 0, 2>, dilation<1, 2>)), window<3>,
      stride<1>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w1, b1, w2, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k1 = d.channels(), k2 = d.channels();
    const bool fits = !d.one_in(8);
    return {{n, d.extent(2), d.extent(2), c},
            {k1, d.window(2), d.window(2), c},
            {k1},
            {k2, fits ? 2 : d.window(2), fits ? 2 : d.window(2), c}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p1 = params({.dims = 2});
    const conv_params p2 = params(
        {.dims = 2, .padding = padding_mode::explicit_pads, .dilation = {1, 2}, .low = {1, 0}, .high = {0, 2}});
    const kernels::pool_window pool{2, {3, 3}, {1, 1}};
    const rt z1 = R.conv(p1, in[0], in[1]), a1 = R.add(z1, in[2]), h1 = R.relu(a1), z2 = R.conv(p2, in[0], in[3]);
    const std::vector<const rt*> parts{&h1, &z2};
    const rt cat = R.concat(parts, 3), yv = R.avg_pool(cat, pool);
    const auto gy = R.loss(yv, in[4], out);
    if (!gy) return;
    const rt gcat = R.avg_pool_transpose(*gy, cat.s, pool);
    const rt ga1 = R.relu_backward(R.concat_part(gcat, parts, 3, 0), a1), gz2 = R.concat_part(gcat, parts, 3, 1);
    out.grads[2] = R.sum_to(ga1, in[2].s);
    const rt gz1 = R.sum_to(ga1, z1.s);
    out.grads[0] = R.add(R.conv_transpose(p1, gz1, in[1], in[0].s), R.conv_transpose(p2, gz2, in[3], in[0].s));
    out.grads[1] = R.conv_weight_grad(p1, in[0], gz1, in[1].s);
    out.grads[3] = R.conv_weight_grad(p2, in[0], gz2, in[3].s);
  }
};

// 2-d, two groups, same padding, stride (1, 2); bias; zero padding (1, 2) x (0, 1) around the
// image; max pool 2x3 with stride (1, 2) (overlapping in both dims; pad zeros tie exactly).
struct conv2d_groups_pad_maxpool {
  static constexpr var<"x", 4> x{};
  static constexpr var<"w", 4> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 4> r{};
  static constexpr auto y = max_pool(pad<0, 0, 1, 2, 0, 1, 0, 0>(conv(x, w, groups<2>, stride<1, 2>) + b),
                                     window<2, 3>, stride<1, 2>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), cg = d.channels(), kg = d.channels();
    return {{n, d.extent(2), d.extent(2), 2 * cg}, {2 * kg, d.window(2), d.window(2), cg}, {2 * kg}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 2, .stride = {1, 2}, .groups = 2});
    const kernels::pool_window pool{2, {2, 3}, {1, 2}};
    const std::vector<std::size_t> pads{0, 0, 1, 2, 0, 1, 0, 0};
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), q = R.pad(a, pads), yv = R.max_pool(q, pool);
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.pad_backward(R.max_pool_backward(*gy, q, pool), a.s, pads);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// 2-d, three groups (depthwise when x has 3 channels, with a channel multiplier K/3), valid
// padding, dilation (2, 1); relu; a crop of one row at each end (its adjoint is a pad); 2x2
// average pool.
struct conv2d_depthwise_valid_crop_avgpool {
  static constexpr var<"x", 4> x{};
  static constexpr var<"w", 4> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 4> r{};
  static constexpr auto y = avg_pool(
      slice<0, to_end, 1, -1, 0, to_end, 0, to_end>(relu(conv(x, w, groups<3>, padding_valid, dilation<2, 1>) + b)),
      window<2>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), cg = d.one_in(2) ? 1 : 2, m = d.large ? d.pick(2, 6) : d.pick(1, 2);
    return {{n, d.extent(2), d.extent(2), 3 * cg}, {3 * m, d.window(2), d.window(2), cg}, {3 * m}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 2, .padding = padding_mode::valid, .dilation = {2, 1}, .groups = 3});
    const kernels::pool_window pool{2, {2, 2}, {2, 2}};
    evaluator::box box;
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), h = R.relu(a);
    const rt s = R.slice(h, {0, to_end, 1, -1, 0, to_end, 0, to_end}, {1, 1, 1, 1}, box), yv = R.avg_pool(s, pool);
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.relu_backward(R.unslice(R.avg_pool_transpose(*gy, s.s, pool), h.s, box), a);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// 2-d, two layers: conv (same) + bias, relu, 2x2 max pool, then a strided conv with explicit
// padding (1, 1), bias and relu. The first layer's gradients pass through the second conv.
struct conv2d_two_layers {
  static constexpr var<"x", 4> x{};
  static constexpr var<"w1", 4> w1{};
  static constexpr var<"b1", 1> b1{};
  static constexpr var<"w2", 4> w2{};
  static constexpr var<"b2", 1> b2{};
  static constexpr var<"r", 4> r{};
  static constexpr auto h = max_pool(relu(conv(x, w1) + b1), window<2>);
  static constexpr auto y = relu(conv(h, w2, stride<2>, explicit_padding<1, 1>) + b2);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w1, b1, w2, b2, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k1 = d.channels(), k2 = d.channels();
    return {{n, d.extent(2), d.extent(2), c}, {k1, d.window(2), d.window(2), c}, {k1},
            {k2, d.window(2), d.window(2), k1}, {k2}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p1 = params({.dims = 2});
    const conv_params p2 = params({.dims = 2, .padding = padding_mode::explicit_pads, .stride = {2}, .low = {1}, .high = {1}});
    const kernels::pool_window pool{2, {2, 2}, {2, 2}};
    const rt z1 = R.conv(p1, in[0], in[1]), a1 = R.add(z1, in[2]), h1 = R.relu(a1), q = R.max_pool(h1, pool);
    const rt z2 = R.conv(p2, q, in[3]), a2 = R.add(z2, in[4]), yv = R.relu(a2);
    const auto gy = R.loss(yv, in[5], out);
    if (!gy) return;
    const rt ga2 = R.relu_backward(*gy, a2);
    out.grads[4] = R.sum_to(ga2, in[4].s);
    const rt gz2 = R.sum_to(ga2, z2.s);
    out.grads[3] = R.conv_weight_grad(p2, q, gz2, in[3].s);
    const rt ga1 = R.relu_backward(R.max_pool_backward(R.conv_transpose(p2, gz2, in[3], q.s), h1, pool), a1);
    conv_bias_gradients(R, p1, ga1, z1.s, in, out);
  }
};

// 2-d, same padding with stride (2, 1) and dilation (1, 2); the biased output fans out to a relu
// and to a 3x2 max pool with stride 1, joined along the channels (two adjoints meet in an add).
struct conv2d_fanout_concat {
  static constexpr var<"x", 4> x{};
  static constexpr var<"w", 4> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 4> r{};
  static constexpr auto z = conv(x, w, stride<2, 1>, dilation<1, 2>) + b;
  static constexpr auto y = concat<-1>(relu(z), max_pool(z, window<3, 2>, stride<1>));
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k = d.channels();
    return {{n, d.extent(2), d.extent(2), c}, {k, d.window(2), d.window(2), c}, {k}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 2, .stride = {2, 1}, .dilation = {1, 2}});
    const kernels::pool_window pool{2, {3, 2}, {1, 1}};
    const rt zc = R.conv(p, in[0], in[1]), a = R.add(zc, in[2]), h = R.relu(a), m = R.max_pool(a, pool);
    const std::vector<const rt*> parts{&h, &m};
    const rt yv = R.concat(parts, 3);
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.add(R.relu_backward(R.concat_part(*gy, parts, 3, 0), a),
                        R.max_pool_backward(R.concat_part(*gy, parts, 3, 1), a, pool));
    conv_bias_gradients(R, p, ga, zc.s, in, out);
  }
};

// 3-d, explicit padding (1, 1), stride (2, 1, 2); relu; 2x2x2 max pool; flatten.
struct conv3d_explicit_maxpool_flatten {
  static constexpr var<"x", 5> x{};
  static constexpr var<"w", 5> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 2> r{};
  static constexpr auto y =
      flatten(max_pool(relu(conv(x, w, stride<2, 1, 2>, explicit_padding<1, 1>) + b), window<2>));
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k = d.channels();
    return {{n, d.extent(3), d.extent(3), d.extent(3), c}, {k, d.window(3), d.window(3), d.window(3), c}, {k}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p =
        params({.dims = 3, .padding = padding_mode::explicit_pads, .stride = {2, 1, 2}, .low = {1}, .high = {1}});
    const kernels::pool_window pool{3, {2, 2, 2}, {2, 2, 2}};
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), h = R.relu(a), q = R.max_pool(h, pool);
    const rt yv = R.reshape(q, {0, -1});
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.relu_backward(R.max_pool_backward(rt{q.s, gy->v}, h, pool), a);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// 3-d, two groups, uncentered padding, dilation (1, 2, 1); bias; average pool 1x2x2 with stride
// (1, 2, 1) (overlapping in the last dim).
struct conv3d_groups_uncentered_avgpool {
  static constexpr var<"x", 5> x{};
  static constexpr var<"w", 5> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"r", 5> r{};
  static constexpr auto y =
      avg_pool(conv(x, w, padding_uncentered, dilation<1, 2, 1>, groups<2>) + b, window<1, 2, 2>, stride<1, 2, 1>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), cg = d.channels(), kg = d.channels();
    return {{n, d.extent(3), d.extent(3), d.extent(3), 2 * cg}, {2 * kg, d.window(3), d.window(3), d.window(3), cg},
            {2 * kg}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 3, .padding = padding_mode::uncentered, .dilation = {1, 2, 1}, .groups = 2});
    const kernels::pool_window pool{3, {1, 2, 2}, {1, 2, 1}};
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), yv = R.avg_pool(a, pool);
    const auto gy = R.loss(yv, in[3], out);
    if (!gy) return;
    const rt ga = R.avg_pool_transpose(*gy, a.s, pool);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// 1-d: a conv branch (same, relu) joined along time with a second input padded by one step at
// each end; max pool 2 with stride 3 (inputs between windows get no gradient).
struct conv1d_concat_time_pad_maxpool {
  static constexpr var<"x", 3> x{};
  static constexpr var<"w", 3> w{};
  static constexpr var<"b", 1> b{};
  static constexpr var<"x2", 3> x2{};
  static constexpr var<"r", 3> r{};
  static constexpr auto y =
      max_pool(concat<1>(relu(conv(x, w) + b), pad<0, 0, 1, 1, 0, 0>(x2)), window<2>, stride<3>);
  static constexpr auto f = sum(y * r);
  static constexpr auto leaves = std::tuple{x, w, b, x2, r};
  static std::vector<shape> draw(drawer& d) {
    const std::size_t n = d.batch(), c = d.channels(), k = d.channels();
    return {{n, d.extent(1), c}, {k, d.window(1), c}, {k}, {n, d.extent(1), k}};
  }
  static void reference(evaluator& R, const std::vector<rt>& in, result& out) {
    const conv_params p = params({.dims = 1});
    const kernels::pool_window pool{1, {2}, {3}};
    const std::vector<std::size_t> pads{0, 0, 1, 1, 0, 0};
    const rt z = R.conv(p, in[0], in[1]), a = R.add(z, in[2]), h = R.relu(a), q = R.pad(in[3], pads);
    const std::vector<const rt*> parts{&h, &q};
    const rt cat = R.concat(parts, 1), yv = R.max_pool(cat, pool);
    const auto gy = R.loss(yv, in[4], out);
    if (!gy) return;
    const rt gcat = R.max_pool_backward(*gy, cat, pool);
    out.grads[3] = R.pad_backward(R.concat_part(gcat, parts, 1, 1), in[3].s, pads);
    const rt ga = R.relu_backward(R.concat_part(gcat, parts, 1, 0), a);
    conv_bias_gradients(R, p, ga, z.s, in, out);
  }
};

// ---- running a configuration -------------------------------------------------------------------

template <class Tpl>
using leaves_t = std::remove_cvref_t<decltype(Tpl::leaves)>;
template <class Tpl>
inline constexpr std::size_t leaf_count = std::tuple_size_v<leaves_t<Tpl>>;
template <class Tpl, std::size_t K>
inline constexpr std::size_t leaf_rank = std::tuple_element_t<K, leaves_t<Tpl>>::rank;

// Each program compiled once per element type, one instance per thread count.
template <class Tpl, class T>
auto make_program(int threads) {
  auto prog = std::apply([](auto... leaf) { return compile<T>(Tpl::f, wrt(leaf...)); }, Tpl::leaves);
  prog.set_threads(threads);
  return prog;
}
template <class Tpl, class T>
struct programs {
  decltype(make_program<Tpl, T>(1)) one = make_program<Tpl, T>(1), two = make_program<Tpl, T>(2);
  static programs& get() {
    static programs p;
    return p;
  }
};

// What one run of a program gave.
template <class T>
struct outcome {
  bool rejected = false, wrong_error = false;  // a shape_error; any other exception
  std::string error;
  T loss{};
  std::vector<std::vector<T>> grads;
  std::vector<shape> grad_shapes;
};

template <class T, std::size_t R>
tensor<T, R> to_tensor(const rt& t) {
  const std::vector<T> v(t.v.begin(), t.v.end());
  return tensor<T, R>(view<const T>{v.data(), t.s});
}

template <class Tpl, class T, class Prog, std::size_t... K>
outcome<T> run_program(Prog& prog, const std::vector<rt>& data, std::index_sequence<K...>) {
  const auto tensors = std::tuple{to_tensor<T, leaf_rank<Tpl, K>>(data[K])...};
  (prog.bind(std::get<K>(Tpl::leaves), std::get<K>(tensors)), ...);
  outcome<T> out;
  try {
    prog.run();
  } catch (const shape_error& e) {
    out.rejected = true;
    out.error = e.what();
    return out;
  } catch (const std::exception& e) {
    out.wrong_error = true;
    out.error = e.what();
    return out;
  }
  out.loss = prog.scalar(Tpl::f);
  (out.grads.push_back(test_support::values(prog.gradient(std::get<K>(Tpl::leaves)))), ...);
  (out.grad_shapes.push_back(prog.gradient(std::get<K>(Tpl::leaves)).shape), ...);
  return out;
}

template <class T>
bool bitwise_equal(const outcome<T>& a, const outcome<T>& b) {
  if (std::memcmp(&a.loss, &b.loss, sizeof(T)) != 0 || a.grads.size() != b.grads.size()) return false;
  for (std::size_t k = 0; k < a.grads.size(); ++k)
    if (a.grads[k].size() != b.grads[k].size() ||
        std::memcmp(a.grads[k].data(), b.grads[k].data(), a.grads[k].size() * sizeof(T)) != 0)
      return false;
  return true;
}

// Tolerances, relative to the scale of what is compared: f against sum |y r| (the magnitude of its
// terms, so that cancellation in the sum does not shrink the bound); each gradient against its
// largest |element| (norm-wise), but at least 1, the size of one term (the leaves are in [-1, 1),
// and each term of a gradient is a product of leaf values): a gradient that a sum of many terms
// cancels down to near 0 (a bias broadcast to every channel) is held to the error of its terms,
// not to its own size. The references sum in long double from the same inputs (exact in float)
// and round to double between ops, so they are exact to a few double ulps.
//   float: the error grows with the accumulations along a program's longest path: conv sums of up
//   to ~750 products (3x3x3 taps x 28 channels), bias gradients and f summing up to ~50,000 terms,
//   two convs in a row. Blocked summation keeps it near eps * sqrt(terms) per sum (eps = 1.2e-7);
//   over 2 x 10,000 configurations (seeds 12 and 13) the worst was 7.9e-6 of the scale (the
//   summary prints the worst ratio to the tolerance). 1e-4 leaves a factor 12, while the errors
//   the fuzzer hunts (a missed tap, a wrong window or offset, a lost adjoint term) move results by
//   whole terms, 1e-3 of the scale or more.
//   double: the same sums at eps = 2.2e-16; the worst was 1.1e-14 of the scale (a bias gradient
//   summing ~50,000 terms), and 1e-12 leaves a factor 90.
template <class T>
constexpr double tolerance = std::is_same_v<T, float> ? 1e-4 : 1e-12;
// Decisions (relu's sign, a max-pool window's argmax) within this relative margin of a tie could go
// either way in T: the programs' values are off by up to ~1e-6 of their tensor's largest |value| in
// float (the worst of y over 10,000 configurations), ~1e-15 in double. Data nearer a tie than the
// float margin is drawn again; after a few draws the configuration is compared in double only
// (large configurations make tens of thousands of decisions, so some of them need that).
template <class T>
constexpr double decision_margin = std::is_same_v<T, float> ? 1e-5 : 1e-10;
constexpr unsigned attempts = 6;

struct tally {
  std::size_t compared = 0, double_only = 0, large = 0, concurrent = 0, rejected = 0, perturbed_rejected = 0,
              redraws = 0, ambiguous = 0;
  double worst[2] = {0, 0};  // largest error / tolerance seen, float and double
  std::string worst_at[2];   // where
};

struct config {
  std::size_t index;
  unsigned seed;
  bool large;
  std::string perturbed;  // which extent was changed on purpose, if any
  std::vector<shape> shapes;
  std::string describe;
};

template <class Tpl, class T>
void compare_with_reference(const config& c, const std::vector<rt>& data, const result& ref, tally& t) {
  auto& progs = programs<Tpl, T>::get();
  const auto seq = std::make_index_sequence<leaf_count<Tpl>>{};
  const outcome<T> one = run_program<Tpl, T>(progs.one, data, seq), two = run_program<Tpl, T>(progs.two, data, seq);
  const std::string what = fmt::format("{} [{}]", c.describe, std::is_same_v<T, float> ? "float" : "double");
  for (const auto* o : {&one, &two}) {
    if (o->wrong_error) {
      BOOST_ERROR(what << ": the program threw an exception that is not a shape_error: " << o->error);
      return;
    }
    if (o->rejected) {
      BOOST_ERROR(what << ": the program rejected shapes the reference accepts: " << o->error);
      return;
    }
  }
  BOOST_TEST(bitwise_equal(one, two), what << ": the results at 1 and 2 threads differ");

  const double tol = tolerance<T>;
  auto note = [&](double error, double scale, const std::string& output) {
    const std::size_t i = std::is_same_v<T, float> ? 0 : 1;
    if (scale > 0 && error / (tol * scale) > t.worst[i]) {
      t.worst[i] = error / (tol * scale);
      t.worst_at[i] = fmt::format("configuration {}, {}", c.index, output);
    }
  };
  const double loss_error = std::abs(double(one.loss) - ref.loss);
  note(loss_error, ref.scale, "f");
  if (!(loss_error <= tol * ref.scale))
    BOOST_ERROR(what << ": f = " << double(one.loss) << ", the reference gives " << ref.loss << " (terms' scale "
                     << ref.scale << ")");
  std::vector<std::string> names;
  std::apply([&](auto... leaf) { (names.push_back(to_string(leaf)), ...); }, Tpl::leaves);
  for (std::size_t k = 0; k < ref.grads.size(); ++k) {
    const auto& got = one.grads[k];
    const auto& want = ref.grads[k].v;
    if (!(one.grad_shapes[k] == ref.grads[k].s)) {
      BOOST_ERROR(what << ": the gradient of " << names[k] << " has shape " << one.grad_shapes[k] << ", expected "
                       << ref.grads[k].s);
      continue;
    }
    double scale = 1, error = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::abs(want[i]));
      const double e = std::abs(double(got[i]) - want[i]);
      if (!(e <= error)) error = e, at = i;  // NaN counts as the worst
    }
    note(error, scale, "gradient of " + names[k]);
    if (!(error <= tol * scale))
      BOOST_ERROR(what << ": the gradient of " << names[k] << " differs by " << error << " at element " << at
                       << " (index " << fmt::format("{}", fmt::join(unravel(at, ref.grads[k].s), ", "))
                       << "): " << double(got[at]) << ", the reference gives " << want[at] << "; largest |gradient| "
                       << scale << ", tolerance " << tol * scale);
  }
}

template <class Tpl, class T>
void expect_rejection(const config& c, const std::vector<rt>& data, const std::string& why) {
  auto& progs = programs<Tpl, T>::get();
  const auto seq = std::make_index_sequence<leaf_count<Tpl>>{};
  for (auto* prog : {&progs.one, &progs.two}) {
    const outcome<T> o = run_program<Tpl, T>(*prog, data, seq);
    const std::string what = fmt::format("{} [{}, {} thread(s)]", c.describe, std::is_same_v<T, float> ? "float" : "double",
                                         prog == &progs.one ? 1 : 2);
    if (o.wrong_error)
      BOOST_ERROR(what << ": the reference rejects the shapes (" << why
                       << ") and the program threw an exception that is not a shape_error: " << o.error);
    else if (!o.rejected)
      BOOST_ERROR(what << ": the reference rejects the shapes (" << why << ") but the program ran");
  }
}

// Values uniform in [-1, 1), rounded to float: one data set, exact in both element types.
template <class Tpl, std::size_t... K>
std::vector<rt> draw_data(const std::vector<shape>& shapes, unsigned seed, std::index_sequence<K...>) {
  std::vector<rt> out;
  auto leaf = [&]<std::size_t R>(std::integral_constant<std::size_t, R>, const shape& s, unsigned leaf_seed) {
    std::array<std::size_t, R> extents{};
    std::copy(s.dims().begin(), s.dims().end(), extents.begin());
    const auto t = test_support::random_uniform<R>(extents, leaf_seed);
    rt v{s, std::vector<double>(t.data(), t.data() + t.size())};
    for (auto& e : v.v) e = double(float(e));
    out.push_back(std::move(v));
  };
  (leaf(std::integral_constant<std::size_t, leaf_rank<Tpl, K>>{}, shapes[K], seed + unsigned(K)), ...);
  return out;
}

std::size_t env_or(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::size_t(std::strtoull(v, nullptr, 10)) : fallback;
}


// Changes one extent of one leaf (not r) to another value in [1, old + 2]: the shape rules decide.
std::string perturb(std::vector<shape>& shapes, const std::vector<std::string>& names, drawer& d) {
  const std::size_t k = d.pick(0, shapes.size() - 1), axis = d.pick(0, shapes[k].rank() - 1);
  const std::size_t old = shapes[k][axis];
  std::size_t now = d.pick(1, old + 1);
  if (now >= old) ++now;
  shapes[k][axis] = now;
  return fmt::format("{} extent {} changed from {} to {}", names[k], axis, old, now);
}

template <class Tpl>
void fuzz_one(std::size_t index, unsigned seed, tally& t) {
  constexpr std::size_t n = leaf_count<Tpl>;
  const auto seq = std::make_index_sequence<n>{};
  std::seed_seq seeds{seed, unsigned(index), unsigned(index >> 32)};
  std::mt19937 rng(seeds);
  drawer d{rng, rng() % 6 == 0};
  std::vector<std::string> names;
  std::apply([&](auto... leaf) { (names.push_back(to_string(leaf)), ...); }, Tpl::leaves);

  config c{index, seed, d.large, {}, Tpl::draw(d), {}};
  if (d.one_in(8)) c.perturbed = perturb(c.shapes, names, d);

  // The reference shape rule: y's shape, or the reason the shapes do not fit.
  std::string why;
  std::optional<shape> ys;
  try {
    evaluator shapes_only(false);
    std::vector<rt> in;
    for (const auto& s : c.shapes) in.push_back({s, {}});
    in.push_back({});
    result res;
    Tpl::reference(shapes_only, in, res);
    ys = res.y_shape;
  } catch (const invalid& e) {
    why = e.why;
  }
  // r: y's shape, one time in 16 with an axis set to 1 (broadcast) or to one more (a mismatch
  // unless y's extent there is 1); any shape of r's rank when y has none.
  constexpr std::size_t r_rank = leaf_rank<Tpl, n - 1>;
  shape rs = shape::of_rank(r_rank);
  if (ys) {
    rs = *ys;
    if (d.one_in(16)) {
      const std::size_t axis = d.pick(0, r_rank - 1), old = rs[axis];
      rs[axis] = old != 1 && d.one_in(2) ? 1 : old + 1;
      c.perturbed += fmt::format("{}r extent {} changed from {} to {}", c.perturbed.empty() ? "" : "; ", axis, old,
                                 rs[axis]);
      try {
        (void)broadcast_shape(*ys, rs);
      } catch (const invalid& e) {
        why = "f: " + e.why;
        ys.reset();
      }
    }
  } else {
    for (std::size_t a = 0; a < r_rank; ++a) rs[a] = d.pick(1, 3);
  }
  c.shapes.push_back(rs);

  std::string shapes_text;
  for (std::size_t k = 0; k < n; ++k) shapes_text += fmt::format("{}{} {}", k ? ", " : "", names[k], c.shapes[k]);
  c.describe = fmt::format(
      "configuration {} of seed {} ({}): y = {}; {}{}{}\n  replay: TYPEGRAD_FUZZ_SEED={} TYPEGRAD_FUZZ_FIRST={} "
      "TYPEGRAD_FUZZ_PROGRAMS=1 build/tests/test_fuzz_programs",
      index, seed, d.large ? "large" : "small", to_string(Tpl::y), shapes_text,
      c.perturbed.empty() ? "" : "; perturbed: ", c.perturbed, seed, index);
  BOOST_TEST_CHECKPOINT(c.describe);

  const unsigned data_seed = seed * 2654435761u + unsigned(index) * 40503u;
  if (!ys) {
    const auto data = draw_data<Tpl>(c.shapes, data_seed, seq);
    expect_rejection<Tpl, float>(c, data, why);
    expect_rejection<Tpl, double>(c, data, why);
    ++t.rejected;
    if (!c.perturbed.empty()) ++t.perturbed_rejected;
    return;
  }
  // Data whose decisions are not near ties (a few tries; the count of redraws is printed).
  for (unsigned attempt = 0; attempt < attempts; ++attempt) {
    const auto data = draw_data<Tpl>(c.shapes, data_seed + 7919u * attempt, seq);
    evaluator R(true);
    result ref;
    ref.grads.resize(n);
    try {
      Tpl::reference(R, data, ref);
    } catch (const invalid& e) {
      BOOST_ERROR(c.describe << ": the reference's shape pass accepted the shapes, its computing pass did not: " << e.why);
      return;
    }
    const bool in_float = R.margin() >= decision_margin<float>;
    if (!in_float && attempt + 1 < attempts) {
      ++t.redraws;
      continue;
    }
    if (!in_float && R.margin() < decision_margin<double>) break;
    for (std::size_t k = 0; k < n; ++k)
      BOOST_TEST_REQUIRE(ref.grads[k].s == c.shapes[k], c.describe << ": the reference's gradient of " << names[k]);
    if (in_float) compare_with_reference<Tpl, float>(c, data, ref, t);
    compare_with_reference<Tpl, double>(c, data, ref, t);
    ++(in_float ? t.compared : t.double_only);
    if (c.large) ++t.large;
    if (R.conv_elements() >= std::size_t{1} << 15 && R.conv_elements() < std::size_t{1} << 17) ++t.concurrent;
    return;
  }
  ++t.ambiguous;
}

using fuzz_fn = void (*)(std::size_t, unsigned, tally&);
constexpr std::array<fuzz_fn, 12> all_programs{
    &fuzz_one<conv1d_same_relu_maxpool>,
    &fuzz_one<conv1d_valid_dilated_avgpool_slice>,
    &fuzz_one<conv1d_groups_explicit_reshape_maxpool>,
    &fuzz_one<conv1d_concat_time_pad_maxpool>,
    &fuzz_one<conv2d_uncentered_maxpool_flatten>,
    &fuzz_one<conv2d_two_branches_concat_avgpool>,
    &fuzz_one<conv2d_groups_pad_maxpool>,
    &fuzz_one<conv2d_depthwise_valid_crop_avgpool>,
    &fuzz_one<conv2d_two_layers>,
    &fuzz_one<conv2d_fanout_concat>,
    &fuzz_one<conv3d_explicit_maxpool_flatten>,
    &fuzz_one<conv3d_groups_uncentered_avgpool>,
};

}  // namespace

BOOST_AUTO_TEST_CASE(random_programs_match_reference) {
  const std::size_t count = env_or("TYPEGRAD_FUZZ_PROGRAMS", 1000), first = env_or("TYPEGRAD_FUZZ_FIRST", 0);
  const auto seed = unsigned(env_or("TYPEGRAD_FUZZ_SEED", 12));
  tally t;
  for (std::size_t i = first; i < first + count; ++i) all_programs[i % all_programs.size()](i, seed, t);
  const std::string summary = fmt::format(
      "fuzz_programs: seed {}, configurations {}..{} over {} programs\n"
      "  compared: {} in float and double at 1 and 2 threads, {} in double only (near a tie in float after {} "
      "draws); {} large, {} with a conv of 2^15 to 2^17 elements (run concurrently at 2 threads)\n"
      "  rejected: {} by the reference and the program alike ({} after a perturbed extent)\n"
      "  data redrawn near a tie: {}; skipped: {} ambiguous\n"
      "  worst error / tolerance: float {:.3g} ({}), double {:.3g} ({})",
      seed, first, first + count - 1, all_programs.size(), t.compared, t.double_only, attempts, t.large, t.concurrent,
      t.rejected, t.perturbed_rejected, t.redraws, t.ambiguous, t.worst[0], t.worst_at[0], t.worst[1], t.worst_at[1]);
  BOOST_TEST_MESSAGE(summary);
  std::cout << summary << std::endl;
  BOOST_TEST(t.compared + t.double_only + t.rejected + t.ambiguous == count);
  // Both paths are reached (a run of a few configurations may miss one).
  if (count >= 100) {
    BOOST_TEST(t.compared > count / 2);
    BOOST_TEST(t.rejected > 0u);
  }
}

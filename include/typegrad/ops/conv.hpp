#pragma once
// N-d convolution and its closed family: conv, conv_transpose and conv_weight_grad.
//
//   conv(x, w, opts...)                  x (N, n_1..n_D, C), w (K, k_1..k_D, C/groups) -> (N, m_1..m_D, K)
//   conv_transpose(g, w, opts...)        the adjoint of conv with respect to x, applied to g
//                                        (N, m..., K) -> (N, n..., C), n by the natural inverse rule
//   conv_transpose(g, w, like, opts...)  the same with n taken from `like` (shape only, no adjoint)
//
// D >= 1 follows from the ranks. Options are the tags of ops/spatial_options.hpp, in any order,
// each at most once: padding_same (default), padding_valid, padding_uncentered,
// explicit_padding<lo, hi, ...>; stride<s...>; dilation<d...>; groups<g>. Semantics are DESIGN.md's
// normative ones: cross-correlation (no kernel flip), layout channels-last, zero padding; per
// ordered dim with n the input extent, k the window, s the stride, d the dilation:
//   same        pos = o*s + d*(j - floor((k-1)/2)),  m = ceil(n/s)   (even k: extra tap on the high side)
//   valid       pos = o*s + d*j,                     m = floor((n - d*(k-1) - 1)/s) + 1
//   uncentered  pos = o*s + d*j,                     m = ceil(n/s)   (zeros at the end)
//   explicit    pos = o*s + d*j - lo,                m = floor((n + lo + hi - d*(k-1) - 1)/s) + 1
// conv_transpose's natural extents invert these: same/uncentered n = m*s; valid
// n = (m-1)*s + d*(k-1) + 1; explicit the same minus lo + hi.
// A bias is ordinary broadcasting: conv(x, w) + b with b of shape (K).
//
// The three ops are linear in each argument, and their adjoints are each other (see the vjps
// below), so the family is closed under differentiation: second derivatives stay convolutions.
// Kernels: implicit GEMM, serial products inside TBB tasks (src/kernels/conv.cpp).
#include <array>
#include <cstddef>
#include <string>
#include <type_traits>

#include "typegrad/kernels/conv.hpp"
#include "typegrad/ops/op_base.hpp"
#include "typegrad/ops/spatial_options.hpp"
#include "typegrad/ops/unary.hpp"

namespace typegrad {

// The compile-time attributes shared by the family (a structural type: an NTTP of the ops).
struct conv_params {
  std::size_t dims = 1;
  padding_mode padding = padding_mode::same;
  std::array<std::size_t, max_spatial_dims> stride{}, dilation{}, pad_low{}, pad_high{};
  std::size_t groups = 1;
};

namespace detail {

template <class Opt>
inline constexpr bool is_conv_option_v =
    is_stride<Opt>::value || is_dilation<Opt>::value || is_padding<Opt>::value || is_groups<Opt>::value;

// What a list of options means for D ordered dims, and which rule it breaks (checked by the
// user-facing functions so that each static_assert names its own call).
template <std::size_t D, class... Opts>
struct conv_options {
  static constexpr bool known = (is_conv_option_v<Opts> && ...);
  static constexpr bool unique = count_options_v<is_stride, Opts...> <= 1 && count_options_v<is_dilation, Opts...> <= 1 &&
                                 count_options_v<is_padding, Opts...> <= 1 && count_options_v<is_groups, Opts...> <= 1;
  using stride_opt = find_option_t<is_stride, stride_t<1>, Opts...>;
  using dilation_opt = find_option_t<is_dilation, dilation_t<1>, Opts...>;
  using padding_opt = find_option_t<is_padding, padding_t<padding_mode::same>, Opts...>;
  using groups_opt = find_option_t<is_groups, groups_t<1>, Opts...>;
  static constexpr bool stride_fits = stride_opt::fits_dims(D);
  static constexpr bool dilation_fits = dilation_opt::fits_dims(D);
  static constexpr bool padding_fits = [] {
    if constexpr (padding_opt::mode == padding_mode::explicit_pads) return padding_opt::fits_dims(D);
    else return true;
  }();
  static constexpr bool ok = known && unique && stride_fits && dilation_fits && padding_fits;

  static constexpr conv_params params() {
    conv_params p;
    p.dims = D;
    p.padding = padding_opt::mode;
    p.groups = groups_opt::value;
    if constexpr (ok) {
      const auto s = stride_opt::template expand<D>();
      const auto d = dilation_opt::template expand<D>();
      for (std::size_t i = 0; i < D; ++i) {
        p.stride[i] = s[i];
        p.dilation[i] = d[i];
      }
      if constexpr (padding_opt::mode == padding_mode::explicit_pads) {
        const auto lo = padding_opt::template low<D>(), hi = padding_opt::template high<D>();
        for (std::size_t i = 0; i < D; ++i) {
          p.pad_low[i] = lo[i];
          p.pad_high[i] = hi[i];
        }
      }
    }
    return p;
  }
};

constexpr bool all_equal_to(const conv_params& p, const std::array<std::size_t, max_spatial_dims>& a, std::size_t v) {
  for (std::size_t i = 0; i < p.dims; ++i)
    if (a[i] != v) return false;
  return true;
}
constexpr bool is_default(const conv_params& p) {
  return p.padding == padding_mode::same && p.groups == 1 && all_equal_to(p, p.stride, 1) &&
         all_equal_to(p, p.dilation, 1);
}

// "2" when every dim has the same value, else "(2, 1)".
inline std::string per_dim_string(const conv_params& p, const std::array<std::size_t, max_spatial_dims>& a) {
  if (all_equal_to(p, a, a[0])) return fmt::format("{}", a[0]);
  std::string s = "(";
  for (std::size_t i = 0; i < p.dims; ++i) s += fmt::format("{}{}", i ? ", " : "", a[i]);
  return s + ")";
}

// "valid, stride=2, dilation=(1, 2), groups=4": the options that differ from the defaults.
inline std::string conv_attributes(const conv_params& p) {
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
  switch (p.padding) {
    case padding_mode::same: break;
    case padding_mode::valid: add("valid"); break;
    case padding_mode::uncentered: add("uncentered"); break;
    case padding_mode::explicit_pads: {
      bool uniform = true;
      for (std::size_t i = 0; i < p.dims; ++i)
        uniform = uniform && p.pad_low[i] == p.pad_low[0] && p.pad_high[i] == p.pad_high[0];
      std::string pads = "pad=(";
      for (std::size_t i = 0; i < (uniform ? 1 : p.dims); ++i)
        pads += fmt::format("{}{}:{}", i ? ", " : "", p.pad_low[i], p.pad_high[i]);
      add(pads + ")");
      break;
    }
  }
  if (!all_equal_to(p, p.stride, 1)) add("stride=" + per_dim_string(p, p.stride));
  if (!all_equal_to(p, p.dilation, 1)) add("dilation=" + per_dim_string(p, p.dilation));
  if (p.groups != 1) add(fmt::format("groups={}", p.groups));
  return s;
}

// The geometry of conv(x, w) for shapes x and w; throws shape_rule_violation when they do not fit.
constexpr kernels::conv_geometry conv_geometry_of(const conv_params& p, const shape& x, const shape& w) {
  const std::size_t d = p.dims;
  kernels::conv_geometry g;
  g.dims = d;
  g.batch = x[0];
  g.in_channels = x[d + 1];
  g.out_channels = w[0];
  g.groups = p.groups;
  if (w[d + 1] * p.groups != x[d + 1]) {
    if (p.groups == 1)
      throw shape_rule_violation(
          fmt::format("w's in-channels {} (its last extent) must equal x's channels {}", w[d + 1], x[d + 1]));
    throw shape_rule_violation(fmt::format("w's in-channels {} (its last extent) times groups {} must equal x's channels {}",
                                           w[d + 1], p.groups, x[d + 1]));
  }
  if (w[0] % p.groups != 0)
    throw shape_rule_violation(
        fmt::format("w's out channels {} (its first extent) must be divisible by groups {}", w[0], p.groups));
  for (std::size_t i = 0; i < d; ++i) {
    const std::size_t n = x[i + 1], k = w[i + 1], s = p.stride[i], dl = p.dilation[i];
    if (k == 0) throw shape_rule_violation(fmt::format("w's window extent in ordered dim {} is 0", i));
    const std::size_t span = dl * (k - 1) + 1;  // the dilated window
    g.in[i] = n;
    g.window[i] = k;
    g.stride[i] = s;
    g.dilation[i] = dl;
    switch (p.padding) {
      case padding_mode::same:
        g.pad_low[i] = dl * ((k - 1) / 2);
        g.out[i] = (n + s - 1) / s;
        break;
      case padding_mode::uncentered:
        g.pad_low[i] = 0;
        g.out[i] = (n + s - 1) / s;
        break;
      case padding_mode::valid:
      case padding_mode::explicit_pads: {
        const std::size_t lo = p.padding == padding_mode::valid ? 0 : p.pad_low[i];
        const std::size_t padded = n + lo + (p.padding == padding_mode::valid ? 0 : p.pad_high[i]);
        if (span > padded)
          throw shape_rule_violation(fmt::format(
              "the window (extent {}, dilated {}) is larger than the {}input (extent {}) in ordered dim {}: the "
              "output would be empty",
              k, span, p.padding == padding_mode::valid ? "" : "padded ", padded, i));
        g.pad_low[i] = lo;
        g.out[i] = (padded - span) / s + 1;
        break;
      }
    }
  }
  return g;
}

// The output shape of conv for geometry g: (N, m..., K).
constexpr shape conv_output_shape(const kernels::conv_geometry& g) {
  shape s;
  s.push_back(g.batch);
  for (std::size_t i = 0; i < g.dims; ++i) s.push_back(g.out[i]);
  s.push_back(g.out_channels);
  return s;
}

// conv_transpose's output shape by the natural inverse rule, for g (N, m..., K) and w.
constexpr shape conv_transpose_shape(const conv_params& p, const shape& gs, const shape& w) {
  const std::size_t d = p.dims;
  if (gs[d + 1] != w[0])
    throw shape_rule_violation(
        fmt::format("g has {} channels but w has {} out channels (its first extent)", gs[d + 1], w[0]));
  shape x;
  x.push_back(gs[0]);
  for (std::size_t i = 0; i < d; ++i) {
    const std::size_t m = gs[i + 1], k = w[i + 1], s = p.stride[i];
    if (k == 0) throw shape_rule_violation(fmt::format("w's window extent in ordered dim {} is 0", i));
    const std::size_t span = p.dilation[i] * (k - 1) + 1;
    if (p.padding == padding_mode::same || p.padding == padding_mode::uncentered) {
      x.push_back(m * s);
      continue;
    }
    const std::size_t pads = p.padding == padding_mode::valid ? 0 : p.pad_low[i] + p.pad_high[i];
    if (m == 0 || (m - 1) * s + span <= pads)
      throw shape_rule_violation(
          fmt::format("g's extent {} in ordered dim {} is the output of no input extent (window {}, padding {})", m,
                      i, span, pads));
    x.push_back((m - 1) * s + span - pads);
  }
  x.push_back(w[d + 1] * p.groups);
  return x;
}

// g must have the shape conv(x, w) has.
constexpr void check_adjoint_shape(const kernels::conv_geometry& geom, const shape& gs, const shape& x,
                                   const char* what) {
  const shape want = conv_output_shape(geom);
  if (!(gs == want))
    throw shape_rule_violation(fmt::format("g's shape {} differs from {} ({} for x {})", gs, want, what, x));
}

// The multiply-adds of a conv with output (or adjoint) g and weights w (K, k..., C/groups): per
// output element, one per tap and in-channel of its group. conv_transpose and conv_weight_grad
// do the same products in another order.
constexpr std::size_t conv_multiply_adds(const shape& g, const shape& w) {
  return w.rank() > 0 && w[0] > 0 ? g.numel() * (w.numel() / w[0]) : 0;
}

template <class... Args> struct transpose_shape_source { using type = void; };
template <class G, class W, class Like> struct transpose_shape_source<G, W, Like> { using type = shape_source_t<Like>; };

}  // namespace detail

template <conv_params P> struct conv_transpose_op;
template <conv_params P> struct conv_weight_grad_op;

// z = conv(x, w): x (N, n..., C), w (K, k..., C/groups) -> (N, m..., K).
template <conv_params P>
struct conv_op {
  static constexpr std::string_view name = "conv";
  static std::string attributes()
    requires(!detail::is_default(P))
  {
    return detail::conv_attributes(P);
  }
  static constexpr std::size_t rank(std::size_t x, std::size_t) { return x; }
  static constexpr shape infer_shape(input_shapes in) {
    return detail::conv_output_shape(detail::conv_geometry_of(P, in[0], in[1]));
  }
  static constexpr std::size_t multiply_adds(input_shapes in, const shape& out) {
    return detail::conv_multiply_adds(out, in[1]);
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::conv_forward<T>(out, in[0], in[1], detail::conv_geometry_of(P, in[0].shape, in[1].shape));
  }
  // Z = A_W X, linear in X and in W:
  //   dX = A_W^T G                          = conv_transpose(G, W, like = X)
  //   dW[co, j, ci] = sum_o G[o, co] X[pos(o, j), ci] = conv_weight_grad(X, G, W)
  template <std::size_t I, class G, class Y, class X, class W>
  static auto vjp(G, Y, X, W) {
    if constexpr (I == 0) return node<conv_transpose_op<P>, G, W, X>{};
    else return node<conv_weight_grad_op<P>, X, G, W>{};
  }
};

// y = conv_transpose(g, w[, like]) = A_W^T g: the x-shaped adjoint of conv(., w) applied to g.
template <conv_params P>
struct conv_transpose_op {
  static constexpr std::string_view name = "conv_transpose";
  static std::string attributes()
    requires(!detail::is_default(P))
  {
    return detail::conv_attributes(P);
  }
  static constexpr std::size_t rank(std::size_t g, std::size_t) { return g; }
  static constexpr std::size_t rank(std::size_t g, std::size_t, std::size_t) { return g; }
  template <class... Args>
  using shape_source = typename detail::transpose_shape_source<Args...>::type;
  static constexpr shape infer_shape(input_shapes in) {
    if (in.size() == 2) return detail::conv_transpose_shape(P, in[0], in[1]);
    detail::check_adjoint_shape(detail::conv_geometry_of(P, in[2], in[1]), in[0], in[2], "conv's output shape");
    return in[2];
  }
  static constexpr std::size_t multiply_adds(input_shapes in, const shape&) {
    return detail::conv_multiply_adds(in[0], in[1]);
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::conv_input_grad<T>(out, in[0], in[1], detail::conv_geometry_of(P, out.shape, in[1].shape));
  }
  // Y = A_W^T G; with H the adjoint of Y, <H, Y> = <A_W H, G> = sum G[o] W[j] H[pos(o, j)]:
  //   dG = A_W H = conv(H, W);   dW = conv_weight_grad(H, G, W);   like: shape only.
  template <std::size_t I, class H, class Y, class G, class W, class... Like>
  static auto vjp(H, Y, G, W, Like...) {
    if constexpr (I == 0) return node<conv_op<P>, H, W>{};
    else if constexpr (I == 1) return node<conv_weight_grad_op<P>, H, G, W>{};
    else return no_adjoint{};
  }
};

// dw = conv_weight_grad(x, g, w_like): the w-shaped adjoint of conv(x, .) applied to g (w_like
// only gives the window extents, which are runtime).
template <conv_params P>
struct conv_weight_grad_op {
  static constexpr std::string_view name = "conv_weight_grad";
  static std::string attributes()
    requires(!detail::is_default(P))
  {
    return detail::conv_attributes(P);
  }
  static constexpr std::size_t rank(std::size_t, std::size_t, std::size_t w) { return w; }
  template <class X, class G, class W>
  using shape_source = shape_source_t<W>;
  static constexpr shape infer_shape(input_shapes in) {
    detail::check_adjoint_shape(detail::conv_geometry_of(P, in[0], in[2]), in[1], in[0], "conv's output shape");
    return in[2];
  }
  static constexpr std::size_t multiply_adds(input_shapes in, const shape& out) {
    return detail::conv_multiply_adds(in[1], out);
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::conv_weight_grad<T>(out, in[0], in[1], detail::conv_geometry_of(P, in[0].shape, out.shape));
  }
  // V = B_X G with <H, V> = sum G[o, co] H[co, j, ci] X[pos(o, j), ci] = <G, conv(X, H)>
  //                                                                 = <X, conv_transpose(G, H)>:
  //   dX = conv_transpose(G, H, like = X);   dG = conv(X, H);   w_like: shape only.
  template <std::size_t I, class H, class Y, class X, class G, class W>
  static auto vjp(H, Y, X, G, W) {
    if constexpr (I == 0) return node<conv_transpose_op<P>, G, H, X>{};
    else if constexpr (I == 1) return node<conv_op<P>, X, H>{};
    else return no_adjoint{};
  }
};

// relu(conv(x, w) + b), the layer every CNN repeats, runs as one conv whose epilogue adds the bias
// and applies relu to each output tile while it is in cache (kernels::conv_epilogue): the conv's
// output and the sum are neither stored nor passed over again (an execution plan: the graph and
// its derivatives are unchanged; bitwise the separate passes). For a rank-1 b (K values or 1; a
// longer b that widens a one-channel conv by broadcasting goes through the conv's output).
// When the program computes the conv anyway (another reader), the kernel gets its value and runs
// relu(a + b)'s fused pass instead.
namespace detail {
template <class T>
void conv_bias_relu(view<T> out, const conv_params& p, view<const T> x, view<const T> w, view<const T> b) {
  kernels::conv_bias_relu<T>(out, x, w, b, conv_geometry_of(p, x.shape, w.shape));
}
template <class N>
inline constexpr bool is_conv_node_v = false;
template <conv_params P, class X, class W>
inline constexpr bool is_conv_node_v<basic_node<conv_op<P>, X, W>> = true;
template <class N>
inline constexpr conv_params conv_node_params_v{};
template <conv_params P, class X, class W>
inline constexpr conv_params conv_node_params_v<basic_node<conv_op<P>, X, W>> = P;
// The rule for b + conv (ConvAt = 1) and conv + b (ConvAt = 0). in: the conv's x and w spliced in
// at ConvAt, b at the other end; or, when the conv is computed anyway, its value and b.
template <std::size_t ConvAt, class ConvNode>
struct conv_bias_relu_rule {
  static constexpr std::size_t argument = 0, inner_argument = ConvAt;
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    if (in.size() == 2) return kernels::binary<T>(kernels::binary_kind::add_relu, out, in[0], in[1]);
    conv_bias_relu<T>(out, conv_node_params_v<ConvNode>, in[ConvAt], in[ConvAt + 1], in[ConvAt == 0 ? 2 : 0]);
  }
};
}  // namespace detail
template <class A, class B>
  requires(detail::is_conv_node_v<resolve_t<A>> && resolve_t<B>::rank == 1)
struct fusion_rule<unary_op<relu_fn>, basic_node<add_op, A, B>> : detail::conv_bias_relu_rule<0, resolve_t<A>> {};
template <class B, class A>
  requires(detail::is_conv_node_v<resolve_t<A>> && resolve_t<B>::rank == 1)
struct fusion_rule<unary_op<relu_fn>, basic_node<add_op, B, A>> : detail::conv_bias_relu_rule<1, resolve_t<A>> {};

// ---- user-facing functions ----------------------------------------------------------------------

// conv(x, w, opts...): see the top of this file.
template <Expression X, Expression W, class... Opts>
  requires(!Expression<Opts> && ...)
constexpr auto conv(X x, W, Opts...) {
  static_assert(X::rank >= 3, "conv(x, w): x must have rank >= 3 (batch, ordered dims..., channels)");
  static_assert(W::rank == X::rank, "conv(x, w): w must have rank x.rank (out channels, window..., in channels)");
  constexpr std::size_t d = X::rank >= 3 ? X::rank - 2 : 1;
  using options = detail::conv_options<d, Opts...>;
  static_assert(options::known,
                "conv(x, w, opts...): every option must be a padding (padding_same, padding_valid, padding_uncentered, "
                "explicit_padding<>), stride<>, dilation<> or groups<>");
  static_assert(options::unique, "conv(x, w, opts...): each kind of option may be given at most once");
  static_assert(options::stride_fits, "conv(x, w, stride<...>): give one stride, or one per ordered dim (x.rank - 2)");
  static_assert(options::dilation_fits,
                "conv(x, w, dilation<...>): give one dilation, or one per ordered dim (x.rank - 2)");
  static_assert(options::padding_fits,
                "conv(x, w, explicit_padding<...>): give one (low, high) pair, or one per ordered dim (x.rank - 2)");
  if constexpr (X::rank >= 3 && W::rank == X::rank && options::ok) return node<conv_op<options::params()>, X, W>{};
  else return x;  // after a failed assertion: no cascade of further errors
}

namespace detail {
template <class Like, Expression G, Expression W, class... Opts>
constexpr auto make_conv_transpose() {
  static_assert(G::rank >= 3, "conv_transpose(g, w): g must have rank >= 3 (batch, ordered dims..., channels)");
  static_assert(W::rank == G::rank,
                "conv_transpose(g, w): w must have rank g.rank (out channels, window..., in channels)");
  if constexpr (!std::is_void_v<Like>)
    static_assert(Like::rank == G::rank, "conv_transpose(g, w, like): like must have rank g.rank");
  constexpr std::size_t d = G::rank >= 3 ? G::rank - 2 : 1;
  using options = conv_options<d, Opts...>;
  static_assert(options::known,
                "conv_transpose(g, w, opts...): every option must be a padding (padding_same, padding_valid, "
                "padding_uncentered, explicit_padding<>), stride<>, dilation<> or groups<>");
  static_assert(options::unique, "conv_transpose(g, w, opts...): each kind of option may be given at most once");
  static_assert(options::stride_fits,
                "conv_transpose(g, w, stride<...>): give one stride, or one per ordered dim (g.rank - 2)");
  static_assert(options::dilation_fits,
                "conv_transpose(g, w, dilation<...>): give one dilation, or one per ordered dim (g.rank - 2)");
  static_assert(options::padding_fits,
                "conv_transpose(g, w, explicit_padding<...>): give one (low, high) pair, or one per ordered dim");
  if constexpr (G::rank >= 3 && W::rank == G::rank && options::ok) {
    if constexpr (std::is_void_v<Like>) return node<conv_transpose_op<options::params()>, G, W>{};
    else if constexpr (Like::rank == G::rank) return node<conv_transpose_op<options::params()>, G, W, Like>{};
    else return G{};
  } else {
    return G{};
  }
}
}  // namespace detail

// conv_transpose(g, w, opts...): the adjoint of conv(., w, opts...) applied to g, with the natural
// inverse extents (a decoder's upsampling layer). The options describe the forward conv.
template <Expression G, Expression W, class... Opts>
  requires(!Expression<Opts> && ...)
constexpr auto conv_transpose(G, W, Opts...) {
  return detail::make_conv_transpose<void, G, W, Opts...>();
}
// conv_transpose(g, w, like, opts...): the same with the output extents of `like` (which only
// lends its shape): the input gradient of conv(like, w, opts...).
template <Expression G, Expression W, Expression Like, class... Opts>
  requires(!Expression<Opts> && ...)
constexpr auto conv_transpose(G, W, Like, Opts...) {
  return detail::make_conv_transpose<Like, G, W, Opts...>();
}

}  // namespace typegrad

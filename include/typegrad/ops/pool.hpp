#pragma once
// Pooling over the ordered dims of (batch, ordered dims..., channels) data, for any number D >= 1
// of ordered dims (D = x.rank - 2):
//
//   max_pool(x, window<2>)                   stride defaults to the window
//   max_pool(x, window<3>, stride<2>)        overlapping windows
//   avg_pool(x, window<3, 2>, stride<1, 2>)  one value per ordered dim
//   global_avg_pool(x), global_max_pool(x)   (N, C): mean / max over every ordered dim
//
// Semantics (DESIGN.md, normative): per ordered dim, window v, stride s, input extent n, the
// output extent is ceil(n/s) and output o aggregates the inputs o*s ... o*s+v-1 that lie inside
// the input (clipped at the end, never padded at the start). max_pool takes their max, avg_pool
// divides their sum by how many lie inside (not by v).
//
// Gradients are closed families of ops, so second derivatives need no extra code:
//   max_pool(X)               dX = max_pool_backward(G, X): each g goes to its window's argmax
//                             (the first maximum in window order; overlapping windows add up)
//   max_pool_backward(G, X)   dG = max_pool_gather(H, X): h read at each window's argmax
//   max_pool_gather(H, X)     dH = max_pool_backward(G, X)
//   avg_pool(X)               dX = avg_pool_transpose(G, X)   (linear; X only gives the shape)
//   avg_pool_transpose(G, X)  dG = avg_pool(H)
// X gets no adjoint inside the backward ops: the argmax is piecewise constant in X.
// The global pools are the reductions mean / max over axes 1..D (ops/reduce.hpp).
//
// Kernels: src/kernels/pool.cpp (kernels/pool.hpp), vectorized over the channels.
#include <cstddef>
#include <string>
#include <utility>

#include "typegrad/kernels/pool.hpp"
#include "typegrad/ops/arithmetic.hpp"
#include "typegrad/ops/op_base.hpp"
#include "typegrad/ops/reduce.hpp"
#include "typegrad/ops/spatial_options.hpp"
#include "typegrad/ops/unary.hpp"

namespace typegrad {

namespace detail {
// The pooled shape of x: (N, ceil(n_d / s_d)..., C), the shape rule of every pooled result.
// Throws shape_rule_violation when x's rank is not w.dims + 2 or an ordered dim has extent 0
// (an empty window has no max or mean).
constexpr shape pooled_shape(const shape& x, const kernels::pool_window& w) {
  if (w.dims == 0 || x.rank() != w.dims + 2)
    throw shape_rule_violation(fmt::format("x {} must have rank {} (batch, {} ordered dims, channels)", x, w.dims + 2,
                                           w.dims));
  shape out = x;
  for (std::size_t d = 0; d < w.dims; ++d) {
    if (x[d + 1] == 0)
      throw shape_rule_violation(fmt::format("ordered dim {} of x {} has extent 0: there is no window to pool", d, x));
    out[d + 1] = (x[d + 1] + w.stride[d] - 1) / w.stride[d];
  }
  return out;
}

// What every pooling op shares: its options (window_t, stride_t), how they print and how the
// kernels see them.
template <class Window, class Stride>
struct pool_options {
  static std::string attributes() {
    return fmt::format("window={}, stride={}", Window::to_string(), Stride::to_string());
  }
  static constexpr kernels::pool_window window_of(const shape& x) {
    kernels::pool_window w;
    w.dims = x.rank() >= 2 ? x.rank() - 2 : 0;
    for (std::size_t d = 0; d < w.dims && d < w.size.size(); ++d) {
      w.size[d] = Window::values[Window::count == 1 ? 0 : d];
      w.stride[d] = Stride::values[Stride::count == 1 ? 0 : d];
    }
    return w;
  }
  static constexpr shape pooled(const shape& x) { return pooled_shape(x, window_of(x)); }
};
}  // namespace detail

template <class Window, class Stride>
struct max_pool_op;

// Every pooled result of an input shaped like X has the extents of max_pool(X): the one shape
// source of the pooled shape, so that sum_to's between such results vanish from gradients.
template <class Window, class Stride, class X>
using pooled_shape_source_t = node<max_pool_op<Window, Stride>, shape_source_t<X>>;

// A pooled result (max_pool, avg_pool, max_pool_gather): rank and shape rule.
template <class Window, class Stride>
struct pooled_result : detail::pool_options<Window, Stride> {
  static constexpr std::size_t rank(std::size_t x) { return x; }
  template <class X>
  using shape_source = pooled_shape_source_t<Window, Stride, X>;
  static constexpr shape infer_shape(input_shapes in) { return detail::pool_options<Window, Stride>::pooled(in[0]); }
};

// An input-shaped result read from a pooled G and the input X (max_pool_backward,
// avg_pool_transpose): its shape is X's, and G must have the pooled shape of X.
template <class Window, class Stride>
struct unpooled_result : detail::pool_options<Window, Stride> {
  static constexpr std::size_t rank(std::size_t, std::size_t x) { return x; }
  template <class G, class X>
  using shape_source = shape_source_t<X>;
  static constexpr shape infer_shape(input_shapes in) {
    const shape expected = detail::pool_options<Window, Stride>::pooled(in[1]);
    if (!(in[0] == expected))
      throw shape_rule_violation(
          fmt::format("the adjoint's shape {} is not the pooled shape {} of x {}", in[0], expected, in[1]));
    return in[1];
  }
};

template <class Window, class Stride>
struct max_pool_gather_op;
template <class Window, class Stride>
struct max_pool_backward_op;

template <class Window, class Stride>
struct max_pool_op : pooled_result<Window, Stride> {
  static constexpr std::string_view name = "max_pool";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::max_pool<T>(out, in[0], max_pool_op::window_of(in[0].shape));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G, Y, X) {
    return node<max_pool_backward_op<Window, Stride>, G, X>{};
  }
};

// max_pool_backward(G, X): G (pooled) routed to each window's argmax of X; X's shape.
template <class Window, class Stride>
struct max_pool_backward_op : unpooled_result<Window, Stride> {
  static constexpr std::string_view name = "max_pool_backward";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::max_pool_backward<T>(out, in[0], in[1], max_pool_backward_op::window_of(in[1].shape));
  }
  template <std::size_t I, class H, class Y, class G, class X>
  static auto vjp(H, Y, G, X) {
    if constexpr (I == 0) return node<max_pool_gather_op<Window, Stride>, H, X>{};
    else return no_adjoint{};
  }
};

// A CNN's relu -> max_pool, backward: mul(max_pool_backward(G, X), step(Y)) with X = relu(Y) is
// one pass (execution plan; the graph is unchanged): step(Y) = step(relu(Y)) = step(X), and the
// pool's backward reads X anyway. Neither the pool's unmasked gradient nor step(Y) is stored.
template <class Window, class Stride, class G, class X, class Y>
  requires(detail::structural_id<resolve_t<X>>() == detail::structural_id<node<unary_op<relu_fn>, Y>>())
struct fusion_rule<mul_op, basic_node<max_pool_backward_op<Window, Stride>, G, X>, basic_node<unary_op<step_fn>, Y>> {
  static constexpr std::size_t argument = 0;           // spliced: the kernel reads G and X
  static constexpr unsigned unused_arguments = 0b10;   // step(Y): X's sign gives it
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::max_pool_backward<T>(out, in[0], in[1], max_pool_backward_op<Window, Stride>::window_of(in[1].shape), true);
  }
};

// max_pool_gather(H, X): H (X's shape) read at each window's argmax of X; pooled shape.
template <class Window, class Stride>
struct max_pool_gather_op : detail::pool_options<Window, Stride> {
  static constexpr std::string_view name = "max_pool_gather";
  static constexpr std::size_t rank(std::size_t, std::size_t x) { return x; }
  template <class H, class X>
  using shape_source = pooled_shape_source_t<Window, Stride, X>;
  static constexpr shape infer_shape(input_shapes in) {
    if (!(in[0] == in[1]))
      throw shape_rule_violation(fmt::format("the gathered tensor's shape {} differs from x's {}", in[0], in[1]));
    return max_pool_gather_op::pooled(in[1]);
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::max_pool_gather<T>(out, in[0], in[1], max_pool_gather_op::window_of(in[1].shape));
  }
  template <std::size_t I, class G, class Y, class H, class X>
  static auto vjp(G, Y, H, X) {
    if constexpr (I == 0) return node<max_pool_backward_op<Window, Stride>, G, X>{};
    else return no_adjoint{};
  }
};

template <class Window, class Stride>
struct avg_pool_transpose_op;

template <class Window, class Stride>
struct avg_pool_op : pooled_result<Window, Stride> {
  static constexpr std::string_view name = "avg_pool";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::avg_pool<T>(out, in[0], avg_pool_op::window_of(in[0].shape));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G, Y, X) {
    return node<avg_pool_transpose_op<Window, Stride>, G, X>{};
  }
};

// avg_pool_transpose(G, X): each g[o] / count(o) spread over its window; X's shape (X is only
// read for its shape).
template <class Window, class Stride>
struct avg_pool_transpose_op : unpooled_result<Window, Stride> {
  static constexpr std::string_view name = "avg_pool_transpose";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::avg_pool_transpose<T>(out, in[0], avg_pool_transpose_op::window_of(in[1].shape));
  }
  template <std::size_t I, class H, class Y, class G, class X>
  static auto vjp(H, Y, G, X) {
    if constexpr (I == 0) return node<avg_pool_op<Window, Stride>, H>{};
    else return no_adjoint{};
  }
};

namespace detail {
// The window and stride of a pooling call; a missing window is reported by the static_assert
// below and replaced by window<1> so that no further errors cascade.
template <class... Opts>
using pool_window_t = find_option_t<is_window, window_t<1>, Opts...>;
template <class W>
struct stride_like_window;
template <std::size_t... V>
struct stride_like_window<window_t<V...>> {
  using type = stride_t<V...>;
};
template <class... Opts>
using pool_stride_t = find_option_t<is_stride, typename stride_like_window<pool_window_t<Opts...>>::type, Opts...>;

template <class Opt>
inline constexpr bool is_pool_option_v = is_window<Opt>::value || is_stride<Opt>::value;

template <template <class, class> class Op, Expression X, class... Opts>
constexpr auto make_pool(X) {
  static_assert(X::rank >= 3,
                "max_pool/avg_pool(x, window<...>): x must have rank >= 3 (batch, ordered dims..., channels)");
  static_assert((is_pool_option_v<Opts> && ...),
                "max_pool/avg_pool(x, window<...>, stride<...>): the only options are window<...> and stride<...>");
  static_assert(count_options_v<is_window, Opts...> == 1,
                "max_pool/avg_pool(x, window<...>, stride<...>): give exactly one window<...>");
  static_assert(count_options_v<is_stride, Opts...> <= 1,
                "max_pool/avg_pool(x, window<...>, stride<...>): give at most one stride<...>");
  using window = pool_window_t<Opts...>;
  using stride = pool_stride_t<Opts...>;
  static_assert(window::fits_dims(X::rank - 2),
                "max_pool/avg_pool(x, window<...>): give one window value, or one per ordered dim (x.rank - 2)");
  static_assert(!window::fits_dims(X::rank - 2) || stride::fits_dims(X::rank - 2),  // one error at a time
                "max_pool/avg_pool(x, window<...>, stride<...>): give one stride value, or one per ordered dim "
                "(x.rank - 2)");
  return node<Op<window, stride>, X>{};
}

// axes<1, ..., Rank - 2>: the ordered dims of a (batch, ordered dims..., channels) tensor.
template <class Seq>
struct shifted_axes;
template <std::size_t... I>
struct shifted_axes<std::index_sequence<I...>> {
  using type = axes_t<(I + 1)...>;
};
template <std::size_t Rank>
using ordered_axes_t = typename shifted_axes<std::make_index_sequence<(Rank >= 3 ? Rank - 2 : 1)>>::type;
}  // namespace detail

// max_pool(x, window<v...>[, stride<s...>]): the max over each clipped window (see the top).
template <Expression X, class... Opts>
constexpr auto max_pool(X x, Opts...) {
  return detail::make_pool<max_pool_op, X, Opts...>(x);
}
// avg_pool(x, window<v...>[, stride<s...>]): the mean over each clipped window's in-range inputs.
template <Expression X, class... Opts>
constexpr auto avg_pool(X x, Opts...) {
  return detail::make_pool<avg_pool_op, X, Opts...>(x);
}

// global_avg_pool(x): (N, C), the mean over every ordered dim.
template <Expression X>
constexpr auto global_avg_pool(X x) {
  static_assert(X::rank >= 3, "global_avg_pool(x): x must have rank >= 3 (batch, ordered dims..., channels)");
  return mean(x, detail::ordered_axes_t<X::rank>{});
}
// global_max_pool(x): (N, C), the max over every ordered dim.
template <Expression X>
constexpr auto global_max_pool(X x) {
  static_assert(X::rank >= 3, "global_max_pool(x): x must have rank >= 3 (batch, ordered dims..., channels)");
  return max(x, detail::ordered_axes_t<X::rank>{});
}

}  // namespace typegrad

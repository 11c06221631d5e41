#pragma once
// reshape<e...>(x) and flatten(x): the same elements, in the same row-major order, under other
// extents (DESIGN.md: the (batch, ordered dims..., channels) order is kept; flatten keeps the batch).
//
//   reshape<0, -1>(x)       each extent is positive, 0 (x's extent at that position, as in ONNX)
//   reshape<4, 7, 3>(x)     or -1 (at most one: inferred from the element count)
//   flatten(x)              = reshape<0, -1>(x): (N, everything else)
//
// The target rank is compile-time, the extents are resolved when the program runs. The adjoint of
// reshape is reshape_like(g, x), g put back into x's runtime shape; reshape_like's own adjoint is
// reshape_like again, so derivatives of any order stay within these two ops.
//
// The kernel is a parallel copy: a zero-copy alias would need the executor's buffer planner to let
// a node share its argument's block (see docs/layout.md).
#include <array>
#include <cstddef>
#include <string>

#include "typegrad/ops/op_base.hpp"

namespace typegrad {

// The target extents of a reshape, printed as (0, -1).
template <std::ptrdiff_t... E>
struct extents_t {
  static constexpr std::size_t count = sizeof...(E);
  static constexpr std::array<std::ptrdiff_t, sizeof...(E)> values{E...};
  static std::string to_string() {
    std::string s = "(";
    for (std::size_t i = 0; i < count; ++i) s += fmt::format("{}{}", i ? ", " : "", values[i]);
    return s + ")";
  }
};

template <class Extents>
struct reshape_op;

// reshape_like(e, like): e's elements under like's extents (the adjoint of a reshape).
struct reshape_like_op {
  static constexpr std::string_view name = "reshape_like";
  static constexpr std::size_t rank(std::size_t, std::size_t like) { return like; }
  template <class E, class Like>
  using shape_source = shape_source_t<Like>;
  static constexpr unsigned shape_only_arguments = 0b10;  // like
  static constexpr shape infer_shape(input_shapes in) {
    if (in[0].numel() != in[1].numel())
      throw shape_rule_violation(fmt::format("{} ({} elements) cannot take the shape {} ({} elements)", in[0],
                                             in[0].numel(), in[1], in[1].numel()));
    return in[1];
  }
  static bool is_view(const shape&, input_shapes) { return true; }  // row-major order is kept
  template <class T>
  static void forward(view<T> out, inputs<T> in) { kernels::copy<T>(out, in[0]); }
  template <std::size_t I, class H, class Y, class E, class Like>
  static auto vjp(H h, Y, E e, Like);
};

// Puts e into like's shape; nothing to do when the shapes are known equal.
template <Expression E, Expression Like>
constexpr auto reshape_like(E e, Like) {
  if constexpr (same_shape_v<E, Like>) return e;
  else return node<reshape_like_op, E, Like>{};
}

template <std::size_t I, class H, class Y, class E, class Like>
auto reshape_like_op::vjp(H h, Y, E e, Like) {
  if constexpr (I == 0) return reshape_like(h, e);
  else return no_adjoint{};  // only like's shape is read
}

template <std::ptrdiff_t... E>
struct reshape_op<extents_t<E...>> {
  using target = extents_t<E...>;
  static constexpr std::string_view name = "reshape";
  static std::string attributes() { return target::to_string(); }
  static constexpr std::size_t rank(std::size_t) { return target::count; }
  static constexpr shape infer_shape(input_shapes in) {
    const shape& x = in[0];
    shape out = shape::of_rank(target::count);
    std::size_t known = 1, inferred = target::count;
    for (std::size_t i = 0; i < target::count; ++i) {
      const std::ptrdiff_t e = target::values[i];
      if (e == -1) inferred = i;
      else out[i] = e == 0 ? x[i] : std::size_t(e);
      if (e != -1) known *= out[i];
    }
    if (inferred < target::count) {
      if (known == 0)
        throw shape_rule_violation(fmt::format(
            "cannot infer the -1 extent of {} for {}: the other extents multiply to 0", target::to_string(), x));
      if (x.numel() % known != 0)
        throw shape_rule_violation(fmt::format("cannot reshape {} ({} elements) to {}: {} is not a multiple of {}", x,
                                               x.numel(), target::to_string(), x.numel(), known));
      out[inferred] = x.numel() / known;
    } else if (known != x.numel()) {
      throw shape_rule_violation(
          fmt::format("cannot reshape {} ({} elements) to {} ({} elements)", x, x.numel(), out, known));
    }
    return out;
  }
  static bool is_view(const shape&, input_shapes) { return true; }  // row-major order is kept
  template <class T>
  static void forward(view<T> out, inputs<T> in) { kernels::copy<T>(out, in[0]); }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X x) { return reshape_like(g, x); }
};

namespace detail {
template <std::size_t Rank, std::ptrdiff_t... E>
constexpr bool copied_extents_within_rank() {
  std::size_t i = 0;
  bool ok = true;
  ((ok = ok && (E != 0 || i < Rank), ++i), ...);
  return ok;
}
}  // namespace detail

// reshape<e...>(x): see the top of this file.
template <std::ptrdiff_t... E, Expression X>
constexpr auto reshape(X) {
  static_assert(((E >= -1) && ...),
                "reshape<e...>(x): every extent must be positive, 0 (x's extent at that position) or -1 (inferred)");
  static_assert((std::size_t{0} + ... + (E == -1 ? 1 : 0)) <= 1, "reshape<e...>(x): at most one extent may be -1");
  static_assert(detail::copied_extents_within_rank<X::rank, E...>(),
                "reshape<e...>(x): an extent 0 copies x's extent at its position, which must be below x.rank");
  return node<reshape_op<extents_t<E...>>, X>{};
}

// flatten(x) = reshape<0, -1>(x): (batch, all other extents multiplied), in row-major order.
template <Expression X>
constexpr auto flatten(X x) {
  static_assert(X::rank >= 1, "flatten(x): x must have rank >= 1 (its first axis, the batch, is kept)");
  return reshape<0, -1>(x);
}

}  // namespace typegrad

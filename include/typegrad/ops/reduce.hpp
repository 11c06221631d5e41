#pragma once
// Reductions over given axes (or all): sum, mean. The reduced axes are dropped from the shape.
// Their adjoints broadcast back with expand (sum) or expand-and-divide (mean); the two pairs are
// each other's transposes, so higher derivatives stay within these four ops.
#include <array>
#include <cstddef>
#include <string>

#include "typegrad/ops/arithmetic.hpp"

namespace typegrad {

// Reduce every axis: sum(x), mean(x).
struct all_axes {
  static std::string to_string() { return "all"; }
};

namespace detail {
// Which axes of a rank-r input an axes list reduces.
template <class Axes>
constexpr std::array<bool, 8> reduced_mask(std::size_t r) {
  std::array<bool, 8> m{};
  if constexpr (std::is_same_v<Axes, all_axes>) {
    for (std::size_t i = 0; i < r; ++i) m[i] = true;
  } else {
    for (auto a : Axes::values) m[a] = true;
  }
  return m;
}
template <class Axes>
constexpr std::size_t reduced_rank(std::size_t r) {
  if constexpr (std::is_same_v<Axes, all_axes>) return 0;
  else return r - Axes::count;
}
// The input's shape with reduced axes set to 1 (same memory layout as the reduced output).
template <class Axes>
constexpr shape keepdims_shape(const shape& in) {
  auto m = reduced_mask<Axes>(in.rank());
  shape k = in;
  for (std::size_t i = 0; i < in.rank(); ++i)
    if (m[i]) k[i] = 1;
  return k;
}
template <class Axes>
constexpr shape reduced_shape(const shape& in) {
  auto m = reduced_mask<Axes>(in.rank());
  shape r;
  for (std::size_t i = 0; i < in.rank(); ++i)
    if (!m[i]) r.push_back(in[i]);
  return r;
}
template <class Axes, std::size_t Rank>
constexpr bool valid_axes() {
  if constexpr (std::is_same_v<Axes, all_axes>) return true;
  else {
    for (std::size_t i = 0; i < Axes::count; ++i) {
      if (Axes::values[i] >= Rank) return false;
      for (std::size_t j = 0; j < i; ++j)
        if (Axes::values[j] == Axes::values[i]) return false;
    }
    return true;
  }
}

template <class Axes, bool Mean>
struct reduce_op {
  static constexpr std::string_view name = Mean ? "mean" : "sum";
  static std::string attributes() {
    if constexpr (std::is_same_v<Axes, all_axes>) return "all";
    else return "axes=" + Axes::to_string();
  }
  static constexpr std::size_t rank(std::size_t r) { return reduced_rank<Axes>(r); }
  // A mean over no elements (an empty batch, a zero extent) is an error, not a silent 0: the
  // losses are means, and an empty batch would otherwise give loss 0 and zero gradients.
  static constexpr shape infer_shape(input_shapes in) {
    shape out = reduced_shape<Axes>(in[0]);
    if (Mean && in[0].numel() == 0 && out.numel() != 0)
      throw shape_rule_violation(fmt::format("mean over no elements: the reduced axes of {} are empty (an empty batch?)", in[0]));
    return out;
  }
  // A sum (mean) of every row of x into one row of its last extent may end an elementwise region.
  static constexpr bool mean_of_rows = Mean;
  static bool sums_rows(const shape&, input_shapes in) {
    return detail::sums_rows(keepdims_shape<Axes>(in[0]), in[0]);
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::sum_to<T>(view<T>{out.data, keepdims_shape<Axes>(in[0].shape)}, in[0]);
    if constexpr (Mean) {
      const std::size_t count = out.size() ? in[0].size() / out.size() : 1;
      T scale[1] = {T(1) / T(count ? count : 1)};
      kernels::binary<T>(kernels::binary_kind::mul, out, view<const T>{out.data, out.shape},
                         view<const T>{scale, shape{}});
    }
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X);
};

// expand(g, like): g (a reduction's result) broadcast back over the reduced axes to like's
// shape; for Mean, also divided by the number of reduced elements.
template <class Axes, bool Mean>
struct expand_op {
  static constexpr std::string_view name = Mean ? "expand_mean" : "expand";
  static std::string attributes() { return reduce_op<Axes, Mean>::attributes(); }
  static constexpr std::size_t rank(std::size_t, std::size_t like) { return like; }
  template <class G, class Like>
  using shape_source = shape_source_t<Like>;
  static constexpr unsigned shape_only_arguments = 0b10;  // like
  static constexpr shape infer_shape(input_shapes in) {
    if (!(reduced_shape<Axes>(in[1]) == in[0]))
      throw shape_rule_violation(fmt::format("the reduced shape {} does not match {}", in[0], in[1]));
    return in[1];
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::sum_to<T>(out, view<const T>{in[0].data, keepdims_shape<Axes>(out.shape)});
    if constexpr (Mean) {
      const std::size_t count = in[0].size() ? out.size() / in[0].size() : 1;
      T scale[1] = {T(1) / T(count ? count : 1)};
      kernels::binary<T>(kernels::binary_kind::mul, out, view<const T>{out.data, out.shape},
                         view<const T>{scale, shape{}});
    }
  }
  // In a region: g broadcast (a column or scalar operand), times the same scale; only where the
  // reduced axes broadcast back as NumPy's right-aligned rule would (the leading axes, or all).
  static bool block_applies(const shape& out, input_shapes in) {
    const shape kept = keepdims_shape<Axes>(out);
    if (in[0].rank() > kept.rank() || in[0].numel() != kept.numel()) return false;
    for (std::size_t d = 0; d < in[0].rank(); ++d)
      if (in[0][d] != kept[kept.rank() - in[0].rank() + d]) return false;
    for (std::size_t d = 0; d + in[0].rank() < kept.rank(); ++d)
      if (kept[d] != 1) return false;
    return true;
  }
  template <class T>
  static void block(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols) {
    if constexpr (Mean) {
      const std::size_t count = in[0].broadcast;
      const T scale[1] = {T(1) / T(count ? count : 1)};
      kernels::binary_block<T>(kernels::binary_kind::mul, out, in[0], {scale, kernels::operand_kind::scalar}, rows,
                               cols);
    } else {
      kernels::map_block(out, in[0], rows, cols, [](T x) { return x; });
    }
  }
  template <std::size_t I, class G, class Y, class Gin, class Like>
  static auto vjp(G g, Y, Gin, Like) {
    if constexpr (I == 0) return node<reduce_op<Axes, Mean>, decltype(sum_to(g, Y{}))>{};
    else return no_adjoint{};
  }
};

template <class Axes, bool Mean>
template <std::size_t I, class G, class Y, class X>
auto reduce_op<Axes, Mean>::vjp(G g, Y, X) {
  if constexpr (std::is_same_v<Axes, all_axes> && !Mean) return g;  // a scalar broadcasts by itself
  else return node<expand_op<Axes, Mean>, G, X>{};
}

template <class Axes, bool Mean, Expression X>
constexpr auto reduce(X) {
  static_assert(valid_axes<Axes, X::rank>(), "sum/mean(x, axes<...>): every axis must be distinct and below x.rank");
  return node<reduce_op<Axes, Mean>, X>{};
}
}  // namespace detail

// sum(x): all elements; sum(x, axes<0, 2>): over axes 0 and 2 (they are dropped from the shape).
template <Expression X>
constexpr auto sum(X x) { return detail::reduce<all_axes, false>(x); }
template <Expression X, std::size_t... A>
constexpr auto sum(X x, axes_t<A...>) { return detail::reduce<axes_t<A...>, false>(x); }
template <Expression X>
constexpr auto mean(X x) { return detail::reduce<all_axes, true>(x); }
template <Expression X, std::size_t... A>
constexpr auto mean(X x, axes_t<A...>) { return detail::reduce<axes_t<A...>, true>(x); }

// ---- max ----------------------------------------------------------------------------------------
// max(x), max(x, axes<1>): the largest element (over the given axes, which are dropped like sum's).
// The adjoint flows to the maximal elements; ties share it equally (as torch.amax does):
//   dx = expand(g / count, x) * mask,  mask = equal(x, expand(y, x)),  count = sum(mask, axes)
// equal() is a comparison with no adjoint, so second derivatives stay within these ops.

// equal(a, b): 1 where a == b, else 0 (broadcasting). Piecewise constant: no adjoint.
struct equal_op : detail::broadcasting_binary<kernels::binary_kind::equal> {
  static constexpr std::string_view name = "equal";
  template <std::size_t I, class G, class Y, class A, class B>
  static no_adjoint vjp(G, Y, A, B) { return {}; }
};
template <Expression A, Expression B>
constexpr auto equal(A, B) {
  return node<equal_op, A, B>{};
}

namespace detail {
template <class Axes>
struct max_op {
  static constexpr std::string_view name = "max";
  static std::string attributes() { return reduce_op<Axes, false>::attributes(); }
  static constexpr std::size_t rank(std::size_t r) { return reduced_rank<Axes>(r); }
  static constexpr shape infer_shape(input_shapes in) {
    auto m = reduced_mask<Axes>(in[0].rank());
    for (std::size_t i = 0; i < in[0].rank(); ++i)
      if (m[i] && in[0][i] == 0)
        throw shape_rule_violation(fmt::format("cannot take the max over axis {} of extent 0 (shape {})", i, in[0]));
    return reduced_shape<Axes>(in[0]);
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::max_to<T>(view<T>{out.data, keepdims_shape<Axes>(in[0].shape)}, in[0]);
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y y, X x) {
    if constexpr (std::is_same_v<Axes, all_axes>) {
      auto mask = equal(x, y);  // y is a scalar: it broadcasts by itself
      return g / sum(mask) * mask;
    } else {
      auto mask = equal(x, node<expand_op<Axes, false>, Y, X>{});
      auto share = g / reduce<Axes, false>(mask);
      return node<expand_op<Axes, false>, decltype(share), X>{} * mask;
    }
  }
};
}  // namespace detail

// max(x): the largest element; max(x, axes<0, 2>): over axes 0 and 2 (dropped from the shape).
template <Expression X>
constexpr auto max(X) {
  static_assert(X::rank > 0, "max(x): x must have rank >= 1 (the max of a scalar is the scalar)");
  return node<detail::max_op<all_axes>, X>{};
}
template <Expression X, std::size_t... A>
constexpr auto max(X, axes_t<A...>) {
  static_assert(sizeof...(A) > 0, "max(x, axes<...>): give at least one axis, or call max(x) for all");
  static_assert(detail::valid_axes<axes_t<A...>, X::rank>(), "max(x, axes<...>): every axis must be distinct and below x.rank");
  return node<detail::max_op<axes_t<A...>>, X>{};
}

// ---- vdot ---------------------------------------------------------------------------------------
// vdot(a, b) = sum(a * b) for a and b of one shape, as one scalar node whose adjoint with respect
// to a is b (times its own adjoint): the seed of vjp (core/grad.hpp), which sum(a * b) would give
// only after an extra broadcast of 1 and a product. Its adjoints are products, so higher
// derivatives stay within mul.
struct vdot_op {
  static constexpr std::string_view name = "vdot";
  static constexpr std::size_t rank(std::size_t, std::size_t) { return 0; }
  static constexpr shape infer_shape(input_shapes in) {
    if (!(in[0] == in[1]))
      throw shape_rule_violation(fmt::format("a {} and b {} must have the same shape", in[0], in[1]));
    return shape{};
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::dot<T>(out, in[0], in[1]);
  }
  template <std::size_t I, class G, class Y, class A, class B>
  static auto vjp(G g, Y, A a, B b) {
    if constexpr (I == 0) return g * b;
    else return g * a;
  }
};
template <Expression A, Expression B>
constexpr auto vdot(A, B) {
  static_assert(A::rank == B::rank, "vdot(a, b): a and b must have the same rank (and shape)");
  return node<vdot_op, A, B>{};
}

}  // namespace typegrad

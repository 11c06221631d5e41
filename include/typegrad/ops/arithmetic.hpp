#pragma once
// Elementwise arithmetic with NumPy broadcasting (+ - * / and unary -), and sum_to, the op that
// maps a tensor onto another's shape (summing broadcast dims, expanding size-1 dims). sum_to is
// its own transpose, which is why the gradients of broadcasting ops are one line each.
//
// Simplification happens here, at the type level: x + 0 -> x, x * 1 -> x, x * 0 -> 0 (scalar x),
// --x -> x, literal folding; and the structural zero `no_adjoint` vanishes in sums.
#include <type_traits>

#include "typegrad/ops/op_base.hpp"

namespace typegrad {

namespace detail {
// out holds the sum of every row of x (its leading extents) in one row of x's last extent,
// which is more than one value, and is not x itself: out is (C) or (1, ..., 1, C) for x (..., C).
inline bool sums_rows(const shape& out, const shape& x) {
  if (x.rank() == 0 || out.rank() == 0 || out.rank() > x.rank() || out == x) return false;
  const std::size_t c = x[x.rank() - 1];
  return c >= 2 && out[out.rank() - 1] == c && out.numel() == c;
}
}  // namespace detail

// ---- sum_to(e, like): e summed/expanded to like's shape --------------------------------------
struct sum_to_op {
  static constexpr std::string_view name = "sum_to";
  static constexpr std::size_t rank(std::size_t, std::size_t like) { return like; }
  template <class E, class Like>
  using shape_source = shape_source_t<Like>;
  static constexpr shape infer_shape(input_shapes in) { return in[1]; }
  static bool is_view(const shape& out, input_shapes in) { return in[0] == out; }
  static constexpr unsigned shape_only_arguments = 0b10;  // like
  template <class T>
  static void forward(view<T> out, inputs<T> in) { kernels::sum_to<T>(out, in[0]); }
  // Whether this is a sum of every row of e into one row of its last extent (> 1), e.g. a bias's
  // gradient: then it may end an elementwise region (runtime/executor.hpp).
  static bool sums_rows(const shape& out, input_shapes in) { return detail::sums_rows(out, in[0]); }
  template <std::size_t I, class G, class Y, class E, class Like>
  static auto vjp(G g, Y, E e, Like) {
    if constexpr (I == 0) return sum_to(g, e);
    else return no_adjoint{};  // only like's shape is read
  }
};

// Sum (or expand) e to the shape of `like`. Simplifies to e when the shapes are known equal.
template <Expression E, Expression Like>
constexpr auto sum_to(E e, Like) {
  if constexpr (same_shape_v<E, Like>) return e;
  else if constexpr (is_constant_v<E> && is_constant_value_v<E, 0.0> && Like::rank == 0) return e;
  else return node<sum_to_op, E, Like>{};
}

// ---- binary arithmetic -----------------------------------------------------------------------
namespace detail {
template <kernels::binary_kind Kind>
struct broadcasting_binary : elementwise_tag {
  static constexpr std::size_t rank(std::size_t a, std::size_t b) { return a > b ? a : b; }
  template <class A, class B>
  using shape_source = std::conditional_t<
      B::rank == 0 || same_shape_v<A, B>, shape_source_t<A>,
      std::conditional_t<A::rank == 0, shape_source_t<B>, void>>;
  static constexpr shape infer_shape(input_shapes in) { return broadcast_shapes(in[0], in[1]); }
  template <class T>
  static void forward(view<T> out, inputs<T> in) { kernels::binary<T>(Kind, out, in[0], in[1]); }
  template <class T>
  static void block(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols) {
    kernels::binary_block<T>(Kind, out, in[0], in[1], rows, cols);
  }
};
}  // namespace detail

struct add_op : detail::broadcasting_binary<kernels::binary_kind::add> {
  static constexpr std::string_view name = "add", infix = "+";
  static constexpr int precedence = 10;
  template <std::size_t I, class G, class Y, class A, class B>
  static auto vjp(G g, Y, [[maybe_unused]] A a, [[maybe_unused]] B b) {
    if constexpr (I == 0) return sum_to(g, a);
    else return sum_to(g, b);
  }
};
struct sub_op : detail::broadcasting_binary<kernels::binary_kind::sub> {
  static constexpr std::string_view name = "sub", infix = "-";
  static constexpr int precedence = 10;
  template <std::size_t I, class G, class Y, class A, class B>
  static auto vjp(G g, Y, A a, B b);
};
struct mul_op : detail::broadcasting_binary<kernels::binary_kind::mul> {
  static constexpr std::string_view name = "mul", infix = "*";
  static constexpr int precedence = 20;
  template <std::size_t I, class G, class Y, class A, class B>
  static auto vjp(G g, Y, A a, B b);
};
struct div_op : detail::broadcasting_binary<kernels::binary_kind::div> {
  static constexpr std::string_view name = "div", infix = "/";
  static constexpr int precedence = 20;
  template <std::size_t I, class G, class Y, class A, class B>
  static auto vjp(G g, Y y, A a, B b);
};
struct neg_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = "neg", prefix = "-";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    static const T minus_one[1] = {T(-1)};
    kernels::binary<T>(kernels::binary_kind::mul, out, in[0], view<const T>{minus_one, shape{}});
  }
  template <class T>
  static void block(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols) {
    static const T minus_one[1] = {T(-1)};
    kernels::binary_block<T>(kernels::binary_kind::mul, out, in[0], {minus_one, kernels::operand_kind::scalar},
                             rows, cols);
  }
  template <std::size_t I, class G, class Y, class A>
  static auto vjp(G g, Y, A);
};

// ---- user-facing operators, with type-level simplification -----------------------------------
template <Expression A>
constexpr auto operator-(A) {
  if constexpr (is_constant_v<A>) return constant<-A::value>{};
  else if constexpr (requires { requires __is_same(typename resolve_t<A>::op, neg_op); })  // --x -> x
    return []<class X>(basic_node<neg_op, X>) { return resolve_t<X>{}; }(resolve_t<A>{});
  else return node<neg_op, A>{};
}

template <Expression A, Expression B>
constexpr auto operator+(A a, B b) {
  if constexpr (is_constant_v<A> && is_constant_v<B>) return constant<A::value + B::value>{};
  else if constexpr (is_constant_value_v<B, 0.0>) return a;
  else if constexpr (is_constant_value_v<A, 0.0>) return b;
  else return node<add_op, A, B>{};
}

template <Expression A, Expression B>
constexpr auto operator-(A a, B b) {
  if constexpr (is_constant_v<A> && is_constant_v<B>) return constant<A::value - B::value>{};
  else if constexpr (is_constant_value_v<B, 0.0>) return a;
  else if constexpr (is_constant_value_v<A, 0.0>) return -b;
  else return node<sub_op, A, B>{};
}

template <Expression A, Expression B>
constexpr auto operator*(A a, B b) {
  if constexpr (is_constant_v<A> && is_constant_v<B>) return constant<A::value * B::value>{};
  else if constexpr (is_constant_value_v<B, 1.0>) return a;
  else if constexpr (is_constant_value_v<A, 1.0>) return b;
  else if constexpr (is_constant_value_v<B, 0.0> && A::rank == 0) return b;
  else if constexpr (is_constant_value_v<A, 0.0> && B::rank == 0) return a;
  else if constexpr (is_constant_value_v<B, -1.0>) return -a;
  else if constexpr (is_constant_value_v<A, -1.0>) return -b;
  else return node<mul_op, A, B>{};
}

template <Expression A, Expression B>
constexpr auto operator/(A a, B) {
  if constexpr (is_constant_value_v<B, 1.0>) return a;
  else if constexpr (is_constant_v<A> && is_constant_v<B>) {
    if constexpr (B::value != 0.0) return constant<A::value / B::value>{};
    else return node<div_op, A, B>{};
  } else return node<div_op, A, B>{};
}

// The structural zero of reverse mode disappears in sums and products.
template <Expression A> constexpr A operator+(A a, no_adjoint) { return a; }
template <Expression B> constexpr B operator+(no_adjoint, B b) { return b; }
constexpr no_adjoint operator+(no_adjoint, no_adjoint) { return {}; }
template <Expression A> constexpr no_adjoint sum_to(no_adjoint, A) { return {}; }
template <Expression A> constexpr no_adjoint operator*(no_adjoint, A) { return {}; }
template <Expression A> constexpr no_adjoint operator*(A, no_adjoint) { return {}; }
constexpr no_adjoint operator-(no_adjoint) { return {}; }

// ---- gradient rules that need the operators above ---------------------------------------------
template <std::size_t I, class G, class Y, class A, class B>
auto sub_op::vjp(G g, Y, [[maybe_unused]] A a, [[maybe_unused]] B b) {
  if constexpr (I == 0) return sum_to(g, a);
  else return sum_to(-g, b);
}
template <std::size_t I, class G, class Y, class A, class B>
auto mul_op::vjp(G g, Y, A a, B b) {
  if constexpr (I == 0) return sum_to(g * b, a);
  else return sum_to(g * a, b);
}
template <std::size_t I, class G, class Y, class A, class B>
auto div_op::vjp(G g, Y y, A a, B b) {
  if constexpr (I == 0) return sum_to(g / b, a);
  else return sum_to(-(g * y) / b, b);  // d(a/b)/db = -a/b^2 = -y/b
}
template <std::size_t I, class G, class Y, class A>
auto neg_op::vjp(G g, Y, A) {
  return -g;
}

}  // namespace typegrad

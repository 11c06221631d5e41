#pragma once
// permute<p0, p1, ...>(x): output axis k is x's axis p_k (a permutation, checked at compile time);
// transpose(x) swaps the last two axes. The adjoint of a permutation is the inverse permutation,
// and two permutations in a row compose into one (or vanish), so permute[(0, 2, 1)] is its own
// adjoint and the family is closed at any order.
//
// The kernel merges axes that stay adjacent, copies contiguous runs when the last axis stays last,
// and otherwise transposes in cache tiles (src/kernels/layout.cpp).
#include <array>
#include <cstddef>
#include <utility>

#include "typegrad/kernels/layout.hpp"
#include "typegrad/ops/op_base.hpp"

namespace typegrad {

template <class Perm>
struct permute_op;

namespace detail {
template <std::size_t... P>
constexpr bool is_permutation() {
  const std::array<std::size_t, sizeof...(P)> p{P...};
  std::array<bool, sizeof...(P)> seen{};
  for (auto a : p) {
    if (a >= p.size() || seen[a]) return false;
    seen[a] = true;
  }
  return true;
}

// The permutation as a value, and its inverse / composition as axes_t types.
template <class Perm>
struct permutation;
template <std::size_t... P>
struct permutation<axes_t<P...>> {
  static constexpr std::size_t rank = sizeof...(P);
  static constexpr std::array<std::size_t, rank> p{P...};
  static constexpr bool identity = [] {
    for (std::size_t k = 0; k < rank; ++k)
      if (p[k] != k) return false;
    return true;
  }();
  static constexpr std::array<std::size_t, rank> inv = [] {
    std::array<std::size_t, rank> q{};
    for (std::size_t k = 0; k < rank; ++k) q[p[k]] = k;
    return q;
  }();
  template <class Seq> struct inverse_of;
  template <std::size_t... K> struct inverse_of<std::index_sequence<K...>> { using type = axes_t<inv[K]...>; };
  using inverse = typename inverse_of<std::make_index_sequence<rank>>::type;
  // permute<P> applied after permute<Q>: output axis k is the input's axis Q[P[k]].
  template <class Q, class Seq> struct after_of;
  template <std::size_t... Q, std::size_t... K>
  struct after_of<axes_t<Q...>, std::index_sequence<K...>> {
    static constexpr std::array<std::size_t, rank> q{Q...};
    using type = axes_t<q[p[K]]...>;
  };
  template <class Q>
  using after = typename after_of<Q, std::make_index_sequence<rank>>::type;
};

// The shape source of permute<P>(x): x's original when x's extents are a permutation Q of them
// and P undoes Q (the adjoint of a permute has its argument's shape), else only known at run time.
template <class P, class Source>
struct permuted_source {
  using type = void;
};
template <class P, class Q, class Y>
struct permuted_source<P, basic_node<permute_op<Q>, Y>> {
  using type = std::conditional_t<permutation<typename permutation<P>::template after<Q>>::identity, shape_source_t<Y>, void>;
};

template <class X> inline constexpr bool is_permute_node_v = false;
template <class P, class Y> inline constexpr bool is_permute_node_v<basic_node<permute_op<P>, Y>> = true;

// permute<Perm>(x) with the simplifications: the identity vanishes, and a permutation of a
// permutation is one permutation of the original.
template <class Perm, Expression X>
constexpr auto make_permute(X x) {
  if constexpr (permutation<Perm>::identity) {
    return x;
  } else if constexpr (is_permute_node_v<resolve_t<X>>) {
    return []<class Q, class Y>(basic_node<permute_op<Q>, Y>) {
      return make_permute<typename permutation<Perm>::template after<Q>>(Y{});
    }(resolve_t<X>{});
  } else {
    return node<permute_op<Perm>, X>{};
  }
}
}  // namespace detail

template <std::size_t... P>
struct permute_op<axes_t<P...>> {
  using perm = detail::permutation<axes_t<P...>>;
  static constexpr std::string_view name = "permute";
  static std::string attributes() { return axes_t<P...>::to_string(); }
  static constexpr std::size_t rank(std::size_t r) { return r; }
  template <class X>
  using shape_source = typename detail::permuted_source<axes_t<P...>, shape_source_t<X>>::type;
  static constexpr shape infer_shape(input_shapes in) {
    shape out = in[0];
    for (std::size_t k = 0; k < perm::rank; ++k) out[k] = in[0][perm::p[k]];
    return out;
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::axis_values p{};
    for (std::size_t k = 0; k < perm::rank; ++k) p[k] = perm::p[k];
    kernels::permute<T>(out, in[0], p);
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X) { return detail::make_permute<typename perm::inverse>(g); }
};

// permute<p0, p1, ...>(x): output axis k is x's axis p_k.
template <std::size_t... P, Expression X>
constexpr auto permute(X x) {
  static_assert(sizeof...(P) == X::rank, "permute<p...>(x): give one axis per axis of x");
  static_assert(detail::is_permutation<P...>(), "permute<p...>(x): p must be a permutation of 0, 1, ..., x.rank - 1");
  if constexpr (sizeof...(P) == X::rank && detail::is_permutation<P...>())
    return detail::make_permute<axes_t<P...>>(x);
}

namespace detail {
template <std::size_t... K>
constexpr auto swap_last_two(std::index_sequence<K...>) {
  constexpr std::size_t r = sizeof...(K);
  return axes_t<(K + 2 < r ? K : K + 2 == r ? r - 1 : r - 2)...>{};
}
}  // namespace detail

// transpose(x): x with its last two axes swapped, permute[(0, ..., r-1, r-2)].
template <Expression X>
constexpr auto transpose(X x) {
  static_assert(X::rank >= 2, "transpose(x): x must have rank >= 2 (it swaps the last two axes)");
  if constexpr (X::rank >= 2)
    return detail::make_permute<decltype(detail::swap_last_two(std::make_index_sequence<X::rank>{}))>(x);
}

}  // namespace typegrad

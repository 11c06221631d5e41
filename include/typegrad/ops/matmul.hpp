#pragma once
// matmul(a, b): the matrix product over the last two dimensions, and dense(x, w, b), the fully
// connected layer composed from it.
//
//   a (M, K)        x b (K, N)        -> (M, N)
//   a (..., M, K)   x b (..., K, N)   -> (..., M, N)   identical leading (batch) dims
//   a (..., M, K)   x b (K, N)        -> (..., M, N)   one b for the whole batch (dense on sequences)
//   a (M, K)        x b (..., K, N)   -> (..., M, N)   one a for the whole batch
//
// Transposition is a compile-time attribute of the op, matmul_op<TransA, TransB>, so the
// adjoints are matmuls again and no transpose is ever materialised:
//   C = A B:   dA = G B^T = matmul[_,T](g, b),   dB = A^T G = matmul[T,_](a, g).
// When a 2-d argument is shared by a batch, its adjoint sums over the batch; that is the third
// attribute, sum_batch: matmul[T,_,sum_batch](a, g) = sum_i a_i^T g_i, a 2-d result. The adjoints
// of a sum_batch product are matmuls with a shared 2-d argument, so the family is closed under
// differentiation: second and higher derivatives stay matmuls.
//
// The kernel is typegrad's GEMM, serial inside TBB tasks (kernels/gemm.hpp, src/kernels/gemm.cpp).
#include <algorithm>
#include <cstddef>
#include <string>

#include "typegrad/kernels/gemm.hpp"
#include "typegrad/ops/arithmetic.hpp"

namespace typegrad {

template <bool TransA, bool TransB, bool SumBatch = false>
struct matmul_op {
  static constexpr std::string_view name = "matmul";
  static constexpr kernels::matmul_form form{TransA, TransB, SumBatch};

  // matmul(a, b) prints without attributes; matmul[T,_](a, g), matmul[_,T,sum_batch](g, b).
  static std::string attributes()
    requires(TransA || TransB || SumBatch)
  {
    return fmt::format("{},{}{}", TransA ? "T" : "_", TransB ? "T" : "_", SumBatch ? ",sum_batch" : "");
  }

  static constexpr std::size_t rank(std::size_t a, std::size_t b) { return SumBatch ? 2 : std::max(a, b); }

  static constexpr shape infer_shape(input_shapes in) {
    const shape &a = in[0], &b = in[1];
    const std::size_t ra = a.rank(), rb = b.rank();
    const std::size_t m = TransA ? a[ra - 1] : a[ra - 2], ka = TransA ? a[ra - 2] : a[ra - 1];
    const std::size_t kb = TransB ? b[rb - 1] : b[rb - 2], n = TransB ? b[rb - 2] : b[rb - 1];
    if (ka != kb)
      throw shape_rule_violation(fmt::format(
          "inner extents differ: {} is {} x {} but {} is {} x {} (the columns of the first must equal the rows "
          "of the second)",
          TransA ? "a^T" : "a", m, ka, TransB ? "b^T" : "b", kb, n));
    if (ra > 2 && rb > 2) {
      bool same = ra == rb;
      for (std::size_t i = 0; same && i + 2 < ra; ++i) same = a[i] == b[i];
      if (!same)
        throw shape_rule_violation(fmt::format(
            "batch dims differ: a's leading dims {} vs b's {} (they must be identical, or one argument 2-d)",
            shape(a.dims().first(ra - 2)), shape(b.dims().first(rb - 2))));
    }
    shape out;
    if (!SumBatch) {
      const shape& batched = ra >= rb ? a : b;
      for (std::size_t i = 0; i + 2 < batched.rank(); ++i) out.push_back(batched[i]);
    }
    out.push_back(m);
    out.push_back(n);
    return out;
  }
  // M N K per product: per element of the output, K, times the batch items a sum_batch adds up.
  static constexpr std::size_t multiply_adds(input_shapes in, const shape& out) {
    const shape& a = in[0];
    std::size_t k = TransA ? a[a.rank() - 2] : a[a.rank() - 1];
    if (SumBatch)
      for (std::size_t i = 0; i + 2 < a.rank(); ++i) k *= a[i];
    return out.numel() * k;
  }

  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::matmul<T>(out, in[0], in[1], form);
  }

  template <std::size_t I, class G, class Y, class A, class B>
  static auto vjp(G g, Y, A a, B b);
};

namespace detail {
// The product op(p) op(q) written for the adjoint of X: a sum over the batch when X is a 2-d
// argument while the adjoint g is batched (X was shared by the batch).
template <class X, class G, bool TransP, bool TransQ, Expression P, Expression Q>
constexpr auto matmul_adjoint(P, Q) {
  constexpr bool sum_batch = X::rank == 2 && G::rank > 2;
  return node<matmul_op<TransP, TransQ, sum_batch>, P, Q>{};
}
}  // namespace detail

template <bool TransA, bool TransB, bool SumBatch>
template <std::size_t I, class G, class Y, class A, class B>
auto matmul_op<TransA, TransB, SumBatch>::vjp(G g, Y, A a, B b) {
  // C = op(A) op(B) (summed over the batch for SumBatch; G is then 2-d and broadcasts back).
  if constexpr (I == 0) {
    // d op(A) = G op(B)^T;   for a transposed A:  dA = op(B) G^T.
    if constexpr (!TransA) return detail::matmul_adjoint<A, G, false, !TransB>(g, b);
    else return detail::matmul_adjoint<A, G, TransB, true>(b, g);
  } else {
    // d op(B) = op(A)^T G;   for a transposed B:  dB = G^T op(A).
    if constexpr (!TransB) return detail::matmul_adjoint<B, G, !TransA, false>(a, g);
    else return detail::matmul_adjoint<B, G, true, TransA>(g, a);
  }
}

// matmul(a, b): see the table at the top of this file.
template <Expression A, Expression B>
constexpr auto matmul(A, B) {
  static_assert(A::rank >= 2, "matmul(a, b): a must have rank >= 2 (a matrix, or a batch of matrices)");
  static_assert(B::rank >= 2, "matmul(a, b): b must have rank >= 2 (a matrix, or a batch of matrices)");
  static_assert(A::rank == B::rank || A::rank == 2 || B::rank == 2,
                "matmul(a, b): batched a and b must have the same rank (or one of them must be 2-d)");
  return node<matmul_op<false, false>, A, B>{};
}

// dense(x, w, b) = matmul(x, w) + b: x (..., in), w (in, out), b (out) -> (..., out).
// A composite: its gradients are those of matmul and of the broadcasting +.
template <Expression X, Expression W, Expression Bias>
constexpr auto dense(X x, W w, Bias b) {
  static_assert(X::rank >= 2, "dense(x, w, b): x must have rank >= 2 (batch..., in features)");
  static_assert(W::rank == 2, "dense(x, w, b): w must have rank 2 (in features, out features)");
  static_assert(Bias::rank == 1, "dense(x, w, b): b must have rank 1 (out features)");
  return matmul(x, w) + b;
}
// dense(x, w) = matmul(x, w): a layer without bias.
template <Expression X, Expression W>
constexpr auto dense(X x, W w) {
  static_assert(X::rank >= 2, "dense(x, w): x must have rank >= 2 (batch..., in features)");
  static_assert(W::rank == 2, "dense(x, w): w must have rank 2 (in features, out features)");
  return matmul(x, w);
}

}  // namespace typegrad

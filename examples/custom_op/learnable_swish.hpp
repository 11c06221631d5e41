#pragma once
// A user-defined differentiable op, written outside typegrad's source tree against its installed
// headers only: swish with a learnable slope per channel (Ramachandran, Zoph and Le, "Searching for
// activation functions", 2017, "Swish-beta"),
//
//   learnable_swish(x, beta) = x * sigmoid(beta * x)      x (batch, ..., C), beta (C)
//
// beta = 1 is SiLU, beta -> 0 tends to x / 2 (linear), beta -> inf to relu; the network learns
// where on that range each channel sits. Everything the op needs is in this one header, as for the
// library's own ops (docs/adding-an-op.md, section "An op in your own code"):
//   name                 how it prints: learnable_swish(x, beta)
//   rank / infer_shape   the output has x's shape; beta must be (C) with C = x's last extent
//   shape_source         x: lets typegrad drop sum_to's that would be no-ops in gradients
//   forward<T>           the kernel: a parallel loop over rows of C, vectorisable inner loop
//   vjp<I>               the adjoints as expressions of existing ops (and of the node itself),
//                        so second derivatives (hvp, grad of grad) need no code either
// plus the user-facing function with the rank checks.
#include <cstddef>
#include <string_view>

#include <typegrad/kernels/unary.hpp>  // kernels::for_each_chunk, kernels::math
#include <typegrad/typegrad.hpp>

namespace research {

struct learnable_swish_op {
  static constexpr std::string_view name = "learnable_swish";

  static constexpr std::size_t rank(std::size_t x_rank, std::size_t /*beta_rank*/) { return x_rank; }
  template <class X, class Beta>
  using shape_source = typegrad::shape_source_t<X>;

  static typegrad::shape infer_shape(typegrad::input_shapes in) {
    const typegrad::shape& x = in[0];
    const typegrad::shape& beta = in[1];
    if (beta[0] != x[x.rank() - 1])  // x.rank() >= 1: learnable_swish() asserts it
      throw typegrad::shape_rule_violation(
          fmt::format("beta {} must hold one value per channel (x's last extent)", beta));
    return x;
  }

  // y[r, c] = x[r, c] * sigmoid(beta[c] * x[r, c]), x seen as rows of C channels. Rows are split
  // across tasks by for_each_chunk (typegrad's deterministic parallel loop, the one the library's
  // elementwise kernels use); the loop over a row's channels is contiguous and vectorises with
  // kernels::math::sigmoid (branch-free, unlike std::exp).
  template <class T>
  static void forward(typegrad::view<T> out, typegrad::inputs<T> in) {
    struct rows {
      T* y;
      const T* x;
      const T* beta;
      std::size_t channels;
    } ctx{out.data, in[0].data, in[1].data, in[1].shape[0]};
    const std::size_t row_count = ctx.channels ? out.size() / ctx.channels : 0;
    typegrad::kernels::for_each_chunk(
        row_count, ctx.channels * 10,  // ~10 simple ops per element (the sigmoid's exp)
        [](void* context, std::size_t lo, std::size_t hi) {
          const auto& k = *static_cast<const rows*>(context);
          for (std::size_t r = lo; r < hi; ++r) {
            const T* x = k.x + r * k.channels;
            T* y = k.y + r * k.channels;
            for (std::size_t c = 0; c < k.channels; ++c)
              y[c] = x[c] * typegrad::kernels::math::sigmoid(k.beta[c] * x[c]);
          }
        },
        &ctx);
  }

  // With s = sigmoid(beta x) and y = x s (the node itself, so the forward value is reused):
  //   dy/dx    = s + beta x s (1 - s) = s + beta y (1 - s)
  //   dy/dbeta = x^2 s (1 - s)        = x y (1 - s)       summed over every position of channel c
  template <std::size_t I, class G, class Y, class X, class Beta>
  static auto vjp(G g, Y y, X x, Beta beta) {
    auto one_minus_s = typegrad::lit<1> - typegrad::sigmoid(beta * x);
    if constexpr (I == 0) return g * (typegrad::sigmoid(beta * x) + beta * y * one_minus_s);
    else return typegrad::sum_to(g * x * y * one_minus_s, beta);
  }
};

template <typegrad::Expression X, typegrad::Expression Beta>
constexpr auto learnable_swish(X, Beta) {
  static_assert(X::rank >= 1, "learnable_swish(x, beta): x must have rank >= 1 (..., channels)");
  static_assert(Beta::rank == 1, "learnable_swish(x, beta): beta must have rank 1 (one value per channel)");
  return typegrad::node<learnable_swish_op, X, Beta>{};
}

}  // namespace research

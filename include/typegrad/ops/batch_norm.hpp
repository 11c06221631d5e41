#pragma once
// Batch normalisation, composed from primitives: no op, no kernel, no gradient code. Its
// gradients (wrt x, gamma, beta; and second order) emerge from those of -, /, *, +, sqrt, square
// and mean.
//
//   batch_norm(x, gamma, beta)              training mode: the batch's own statistics
//   batch_norm(x, gamma, beta, lit<1e-3>)   eps, a compile-time literal (default 1e-5)
//   auto [mu, var] = batch_moments(x);      the batch statistics, (C) each
//   batch_norm_inference(x, mu, var, gamma, beta[, lit<eps>])   evaluation: given statistics
//
// x is (batch, ordered dims..., channels); the statistics are per channel, over the batch and
// every ordered dim (axes 0 .. rank-2), and the variance is the biased one (divided by the count,
// as the normalisation uses). With channels last, the (C) statistics, gamma and beta broadcast
// back over x by ordinary broadcasting:
//   batch_norm(x, gamma, beta) = (x - mean) / sqrt(var + eps) * gamma + beta
// batch_norm(x, ...) is literally batch_norm_inference(x, batch_moments(x)..., ...), so a program
// that also outputs batch_moments(x) (to keep running averages) shares those nodes. See
// docs/normalisation.md.
#include <cstddef>
#include <utility>

#include "typegrad/ops/arithmetic.hpp"
#include "typegrad/ops/reduce.hpp"
#include "typegrad/ops/unary.hpp"

namespace typegrad {

inline constexpr double batch_norm_default_eps = 1e-5;

namespace detail {
// axes<0, ..., Rank - 2>: every axis but the last (the channels).
template <class Seq>
struct leading_axes;
template <std::size_t... I>
struct leading_axes<std::index_sequence<I...>> {
  using type = axes_t<I...>;
};
template <std::size_t Rank>
using batch_axes_t = typename leading_axes<std::make_index_sequence<(Rank >= 2 ? Rank - 1 : 1)>>::type;
}  // namespace detail

// The per-channel batch statistics of x: mean and biased variance, (C) each.
template <Expression Mean, Expression Var>
struct batch_moments_t {
  Mean mean;
  Var var;
};

template <Expression X>
constexpr auto batch_moments(X x) {
  static_assert(X::rank >= 2, "batch_moments(x): x must have rank >= 2 (batch, ordered dims..., channels)");
  using axes = detail::batch_axes_t<X::rank>;
  auto mu = mean(x, axes{});
  auto var = mean(square(x - mu), axes{});  // two passes: no cancellation of E[x^2] - E[x]^2
  return batch_moments_t<decltype(mu), decltype(var)>{mu, var};
}

// (x - mean) / sqrt(var + eps) * gamma + beta with given per-channel statistics (evaluation mode).
template <Expression X, Expression Mean, Expression Var, Expression Gamma, Expression Beta,
          double Eps = batch_norm_default_eps>
constexpr auto batch_norm_inference(X x, Mean mu, Var var, Gamma gamma, Beta beta, constant<Eps> eps = {}) {
  static_assert(X::rank >= 2,
                "batch_norm_inference(x, mean, var, gamma, beta): x must have rank >= 2 (batch, ordered dims..., "
                "channels)");
  static_assert(Mean::rank == 1 && Var::rank == 1,
                "batch_norm_inference(x, mean, var, gamma, beta): mean and var must have rank 1 (channels)");
  static_assert(Gamma::rank == 1 && Beta::rank == 1,
                "batch_norm_inference(x, mean, var, gamma, beta): gamma and beta must have rank 1 (channels)");
  static_assert(Eps >= 0, "batch_norm(x, gamma, beta, lit<eps>): eps must not be negative");
  return (x - mu) / sqrt(var + eps) * gamma + beta;
}

// Training-mode batch normalisation: normalised with the batch's own mean and variance.
template <Expression X, Expression Gamma, Expression Beta, double Eps = batch_norm_default_eps>
constexpr auto batch_norm(X x, Gamma gamma, Beta beta, constant<Eps> eps = {}) {
  static_assert(X::rank >= 2, "batch_norm(x, gamma, beta): x must have rank >= 2 (batch, ordered dims..., channels)");
  static_assert(Gamma::rank == 1 && Beta::rank == 1, "batch_norm(x, gamma, beta): gamma and beta must have rank 1 (channels)");
  if constexpr (X::rank >= 2) {
    const auto moments = batch_moments(x);
    return batch_norm_inference(x, moments.mean, moments.var, gamma, beta, eps);
  } else {
    return x;  // the static_assert above has fired; no further errors
  }
}

}  // namespace typegrad

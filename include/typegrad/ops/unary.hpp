#pragma once
// Elementwise unary functions: exp, log, sqrt, square, pow<p>, abs, relu, leaky_relu<alpha>,
// elu<alpha>, sigmoid, tanh, softplus, gelu (erf form), gelu_tanh, erf, normal_cdf, normal_pdf,
// and the zero-gradient helpers step and sign.
//
// One generic op, unary_op<Fn>, holds everything the functions share: the rank and shape rule
// (the argument's), the kernel (a parallel vectorizable map, kernels/unary.hpp) and the
// vjp, g * Fn::derivative(x, y). Each function is then one row, a struct of
//
//   name                         how it prints: exp(x), leaky_relu[alpha=0.01](x)
//   attributes()                 (optional) its compile-time parameters, printed in [...]
//   apply<T>(T x)                the scalar formula, for float and double, inlined into the map
//   derivative(x, y)             dy/dx as an EXPRESSION of x and of y = f(x) (the node itself),
//                                or no_adjoint{} when it is zero everywhere (step, sign)
//   cost                         (optional) work per element, in simple ops, for chunking
//
// plus a one-line user-facing function. Because the derivative is an expression of
// differentiable ops, second derivatives (hvp, grad of a grad) need no code of their own:
//
//   exp:      d = y                   tanh:     d = 1 - square(y)
//   sigmoid:  d = y * (1 - y)         log:      d = 1 / x
//   relu:     d = step(x)             softplus: d = sigmoid(x)
//
// Conventions at the kinks (as PyTorch): relu'(0) = 0, leaky_relu'(0) = alpha, elu'(0) = alpha,
// abs'(0) = sign(0) = 0.
//
// Adding a row: write the struct next to its siblings below and a function returning
// apply_unary<row>(x); nothing else (no kernel file, no gradient code).
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

#include <fmt/format.h>

#include "typegrad/kernels/unary.hpp"
#include "typegrad/ops/arithmetic.hpp"

namespace typegrad {

// ---- the generic op ---------------------------------------------------------------------------
// What a row must provide: UnaryFunction (core/op_concepts.hpp).
template <UnaryFunction Fn>
struct unary_op : elementwise_tag, shape_preserving {
  using function = Fn;
  static constexpr std::string_view name = Fn::name;
  static std::string attributes()
    requires requires { { Fn::attributes() } -> std::convertible_to<std::string>; }
  {
    return Fn::attributes();
  }
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::unary_map<Fn, T>(out, in[0]);
  }
  template <class T>
  static void block(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols) {
    kernels::map_block(out, in[0], rows, cols, [](T x) { return Fn::template apply<T>(x); });
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y y, X x) {
    return g * Fn::derivative(x, y);
  }
};

// f(x) for a row Fn: the node unary_op<Fn>(x). The user-facing functions below call this.
template <UnaryFunction Fn, Expression X>
constexpr node<unary_op<Fn>, X> apply_unary(X) {
  return {};
}

namespace detail {
namespace km = kernels::math;

// x^N for an integer N, by repeated squaring unrolled at compile time (vectorizes).
template <long long N, class T>
constexpr T integer_power(T x) {
  if constexpr (N < 0) return T(1) / integer_power<-N>(x);
  else if constexpr (N == 0) return T(1);
  else if constexpr (N == 1) return x;
  else if constexpr (N % 2 == 0) {
    const T h = integer_power<N / 2>(x);
    return h * h;
  } else {
    return x * integer_power<N - 1>(x);
  }
}
constexpr bool is_small_integer(double p) { return p == double(static_cast<long long>(p)) && p >= -64 && p <= 64; }

inline constexpr double sqrt1_2 = 0.707106781186547524400844362104849039;      // 1 / sqrt(2)
inline constexpr double inv_sqrt_2pi = 0.398942280401432677939946059934381868;  // 1 / sqrt(2 pi)
inline constexpr double two_over_sqrt_pi = 1.12837916709551257389615890312154517;
inline constexpr double sqrt_2_over_pi = 0.797884560802865355879892119868763737;
inline constexpr double gelu_tanh_a = 0.044715;
}  // namespace detail

// ---- the table ------------------------------------------------------------------------------

// Heaviside step: 1 where x > 0, else 0 (NaN -> 0). Zero derivative. relu's derivative.
struct step_fn {
  static constexpr std::string_view name = "step";
  template <class T>
  static T apply(T x) { return detail::km::select(x > T(0), T(1), T(0)); }
  static constexpr auto derivative(auto, auto) { return no_adjoint{}; }
};
template <Expression X>
constexpr auto step(X x) { return apply_unary<step_fn>(x); }

// sign(x): -1, 0 or 1 (sign(+-0) = +-0, NaN propagates). Zero derivative. abs's derivative.
struct sign_fn {
  static constexpr std::string_view name = "sign";
  template <class T>
  static T apply(T x) {
    return detail::km::select(x > T(0), T(1), detail::km::select(x < T(0), T(-1), x));
  }
  static constexpr auto derivative(auto, auto) { return no_adjoint{}; }
};
template <Expression X>
constexpr auto sign(X x) { return apply_unary<sign_fn>(x); }

struct exp_fn {
  static constexpr std::string_view name = "exp";
  static constexpr int cost = 8;
  template <class T>
  static T apply(T x) { return detail::km::exp(x); }
  static constexpr auto derivative(auto, auto y) { return y; }
};
template <Expression X>
constexpr auto exp(X x) { return apply_unary<exp_fn>(x); }

// Natural logarithm (log(0) = -inf, NaN below 0).
struct log_fn {
  static constexpr std::string_view name = "log";
  static constexpr int cost = 8;
  template <class T>
  static T apply(T x) { return detail::km::log(x); }
  static constexpr auto derivative(auto x, auto) { return lit<1> / x; }
};
template <Expression X>
constexpr auto log(X x) { return apply_unary<log_fn>(x); }

struct sqrt_fn {
  static constexpr std::string_view name = "sqrt";
  static constexpr int cost = 2;
  template <class T>
  static T apply(T x) { return std::sqrt(x); }
  static constexpr auto derivative(auto, auto y) { return lit<0.5> / y; }
};
template <Expression X>
constexpr auto sqrt(X x) { return apply_unary<sqrt_fn>(x); }

struct square_fn {
  static constexpr std::string_view name = "square";
  template <class T>
  static T apply(T x) { return x * x; }
  static constexpr auto derivative(auto x, auto) { return lit<2> * x; }
};
template <Expression X>
constexpr auto square(X x) { return apply_unary<square_fn>(x); }

// x^P for a compile-time exponent P. Integer P (|P| <= 64) is exact repeated multiplication, so
// negative x is fine; P = k + 1/2 is sqrt(x) x^k; any other P is std::pow (NaN for x < 0).
template <double P>
struct pow_fn {
  static constexpr std::string_view name = "pow";
  static constexpr int cost = detail::is_small_integer(P) || detail::is_small_integer(P - 0.5) ? 4 : 32;
  static std::string attributes() { return fmt::format("{:g}", P); }
  template <class T>
  static T apply(T x) {
    if constexpr (detail::is_small_integer(P)) {
      return detail::integer_power<static_cast<long long>(P)>(x);
    } else if constexpr (detail::is_small_integer(P - 0.5)) {
      constexpr long long k = static_cast<long long>(P - 0.5);
      if constexpr (k >= 0) return std::sqrt(x) * detail::integer_power<k>(x);
      else return T(1) / (std::sqrt(x) * detail::integer_power<-k - 1>(x));  // P = -(m + 1/2)
    } else {
      return std::pow(x, T(P));
    }
  }
  static constexpr auto derivative(auto x, auto);
};

// pow<p>(x) = x^p for a compile-time p: pow<3>(x), pow<2.5>(x), pow<-1>(x); pow(x, lit<3>) is
// the same. pow<1>(x) is x, pow<2> square, pow<0.5> sqrt (the same nodes, so they share work).
template <auto P, Expression X>
  requires std::is_arithmetic_v<decltype(P)>
constexpr auto pow(X x) {
  constexpr double p = static_cast<double>(P);
  if constexpr (p == 1.0) return x;
  else if constexpr (p == 2.0) return square(x);
  else if constexpr (p == 0.5) return sqrt(x);
  else return apply_unary<pow_fn<p>>(x);
}
template <Expression X, double P>
constexpr auto pow(X x, constant<P>) {
  return pow<P>(x);
}
template <double P>
constexpr auto pow_fn<P>::derivative(auto x, auto) {
  if constexpr (P == 0.0) return no_adjoint{};
  else return constant<P>{} * pow<P - 1.0>(x);
}

// |x|; its derivative is sign(x) (0 at 0).
struct abs_fn {
  static constexpr std::string_view name = "abs";
  template <class T>
  static T apply(T x) { return std::abs(x); }
  static constexpr auto derivative(auto x, auto) { return sign(x); }
};
template <Expression X>
constexpr auto abs(X x) { return apply_unary<abs_fn>(x); }

// max(x, 0), NaN propagates.
struct relu_fn {
  static constexpr std::string_view name = "relu";
  template <class T>
  static T apply(T x) { return detail::km::select(x < T(0), T(0), x); }
  static constexpr auto derivative(auto x, auto) { return step(x); }
};
template <Expression X>
constexpr auto relu(X x) { return apply_unary<relu_fn>(x); }

// Fusions around relu (execution plans; the graph and its derivatives are unchanged):
// - relu's gradient g * step(x) runs as one pass (binary_kind::mul_step, bitwise g * T(x > 0)),
//   reading relu(x) when the graph has it (step(relu(x)) == step(x) for every x, NaN included),
//   else x; step(x) is not computed unless something else reads it;
// - relu(a + b), a bias and its activation, is one pass (binary_kind::add_relu). With the first
//   rule reading relu(x), nothing reads a + b any more, which is then neither computed nor stored.
//   (relu(conv(x, w) + b) goes one level deeper: ops/conv.hpp.)
template <>
inline constexpr bool has_fusion_rules_v<mul_op> = true;
template <>
inline constexpr bool has_fusion_rules_v<unary_op<relu_fn>> = true;
template <class G, class X>
struct fusion_rule<mul_op, G, basic_node<unary_op<step_fn>, X>> {
  static constexpr std::size_t argument = 1;
  using read_instead = basic_node<unary_op<relu_fn>, X>;
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::binary<T>(kernels::binary_kind::mul_step, out, in[0], in[1]);
  }
  template <class T>
  static void block(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols) {
    kernels::binary_block<T>(kernels::binary_kind::mul_step, out, in[0], in[1], rows, cols);
  }
};
template <class X, class G>
struct fusion_rule<mul_op, basic_node<unary_op<step_fn>, X>, G> {
  static constexpr std::size_t argument = 0;
  using read_instead = basic_node<unary_op<relu_fn>, X>;
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::binary<T>(kernels::binary_kind::mul_step, out, in[1], in[0]);
  }
  template <class T>
  static void block(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols) {
    kernels::binary_block<T>(kernels::binary_kind::mul_step, out, in[1], in[0], rows, cols);
  }
};
template <class A, class B>
struct fusion_rule<unary_op<relu_fn>, basic_node<add_op, A, B>> {
  static constexpr std::size_t argument = 0;
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    kernels::binary<T>(kernels::binary_kind::add_relu, out, in[0], in[1]);
  }
  template <class T>
  static void block(T* out, const kernels::block_operand<T>* in, std::size_t rows, std::size_t cols) {
    kernels::binary_block<T>(kernels::binary_kind::add_relu, out, in[0], in[1], rows, cols);
  }
};
template <class X, class Y>  // both: fuse the second (the first is computed as its own node)
struct fusion_rule<mul_op, basic_node<unary_op<step_fn>, X>, basic_node<unary_op<step_fn>, Y>>
    : fusion_rule<mul_op, void, basic_node<unary_op<step_fn>, Y>> {};

// x for x >= 0, alpha x below: leaky_relu(x) (alpha = 0.01) or leaky_relu<0.2>(x).
template <double Alpha>
struct leaky_relu_fn {
  static constexpr std::string_view name = "leaky_relu";
  static std::string attributes() { return fmt::format("alpha={:g}", Alpha); }
  template <class T>
  static T apply(T x) { return detail::km::select(x < T(0), T(Alpha) * x, x); }
  static constexpr auto derivative(auto x, auto) { return constant<Alpha>{} + constant<1.0 - Alpha>{} * step(x); }
};
template <auto Alpha = 0.01, Expression X>
  requires std::is_arithmetic_v<decltype(Alpha)>
constexpr auto leaky_relu(X x) {
  return apply_unary<leaky_relu_fn<static_cast<double>(Alpha)>>(x);
}

// x for x > 0, alpha (e^x - 1) below: elu(x) (alpha = 1) or elu<0.5>(x).
template <double Alpha>
struct elu_fn {
  static constexpr std::string_view name = "elu";
  static constexpr int cost = 8;
  static std::string attributes() { return fmt::format("alpha={:g}", Alpha); }
  template <class T>
  static T apply(T x) { return detail::km::select(x > T(0), x, T(Alpha) * detail::km::expm1(x)); }
  // 1 for x > 0; alpha e^x = y + alpha for x <= 0.
  static constexpr auto derivative(auto x, auto y) {
    return step(x) + (lit<1> - step(x)) * (y + constant<Alpha>{});
  }
};
template <auto Alpha = 1.0, Expression X>
  requires std::is_arithmetic_v<decltype(Alpha)>
constexpr auto elu(X x) {
  return apply_unary<elu_fn<static_cast<double>(Alpha)>>(x);
}

// 1 / (1 + e^-x), accurate for large |x| on both sides.
struct sigmoid_fn {
  static constexpr std::string_view name = "sigmoid";
  static constexpr int cost = 8;
  template <class T>
  static T apply(T x) { return detail::km::sigmoid(x); }
  static constexpr auto derivative(auto, auto y) { return y * (lit<1> - y); }
};
template <Expression X>
constexpr auto sigmoid(X x) { return apply_unary<sigmoid_fn>(x); }

struct tanh_fn {
  static constexpr std::string_view name = "tanh";
  static constexpr int cost = 8;
  template <class T>
  static T apply(T x) { return detail::km::tanh(x); }
  static constexpr auto derivative(auto, auto y) { return lit<1> - square(y); }
};
template <Expression X>
constexpr auto tanh(X x) { return apply_unary<tanh_fn>(x); }

// log(1 + e^x), computed as log1p(e^-|x|) + max(x, 0): no overflow, exact for large |x|.
struct softplus_fn {
  static constexpr std::string_view name = "softplus";
  static constexpr int cost = 12;
  template <class T>
  static T apply(T x) { return detail::km::softplus(x); }
  static constexpr auto derivative(auto x, auto) { return sigmoid(x); }
};
template <Expression X>
constexpr auto softplus(X x) { return apply_unary<softplus_fn>(x); }

// The standard normal density e^(-x^2/2) / sqrt(2 pi).
struct normal_pdf_fn {
  static constexpr std::string_view name = "normal_pdf";
  static constexpr int cost = 8;
  template <class T>
  static T apply(T x) { return T(detail::inv_sqrt_2pi) * detail::km::exp(T(-0.5) * x * x); }
  static constexpr auto derivative(auto x, auto y) { return -(x * y); }
};
template <Expression X>
constexpr auto normal_pdf(X x) { return apply_unary<normal_pdf_fn>(x); }

// The standard normal distribution function, erfc(-x / sqrt(2)) / 2 (accurate in both tails).
// std::erfc: scalar libm, not vectorized.
struct normal_cdf_fn {
  static constexpr std::string_view name = "normal_cdf";
  static constexpr int cost = 32;
  template <class T>
  static T apply(T x) { return T(0.5) * std::erfc(-x * T(detail::sqrt1_2)); }
  static constexpr auto derivative(auto x, auto) { return normal_pdf(x); }
};
template <Expression X>
constexpr auto normal_cdf(X x) { return apply_unary<normal_cdf_fn>(x); }

// The error function (std::erf: scalar libm).
struct erf_fn {
  static constexpr std::string_view name = "erf";
  static constexpr int cost = 32;
  template <class T>
  static T apply(T x) { return std::erf(x); }
  static constexpr auto derivative(auto x, auto) { return lit<detail::two_over_sqrt_pi> * exp(-square(x)); }
};
template <Expression X>
constexpr auto erf(X x) { return apply_unary<erf_fn>(x); }

// GELU, the exact (erf) form, PyTorch's default: x Phi(x) with Phi the normal distribution
// function; gelu'(x) = Phi(x) + x phi(x).
struct gelu_fn {
  static constexpr std::string_view name = "gelu";
  static constexpr int cost = 32;
  template <class T>
  static T apply(T x) { return x * normal_cdf_fn::apply(x); }
  static constexpr auto derivative(auto x, auto) { return normal_cdf(x) + x * normal_pdf(x); }
};
template <Expression X>
constexpr auto gelu(X x) { return apply_unary<gelu_fn>(x); }

// GELU, the tanh approximation (PyTorch's approximate="tanh"):
// x/2 (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3), computed as x sigmoid(2u), which is
// the same function without the cancellation of 1 + tanh(u) for x < 0.
struct gelu_tanh_fn {
  static constexpr std::string_view name = "gelu_tanh";
  static constexpr int cost = 10;
  template <class T>
  static T apply(T x) {
    const T u2 = T(2 * detail::sqrt_2_over_pi) * (x + T(detail::gelu_tanh_a) * x * x * x);
    return x * detail::km::sigmoid(u2);
  }
  // s + x s (1 - s) (2u)',  s = sigmoid(2u), (2u)' = 2 sqrt(2/pi) (1 + 3 * 0.044715 x^2).
  static constexpr auto derivative(auto x, auto) {
    constexpr auto c = lit<2 * detail::sqrt_2_over_pi>;
    auto s = sigmoid(c * (x + lit<detail::gelu_tanh_a> * pow<3>(x)));
    return s + x * s * (lit<1> - s) * (c * (lit<1> + lit<3 * detail::gelu_tanh_a> * square(x)));
  }
};
template <Expression X>
constexpr auto gelu_tanh(X x) { return apply_unary<gelu_tanh_fn>(x); }

}  // namespace typegrad

#pragma once
// The kernel behind every elementwise unary op (include/typegrad/ops/unary.hpp): a parallel map
// out[i] = Fn::apply(in[i]), plus the vectorizable elementary functions the rows' formulas use.
//
// Why the map is a header template: each row's scalar formula is a template (leaky_relu<alpha>,
// pow<p>, ...), so the loop is instantiated per row, where the formula is visible and inlines.
// The parallel part is not: the loop body is handed, one chunk at a time, to for_each_chunk
// (src/kernels/unary.cpp), which runs the library's one parallel-loop helper (parallel_chunks).
// A chunk is thousands of elements, so the indirect call per chunk costs nothing.
//
// Why kernels::math and not <cmath>: without -ffast-math (which the library must not require)
// g++ vectorizes no loop that calls std::exp, std::log or std::tanh. The functions below are
// branch-free polynomial code (Cody-Waite range reduction, exponent arithmetic on the bits)
// that g++ -O3 turns into SIMD: with -march=native an exp or tanh loop runs 8-16 lanes wide.
// Accuracy: within a few ulp of <cmath> over the whole range, including subnormal results,
// overflow to inf, -inf/+inf/NaN inputs (tests/test_unary.cpp compares them to <cmath>).
// sqrt stays std::sqrt: it is one instruction, but g++ vectorizes it only with -fno-math-errno.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "typegrad/core/shape.hpp"

namespace typegrad::kernels {

// ---- the parallel map ---------------------------------------------------------------------
using chunk_fn = void (*)(void* context, std::size_t lo, std::size_t hi);

// Calls body(context, lo, hi) over [0, n) in the chunks of parallel_chunks (src/parallel/
// parallel_chunks.hpp): TBB-parallel above a size threshold, serial below. cost_per_item is the work of
// one item in units of a simple arithmetic op; it sizes the chunks.
void for_each_chunk(std::size_t n, std::size_t cost_per_item, chunk_fn body, void* context);

// out[i] = Fn::template apply<T>(in[i]) for every element; out and in have the same size.
// Fn::cost (default 1) is Fn's cost per element for chunking.
template <class Fn, class T>
void unary_map(view<T> out, view<const T> in) {
  struct context {
    T* out;
    const T* in;
  } ctx{out.data, in.data};
  constexpr std::size_t cost = [] {
    if constexpr (requires { Fn::cost; }) return std::size_t(Fn::cost);
    else return std::size_t(1);
  }();
  for_each_chunk(
      out.size(), cost,
      [](void* c, std::size_t lo, std::size_t hi) {
        auto& k = *static_cast<context*>(c);
        T* o = k.out;
        const T* a = k.in;
        for (std::size_t i = lo; i < hi; ++i) o[i] = Fn::template apply<T>(a[i]);
      },
      &ctx);
}

// ---- vectorizable elementary functions (float and double) -----------------------------------
namespace math {
namespace detail {
template <class T>
using uint_t = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;

template <class T> struct traits;
template <>
struct traits<float> {
  static constexpr int mantissa_bits = 23;
  static constexpr std::uint32_t bias = 127;
  static constexpr float exp_lo = -104.0f;  // exp below this rounds to 0
  static constexpr float exp_hi = 89.0f;    // exp above this overflows
  static constexpr float expm1_lo = -20.0f;  // expm1 below this is -1 in float
  static constexpr float ln2_hi = 0x1.62e4p-1f;  // 15 significant bits: k * ln2_hi is exact
  static constexpr float ln2_lo = float(0.693147180559945309417232121458176568L - 0x1.62e4p-1L);
};
template <>
struct traits<double> {
  static constexpr int mantissa_bits = 52;
  static constexpr std::uint64_t bias = 1023;
  static constexpr double exp_lo = -746.0;
  static constexpr double exp_hi = 710.0;
  static constexpr double expm1_lo = -40.0;
  static constexpr double ln2_hi = 0x1.62e42feep-1;  // 32 trailing zero bits: k * ln2_hi is exact
  static constexpr double ln2_lo = double(0.693147180559945309417232121458176568L - 0x1.62e42feep-1L);
};

template <class T>
inline T from_bits(uint_t<T> u) { return std::bit_cast<T>(u); }
template <class T>
inline uint_t<T> to_bits(T x) { return std::bit_cast<uint_t<T>>(x); }
}  // namespace detail

// c ? a : b, as a bitwise blend. Use it instead of ?: on floating-point values: g++ may thread a
// ?: whose arm is a constant through the code that follows (constant-folding it per arm), and
// then, under the default -ftrapping-math, refuses to if-convert the branches it created, so
// the loop is not vectorized on targets without masked SIMD (AVX2, SSE). A blend cannot be split.
template <class T>
inline T select(bool c, T a, T b) {
  using U = detail::uint_t<T>;
  const U m = U(0) - U(c);
  return detail::from_bits<T>((detail::to_bits(a) & m) | (detail::to_bits(b) & ~m));
}

namespace detail {

// 1.5 * 2^mantissa_bits: adding and subtracting it rounds a float to an integer (|x| < 2^22).
template <class T>
inline constexpr T round_shift = T(3) * T(uint_t<T>(1) << (traits<T>::mantissa_bits - 1));

template <class T>
inline T round_int(T x) { return (x + round_shift<T>) - round_shift<T>; }

// 2^k for an integer-valued k within the normal exponent range, built from the exponent bits.
template <class T>
inline T pow2i(T k) {
  // The low bits of k + round_shift hold k; adding the bias and shifting them into the exponent
  // field drops everything above (also the sign bit: k + bias is in [1, 2 * bias]).
  return from_bits<T>((to_bits<T>(k + round_shift<T>) + traits<T>::bias) << traits<T>::mantissa_bits);
}

// exp(r) - 1 for |r| <= ln2/2: the Taylor series, of degree 7 (float) or 13 (double); the error
// of the truncation is below 0.05 ulp.
template <class T>
inline T expm1_reduced(T r) {
  T p;
  if constexpr (std::is_same_v<T, float>) {
    p = T(1.0 / 5040);
    p = p * r + T(1.0 / 720);
    p = p * r + T(1.0 / 120);
    p = p * r + T(1.0 / 24);
    p = p * r + T(1.0 / 6);
    p = p * r + T(0.5);
  } else {
    p = T(1.0 / 6227020800.0);
    p = p * r + T(1.0 / 479001600.0);
    p = p * r + T(1.0 / 39916800.0);
    p = p * r + T(1.0 / 3628800.0);
    p = p * r + T(1.0 / 362880.0);
    p = p * r + T(1.0 / 40320.0);
    p = p * r + T(1.0 / 5040.0);
    p = p * r + T(1.0 / 720.0);
    p = p * r + T(1.0 / 120.0);
    p = p * r + T(1.0 / 24.0);
    p = p * r + T(1.0 / 6.0);
    p = p * r + T(0.5);
  }
  return r + (r * r) * p;
}

// x = k ln2 + r with k an integer and |r| <= ln2/2 (Cody-Waite: k * ln2_hi is exact).
template <class T>
struct reduced {
  T k, r;
};
template <class T>
inline reduced<T> reduce_ln2(T x) {
  const T k = round_int(x * T(1.442695040888963407359924681001892137L));
  const T r = (x - k * traits<T>::ln2_hi) - k * traits<T>::ln2_lo;
  return {k, r};
}
}  // namespace detail

// e^x. Subnormal results are exact to the rounding of the last multiplication; NaN propagates.
template <class T>
inline T exp(T x) {
  using tr = detail::traits<T>;
  // Clamping keeps 2^k representable as a product of two normal powers of two; outside the
  // clamp the result is 0 or inf anyway (and a NaN passes both comparisons unchanged).
  T xc = select(x < tr::exp_lo, tr::exp_lo, x);
  xc = select(xc > tr::exp_hi, tr::exp_hi, xc);
  auto [k, r] = detail::reduce_ln2(xc);
  const T k1 = detail::round_int(k * T(0.5));
  const T k2 = k - k1;
  return (T(1) + detail::expm1_reduced(r)) * detail::pow2i(k1) * detail::pow2i(k2);
}

// e^x - 1, accurate near 0 (where exp(x) - 1 would cancel).
template <class T>
inline T expm1(T x) {
  using tr = detail::traits<T>;
  T xc = select(x < tr::expm1_lo, tr::expm1_lo, x);
  xc = select(xc > tr::exp_hi, tr::exp_hi, xc);
  auto [k, r] = detail::reduce_ln2(xc);
  // 2^k (1 + q) - 1 = 2 (h q + (h - 1/2)) with h = 2^(k-1), representable up to k = 1024 (128).
  const T h = detail::pow2i(k - T(1));
  const T q = detail::expm1_reduced(r);
  return select(k == T(0), q, T(2) * (h * q + (h - T(0.5))));
}

// Natural logarithm: log(0) = -inf, log(x < 0) = NaN, log(inf) = inf.
template <class T>
inline T log(T x) {
  using tr = detail::traits<T>;
  using U = detail::uint_t<T>;
  constexpr int mb = tr::mantissa_bits;
  // Subnormal x: scale into the normal range first.
  const bool tiny = x < std::numeric_limits<T>::min();
  const T xs = x * select(tiny, T(U(1) << (mb + 1)), T(1));
  const T k_adjust = select(tiny, T(-(mb + 1)), T(0));
  // x = 2^k z with z in [sqrt(1/2), sqrt(2)): offset the bits so the exponent field of the sum
  // is k + bias, then take z's bits as x's with that exponent replaced by the bias.
  constexpr U sqrt_half_bits = std::is_same_v<T, float> ? U(0x3f3504f3u) : U(0x3fe6a09e667f3bcdull);
  const U u = detail::to_bits(xs);
  const U t = u - sqrt_half_bits + (tr::bias << mb);
  const U exponent_field = t >> mb;
  constexpr U exp_mask = (U(2) * tr::bias + 1) << mb;
  const T z = detail::from_bits<T>(u - (t & exp_mask) + (tr::bias << mb));
  // The exponent field as a float, via the bits of 2^mb + field (no int -> float conversion).
  constexpr T two_mb = T(U(1) << mb);
  const T k = (detail::from_bits<T>(detail::to_bits(two_mb) | exponent_field) - two_mb) - T(tr::bias) + k_adjust;
  // log(z) = log(1 + f) = 2 atanh(s), s = f / (2 + f), |s| <= 0.1716:
  // log(1 + f) = f - (f^2/2 - s (f^2/2 + R(s^2))), R = 2/3 s^2 + 2/5 s^4 + ...
  const T f = z - T(1);
  const T s = f / (T(2) + f);
  const T s2 = s * s;
  T R;
  if constexpr (std::is_same_v<T, float>) {
    R = T(2.0 / 9);
    R = R * s2 + T(2.0 / 7);
    R = R * s2 + T(2.0 / 5);
    R = R * s2 + T(2.0 / 3);
  } else {
    R = T(2.0 / 21);
    R = R * s2 + T(2.0 / 19);
    R = R * s2 + T(2.0 / 17);
    R = R * s2 + T(2.0 / 15);
    R = R * s2 + T(2.0 / 13);
    R = R * s2 + T(2.0 / 11);
    R = R * s2 + T(2.0 / 9);
    R = R * s2 + T(2.0 / 7);
    R = R * s2 + T(2.0 / 5);
    R = R * s2 + T(2.0 / 3);
  }
  R = R * s2;
  const T hfsq = T(0.5) * f * f;
  const T log_z = f - (hfsq - s * (hfsq + R));
  T result = k * tr::ln2_hi + (log_z + k * tr::ln2_lo);
  result = select(x == T(0), -std::numeric_limits<T>::infinity(), result);
  result = select(x == std::numeric_limits<T>::infinity(), x, result);
  return select(x >= T(0), result, std::numeric_limits<T>::quiet_NaN());  // x < 0 or NaN
}

// log(1 + u) for u > -1, accurate for small u: log(w) u / (w - 1), w = 1 + u, cancels the
// rounding of w (Goldberg's trick).
template <class T>
inline T log1p(T u) {
  const T w = T(1) + u;
  const T d = w - T(1);
  const T ratio = u / select(d == T(0), T(1), d);
  const T result = select(u == std::numeric_limits<T>::infinity(), u, log(w) * ratio);
  return select(d == T(0), u, result);
}

// tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), signed like x: no overflow, no cancellation.
template <class T>
inline T tanh(T x) {
  const T e = expm1(T(-2) * std::abs(x));
  return std::copysign(-e / (T(2) + e), x);
}

// 1 / (1 + e^-x), computed from e = e^-|x| <= 1 as 1 / (1 + e) or e / (1 + e): accurate on
// both sides, down to subnormal results for x << 0.
template <class T>
inline T sigmoid(T x) {
  const T e = exp(-std::abs(x));
  const T r = T(1) / (T(1) + e);
  return select(x >= T(0), r, e * r);
}

// log(1 + e^x) = log1p(e^-|x|) + max(x, 0): never overflows, exact for large |x|.
template <class T>
inline T softplus(T x) {
  return log1p(exp(-std::abs(x))) + select(x > T(0), x, T(0));
}

}  // namespace math
}  // namespace typegrad::kernels

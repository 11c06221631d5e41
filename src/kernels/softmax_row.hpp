#pragma once
// Internal to src/: the row primitives of the softmax family (softmax, log_softmax,
// softmax_cross_entropy): a branch-free exp the compiler vectorizes, and max/sum reductions over
// a fixed number of lanes. The lane count is a constant, so a row's result depends only on the
// row, never on the thread count or on how rows are split between threads.
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace typegrad::kernels::softmax_detail {

// exp(x) by Cody-Waite range reduction, x = n ln2 + r with |r| <= ln2/2, then Cephes'
// polynomial (float) or rational (double) approximation of exp(r) and an exponent built from
// bits. n is rounded with the 1.5 * 2^(mantissa bits) shifter, so the function is branch-free
// (selects only) and a loop over it vectorizes. Accurate to about 1 ulp; flushes results below
// the smallest normal number to 0.
inline float exp_approx(float x) {
  constexpr float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
  constexpr float shifter = 12582912.0f;  // 1.5 * 2^23
  constexpr float lo = -87.33f, hi = 88.37f;
  const bool under = x < lo, over = x > hi;
  float xc = under ? lo : x;
  xc = over ? hi : xc;
  const float t = xc * log2e + shifter;
  const float n = t - shifter;
  const std::int32_t ni = std::bit_cast<std::int32_t>(t) - std::bit_cast<std::int32_t>(shifter);
  const float r = (xc - n * ln2_hi) - n * ln2_lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * (r * r) + r + 1.0f;
  const float scale = std::bit_cast<float>((ni + 127) << 23);
  const float v = e * scale;
  return under ? 0.0f : (over ? std::numeric_limits<float>::infinity() : v);
}

inline double exp_approx(double x) {
  constexpr double log2e = 1.4426950408889634074, ln2_hi = 6.93145751953125e-1, ln2_lo = 1.42860682030941723212e-6;
  constexpr double shifter = 6755399441055744.0;  // 1.5 * 2^52
  constexpr double lo = -708.39, hi = 709.0;
  const bool under = x < lo, over = x > hi;
  double xc = under ? lo : x;
  xc = over ? hi : xc;
  const double t = xc * log2e + shifter;
  const double n = t - shifter;
  const std::int64_t ni = std::bit_cast<std::int64_t>(t) - std::bit_cast<std::int64_t>(shifter);
  const double r = (xc - n * ln2_hi) - n * ln2_lo;
  const double rr = r * r;
  const double px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr + 9.99999999999999999910e-1);
  const double qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr + 2.27265548208155028766e-1) * rr +
                    2.00000000000000000009e0;
  const double e = 1.0 + 2.0 * (px / (qx - px));
  const double scale = std::bit_cast<double>((ni + 1023) << 52);
  const double v = e * scale;
  return under ? 0.0 : (over ? std::numeric_limits<double>::infinity() : v);
}

// Lanes of the row reductions: the reduction order is fixed by this constant alone.
inline constexpr std::size_t lanes = 16;

template <class T>
T row_max(const T* x, std::size_t n) {
  T acc[lanes];
  for (std::size_t l = 0; l < lanes; ++l) acc[l] = -std::numeric_limits<T>::infinity();
  std::size_t j = 0;
  for (; j + lanes <= n; j += lanes)
    for (std::size_t l = 0; l < lanes; ++l) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  for (; j < n; ++j) acc[0] = x[j] > acc[0] ? x[j] : acc[0];
  T m = acc[0];
  for (std::size_t l = 1; l < lanes; ++l) m = acc[l] > m ? acc[l] : m;
  return m;
}

// Partial sums kept in lanes across calls, so a long row can be summed block by block.
template <class T>
struct lane_sum {
  T acc[lanes] = {};
  void add(const T* x, std::size_t n) {
    std::size_t j = 0;
    for (; j + lanes <= n; j += lanes)
      for (std::size_t l = 0; l < lanes; ++l) acc[l] += x[j + l];
    for (std::size_t l = 0; j < n; ++j, ++l) acc[l] += x[j];
  }
  T total() const {
    T s = 0;
    for (std::size_t l = 0; l < lanes; ++l) s += acc[l];
    return s;
  }
};

// out[j] = exp(x[j] - shift), vectorized.
template <class T>
void exp_shifted(T* out, const T* x, std::size_t n, T shift) {
  for (std::size_t j = 0; j < n; ++j) out[j] = exp_approx(x[j] - shift);
}

// sum_j exp(x[j] - shift) without a row-sized buffer: exponentials go through a stack block.
template <class T>
T sum_exp_shifted(const T* x, std::size_t n, T shift) {
  constexpr std::size_t block = 256;
  T buf[block];
  lane_sum<T> s;
  for (std::size_t j = 0; j < n; j += block) {
    const std::size_t w = n - j < block ? n - j : block;
    exp_shifted(buf, x + j, w, shift);
    s.add(buf, w);
  }
  return s.total();
}

// log(sum_j exp(x[j])), stable: the row max is subtracted first.
template <class T>
T row_logsumexp(const T* x, std::size_t n) {
  const T m = row_max(x, n);
  return m + std::log(sum_exp_shifted(x, n, m));
}

}  // namespace typegrad::kernels::softmax_detail

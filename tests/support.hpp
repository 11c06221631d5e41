#pragma once
// Shared test helpers: seeded random tensors, casts between element types, a view's values as a
// vector, comparisons of results (largest absolute or relative difference, same bits), the
// message of an error, and multi-indices. Each generator draws from std::mt19937(seed) in element order, so a given
// (extents, seed, range) always yields the same tensor.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <typegrad/core/errors.hpp>
#include <typegrad/core/shape.hpp>
#include <typegrad/tensor.hpp>

namespace typegrad::test_support {

// Values uniform in [lo, hi): one draw per element.
template <std::size_t R>
tensor<double, R> random_uniform(const std::array<std::size_t, R>& extents, unsigned seed, double lo = -1,
                                 double hi = 1) {
  tensor<double, R> t(extents);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (auto& e : t) e = u(rng);
  return t;
}

// Values in +-[lo, hi] with a random sign: away from zero, so products, quotients and their
// gradients are well scaled (and ties are unlikely).
template <std::size_t R>
tensor<double, R> random_away_from_zero(const std::array<std::size_t, R>& extents, unsigned seed, double lo = 0.5,
                                        double hi = 1.5) {
  tensor<double, R> t(extents);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (auto& e : t) e = (rng() & 1) ? u(rng) : -u(rng);
  return t;
}

// n values of element type T, uniform in [lo, hi): one draw per element.
template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed, double lo = -1, double hi = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (auto& e : v) e = T(u(rng));
  return v;
}

// Element-wise conversion of a double tensor to element type T.
template <class T, std::size_t R>
tensor<T, R> cast(const tensor<double, R>& t) {
  tensor<T, R> out(t.extents());
  for (std::size_t i = 0; i < t.size(); ++i) out[i] = static_cast<T>(t[i]);
  return out;
}

// A view's elements, copied into a vector.
template <class T>
std::vector<T> values(view<const T> v) {
  return std::vector<T>(v.data, v.data + v.size());
}

// The largest |got - want| over want's elements; infinity if the sizes differ.
template <class T>
double max_error(const std::vector<T>& got, const std::vector<T>& want) {
  if (got.size() != want.size()) return HUGE_VAL;
  double e = 0;
  for (std::size_t i = 0; i < want.size(); ++i) e = std::max(e, std::abs(double(got[i]) - double(want[i])));
  return e;
}

// The largest |got - want| / (atol + |want|) over want's elements, the error in units of a mixed
// tolerance (relative where |want| is well above atol); infinity if the sizes differ.
template <class T>
double max_relative_error(const std::vector<T>& got, const std::vector<T>& want, double atol) {
  if (got.size() != want.size()) return HUGE_VAL;
  double e = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    e = std::max(e, std::abs(double(got[i]) - double(want[i])) / (atol + std::abs(double(want[i]))));
  return e;
}

// The message of the typegrad::error that call() throws, or "no error".
template <class F>
std::string error_message(F&& call) {
  try {
    call();
  } catch (const error& e) {
    return e.what();
  }
  return "no error";
}

// Whether a and b hold the same bits (so +0 and -0 differ, and NaN equals the same NaN). Empty
// vectors may hold no buffer, and memcmp must not be given a null pointer even for 0 bytes.
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// A multi-index, and conversions between it and the row-major flat index in a shape.
using multi_index = std::vector<std::size_t>;
inline multi_index unravel(std::size_t flat, const shape& s) {
  multi_index idx(s.rank());
  for (std::size_t d = s.rank(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return idx;
}
inline std::size_t ravel(const multi_index& idx, const shape& s) {
  std::size_t flat = 0;
  for (std::size_t d = 0; d < s.rank(); ++d) flat = flat * s[d] + idx[d];
  return flat;
}

}  // namespace typegrad::test_support

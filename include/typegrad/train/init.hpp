#pragma once
// Initialisers: how a parameter's values are drawn.
//
//   train::generator g(seed);
//   train::init::he_normal.fill(w.as_view(), g);   // or through a parameter_set (parameters.hpp)
//
// Fans, from the layout's conventions (DESIGN.md):
//   rank 2, a dense weight (in, out):                 fan_in = in,              fan_out = out
//   rank >= 3, a conv kernel (out, window..., in):    fan_in = in * prod(window), fan_out = out * prod(window)
//   rank 1 (a bias) and rank 0:                       fan_in = fan_out = the number of elements
//
//   he_normal       N(0, sqrt(2 / fan_in))            He et al. 2015, for relu layers
//   he_uniform      U(-b, b), b = sqrt(6 / fan_in)
//   glorot_normal   N(0, sqrt(2 / (fan_in + fan_out)))  Glorot & Bengio 2010, for tanh/linear layers
//   glorot_uniform  U(-b, b), b = sqrt(6 / (fan_in + fan_out))
//   normal(s)       N(0, s);  uniform(b) U(-b, b);  zeros;  constant(c)
//
// Draws: one per element in row-major order (two engine outputs for a normal value, one for a
// uniform; see train/random.hpp), so a seed reproduces the values on any platform. zeros and
// constant draw nothing.
#include <cstddef>

#include "typegrad/core/shape.hpp"
#include "typegrad/tensor.hpp"
#include "typegrad/train/random.hpp"

namespace typegrad::train {

struct fans {
  double in = 1, out = 1;
};
fans fans_of(const shape& s);

enum class init_kind { zeros, constant, normal, uniform, he_normal, he_uniform, glorot_normal, glorot_uniform };

struct initializer {
  init_kind kind = init_kind::zeros;
  double value = 0;  // constant's value, normal's stddev or uniform's bound

  // The stddev (normal kinds) or the bound (uniform kinds) this initializer uses for shape s.
  double scale_for(const shape& s) const;
  // Fills v with values drawn from g (in row-major order).
  template <Scalar T>
  void fill(view<T> v, generator& g) const;
};

namespace init {
inline constexpr initializer zeros{init_kind::zeros};
inline constexpr initializer he_normal{init_kind::he_normal};
inline constexpr initializer he_uniform{init_kind::he_uniform};
inline constexpr initializer glorot_normal{init_kind::glorot_normal};
inline constexpr initializer glorot_uniform{init_kind::glorot_uniform};
// The common aliases.
inline constexpr initializer kaiming_normal = he_normal;
inline constexpr initializer kaiming_uniform = he_uniform;
inline constexpr initializer xavier_normal = glorot_normal;
inline constexpr initializer xavier_uniform = glorot_uniform;
constexpr initializer constant(double c) { return {init_kind::constant, c}; }
constexpr initializer normal(double stddev) { return {init_kind::normal, stddev}; }
constexpr initializer uniform(double bound) { return {init_kind::uniform, bound}; }
}  // namespace init

extern template void initializer::fill<float>(view<float>, generator&) const;
extern template void initializer::fill<double>(view<double>, generator&) const;

}  // namespace typegrad::train

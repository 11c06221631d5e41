// Initialisers: fans from the layout conventions and the seeded draws (see train/init.hpp).
#include "typegrad/train/init.hpp"

#include <cmath>

namespace typegrad::train {

fans fans_of(const shape& s) {
  const double n = double(s.numel());
  if (s.rank() < 2) return {n, n};
  if (s.rank() == 2) return {double(s[0]), double(s[1])};  // dense (in, out)
  double window = 1;                                       // conv (out, window..., in)
  for (std::size_t d = 1; d + 1 < s.rank(); ++d) window *= double(s[d]);
  return {double(s[s.rank() - 1]) * window, double(s[0]) * window};
}

double initializer::scale_for(const shape& s) const {
  const fans f = fans_of(s);
  switch (kind) {
    case init_kind::he_normal: return std::sqrt(2.0 / f.in);
    case init_kind::he_uniform: return std::sqrt(6.0 / f.in);
    case init_kind::glorot_normal: return std::sqrt(2.0 / (f.in + f.out));
    case init_kind::glorot_uniform: return std::sqrt(6.0 / (f.in + f.out));
    case init_kind::normal:
    case init_kind::uniform: return value;
    case init_kind::zeros:
    case init_kind::constant: return 0;
  }
  return 0;
}

template <Scalar T>
void initializer::fill(view<T> v, generator& g) const {
  const std::size_t n = v.size();
  const double scale = scale_for(v.shape);
  switch (kind) {
    case init_kind::zeros:
    case init_kind::constant:
      for (std::size_t i = 0; i < n; ++i) v.data[i] = T(kind == init_kind::zeros ? 0.0 : value);
      return;
    case init_kind::normal:
    case init_kind::he_normal:
    case init_kind::glorot_normal:
      for (std::size_t i = 0; i < n; ++i) v.data[i] = T(scale * standard_normal(g));
      return;
    case init_kind::uniform:
    case init_kind::he_uniform:
    case init_kind::glorot_uniform:
      for (std::size_t i = 0; i < n; ++i) v.data[i] = T(scale * (2.0 * uniform01(g) - 1.0));
      return;
  }
}
template void initializer::fill<float>(view<float>, generator&) const;
template void initializer::fill<double>(view<double>, generator&) const;

}  // namespace typegrad::train

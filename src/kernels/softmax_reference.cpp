// The reference softmax family: the definitions position by position, with std::exp and std::log
// in long double after subtracting the maximum. No lanes, no tiles, no polynomial exp and no
// threads: independent of the vectorized implementations, which is what they are compared with
// (tests/test_softmax_implementations.cpp, tests/test_softmax.cpp, tests/test_loss.cpp). It comes
// last in the lists of softmax.cpp and loss.cpp, after entries that apply to everything, so a
// program never runs it unless asked to by name (softmax_with("reference", ...)).
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "softmax_reference.hpp"

namespace typegrad::kernels {
namespace {

// The maximum and the sum of exp(x - maximum) over n values `stride` apart.
struct shifted_sum {
  long double max, sum;
};
template <class T>
shifted_sum sum_exp(const T* x, std::size_t n, std::size_t stride) {
  long double m = x[0];
  for (std::size_t k = 1; k < n; ++k) m = std::max<long double>(m, x[k * stride]);
  long double sum = 0;
  for (std::size_t k = 0; k < n; ++k) sum += std::exp(static_cast<long double>(x[k * stride]) - m);
  return {m, sum};
}

}  // namespace

template <class T>
void reference_softmax(view<T> out, view<const T> in, std::size_t axis, bool log) {
  if (in.size() == 0) return;
  const shape& s = in.shape;
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < axis; ++d) outer *= s[d];
  for (std::size_t d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const std::size_t n = s[axis];
  for (std::size_t o = 0; o < outer; ++o)
    for (std::size_t i = 0; i < inner; ++i) {
      const std::size_t first = o * n * inner + i;  // position (o, 0, i); the axis has stride inner
      const shifted_sum e = sum_exp(in.data + first, n, inner);
      for (std::size_t k = 0; k < n; ++k) {
        const long double v = static_cast<long double>(in.data[first + k * inner]) - e.max;
        out.data[first + k * inner] = static_cast<T>(log ? v - std::log(e.sum) : std::exp(v) / e.sum);
      }
    }
}

template <class T>
void reference_softmax_cross_entropy(view<T> out, view<const T> logits, view<const T> labels) {
  const std::size_t classes = logits.shape[logits.shape.rank() - 1];
  for (std::size_t r = 0; r < labels.size(); ++r) {
    const T* row = logits.data + r * classes;
    const shifted_sum e = sum_exp(row, classes, 1);
    out.data[r] = static_cast<T>(e.max + std::log(e.sum) - row[static_cast<std::size_t>(labels.data[r])]);
  }
}

#define TYPEGRAD_INSTANTIATE(T)                                                             \
  template void reference_softmax<T>(view<T>, view<const T>, std::size_t, bool);         \
  template void reference_softmax_cross_entropy<T>(view<T>, view<const T>, view<const T>);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

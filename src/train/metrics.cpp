// Argmax accuracy (see include/typegrad/train/metrics.hpp). Rows are independent: each task
// counts its own rows and the per-chunk counts are integers, so the total is exact in any order.
#include "typegrad/train/metrics.hpp"

#include <atomic>
#include <cmath>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"

namespace typegrad::train {

template <Scalar T>
std::size_t correct_predictions(view<const T> logits, view<const T> labels) {
  const shape& z = logits.shape;
  bool fits = z.rank() >= 1 && labels.shape.rank() + 1 == z.rank();
  for (std::size_t d = 0; fits && d < labels.shape.rank(); ++d) fits = labels.shape[d] == z[d];
  if (!fits)
    throw shape_error(fmt::format("accuracy: labels {} do not fit logits {} (labels must be the logits' shape without "
                                  "the class axis)",
                                  labels.shape, z));
  const std::size_t classes = z[z.rank() - 1], rows = labels.size();
  if (classes == 0) return 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const T l = labels.data[r];
    if (!(l >= 0 && l < T(classes) && l == std::floor(l)))
      throw value_error(fmt::format("accuracy: label {} at index {} is not a class index in [0, {})", l, r, classes));
  }
  std::atomic<std::size_t> correct{0};
  parallel_chunks(rows, classes, [&](std::size_t lo, std::size_t hi) {
    std::size_t mine = 0;
    for (std::size_t r = lo; r < hi; ++r) {
      const T* row = logits.data + r * classes;
      std::size_t best = 0;
      for (std::size_t c = 1; c < classes; ++c)
        if (row[c] > row[best]) best = c;
      mine += best == std::size_t(labels.data[r]);
    }
    correct += mine;
  });
  return correct.load();
}
template std::size_t correct_predictions<float>(view<const float>, view<const float>);
template std::size_t correct_predictions<double>(view<const double>, view<const double>);

}  // namespace typegrad::train

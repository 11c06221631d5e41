// The reference pooling kernels: every output element on its own, straight from the definition
// (DESIGN.md): per ordered dim, output o aggregates the inputs o*s ... o*s+v-1 that lie inside the
// input; the argmax is the first maximum in window order. Sums in long double, no runs, no
// blocking, no vectors and no threads: independent of how the fast implementations walk the
// windows, which is what they are compared with (tests/test_pool_implementations.cpp,
// tests/test_pool.cpp, the program fuzzer). It comes last in pool.cpp's lists, after entries that
// apply to everything, so a program never runs it unless asked to by name
// (max_pool_with("reference", ...)).
#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "pool_reference.hpp"

namespace typegrad::kernels {
namespace {

using index_array = std::array<std::size_t, max_spatial_dims>;

// Advances the row-major multi-index i over [lo, hi) in its first dims entries; false once every
// index was visited.
bool next_index(index_array& i, const index_array& lo, const index_array& hi, std::size_t dims) {
  for (std::size_t d = dims; d-- > 0;) {
    if (++i[d] < hi[d]) return true;
    i[d] = lo[d];
  }
  return false;
}

// Calls f(out_flat, positions) for every element of `pooled` (the pooled shape of x), in row-major
// order of (n, o..., c); positions are the flat indices of its window's inputs, in window order.
template <class F>
void for_each_window(const shape& x, const shape& pooled, const pool_window& w, F&& f) {
  const std::size_t dims = w.dims, channels = x[x.rank() - 1];
  index_array out_extent{}, zero{}, o{}, lo{}, hi{}, i{};
  for (std::size_t d = 0; d < dims; ++d) out_extent[d] = pooled[d + 1];
  const auto xs = x.strides();
  std::vector<std::size_t> positions;
  std::size_t out_flat = 0;
  for (std::size_t n = 0; n < x[0]; ++n) {
    o = zero;
    do {
      for (std::size_t d = 0; d < dims; ++d) {
        lo[d] = o[d] * w.stride[d];
        hi[d] = std::min(lo[d] + w.size[d], x[d + 1]);
      }
      for (std::size_t c = 0; c < channels; ++c) {
        positions.clear();
        i = lo;
        do {
          std::size_t flat = n * xs[0] + c;
          for (std::size_t d = 0; d < dims; ++d) flat += i[d] * xs[d + 1];
          positions.push_back(flat);
        } while (next_index(i, lo, hi, dims));
        f(out_flat++, positions);
      }
    } while (next_index(o, zero, out_extent, dims));
  }
}

template <class T>
std::size_t first_argmax(const T* x, const std::vector<std::size_t>& positions) {
  std::size_t best = positions[0];
  for (auto p : positions)
    if (x[p] > x[best]) best = p;
  return best;
}

template <class T>
void store(view<T> out, const std::vector<long double>& sums) {
  for (std::size_t i = 0; i < sums.size(); ++i) out.data[i] = static_cast<T>(sums[i]);
}

}  // namespace

template <class T>
void reference_max_pool(view<T> out, view<const T> x, const pool_window& w) {
  for_each_window(x.shape, out.shape, w, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    out.data[o] = x.data[first_argmax(x.data, pos)];
  });
}

template <class T>
void reference_avg_pool(view<T> out, view<const T> x, const pool_window& w) {
  for_each_window(x.shape, out.shape, w, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    long double s = 0;
    for (auto p : pos) s += x.data[p];
    out.data[o] = static_cast<T>(s / static_cast<long double>(pos.size()));
  });
}

template <class T>
void reference_max_pool_gather(view<T> out, view<const T> h, view<const T> x, const pool_window& w) {
  for_each_window(x.shape, out.shape, w, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    out.data[o] = h.data[first_argmax(x.data, pos)];
  });
}

// Scatter form: g[o] added at the argmax of every window; then, with positive_only, times step(x)
// as the kernels define it (kept where x > 0, times 0 elsewhere).
template <class T>
void reference_max_pool_backward(view<T> dx, view<const T> g, view<const T> x, const pool_window& w,
                                 bool positive_only) {
  std::vector<long double> sums(dx.size(), 0);
  for_each_window(x.shape, g.shape, w, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    sums[first_argmax(x.data, pos)] += g.data[o];
  });
  store(dx, sums);
  if (positive_only)
    for (std::size_t i = 0; i < dx.size(); ++i) dx.data[i] = x.data[i] > T(0) ? dx.data[i] : dx.data[i] * T(0);
}

// Scatter form: g[o] / count spread over every window.
template <class T>
void reference_avg_pool_transpose(view<T> dx, view<const T> g, const pool_window& w) {
  std::vector<long double> sums(dx.size(), 0);
  for_each_window(dx.shape, g.shape, w, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    for (auto p : pos) sums[p] += static_cast<long double>(g.data[o]) / static_cast<long double>(pos.size());
  });
  store(dx, sums);
}

#define TYPEGRAD_INSTANTIATE(T)                                                                               \
  template void reference_max_pool<T>(view<T>, view<const T>, const pool_window&);                            \
  template void reference_avg_pool<T>(view<T>, view<const T>, const pool_window&);                            \
  template void reference_max_pool_gather<T>(view<T>, view<const T>, view<const T>, const pool_window&);      \
  template void reference_max_pool_backward<T>(view<T>, view<const T>, view<const T>, const pool_window&, bool); \
  template void reference_avg_pool_transpose<T>(view<T>, view<const T>, const pool_window&);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

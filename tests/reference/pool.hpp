#pragma once
// Naive reference pooling for tests: every output element on its own, straight from the
// definition (DESIGN.md): per ordered dim, output o aggregates the inputs o*s ... o*s+v-1 that
// lie inside the input; argmax = the first maximum in window order. Sums in long double.
// Independent of the kernels' run decomposition, blocking and vectorization.
#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include <typegrad/core/shape.hpp>

namespace typegrad::reference {

// Window and stride per ordered dim (one entry per ordered dim).
struct pool_config {
  std::vector<std::size_t> window, stride;
};

namespace detail {
// Advances a row-major multi-index i over [lo, hi); false once every index was visited.
inline bool next_index(std::vector<std::size_t>& i, const std::vector<std::size_t>& lo,
                       const std::vector<std::size_t>& hi) {
  for (std::size_t d = i.size(); d-- > 0;) {
    if (++i[d] < hi[d]) return true;
    i[d] = lo[d];
  }
  return false;
}

// Calls f(n, c, out_flat, positions) for every output element, in row-major order of
// (n, o..., c); positions are the flat indices of its window's inputs, in window order.
template <class F>
void for_each_window(const shape& x, const pool_config& cfg, F&& f) {
  const std::size_t dims = x.rank() - 2, C = x[x.rank() - 1];
  std::vector<std::size_t> out_ext(dims), zero(dims, 0);
  for (std::size_t d = 0; d < dims; ++d) out_ext[d] = (x[d + 1] + cfg.stride[d] - 1) / cfg.stride[d];
  const auto xs = x.strides();
  std::size_t out_flat = 0;
  for (std::size_t n = 0; n < x[0]; ++n) {
    std::vector<std::size_t> o(dims, 0);
    do {
      std::vector<std::size_t> lo(dims), hi(dims);
      for (std::size_t d = 0; d < dims; ++d) {
        lo[d] = o[d] * cfg.stride[d];
        hi[d] = std::min(lo[d] + cfg.window[d], x[d + 1]);
      }
      for (std::size_t c = 0; c < C; ++c) {
        std::vector<std::size_t> positions;
        std::vector<std::size_t> i = lo;
        do {
          std::size_t flat = n * xs[0] + c;
          for (std::size_t d = 0; d < dims; ++d) flat += i[d] * xs[d + 1];
          positions.push_back(flat);
        } while (next_index(i, lo, hi));
        f(out_flat++, positions);
      }
    } while (next_index(o, zero, out_ext));
  }
}

template <class T>
std::size_t first_argmax(const T* x, const std::vector<std::size_t>& positions) {
  std::size_t best = positions[0];
  for (auto p : positions)
    if (x[p] > x[best]) best = p;
  return best;
}
}  // namespace detail

// (N, ceil(n_d / s_d)..., C).
inline shape pooled_shape(const shape& x, const pool_config& cfg) {
  shape out = x;
  for (std::size_t d = 0; d + 2 < x.rank(); ++d) out[d + 1] = (x[d + 1] + cfg.stride[d] - 1) / cfg.stride[d];
  return out;
}

template <class T>
std::vector<T> max_pool(view<const T> x, const pool_config& cfg) {
  std::vector<T> out(pooled_shape(x.shape, cfg).numel());
  detail::for_each_window(x.shape, cfg, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    out[o] = x.data[detail::first_argmax(x.data, pos)];
  });
  return out;
}

template <class T>
std::vector<T> avg_pool(view<const T> x, const pool_config& cfg) {
  std::vector<T> out(pooled_shape(x.shape, cfg).numel());
  detail::for_each_window(x.shape, cfg, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    long double s = 0;
    for (auto p : pos) s += x.data[p];
    out[o] = static_cast<T>(s / static_cast<long double>(pos.size()));
  });
  return out;
}

// h at each window's argmax of x (pooled shape).
template <class T>
std::vector<T> max_pool_gather(view<const T> h, view<const T> x, const pool_config& cfg) {
  std::vector<T> out(pooled_shape(x.shape, cfg).numel());
  detail::for_each_window(x.shape, cfg, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    out[o] = h.data[detail::first_argmax(x.data, pos)];
  });
  return out;
}

// Scatter form: g[o] added at the argmax of every window (x's shape).
template <class T>
std::vector<T> max_pool_backward(const std::vector<T>& g, view<const T> x, const pool_config& cfg) {
  std::vector<long double> dx(x.size(), 0);
  detail::for_each_window(x.shape, cfg, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    dx[detail::first_argmax(x.data, pos)] += g[o];
  });
  return std::vector<T>(dx.begin(), dx.end());
}

// Scatter form: g[o] / count spread over every window (x's shape).
template <class T>
std::vector<T> avg_pool_transpose(const std::vector<T>& g, const shape& x, const pool_config& cfg) {
  std::vector<long double> dx(x.numel(), 0);
  detail::for_each_window(x, cfg, [&](std::size_t o, const std::vector<std::size_t>& pos) {
    for (auto p : pos) dx[p] += static_cast<long double>(g[o]) / static_cast<long double>(pos.size());
  });
  return std::vector<T>(dx.begin(), dx.end());
}

}  // namespace typegrad::reference

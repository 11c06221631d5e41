// Internal to src/kernels: the memory-bound passes over activations (gemm_isa.hpp's isa_passes),
// written once over the vector width and compiled per instruction set like the GEMM kernels
// (rules: isa_vector.hpp). Built once for the portable target they ran at its 16-byte vectors:
// the default build's epoch of the main example took 1.13-1.14x the native build's (Xeon model
// 167), most of the gap in these loops.
//
// Each loop runs a body written over V, a vector of T or T itself: whole vectors of channels,
// then the remaining channels one by one with the same arithmetic.
#include <cstddef>

#include "gemm_isa.hpp"
#include "isa_vector.hpp"

namespace typegrad::kernels::TYPEGRAD_GEMM_ISA {

// body.template operator()<V>(c) for the channels [0, n): vectors of T at c = 0, lanes, ..., then
// single elements.
template <class T, class Body>
inline void over_channels(size_t n, Body&& body) {
  size_t c = 0;
  for (; c + lanes<T> <= n; c += lanes<T>) body.template operator()<vec<T>>(c);
  for (; c < n; ++c) body.template operator()<T>(c);
}

template <class V, class T>
inline V load_as(const T* p) {
  if constexpr (sizeof(V) == sizeof(T)) return *p;
  else return load(p);
}
template <class T, class V>
inline void store_as(T* p, V v) {
  if constexpr (sizeof(V) == sizeof(T)) *p = v;
  else store(p, v);
}

// ---- rows ------------------------------------------------------------------------------------------
struct add_op {
  template <class V>
  V operator()(V x, V y) const {
    return x + y;
  }
};
struct max_op {
  template <class V>
  V operator()(V x, V y) const {
    return y > x ? y : x;
  }
};

// o[0, Vectors lanes) over the rows, the block held in registers across them.
template <class T, size_t Vectors, class Combine>
inline void combine_rows_block(T* o, const T* src, std::ptrdiff_t stride, size_t count, Combine combine) {
  vec<T> acc[Vectors];
  for (size_t v = 0; v < Vectors; ++v) acc[v] = load(o + v * lanes<T>);
  for (size_t k = 0; k < count; ++k, src += stride)
    for (size_t v = 0; v < Vectors; ++v) acc[v] = combine(acc[v], load(src + v * lanes<T>));
  for (size_t v = 0; v < Vectors; ++v) store(o + v * lanes<T>, acc[v]);
}

// Blocks of four, two and one vectors, then single elements.
template <class T, class Combine>
void combine_rows(T* o, const T* src, std::ptrdiff_t stride, size_t count, size_t inner) {
  constexpr size_t L = lanes<T>;
  const Combine combine;
  size_t j = 0;
  for (; j + 4 * L <= inner; j += 4 * L) combine_rows_block<T, 4>(o + j, src + j, stride, count, combine);
  if (j + 2 * L <= inner) {
    combine_rows_block<T, 2>(o + j, src + j, stride, count, combine);
    j += 2 * L;
  }
  if (j + L <= inner) {
    combine_rows_block<T, 1>(o + j, src + j, stride, count, combine);
    j += L;
  }
  for (size_t k = 0; k < count; ++k)
    for (size_t e = j; e < inner; ++e) o[e] = combine(o[e], src[std::ptrdiff_t(k) * stride + std::ptrdiff_t(e)]);
}

// ---- 2x2 pooling, stride 2 -----------------------------------------------------------------------
// A window's positions in row-major order: (x, x + c, x + row, x + row + c), folded in that order
// as pool.cpp's 2-d kernels do: the largest from -inf, or the sum from 0 times 1 / 4.
template <class T, bool Average>
void pool_2x2(const T* x, size_t row, size_t cols, size_t c_n, T* out) {
  for (size_t j = 0; j < cols; ++j, x += 2 * c_n, out += c_n)
    over_channels<T>(c_n, [&]<class V>(size_t c) {
      const size_t at[4] = {c, c_n + c, row + c, row + c_n + c};
      V acc = Average ? V{} : V{} - __builtin_huge_val();
      for (int k = 0; k < 4; ++k) {
        const V v = load_as<V>(x + at[k]);
        if constexpr (Average) acc = acc + v;
        else acc = v > acc ? v : acc;
      }
      store_as(out + c, Average ? acc * T(0.25) : acc);
    });
}

// The gradient to the window's first maximum (the argmax kept as a T per lane, so that compare
// and select stay in one element type).
template <class T>
void max_pool_backward_2x2(const T* x, size_t row, const T* g, size_t cols, size_t c_n, bool positive_only,
                           T* dx) {
  for (size_t j = 0; j < cols; ++j, x += 2 * c_n, dx += 2 * c_n, g += c_n)
    over_channels<T>(c_n, [&]<class V>(size_t c) {
      const size_t at[4] = {c, c_n + c, row + c, row + c_n + c};
      V p[4];
      for (int k = 0; k < 4; ++k) p[k] = load_as<V>(x + at[k]);
      V best = V{} - __builtin_huge_val(), k_best = V{};
      for (int k = 0; k < 4; ++k) {
        const auto more = p[k] > best;
        best = more ? p[k] : best;
        k_best = more ? V{} + T(k) : k_best;
      }
      const V gv = load_as<V>(g + c);
      for (int k = 0; k < 4; ++k) {
        const V v = k_best == V{} + T(k) ? gv : V{};
        store_as(dx + at[k], positive_only ? (p[k] > V{} ? v : v * T(0)) : v);
      }
    });
}

// ---- Winograd F(2x2, 3x3) transforms (conv.cpp) --------------------------------------------------
struct tile_origin {
  size_t n, y, x;  // batch item, first output row and column
};
inline tile_origin origin_of(const winograd_block& b, size_t i) {
  const size_t t = b.first + i;
  return {t / (b.ty * b.tx), 2 * (t / b.tx % b.ty), 2 * (t % b.tx)};
}

// B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
template <class T>
void winograd_inputs(const winograd_block& b, const T* x, size_t h, size_t w, size_t c_n, size_t pad_top,
                     size_t pad_left, const T* zeros, T* v) {
  const size_t step = b.block * c_n;  // between a tile's 16 elements
  for (size_t i = 0; i < b.count; ++i) {
    const tile_origin o = origin_of(b, i);
    const T* at[4][4];  // the patch's positions (their channel runs)
    for (size_t r = 0; r < 4; ++r) {
      const size_t yy = o.y + r - pad_top;  // (above the input: wraps around, past h)
      for (size_t s = 0; s < 4; ++s) {
        const size_t xx = o.x + s - pad_left;
        at[r][s] = yy < h && xx < w ? x + ((o.n * h + yy) * w + xx) * c_n : zeros;
      }
    }
    T* vi = v + i * c_n;
    over_channels<T>(c_n, [&]<class V>(size_t c) {
      V q[4][4];
      for (size_t s = 0; s < 4; ++s) {  // B^T d
        const V d0 = load_as<V>(at[0][s] + c), d1 = load_as<V>(at[1][s] + c), d2 = load_as<V>(at[2][s] + c),
                d3 = load_as<V>(at[3][s] + c);
        q[0][s] = d0 - d2;
        q[1][s] = d1 + d2;
        q[2][s] = d2 - d1;
        q[3][s] = d1 - d3;
      }
      for (size_t r = 0; r < 4; ++r) {  // (B^T d) B
        store_as(vi + (r * 4 + 0) * step + c, q[r][0] - q[r][2]);
        store_as(vi + (r * 4 + 1) * step + c, q[r][1] + q[r][2]);
        store_as(vi + (r * 4 + 2) * step + c, q[r][2] - q[r][1]);
        store_as(vi + (r * 4 + 3) * step + c, q[r][1] - q[r][3]);
      }
    });
  }
}

// A^T M A, A^T = [1 1 1 0; 0 1 -1 -1].
template <class T>
void winograd_outputs(const winograd_block& b, const T* m, size_t k_n, size_t oh, size_t ow, const T* bias,
                      size_t bias_size, bool relu, T* out) {
  const size_t step = b.block * k_n;
  for (size_t i = 0; i < b.count; ++i) {
    const tile_origin t = origin_of(b, i);
    const size_t rows = oh - t.y < 2 ? oh - t.y : 2, cols = ow - t.x < 2 ? ow - t.x : 2;
    T* o = out + ((t.n * oh + t.y) * ow + t.x) * k_n;
    const T* mi = m + i * k_n;
    over_channels<T>(k_n, [&]<class V>(size_t k) {
      V a[2][4];
      for (size_t s = 0; s < 4; ++s) {  // A^T M
        const V m0 = load_as<V>(mi + s * step + k), m1 = load_as<V>(mi + (4 + s) * step + k),
                m2 = load_as<V>(mi + (8 + s) * step + k), m3 = load_as<V>(mi + (12 + s) * step + k);
        a[0][s] = m0 + m1 + m2;
        a[1][s] = m1 - m2 - m3;
      }
      const V bv = bias == nullptr ? V{} : bias_size == 1 ? V{} + bias[0] : load_as<V>(bias + k);
      for (size_t r = 0; r < rows; ++r) {
        const V y[2] = {a[r][0] + a[r][1] + a[r][2], a[r][1] - a[r][2] - a[r][3]};  // (A^T M) A
        for (size_t s = 0; s < cols; ++s) {
          V z = bias == nullptr ? y[s] : y[s] + bv;
          if (relu) z = z < V{} ? V{} : z;
          store_as(o + (r * ow + s) * k_n + k, z);
        }
      }
    });
  }
}

// A dY A^T, A = [1 0; 1 1; 1 -1; 0 -1].
template <class T>
void winograd_output_grads(const winograd_block& b, const T* dy, size_t k_n, size_t oh, size_t ow, T* dm) {
  const size_t step = b.block * k_n;
  for (size_t i = 0; i < b.count; ++i) {
    const tile_origin t = origin_of(b, i);
    const size_t rows = oh - t.y < 2 ? oh - t.y : 2, cols = ow - t.x < 2 ? ow - t.x : 2;
    const T* gy = dy + ((t.n * oh + t.y) * ow + t.x) * k_n;
    T* di = dm + i * k_n;
    over_channels<T>(k_n, [&]<class V>(size_t k) {
      V y[2][2] = {};
      for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < cols; ++c) y[r][c] = load_as<V>(gy + (r * ow + c) * k_n + k);
      const V a[4][2] = {{y[0][0], y[0][1]},  // A dY
                         {y[0][0] + y[1][0], y[0][1] + y[1][1]},
                         {y[0][0] - y[1][0], y[0][1] - y[1][1]},
                         {-y[1][0], -y[1][1]}};
      for (size_t r = 0; r < 4; ++r) {  // (A dY) A^T
        store_as(di + (r * 4 + 0) * step + k, a[r][0]);
        store_as(di + (r * 4 + 1) * step + k, a[r][0] + a[r][1]);
        store_as(di + (r * 4 + 2) * step + k, a[r][0] - a[r][1]);
        store_as(di + (r * 4 + 3) * step + k, -a[r][1]);
      }
    });
  }
}

template <class T>
constexpr isa_passes<T> make_passes() {
  return {&combine_rows<T, add_op>, &combine_rows<T, max_op>, &pool_2x2<T, false>, &pool_2x2<T, true>, &max_pool_backward_2x2<T>,
          &winograd_inputs<T>, &winograd_outputs<T>, &winograd_output_grads<T>};
}

}  // namespace typegrad::kernels::TYPEGRAD_GEMM_ISA

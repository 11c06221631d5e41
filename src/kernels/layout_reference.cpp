// The reference layout kernels: every element on its own, through its full multi-index, straight
// from the definitions of kernels/layout.hpp. No axis merging, no runs, no tiles and no threads:
// independent of the fast implementations, which is what they are compared with
// (tests/test_layout_implementations.cpp, tests/test_layout_kernels.cpp, the program fuzzer). It
// comes last in layout.cpp's lists, after entries that apply to everything, so a program never
// runs it unless asked to by name (slice_with("reference", ...)).
#include <algorithm>
#include <cstddef>
#include <span>

#include "layout_reference.hpp"

namespace typegrad::kernels {
namespace {

// Calls f(i) for every multi-index i of s, in row-major order (none if an extent is 0).
template <class F>
void for_each_index(const shape& s, F&& f) {
  if (s.numel() == 0) return;
  axis_values i{};
  for (;;) {
    f(i);
    std::size_t d = s.rank();
    for (; d > 0; --d) {  // the last axis first, carrying into the earlier ones
      if (++i[d - 1] < s[d - 1]) break;
      i[d - 1] = 0;
    }
    if (d == 0) return;  // every index visited
  }
}

// The row-major flat index of multi-index i in s.
std::size_t flat_index(const axis_values& i, const shape& s) {
  std::size_t flat = 0;
  for (std::size_t d = 0; d < s.rank(); ++d) flat = flat * s[d] + i[d];
  return flat;
}

// The index begin + i * step of the strided box's element i, in the whole tensor of shape big.
std::size_t box_index(const axis_values& i, const axis_values& begin, const axis_values& step, const shape& big) {
  axis_values j{};
  for (std::size_t d = 0; d < big.rank(); ++d) j[d] = begin[d] + i[d] * step[d];
  return flat_index(j, big);
}

}  // namespace

template <class T>
void reference_slice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step) {
  for_each_index(out.shape, [&](const axis_values& i) {
    out.data[flat_index(i, out.shape)] = in.data[box_index(i, begin, step, in.shape)];
  });
}

template <class T>
void reference_unslice(view<T> out, view<const T> in, const axis_values& begin, const axis_values& step) {
  std::fill_n(out.data, out.size(), T(0));
  for_each_index(in.shape, [&](const axis_values& i) {
    out.data[box_index(i, begin, step, out.shape)] = in.data[flat_index(i, in.shape)];
  });
}

template <class T>
void reference_concat(view<T> out, std::span<const view<const T>> in, std::size_t axis) {
  for_each_index(out.shape, [&](const axis_values& i) {
    axis_values j = i;  // becomes the index in input k
    std::size_t k = 0;
    while (j[axis] >= in[k].shape[axis]) j[axis] -= in[k++].shape[axis];
    out.data[flat_index(i, out.shape)] = in[k].data[flat_index(j, in[k].shape)];
  });
}

template <class T>
void reference_permute(view<T> out, view<const T> in, const axis_values& perm) {
  for_each_index(out.shape, [&](const axis_values& i) {
    axis_values j{};
    for (std::size_t k = 0; k < out.shape.rank(); ++k) j[perm[k]] = i[k];
    out.data[flat_index(i, out.shape)] = in.data[flat_index(j, in.shape)];
  });
}

#define TYPEGRAD_INSTANTIATE(T)                                                                         \
  template void reference_slice<T>(view<T>, view<const T>, const axis_values&, const axis_values&);   \
  template void reference_unslice<T>(view<T>, view<const T>, const axis_values&, const axis_values&); \
  template void reference_concat<T>(view<T>, std::span<const view<const T>>, std::size_t);            \
  template void reference_permute<T>(view<T>, view<const T>, const axis_values&);
TYPEGRAD_INSTANTIATE(float)
TYPEGRAD_INSTANTIATE(double)
#undef TYPEGRAD_INSTANTIATE

}  // namespace typegrad::kernels

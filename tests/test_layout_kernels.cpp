#define BOOST_TEST_MODULE layout_kernels
#include <boost/test/unit_test.hpp>

// The layout kernels (slice, unslice, concat, permute) against the library's naive reference
// implementation on random shapes: ranks 1-5, extent-1 axes, empty ranges, steps, long rows that
// take the parallel paths, and transposes whose extents leave tile remainders. Exact equality: the
// kernels only move data. Every implementation by name: test_layout_implementations.cpp.
#include <typegrad/kernels/layout.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

using namespace typegrad;

namespace {

template <class T>
std::vector<T> iota_values(std::size_t n) {
  std::vector<T> v(n);
  std::iota(v.begin(), v.end(), T(1));  // distinct values: a misplaced element cannot go unnoticed
  return v;
}

shape random_shape(std::mt19937& rng, std::size_t rank, std::size_t max_extent) {
  shape s;
  for (std::size_t d = 0; d < rank; ++d) s.push_back(1 + rng() % max_extent);
  return s;
}

template <class T>
void check_slice_and_unslice(const shape& xs, const kernels::axis_values& begin, const kernels::axis_values& step,
                             const shape& out) {
  const auto x = iota_values<T>(xs.numel());
  const view<const T> xv{x.data(), xs};
  std::vector<T> y(out.numel(), T(-7)), want_y(out.numel());
  kernels::slice<T>(view<T>{y.data(), out}, xv, begin, step);
  kernels::slice_with<T>("reference", view<T>{want_y.data(), out}, xv, begin, step);
  BOOST_TEST(y == want_y, "slice of " << fmt::format("{}", xs) << " to " << fmt::format("{}", out));
  std::vector<T> z(xs.numel(), T(-7)), want_z(xs.numel());
  kernels::unslice<T>(view<T>{z.data(), xs}, view<const T>{y.data(), out}, begin, step);
  kernels::unslice_with<T>("reference", view<T>{want_z.data(), xs}, view<const T>{y.data(), out}, begin, step);
  BOOST_TEST(z == want_z, "unslice into " << fmt::format("{}", xs) << " from " << fmt::format("{}", out));
}

template <class T>
void random_slices(unsigned seed) {
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t rank = 1 + rng() % 5;
    const shape xs = random_shape(rng, rank, trial % 3 == 0 && rank <= 3 ? 40 : 7);  // small enough for the reference
    kernels::axis_values begin{}, step{};
    shape out = xs;
    for (std::size_t d = 0; d < rank; ++d) {
      const std::size_t n = xs[d];
      if (rng() % 3 == 0) {  // the whole axis: the kernels merge such axes
        begin[d] = 0;
        step[d] = 1;
        continue;
      }
      const std::size_t b = rng() % (n + 1), e = b + rng() % (n - b + 1);
      step[d] = 1 + rng() % 3;
      begin[d] = b;
      out[d] = (e - b + step[d] - 1) / step[d];
    }
    check_slice_and_unslice<T>(xs, begin, step, out);
  }
  // Long rows on the parallel path: a channel crop and a strided spatial slice of an image batch.
  check_slice_and_unslice<T>(shape{8, 64, 64, 12}, {0, 0, 0, 4}, {1, 1, 1, 1}, shape{8, 64, 64, 6});
  check_slice_and_unslice<T>(shape{8, 64, 64, 12}, {0, 1, 3, 0}, {1, 2, 3, 1}, shape{8, 32, 21, 12});
  check_slice_and_unslice<T>(shape{4, 100, 90}, {1, 2, 3}, {1, 1, 1}, shape{3, 97, 85});
  // Runs long enough to be split into pieces: part of the batch (one run), long rows, 1-d.
  check_slice_and_unslice<T>(shape{10, 50, 200}, {2, 0, 0}, {1, 1, 1}, shape{7, 50, 200});
  check_slice_and_unslice<T>(shape{3, 3, 90001}, {1, 0, 5}, {1, 2, 1}, shape{2, 2, 80000});
  check_slice_and_unslice<T>(shape{200000}, {17}, {1}, shape{150001});
}

template <class T>
void check_concat(const std::vector<shape>& shapes, std::size_t axis) {
  std::vector<std::vector<T>> data;
  std::vector<view<const T>> views;
  T next = 1;
  for (const auto& s : shapes) {
    data.emplace_back(s.numel());
    for (auto& e : data.back()) e = next++;
  }
  for (std::size_t k = 0; k < shapes.size(); ++k) views.push_back(view<const T>{data[k].data(), shapes[k]});
  shape out = shapes[0];
  out[axis] = 0;
  for (const auto& s : shapes) out[axis] += s[axis];
  std::vector<T> y(out.numel(), T(-7)), want(out.numel());
  kernels::concat<T>(view<T>{y.data(), out}, views, axis);
  kernels::concat_with<T>("reference", view<T>{want.data(), out}, views, axis);
  BOOST_TEST(y == want, "concat to " << fmt::format("{}", out) << " along " << axis);
}

template <class T>
void random_concats(unsigned seed) {
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t rank = 1 + rng() % 4, axis = rng() % rank, parts = 2 + rng() % 3;
    const shape base = random_shape(rng, rank, 6);
    std::vector<shape> shapes;
    for (std::size_t k = 0; k < parts; ++k) {
      shape s = base;
      s[axis] = rng() % 5;  // 0 included: an empty part
      shapes.push_back(s);
    }
    check_concat<T>(shapes, axis);
  }
  // DenseNet-like channel concat (many short rows), and few long rows (concat along the batch).
  check_concat<T>({shape{8, 28, 28, 32}, shape{8, 28, 28, 12}, shape{8, 28, 28, 1}}, 3);
  check_concat<T>({shape{3, 200, 100}, shape{2, 200, 100}}, 0);
  check_concat<T>({shape{2, 30, 2000}, shape{2, 5, 2000}}, 1);
}

template <class T>
void check_permute(const shape& xs, const kernels::axis_values& perm) {
  const auto x = iota_values<T>(xs.numel());
  shape out = xs;
  for (std::size_t k = 0; k < xs.rank(); ++k) out[k] = xs[perm[k]];
  std::vector<T> y(out.numel(), T(-7)), want(out.numel());
  kernels::permute<T>(view<T>{y.data(), out}, view<const T>{x.data(), xs}, perm);
  kernels::permute_with<T>("reference", view<T>{want.data(), out}, view<const T>{x.data(), xs}, perm);
  BOOST_TEST(y == want, "permute of " << fmt::format("{}", xs));
}

template <class T>
void random_permutes(unsigned seed) {
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t rank = 1 + rng() % 5;
    const shape xs = random_shape(rng, rank, trial % 4 == 0 && rank <= 3 ? 70 : 6);
    kernels::axis_values perm{};
    std::iota(perm.begin(), perm.begin() + rank, std::size_t{0});
    std::shuffle(perm.begin(), perm.begin() + rank, rng);
    check_permute<T>(xs, perm);
  }
  // Tile remainders and the parallel paths: NHWC <-> NCHW, a batched matrix transpose, the
  // last axis kept.
  check_permute<T>(shape{4, 33, 65, 17}, {0, 3, 1, 2});
  check_permute<T>(shape{4, 17, 33, 65}, {0, 2, 3, 1});
  check_permute<T>(shape{3, 129, 70}, {0, 2, 1});
  check_permute<T>(shape{1, 1000, 1, 37}, {3, 2, 1, 0});
  check_permute<T>(shape{16, 40, 30, 8}, {2, 0, 1, 3});
  check_permute<T>(shape{2, 40, 40, 64}, {0, 3, 1, 2});  // full tiles, power-of-two strides
  check_permute<T>(shape{128, 256}, {1, 0});
  check_permute<T>(shape{1, 150, 230, 3}, {0, 3, 1, 2});  // few channels: split along j
}

}  // namespace

BOOST_AUTO_TEST_CASE(slice_and_unslice_match_reference) {
  random_slices<float>(1);
  random_slices<double>(2);
}
BOOST_AUTO_TEST_CASE(concat_matches_reference) {
  random_concats<float>(3);
  random_concats<double>(4);
}
BOOST_AUTO_TEST_CASE(permute_matches_reference) {
  random_permutes<float>(5);
  random_permutes<double>(6);
}

#define BOOST_TEST_MODULE softmax
#include <boost/test/unit_test.hpp>

#include <typegrad/kernels/softmax.hpp>
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "support.hpp"

using namespace typegrad;
namespace tt = boost::test_tools;

namespace {
constexpr var<"x", 2> x;
constexpr var<"z", 3> z;
constexpr var<"r", 2> r;
constexpr var<"r3", 3> r3;
constexpr var<"v", 2> v;

using test_support::cast;
using test_support::max_relative_error;
using test_support::random_uniform;
using test_support::values;

// The library's reference implementation (softmax.hpp's "reference") of softmax or log_softmax.
template <class T>
std::vector<T> reference_softmax(view<const T> x, std::size_t axis, bool log) {
  std::vector<T> out(x.size());
  kernels::softmax_with<T>("reference", {out.data(), x.shape}, x, axis, log);
  return out;
}
}  // namespace

BOOST_AUTO_TEST_CASE(softmax_prints) {
  BOOST_TEST(to_string(softmax(x)) == "softmax[axis=1](x)");
  BOOST_TEST(to_string(log_softmax(z, axes<0>)) == "log_softmax[axis=0](z)");
}

BOOST_AUTO_TEST_CASE(forward_hand_values) {
  auto s = softmax(x);
  auto ls = log_softmax(x);
  auto prog = compile<double>(s, ls);
  // The second row is the first + 1000: subtracting the max keeps it finite and equal.
  tensor<double, 2> xv({2, 3}, {1, 2, 3, 1001, 1002, 1003});
  prog.bind(x, xv).run();
  const std::vector<double> p{0.09003057317038046, 0.24472847105479764, 0.6652409557748218};
  const std::vector<double> lp{-2.4076059644443806, -1.4076059644443804, -0.4076059644443804};
  auto sv = values(prog.value(s));
  auto lsv = values(prog.value(ls));
  for (std::size_t i = 0; i < 6; ++i) {
    BOOST_TEST(sv[i] == p[i % 3], tt::tolerance(1e-14));
    BOOST_TEST(lsv[i] == lp[i % 3], tt::tolerance(1e-14));
  }

  // Along axis 0 (columns), in float; exp(-1000) underflows to 0 without spoiling log_softmax.
  auto s0 = softmax(x, axes<0>);
  auto ls0 = log_softmax(x, axes<0>);
  auto progf = compile<float>(s0, ls0);
  tensor<float, 2> cols({3, 2}, {1, -1, 2, 0, 3, 4});
  progf.bind(x, cols).run();
  const std::vector<float> p0{0.09003057f, 0.006573263f, 0.24472847f, 0.017867982f, 0.66524096f, 0.97555875f};
  const std::vector<float> lp0{-2.4076060f, -5.0247449f, -1.4076060f, -4.0247449f, -0.40760596f, -0.024744890f};
  BOOST_TEST(values(progf.value(s0)) == p0, tt::tolerance(2e-6f) << tt::per_element());
  BOOST_TEST(values(progf.value(ls0)) == lp0, tt::tolerance(2e-6f) << tt::per_element());

  tensor<float, 2> wide({1, 2}, {-1000, 0});
  auto prog_ls = compile<float>(ls);
  prog_ls.bind(x, wide).run();
  BOOST_TEST(values(prog_ls.value(ls)) == (std::vector<float>{-1000, 0}), tt::per_element());
}

// The vectorized kernels against the naive long-double reference, over the contiguous (last axis)
// and strided (tiled) paths, with lengths that leave lane and tile remainders. Inputs within
// +-3: the rounding of x - max (relative eps * |x - max|) stays below the tolerance of 16 eps,
// relative for softmax and relative to 1 + |y| for log_softmax.
template <class T>
void check_against_reference() {
  const double eps = std::numeric_limits<T>::epsilon();
  for (auto extents : {std::array<std::size_t, 3>{1, 1, 1}, std::array<std::size_t, 3>{2, 5, 37},
                       std::array<std::size_t, 3>{3, 70, 130}, std::array<std::size_t, 3>{4, 300, 17},
                       std::array<std::size_t, 3>{64, 40, 257}}) {
    const auto xv = cast<T>(random_uniform<3>(extents, 7, -3.0, 3.0));
    for (std::size_t axis = 0; axis < 3; ++axis)
      for (bool log : {false, true}) {
        std::vector<T> out(xv.size());
        kernels::softmax<T>(view<T>{out.data(), xv.shape_of()}, xv.as_view(), axis, log);
        auto ref = reference_softmax<T>(xv.as_view(), axis, log);
        BOOST_TEST(max_relative_error(out, ref, log ? 1.0 : 1e-300) <= 16 * eps,
                   "shape " << fmt::format("{}", xv.shape_of()) << " axis " << axis << " log " << log);
      }
  }
}
BOOST_AUTO_TEST_CASE(kernel_matches_reference_float) { check_against_reference<float>(); }
BOOST_AUTO_TEST_CASE(kernel_matches_reference_double) { check_against_reference<double>(); }

// The result does not depend on the number of threads (each row or tile is one task's).
BOOST_AUTO_TEST_CASE(deterministic_across_thread_counts) {
  auto s = softmax(z, axes<1>);
  auto ls = log_softmax(z);
  auto prog = compile<float>(s, ls);
  auto zv = cast<float>(random_uniform<3>({16, 300, 70}, 3, -10.0, 10.0));
  prog.bind(z, zv);
  prog.set_threads(1).run();
  auto s1 = values(prog.value(s)), l1 = values(prog.value(ls));
  prog.set_threads(0).run();
  BOOST_TEST((values(prog.value(s)) == s1));
  BOOST_TEST((values(prog.value(ls)) == l1));
}

template <class T>
void check_softmax_gradients() {
  auto xv = random_uniform<2>({3, 5}, 1, -1.5, 1.5);
  auto rv = random_uniform<2>({3, 5}, 2, -1.5, 1.5);
  auto zv = random_uniform<3>({2, 3, 4}, 3, -1.5, 1.5);
  auto rv3 = random_uniform<3>({2, 3, 4}, 4, -1.5, 1.5);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(softmax(x) * r), wrt(x), given(x, xv), given(r, rv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(log_softmax(x) * r), wrt(x), given(x, xv), given(r, rv))));
  BOOST_TEST(
      testing::gradients_ok(check_gradients<T>(sum(softmax(x, axes<0>) * r), wrt(x), given(x, xv), given(r, rv))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(log_softmax(z, axes<1>) * r3), wrt(z), given(z, zv), given(r3, rv3))));
  BOOST_TEST(
      testing::gradients_ok(check_gradients<T>(sum(softmax(z, axes<0>) * r3), wrt(z), given(z, zv), given(r3, rv3))));
}
BOOST_AUTO_TEST_CASE(gradients_float) { check_softmax_gradients<float>(); }
BOOST_AUTO_TEST_CASE(gradients_double) { check_softmax_gradients<double>(); }

// Hessian-vector products: the checker applied to <grad f, v> checks d/dx <grad f, v> = H v.
template <class T>
void check_softmax_hvp() {
  auto xv = random_uniform<2>({3, 4}, 5, -1.5, 1.5);
  auto rv = random_uniform<2>({3, 4}, 6, -1.5, 1.5);
  auto vv = random_uniform<2>({3, 4}, 7, -1.5, 1.5);
  auto f = sum(softmax(x) * r);
  auto hv = sum(grad(f, x) * v);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(hv, wrt(x), given(x, xv), given(r, rv), given(v, vv))));
  auto fl = sum(log_softmax(x, axes<0>) * r);
  auto hvl = sum(grad(fl, x) * v);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(hvl, wrt(x), given(x, xv), given(r, rv), given(v, vv))));
  // typegrad::hvp is the gradient of that same inner product.
  static_assert(std::is_same_v<decltype(hvp(f, x, v)), decltype(grad(hv, x))>);
}
BOOST_AUTO_TEST_CASE(hvp_float) { check_softmax_hvp<float>(); }
BOOST_AUTO_TEST_CASE(hvp_double) { check_softmax_hvp<double>(); }

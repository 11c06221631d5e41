// Pooling gradients by finite differences (float and double), second derivatives through the
// closed families (max_pool_backward <-> max_pool_gather, avg_pool <-> avg_pool_transpose), and
// the global pools' gradients. Inputs are distinct random values: no ties in a max window.
#define BOOST_TEST_MODULE pool_gradients
#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"s", 3> s;  // (N, L, C)
constexpr var<"x", 4> x;  // (N, H, W, C)
constexpr var<"u", 5> u;  // (N, D, H, W, C)
constexpr var<"rs", 3> rs;
constexpr var<"r", 4> r;
constexpr var<"ru", 5> ru;
constexpr var<"rg", 2> rg;
constexpr var<"v", 4> v;

using test_support::random_uniform;

// Random projections of the outputs and the inputs, each pool's case in one place.
template <class T>
void check_first_order() {
  const auto sv = random_uniform<3>({2, 7, 3}, 1);
  const auto xv = random_uniform<4>({2, 5, 4, 3}, 2);
  const auto uv = random_uniform<5>({1, 3, 4, 3, 2}, 3);
  // 1-d, window 2 (the last window clipped): ceil(7/2) = 4.
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(max_pool(s, window<2>) * rs), wrt(s), given(s, sv),
                                                      given(rs, random_uniform<3>({2, 4, 3}, 4)))));
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(avg_pool(s, window<3>, stride<2>) * rs), wrt(s),
                                                      given(s, sv), given(rs, random_uniform<3>({2, 4, 3}, 5)))));
  // 2-d, overlapping 3/2 windows (max) and per-dim windows and strides (avg): (3, 2) outputs.
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(max_pool(x, window<3>, stride<2>) * r), wrt(x),
                                                      given(x, xv), given(r, random_uniform<4>({2, 3, 2, 3}, 6)))));
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(avg_pool(x, window<2, 3>, stride<2, 3>) * r), wrt(x),
                                                      given(x, xv), given(r, random_uniform<4>({2, 3, 2, 3}, 7)))));
  // 3-d, stride 1 (every input in up to 8 windows) and s > v (some inputs in none).
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(max_pool(u, window<2>, stride<1>) * ru), wrt(u),
                                                      given(u, uv), given(ru, random_uniform<5>({1, 3, 4, 3, 2}, 8)))));
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(avg_pool(u, window<1, 2, 1>, stride<2, 3, 3>) * ru),
                                                      wrt(u), given(u, uv),
                                                      given(ru, random_uniform<5>({1, 2, 2, 1, 2}, 9)))));
  // Global pools (reductions over the ordered dims).
  const auto rgv = random_uniform<2>({2, 3}, 10);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(global_avg_pool(x) * rg), wrt(x), given(x, xv), given(rg, rgv))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(global_max_pool(x) * rg), wrt(x), given(x, xv), given(rg, rgv))));
}
}  // namespace

BOOST_AUTO_TEST_CASE(gradients_float) { check_first_order<float>(); }
BOOST_AUTO_TEST_CASE(gradients_double) { check_first_order<double>(); }

// f = sum(square(pool(x)) * r) is not linear in x, so its Hessian-vector product is not zero,
// and sum(grad(f, x) * v) differentiated wrt x and r runs the backward ops' own vjps:
// max_pool_backward -> max_pool_gather (and back), avg_pool_transpose -> avg_pool.
BOOST_AUTO_TEST_CASE(second_order_max_pool) {
  const auto xv = random_uniform<4>({2, 5, 4, 3}, 11);
  const auto rv = random_uniform<4>({2, 3, 2, 3}, 12);
  const auto vv = random_uniform<4>({2, 5, 4, 3}, 13);
  auto f = sum(square(max_pool(x, window<3>, stride<2>)) * r);
  auto hv = sum(grad(f, x) * v);
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(hv, wrt(x, r), given(x, xv), given(r, rv), given(v, vv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(hv, wrt(x, r), given(x, xv), given(r, rv), given(v, vv))));
}

BOOST_AUTO_TEST_CASE(second_order_avg_pool) {
  const auto xv = random_uniform<4>({2, 5, 4, 3}, 14);
  const auto rv = random_uniform<4>({2, 3, 2, 3}, 15);
  const auto vv = random_uniform<4>({2, 5, 4, 3}, 16);
  auto f = sum(square(avg_pool(x, window<2>, stride<2>)) * r);
  auto hv = sum(grad(f, x) * v);
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(hv, wrt(x, r), given(x, xv), given(r, rv), given(v, vv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(hv, wrt(x, r), given(x, xv), given(r, rv), given(v, vv))));
}

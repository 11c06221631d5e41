#define BOOST_TEST_MODULE vjp
#include <boost/test/unit_test.hpp>

// vdot(a, b) (one scalar node for sum(a * b)) and the seeded vector-Jacobian product
// vjp(y, g, wrt(x...)) built on it: printed forms (the adjoint of y is g itself), hand values,
// finite differences in float and double, agreement with grad(sum(y * g), x) and shape errors.
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"a", 2> a;
constexpr var<"b", 2> b;
constexpr var<"x", 2> x;
constexpr var<"w", 2> w;
constexpr var<"g", 2> g;
constexpr var<"v", 2> v;

using test_support::random_away_from_zero;
using test_support::values;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_CASE(prints) {
  BOOST_TEST(to_string(vdot(a, b)) == "vdot(a, b)");
  BOOST_TEST(to_string(grad(vdot(a, b), a)) == "sum_to(b, a)");  // (a, b: same shape only at run time)
  auto y = relu(matmul(x, w));
  // The adjoint of y is the cotangent g: no sum(y * g), no broadcast of 1.
  BOOST_TEST(to_string(vjp(y, g, wrt(w))) == "sum_to(matmul[T,_](x, sum_to(g * step(matmul(x, w)), matmul(x, w))), w)");
  BOOST_TEST(to_string(std::get<0>(vjp(y, g, wrt(x, w)))) ==
             "sum_to(matmul[_,T](sum_to(g * step(matmul(x, w)), matmul(x, w)), w), x)");
}

BOOST_AUTO_TEST_CASE(hand_values) {
  auto f = vdot(a, b);
  auto prog = compile<double>(f, wrt(a, b));
  tensor<double, 2> av({2, 3}, {1, 2, 3, 4, 5, 6}), bv({2, 3}, {-1, 0.5, 2, 0, 1, -2});
  prog.bind(a, av).bind(b, bv).run();
  BOOST_TEST(prog.scalar(f) == -1 + 1 + 6 + 0 + 5 - 12);
  BOOST_TEST(values(prog.gradient(a)) == (std::vector<double>{-1, 0.5, 2, 0, 1, -2}), boost::test_tools::per_element());
  BOOST_TEST(values(prog.gradient(b)) == (std::vector<double>{1, 2, 3, 4, 5, 6}), boost::test_tools::per_element());

  // y = x * w elementwise: vjp(y, g) = g * w, for a non-scalar y.
  auto prog2 = compile<double>(vjp(x * w, g, wrt(x)));
  tensor<double, 2> wv({1, 2}, {3, -2}), gv({1, 2}, {0.5, 4});
  prog2.bind(x, wv).bind(w, wv).bind(g, gv).run();
  BOOST_TEST(values(prog2.template output<0>()) == (std::vector<double>{1.5, -8}), boost::test_tools::per_element());
}

// Larger than one part of the dot kernel (2^16 elements): the same value at 1 and 2 threads.
BOOST_AUTO_TEST_CASE(long_vdot_is_independent_of_threads) {
  auto f = vdot(a, b);
  auto prog = compile<float>(f);
  const auto av = test_support::cast<float>(test_support::random_uniform<2>({300, 1001}, 5));
  const auto bv = test_support::cast<float>(test_support::random_uniform<2>({300, 1001}, 6));
  prog.bind(a, av).bind(b, bv);
  double want = 0;
  for (std::size_t i = 0; i < av.size(); ++i) want += double(av[i]) * double(bv[i]);
  const float one = prog.set_threads(1).run().scalar(f), two = prog.set_threads(2).run().scalar(f);
  BOOST_TEST(std::memcmp(&one, &two, sizeof one) == 0);
  BOOST_TEST(std::abs(double(one) - want) <= 1e-3 * std::max(1.0, std::abs(want)));
}

template <class T>
void check_finite_differences() {
  const auto av = random_away_from_zero<2>({3, 4}, 1), bv = random_away_from_zero<2>({3, 4}, 2);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(vdot(a, b), wrt(a, b), given(a, av), given(b, bv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(vdot(a, a), wrt(a), given(a, av))));  // 2a
  // vjp's result is a gradient: its own vjp (a Hessian-vector product) against finite differences.
  const auto xv = random_away_from_zero<2>({2, 3}, 3), wv = random_away_from_zero<2>({3, 4}, 4);
  const auto gv = random_away_from_zero<2>({2, 4}, 5), vv = random_away_from_zero<2>({3, 4}, 6);
  auto jtg = vjp(tanh(matmul(x, w)), g, wrt(w));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(vdot(jtg, v), wrt(x, w, g), given(x, xv), given(w, wv), given(g, gv), given(v, vv))));
}
BOOST_AUTO_TEST_CASE(finite_differences_float) { check_finite_differences<float>(); }
BOOST_AUTO_TEST_CASE(finite_differences_double) { check_finite_differences<double>(); }

// vjp(y, g) equals grad(sum(y * g)) bitwise (the latter's extra factor is exactly 1).
BOOST_AUTO_TEST_CASE(equals_gradient_of_the_inner_product) {
  auto y = tanh(matmul(x, w)) * lit<3>;  // (a constant factor: the adjoint flows through mul too)
  auto seeded = compile<double>(std::get<0>(vjp(y, g, wrt(x, w))), std::get<1>(vjp(y, g, wrt(x, w))));
  auto summed = compile<double>(sum(y * g), wrt(x, w));
  const auto xv = random_away_from_zero<2>({5, 3}, 7), wv = random_away_from_zero<2>({3, 4}, 8);
  const auto gv = random_away_from_zero<2>({5, 4}, 9);
  seeded.bind(x, xv).bind(w, wv).bind(g, gv).run();
  summed.bind(x, xv).bind(w, wv).bind(g, gv).run();
  const auto [dx, dw] = vjp(y, g, wrt(x, w));
  BOOST_TEST(values(seeded.value(dx)) == values(summed.gradient(x)), boost::test_tools::per_element());
  BOOST_TEST(values(seeded.value(dw)) == values(summed.gradient(w)), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(mismatched_shapes_name_vdot) {
  auto prog = compile<float>(vdot(a, b));
  tensor<float, 2> av({2, 3}), bv({3, 2});
  prog.bind(a, av).bind(b, bv);
  BOOST_CHECK_EXCEPTION(prog.run(), shape_error, [](const shape_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return contains(e.what(), "vdot") && contains(e.what(), "(2, 3)") && contains(e.what(), "(3, 2)") &&
           contains(e.what(), "leaf 'b'");
  });
}

#define BOOST_TEST_MODULE layout_reshape
#include <boost/test/unit_test.hpp>

// reshape / flatten / reshape_like and permute / transpose as graph ops: printing, hand values,
// shape errors, gradients (float and double) and second derivatives.
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
constexpr var<"z", 3> z;
constexpr var<"q", 4> q;
constexpr var<"r", 2> r;
constexpr var<"r3", 3> r3;
constexpr var<"r4", 4> r4;
constexpr var<"v", 2> v;
constexpr var<"v3", 3> v3;

using test_support::cast;
using test_support::random_uniform;
using test_support::values;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

template <class T, std::size_t R>
tensor<T, R> counting(const std::array<std::size_t, R>& extents) {
  tensor<T, R> t(extents);
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = T(i);
  return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(prints) {
  BOOST_TEST(to_string(reshape<0, -1>(z)) == "reshape[(0, -1)](z)");
  BOOST_TEST(to_string(flatten(q)) == "reshape[(0, -1)](q)");
  BOOST_TEST(to_string(reshape<6>(x)) == "reshape[(6)](x)");
  BOOST_TEST(to_string(permute<0, 2, 1>(z)) == "permute[(0, 2, 1)](z)");
  BOOST_TEST(to_string(transpose(z)) == "permute[(0, 2, 1)](z)");
  BOOST_TEST(to_string(transpose(x)) == "permute[(1, 0)](x)");
  // The adjoint of a reshape puts g back into x's runtime shape.
  const std::string g = to_string(grad(sum(flatten(z) * flatten(z)), z));
  BOOST_TEST(contains(g, "reshape_like("), g);
  // The adjoint of a permute is the inverse permute, known to have z's shape (no sum_to around it).
  const std::string gp = to_string(grad(sum(permute<1, 2, 0>(z) * r3), z));
  BOOST_TEST(gp.starts_with("permute[(2, 0, 1)]("), gp);
}

BOOST_AUTO_TEST_CASE(permutations_simplify) {
  static_assert(std::is_same_v<decltype(transpose(transpose(z))), std::remove_const_t<decltype(z)>>);
  static_assert(std::is_same_v<decltype(permute<0, 1, 2>(z)), std::remove_const_t<decltype(z)>>);
  static_assert(std::is_same_v<decltype(permute<1, 2, 0>(permute<2, 0, 1>(z))), std::remove_const_t<decltype(z)>>);
  // permute<P> of permute<Q>: output axis k is z's axis Q[P[k]].
  static_assert(std::is_same_v<decltype(permute<0, 2, 1>(permute<1, 2, 0>(z))), decltype(permute<1, 0, 2>(z))>);
  static_assert(std::is_same_v<decltype(reshape_like(x, x)), std::remove_const_t<decltype(x)>>);
  BOOST_TEST(true);  // the checks above are compile-time
}

BOOST_AUTO_TEST_CASE(reshape_hand_values) {
  auto a = reshape<3, -1>(z);
  auto b = flatten(z);
  auto c = reshape<-1>(z);
  auto d = reshape<2, 0, 1, 2>(z);  // 0 copies z's extent 1
  auto prog = compile<double>(a, b, c, d);
  auto zv = counting<double, 3>({2, 3, 2});
  prog.bind(z, zv).run();
  const std::vector<double> order{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};  // row-major order is kept
  BOOST_TEST(fmt::format("{}", prog.value(a).shape) == "(3, 4)");
  BOOST_TEST(fmt::format("{}", prog.value(b).shape) == "(2, 6)");
  BOOST_TEST(fmt::format("{}", prog.value(c).shape) == "(12)");
  BOOST_TEST(fmt::format("{}", prog.value(d).shape) == "(2, 3, 1, 2)");
  BOOST_TEST(values(prog.value(a)) == order, boost::test_tools::per_element());
  BOOST_TEST(values(prog.value(b)) == order, boost::test_tools::per_element());
  BOOST_TEST(values(prog.value(d)) == order, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(permute_hand_values) {
  auto t = transpose(x);
  auto p = permute<2, 0, 1>(z);
  auto prog = compile<float>(t, p);
  auto xv = counting<float, 2>({2, 3});     // [[0 1 2] [3 4 5]]
  auto zv = counting<float, 3>({2, 3, 2});  // z[i, j, k] = 6i + 2j + k
  prog.bind(x, xv).bind(z, zv).run();
  BOOST_TEST(fmt::format("{}", prog.value(t).shape) == "(3, 2)");
  BOOST_TEST(values(prog.value(t)) == (std::vector<float>{0, 3, 1, 4, 2, 5}), boost::test_tools::per_element());
  // p[k, i, j] = z[i, j, k]: shape (2, 2, 3).
  BOOST_TEST(fmt::format("{}", prog.value(p).shape) == "(2, 2, 3)");
  BOOST_TEST(values(prog.value(p)) == (std::vector<float>{0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(reshape_shape_errors_name_the_op) {
  auto prog = compile<float>(reshape<4, -1>(x));
  tensor<float, 2> xv({2, 3});
  prog.bind(x, xv);
  BOOST_CHECK_EXCEPTION(prog.run(), shape_error, [](const shape_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return contains(e.what(), "reshape[(4, -1)]") && contains(e.what(), "6 is not a multiple of 4") &&
           contains(e.what(), "leaf 'x'");
  });
  auto prog2 = compile<float>(reshape<4, 2>(x));
  prog2.bind(x, xv);
  BOOST_CHECK_EXCEPTION(prog2.run(), shape_error, [](const shape_error& e) {
    return contains(e.what(), "reshape[(4, 2)]") && contains(e.what(), "cannot reshape (2, 3) (6 elements) to (4, 2)");
  });
}

template <class T>
void check_first_order() {
  const auto zv = random_uniform<3>({2, 3, 4}, 1);
  const auto r2 = random_uniform<2>({6, 4}, 2);
  const auto qv = random_uniform<4>({2, 3, 2, 2}, 3);
  const auto rf = random_uniform<2>({2, 12}, 4);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(reshape<-1, 4>(z) * r), wrt(z), given(z, zv), given(r, r2))));
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(flatten(q) * r), wrt(q), given(q, qv), given(r, rf))));
  const auto rp = random_uniform<3>({4, 2, 3}, 5);
  const auto r4v = random_uniform<4>({2, 2, 2, 3}, 6);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(permute<2, 0, 1>(z) * r3), wrt(z), given(z, zv), given(r3, rp))));
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(permute<3, 0, 2, 1>(q) * r4), wrt(q), given(q, qv), given(r4, r4v))));
  const auto rt = random_uniform<3>({2, 4, 3}, 7);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(transpose(z) * r3), wrt(z), given(z, zv), given(r3, rt))));
}
BOOST_AUTO_TEST_CASE(gradients_float) { check_first_order<float>(); }
BOOST_AUTO_TEST_CASE(gradients_double) { check_first_order<double>(); }

// Second order: the adjoint fed to reshape_like / permute depends on z, so differentiating the
// gradient runs through the adjoint ops' own vjps (reshape_like of reshape_like, inverse permutes).
template <class T>
void check_second_order() {
  const auto zv = random_uniform<3>({2, 3, 4}, 11);
  const auto r2 = random_uniform<2>({6, 4}, 12);
  const auto vv = random_uniform<3>({2, 3, 4}, 13);
  auto y = reshape<-1, 4>(z);
  auto f = sum(y * y * r);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(grad(f, z) * v3), wrt(z, r), given(z, zv), given(r, r2), given(v3, vv))));
  const auto rp = random_uniform<3>({4, 2, 3}, 14);
  auto p = permute<2, 0, 1>(z);
  auto fp = sum(p * p * r3);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(grad(fp, z) * v3), wrt(z, r3), given(z, zv), given(r3, rp), given(v3, vv))));
}
BOOST_AUTO_TEST_CASE(second_order_float) { check_second_order<float>(); }
BOOST_AUTO_TEST_CASE(second_order_double) { check_second_order<double>(); }

// Bitwise the same with 1 thread and with all: large enough for the kernels to split.
BOOST_AUTO_TEST_CASE(deterministic_across_thread_counts) {
  constexpr var<"big", 4> big;
  auto t = permute<0, 3, 1, 2>(big);
  auto f = flatten(big);
  auto prog = compile<float>(t, f);
  const auto bv = cast<float>(random_uniform<4>({8, 33, 65, 24}, 21));
  prog.bind(big, bv);
  prog.set_threads(1).run();
  const auto t1 = values(prog.value(t)), f1 = values(prog.value(f));
  prog.set_threads(0).run();
  BOOST_TEST((values(prog.value(t)) == t1));
  BOOST_TEST((values(prog.value(f)) == f1));
}

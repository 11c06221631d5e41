#define BOOST_TEST_MODULE layout_concat
#include <boost/test/unit_test.hpp>

// concat and its adjoint family (concat_part, concat_place): printing, hand values, shape errors,
// gradients (float and double) with an argument used twice, second and third order.
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <string>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
using a_t = var<"a", 2>;
using b_t = var<"b", 2>;
using r_t = var<"r", 2>;
using h_t = var<"h", 2>;
constexpr a_t a;
constexpr b_t b;
constexpr var<"c", 2> c;
constexpr r_t r;
constexpr h_t h;
constexpr var<"va", 2> va;
constexpr var<"vb", 2> vb;
constexpr var<"p", 4> p;
constexpr var<"s", 4> s;
constexpr var<"r4", 4> r4;

using test_support::cast;
using test_support::random_uniform;
using test_support::values;

bool contains(const std::string& str, const std::string& part) { return str.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_CASE(prints) {
  BOOST_TEST(to_string(concat<1>(a, b)) == "concat[axis=1](a, b)");
  BOOST_TEST(to_string(concat<-1>(p, s, p)) == "concat[axis=3](p, s, p)");
  BOOST_TEST(to_string(concat<0>(a, b, c)) == "concat[axis=0](a, b, c)");
  const std::string g = to_string(grad(sum(concat<1>(a, b) * r), b));
  BOOST_TEST(contains(g, "concat_part[axis=1, part=1]("), g);
  BOOST_TEST(!g.starts_with("sum_to("), g);  // the part is known to have b's shape
  const std::string g2 = to_string(node<concat_part_op<1, 0>, r_t, a_t, b_t>{});
  BOOST_TEST(g2 == "concat_part[axis=1, part=0](r, a, b)");
  BOOST_TEST(to_string(node<concat_place_op<0, 1>, h_t, a_t, b_t>{}) == "concat_place[axis=0, part=1](h, a, b)");
}

BOOST_AUTO_TEST_CASE(hand_values) {
  auto cols = concat<1>(a, b);
  auto rows = concat<0>(a, c, a);
  auto last = concat<-1>(b, a);
  auto prog = compile<double>(cols, rows, last);
  tensor<double, 2> av({2, 2}, {1, 2, 3, 4}), bv({2, 1}, {5, 6}), cv({1, 2}, {7, 8});
  prog.bind(a, av).bind(b, bv).bind(c, cv).run();
  BOOST_TEST(fmt::format("{}", prog.value(cols).shape) == "(2, 3)");
  BOOST_TEST(values(prog.value(cols)) == (std::vector<double>{1, 2, 5, 3, 4, 6}), boost::test_tools::per_element());
  BOOST_TEST(fmt::format("{}", prog.value(rows).shape) == "(5, 2)");
  BOOST_TEST(values(prog.value(rows)) == (std::vector<double>{1, 2, 3, 4, 7, 8, 1, 2, 3, 4}),
             boost::test_tools::per_element());
  BOOST_TEST(values(prog.value(last)) == (std::vector<double>{5, 1, 2, 6, 3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(mismatched_extents_name_the_op) {
  auto prog = compile<float>(concat<1>(a, b));
  tensor<float, 2> av({2, 2}), bv({3, 1});
  prog.bind(a, av).bind(b, bv);
  BOOST_CHECK_EXCEPTION(prog.run(), shape_error, [](const shape_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return contains(e.what(), "concat[axis=1]") && contains(e.what(), "the extents must agree except along axis 1") &&
           contains(e.what(), "leaf 'b'") && contains(e.what(), "(3, 1)");
  });
}

template <class T>
void check_first_order() {
  // a appears twice: its gradient is the sum of two parts.
  const auto av = random_uniform<2>({3, 2}, 1);
  const auto bv = random_uniform<2>({3, 4}, 2);
  const auto rv = random_uniform<2>({3, 8}, 3);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(concat<1>(a, b, a) * r), wrt(a, b), given(a, av),
                                                      given(b, bv), given(r, rv))));
  const auto cv = random_uniform<2>({2, 2}, 4);
  const auto rr = random_uniform<2>({5, 2}, 5);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(concat<0>(a, c) * r), wrt(a, c), given(a, av), given(c, cv), given(r, rr))));
  // Channels of an image batch (the DenseNet / Inception join).
  const auto pv = random_uniform<4>({2, 3, 2, 2}, 6);
  const auto sv = random_uniform<4>({2, 3, 2, 3}, 7);
  const auto r4v = random_uniform<4>({2, 3, 2, 5}, 8);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(concat<-1>(p, s) * r4), wrt(p, s), given(p, pv), given(s, sv), given(r4, r4v))));
}
BOOST_AUTO_TEST_CASE(gradients_float) { check_first_order<float>(); }
BOOST_AUTO_TEST_CASE(gradients_double) { check_first_order<double>(); }

// Second order runs through concat_part's adjoint (concat_place); the direct checks of part and
// place close the family: each one's adjoint is the other.
template <class T>
void check_higher_order() {
  const auto av = random_uniform<2>({3, 2}, 11);
  const auto bv = random_uniform<2>({3, 4}, 12);
  const auto rv = random_uniform<2>({3, 6}, 13);
  const auto vav = random_uniform<2>({3, 2}, 14);
  const auto vbv = random_uniform<2>({3, 4}, 15);
  auto j = concat<1>(a, b);
  auto f = sum(j * j * r);
  auto [ga, gb] = grad(f, a, b);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(ga * va) + sum(gb * vb), wrt(a, b, r), given(a, av),
                                                      given(b, bv), given(r, rv), given(va, vav), given(vb, vbv))));
  // concat_place<1>(h, a, b) = zeros shaped like concat(a, b) with h in b's block.
  using place = node<concat_place_op<1, 1>, decltype(h * h), a_t, b_t>;
  using part = node<concat_part_op<1, 1>, decltype(r * r), a_t, b_t>;
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(place{} * r), wrt(h), given(h, vbv), given(a, av),
                                                      given(b, bv), given(r, rv))));
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(part{} * h), wrt(r), given(h, vbv), given(a, av),
                                                      given(b, bv), given(r, rv))));
}
BOOST_AUTO_TEST_CASE(higher_order_float) { check_higher_order<float>(); }
BOOST_AUTO_TEST_CASE(higher_order_double) { check_higher_order<double>(); }

BOOST_AUTO_TEST_CASE(place_hand_values) {
  using place = node<concat_place_op<0, 1>, h_t, a_t, b_t>;
  auto prog = compile<double>(place{});
  tensor<double, 2> hv({1, 2}, {5, 6}), av({2, 2}), bv({1, 2});
  prog.bind(h, hv).bind(a, av).bind(b, bv).run();
  BOOST_TEST(values(prog.value(place{})) == (std::vector<double>{0, 0, 0, 0, 5, 6}), boost::test_tools::per_element());
}

// Bitwise the same with 1 thread and with all, on sizes where the kernels split.
BOOST_AUTO_TEST_CASE(deterministic_across_thread_counts) {
  auto j = concat<-1>(p, s, p);
  auto f = sum(j * j * r4);
  auto prog = compile<float>(f, wrt(p, s));
  const auto pv = cast<float>(random_uniform<4>({8, 28, 28, 32}, 21));
  const auto sv = cast<float>(random_uniform<4>({8, 28, 28, 12}, 22));
  const auto rv = cast<float>(random_uniform<4>({8, 28, 28, 76}, 23));
  prog.bind(p, pv).bind(s, sv).bind(r4, rv);
  prog.set_threads(1).run();
  const auto gp = values(prog.gradient(p)), gs = values(prog.gradient(s));
  prog.set_threads(0).run();
  BOOST_TEST((values(prog.gradient(p)) == gp));
  BOOST_TEST((values(prog.gradient(s)) == gs));
}

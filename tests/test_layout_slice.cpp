#define BOOST_TEST_MODULE layout_slice
#include <boost/test/unit_test.hpp>

// slice / pad / unslice: printing, hand values, shape errors, gradients (float and double) and
// second order (pad <-> crop, strided slice <-> unslice).
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <string>
#include <type_traits>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
using x_t = var<"x", 2>;
using h_t = var<"h", 2>;
constexpr x_t x;
constexpr h_t h;
constexpr var<"r", 2> r;
constexpr var<"v", 2> v;
constexpr var<"q", 4> q;
constexpr var<"r4", 4> r4;
constexpr var<"v4", 4> v4;

using test_support::cast;
using test_support::random_uniform;
using test_support::values;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

tensor<double, 2> counting(std::size_t m, std::size_t n) {
  tensor<double, 2> t({m, n});
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = double(i);
  return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(prints) {
  BOOST_TEST(to_string(slice<1, to_end, 0, -1>(x)) == "slice[1:, 0:-1](x)");
  BOOST_TEST(to_string(slice<-2, to_end, 1, 4>(x, stride<1, 2>)) == "slice[-2:, 1:4:2](x)");
  BOOST_TEST(to_string(slice<0, to_end, 0, 5>(x, stride<2>)) == "slice[0::2, 0:5:2](x)");
  BOOST_TEST(to_string(pad<1, 2, 0, 0>(x)) == "pad[(1, 2), (0, 0)](x)");
  // Whole slices and zero pads vanish.
  static_assert(std::is_same_v<decltype(slice<0, to_end, 0, to_end>(x)), x_t>);
  static_assert(std::is_same_v<decltype(pad<0, 0, 0, 0>(x)), x_t>);
  // The adjoint of a crop is a pad, of a pad a crop, of other slices an unslice; each is known
  // to have the argument's shape (no sum_to around it).
  const std::string gc = to_string(grad(sum(slice<1, to_end, 0, -1>(x) * r), x));
  BOOST_TEST(gc.starts_with("pad[(1, 0), (0, 1)]("), gc);
  const std::string gp = to_string(grad(sum(pad<1, 2, 0, 3>(x) * r), x));
  BOOST_TEST(gp.starts_with("slice[1:-2, 0:-3]("), gp);
  const std::string gs = to_string(grad(sum(slice<-2, to_end, 1, 4>(x, stride<1, 2>) * r), x));
  BOOST_TEST(gs.starts_with("unslice[-2:, 1:4:2]("), gs);
  BOOST_TEST(gs.ends_with(", x)"), gs);
}

BOOST_AUTO_TEST_CASE(hand_values) {
  auto crop = slice<1, to_end, 0, -1>(x);
  auto strided = slice<-2, to_end, 1, 4>(x, stride<1, 2>);
  auto padded = pad<1, 0, 0, 2>(x);
  auto prog = compile<double>(crop, strided, padded);
  auto xv = counting(3, 4);  // [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
  prog.bind(x, xv).run();
  BOOST_TEST(fmt::format("{}", prog.value(crop).shape) == "(2, 3)");
  BOOST_TEST(values(prog.value(crop)) == (std::vector<double>{4, 5, 6, 8, 9, 10}), boost::test_tools::per_element());
  BOOST_TEST(fmt::format("{}", prog.value(strided).shape) == "(2, 2)");
  BOOST_TEST(values(prog.value(strided)) == (std::vector<double>{5, 7, 9, 11}), boost::test_tools::per_element());
  BOOST_TEST(fmt::format("{}", prog.value(padded).shape) == "(4, 6)");
  BOOST_TEST(values(prog.value(padded)) == (std::vector<double>{0, 0, 0, 0, 0, 0,  //
                                                                0, 1, 2, 3, 0, 0,  //
                                                                4, 5, 6, 7, 0, 0,  //
                                                                8, 9, 10, 11, 0, 0}),
             boost::test_tools::per_element());
  // unslice(h, x): zeros shaped like x with h where the strided slice reads.
  using place = node<unslice_op<slice_bounds_t<-2, to_end, 1, 4>, stride_t<1, 2>>, h_t, x_t>;
  auto prog2 = compile<double>(place{});
  tensor<double, 2> hv({2, 2}, {1, 2, 3, 4});
  prog2.bind(h, hv).bind(x, xv).run();
  BOOST_TEST(values(prog2.value(place{})) == (std::vector<double>{0, 0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(out_of_range_names_the_op) {
  auto prog = compile<float>(slice<0, 5, -1, to_end>(x));
  tensor<float, 2> xv({3, 4});
  prog.bind(x, xv);
  BOOST_CHECK_EXCEPTION(prog.run(), shape_error, [](const shape_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return contains(e.what(), "slice[0:5, -1:]") && contains(e.what(), "the range 0:5 of axis 0 does not fit its extent 3") &&
           contains(e.what(), "leaf 'x'");
  });
  auto prog2 = compile<float>(slice<0, to_end, -5, -1>(x));  // -5 resolves before the start
  prog2.bind(x, xv);
  BOOST_CHECK_THROW(prog2.run(), shape_error);
  auto prog3 = compile<float>(slice<0, to_end, 3, -2>(x));  // 3:2 once -2 is resolved
  prog3.bind(x, xv);
  BOOST_CHECK_THROW(prog3.run(), shape_error);
}

template <class T>
void check_first_order() {
  const auto xv = random_uniform<2>({5, 6}, 1);
  const auto rc = random_uniform<2>({3, 5}, 2);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(slice<1, -1, 1, to_end>(x) * r), wrt(x), given(x, xv), given(r, rc))));
  const auto rs = random_uniform<2>({2, 2}, 3);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(slice<-3, to_end, 0, 4>(x, stride<2>) * r), wrt(x),
                                                      given(x, xv), given(r, rs))));
  const auto rp = random_uniform<2>({8, 7}, 4);
  BOOST_TEST(
      testing::gradients_ok(check_gradients<T>(sum(pad<1, 2, 0, 1>(x) * r), wrt(x), given(x, xv), given(r, rp))));
  // An image batch: spatial padding, then a strided crop of channels.
  const auto qv = random_uniform<4>({2, 3, 3, 4}, 5);
  const auto rq = random_uniform<4>({2, 5, 4, 4}, 6);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(pad<0, 0, 1, 1, 0, 1, 0, 0>(q) * r4), wrt(q), given(q, qv), given(r4, rq))));
  const auto rq2 = random_uniform<4>({2, 3, 3, 2}, 7);
  BOOST_TEST(testing::gradients_ok(check_gradients<T>(sum(slice<0, to_end, 0, to_end, 0, to_end, 1, 4>(q, stride<1, 1, 1, 2>) * r4),
                                                      wrt(q), given(q, qv), given(r4, rq2))));
}
BOOST_AUTO_TEST_CASE(gradients_float) { check_first_order<float>(); }
BOOST_AUTO_TEST_CASE(gradients_double) { check_first_order<double>(); }

// Second order: pad -> crop -> pad and slice -> unslice -> slice (the adjoints depend on x).
template <class T>
void check_second_order() {
  const auto xv = random_uniform<2>({4, 5}, 11);
  const auto vv = random_uniform<2>({4, 5}, 12);
  const auto rp = random_uniform<2>({5, 8}, 13);
  auto y = pad<0, 1, 2, 1>(x);
  auto f = sum(y * y * r);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(grad(f, x) * v), wrt(x, r), given(x, xv), given(r, rp), given(v, vv))));
  const auto rs = random_uniform<2>({2, 2}, 14);
  auto s = slice<-3, to_end, 1, 4>(x, stride<2>);
  auto fs = sum(s * s * r);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(grad(fs, x) * v), wrt(x, r), given(x, xv), given(r, rs), given(v, vv))));
  const auto rc = random_uniform<2>({2, 4}, 15);
  auto c = slice<1, -1, 0, -1>(x);
  auto fc = sum(c * c * r);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(grad(fc, x) * v), wrt(x, r), given(x, xv), given(r, rc), given(v, vv))));
  // unslice's own adjoint (the strided slice again), checked directly.
  using place = node<unslice_op<slice_bounds_t<-3, to_end, 1, 4>, stride_t<2>>, decltype(h * h), x_t>;
  const auto hv = random_uniform<2>({2, 2}, 16);
  BOOST_TEST(testing::gradients_ok(
      check_gradients<T>(sum(place{} * v), wrt(h), given(h, hv), given(x, xv), given(v, vv))));
}
BOOST_AUTO_TEST_CASE(second_order_float) { check_second_order<float>(); }
BOOST_AUTO_TEST_CASE(second_order_double) { check_second_order<double>(); }

// Bitwise the same with 1 thread and with all, on sizes where the kernels split.
BOOST_AUTO_TEST_CASE(deterministic_across_thread_counts) {
  auto y = slice<0, to_end, 1, -1, 0, to_end, 0, to_end>(pad<0, 0, 2, 2, 1, 1, 0, 0>(q), stride<1, 1, 2, 1>);
  auto f = sum(y * y * r4);
  auto prog = compile<float>(f, wrt(q));
  const auto qv = cast<float>(random_uniform<4>({8, 56, 56, 16}, 21));
  const auto rv = cast<float>(random_uniform<4>({8, 58, 29, 16}, 22));
  prog.bind(q, qv).bind(r4, rv);
  prog.set_threads(1).run();
  const auto g1 = values(prog.gradient(q));
  prog.set_threads(0).run();
  BOOST_TEST((values(prog.gradient(q)) == g1));
}

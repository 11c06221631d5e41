#define BOOST_TEST_MODULE core
#include <boost/test/unit_test.hpp>

#include <typegrad/typegrad.hpp>

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
constexpr var<"y", 2> y;
constexpr var<"b", 1> b;
}  // namespace

BOOST_AUTO_TEST_CASE(printing_of_symbolic_gradient) {
  BOOST_TEST(to_string(x * y + b) == "x * y + b");
  BOOST_TEST(to_string(grad(sum(x * x), x)) == "x + x");
  BOOST_TEST(to_string(x * lit<1> + lit<0>) == "x");
  BOOST_TEST(fmt::format("{}", -(x - y)) == "-(x - y)");
}

BOOST_AUTO_TEST_CASE(forward_and_gradient_with_broadcasting) {
  auto f = sum((x + b) * y);
  auto prog = compile<double>(f, wrt(x, b, y));
  tensor<double, 2> xv({2, 3}, {1, 2, 3, 4, 5, 6});
  tensor<double, 2> yv({2, 3}, {1, 0, 2, 1, 3, 1});
  tensor<double, 1> bv({3}, {10, 20, 30});
  prog.bind(x, xv).bind(y, yv).bind(b, bv).run();
  // (11*1 + 22*0 + 33*2) + (14*1 + 25*3 + 36*1)
  BOOST_TEST(prog.scalar(f) == 11 + 66 + 14 + 75 + 36);
  auto gb = prog.gradient(b);
  BOOST_TEST(gb.shape == (shape{3}));
  BOOST_TEST(gb.data[0] == 2);
  BOOST_TEST(gb.data[1] == 3);
  BOOST_TEST(gb.data[2] == 3);
  auto gy = prog.gradient(y);
  BOOST_TEST(gy.data[4] == 25);
  auto gx = prog.gradient(x);
  BOOST_TEST(gx.data[2] == 2);
  BOOST_TEST(prog.plan_count() == 1u);
  prog.run();
  BOOST_TEST(prog.plan_count() == 1u);
}

BOOST_AUTO_TEST_CASE(missing_binding_throws) {
  auto prog = compile<float>(sum(x * y));
  tensor<float, 2> xv({2, 2});
  prog.bind(x, xv);
  BOOST_CHECK_THROW(prog.run(), binding_error);
}

BOOST_AUTO_TEST_CASE(shape_mismatch_names_op_and_leaves) {
  auto prog = compile<float>(sum(x * y));
  tensor<float, 2> xv({2, 3}), yv({3, 2});
  prog.bind(x, xv).bind(y, yv);
  try {
    prog.run();
    BOOST_FAIL("expected shape_error");
  } catch (const shape_error& e) {
    std::string msg = e.what();
    BOOST_TEST_MESSAGE(msg);
    BOOST_TEST(msg.find("mul") != std::string::npos);
    BOOST_TEST(msg.find("leaf 'x'") != std::string::npos);
    BOOST_TEST(msg.find("(3, 2)") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(tensor_construction_access_and_formatting) {
  tensor<float, 2> t({2, 3}, {1, 2, 3, 4, 5, 6});
  BOOST_TEST(t(1, 2) == 6.0f);
  BOOST_TEST(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0u);
  BOOST_TEST(fmt::format("{}", t) == "tensor<float>(2, 3) [[1, 2, 3], [4, 5, 6]]");
  tensor<double, 1> big({100});
  for (std::size_t i = 0; i < 100; ++i) big[i] = double(i);
  BOOST_TEST(fmt::format("{}", big) == "tensor<double>(100) [0, 1, 2, ..., 97, 98, 99]");
  BOOST_CHECK_THROW((tensor<float, 1>({3}, {1, 2})), shape_error);
  tensor<double, 0> s(2.5);
  BOOST_TEST(fmt::format("{}", s) == "tensor<double>() 2.5");
}

#define BOOST_TEST_MODULE parameters
#include <boost/test/unit_test.hpp>

#include <typegrad/train/init.hpp>
#include <typegrad/train/parameters.hpp>
#include <typegrad/typegrad.hpp>

#include <cmath>
#include <utility>
#include <vector>

using namespace typegrad;
using namespace typegrad::train;
namespace tt = boost::test_tools;

namespace {
constexpr var<"x", 2> x;
constexpr var<"w", 2> w;
constexpr var<"b", 1> b;
constexpr var<"k", 4> k;  // a conv kernel (out, rows, cols, in)

struct moments {
  double mean = 0, var = 0, max_abs = 0;
};
template <class T>
moments moments_of(view<const T> v) {
  moments m;
  for (std::size_t i = 0; i < v.size(); ++i) m.mean += v.data[i];
  m.mean /= double(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    m.var += (v.data[i] - m.mean) * (v.data[i] - m.mean);
    m.max_abs = std::max(m.max_abs, std::abs(double(v.data[i])));
  }
  m.var /= double(v.size());
  return m;
}
}  // namespace

BOOST_AUTO_TEST_CASE(fans_follow_the_layout) {
  auto f = fans_of(shape{784, 128});  // dense (in, out)
  BOOST_TEST(f.in == 784);
  BOOST_TEST(f.out == 128);
  f = fans_of(shape{32, 3, 3, 16});  // conv (out, window..., in)
  BOOST_TEST(f.in == 16 * 9);
  BOOST_TEST(f.out == 32 * 9);
  f = fans_of(shape{64, 5, 8});  // 1-d conv
  BOOST_TEST(f.in == 40);
  BOOST_TEST(f.out == 320);
  f = fans_of(shape{10});
  BOOST_TEST((f.in == 10 && f.out == 10));
  BOOST_TEST(init::he_normal.scale_for(shape{50, 7}) == std::sqrt(2.0 / 50), tt::tolerance(1e-15));
  BOOST_TEST(init::he_uniform.scale_for(shape{50, 7}) == std::sqrt(6.0 / 50), tt::tolerance(1e-15));
  BOOST_TEST(init::glorot_normal.scale_for(shape{50, 7}) == std::sqrt(2.0 / 57), tt::tolerance(1e-15));
  BOOST_TEST(init::glorot_uniform.scale_for(shape{8, 3, 3, 4}) == std::sqrt(6.0 / (36 + 72)), tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(initialisers_draw_the_documented_distributions) {
  generator g(1);
  tensor<double, 2> t({400, 300});  // fan_in 400, fan_out 300
  const struct {
    initializer init;
    double stddev;
    double bound;  // 0: unbounded (normal)
  } cases[] = {
      {init::he_normal, std::sqrt(2.0 / 400), 0},
      {init::he_uniform, std::sqrt(2.0 / 400), std::sqrt(6.0 / 400)},  // U(-b, b) has stddev b / sqrt(3)
      {init::glorot_normal, std::sqrt(2.0 / 700), 0},
      {init::glorot_uniform, std::sqrt(2.0 / 700), std::sqrt(6.0 / 700)},
      {init::normal(0.5), 0.5, 0},
      {init::uniform(0.3), 0.3 / std::sqrt(3.0), 0.3},
  };
  for (const auto& c : cases) {
    c.init.fill(t.as_view(), g);
    const auto m = moments_of<double>(std::as_const(t).as_view());
    BOOST_TEST(std::abs(m.mean) < 0.02 * c.stddev);  // 120000 draws: the mean's stddev is 0.3% of stddev
    BOOST_TEST(std::sqrt(m.var) == c.stddev, tt::tolerance(0.01));
    if (c.bound > 0) BOOST_TEST(m.max_abs <= c.bound);
  }
  init::constant(0.25).fill(t.as_view(), g);
  BOOST_TEST((t[0] == 0.25 && t[t.size() - 1] == 0.25));
  init::zeros.fill(t.as_view(), g);
  BOOST_TEST(moments_of<double>(std::as_const(t).as_view()).max_abs == 0.0);
}

BOOST_AUTO_TEST_CASE(a_seed_reproduces_the_values) {
  // The documented draws: one uniform01 per uniform value, two per normal value (Box-Muller).
  tensor<double, 1> u({3}), n({2});
  generator g(42);
  init::uniform(1.0).fill(u.as_view(), g);
  init::normal(2.0).fill(n.as_view(), g);
  generator h(42);
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(u[i] == 2.0 * double(h() >> 11) * 0x1.0p-53 - 1.0);
  for (std::size_t i = 0; i < 2; ++i) {
    const double u1 = 1.0 - double(h() >> 11) * 0x1.0p-53, u2 = double(h() >> 11) * 0x1.0p-53;
    BOOST_TEST(n[i] == 2.0 * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  }
  // std::mt19937_64's 10000th output is fixed by the standard: the engine is the one specified.
  generator e;
  e.discard(9999);
  BOOST_TEST(e() == 9981545732273789042ull);
}

BOOST_AUTO_TEST_CASE(parameter_set_holds_shapes_names_and_values) {
  auto params = make_parameters<float>(param(w, {3, 2}, init::he_normal), param(b, {2}, init::constant(0.5)),
                                       param(k, {4, 3, 3, 2}, init::glorot_uniform));
  static_assert(decltype(params)::size == 3);
  BOOST_TEST((params[w].extents() == std::array<std::size_t, 2>{3, 2}));
  BOOST_TEST(params.get<"k">().extent(3) == 2u);
  BOOST_TEST(params.count() == 6u + 2u + 72u);
  BOOST_TEST(params[w][0] == 0.0f);  // zero until initialised
  const float* w_data = params[w].data();

  params.initialize(7);
  BOOST_TEST(params[w].data() == w_data);  // initialised in place
  BOOST_TEST(params[b][1] == 0.5f);
  // The documented order: one generator, the parameters in the order given, row-major.
  generator g(7);
  tensor<float, 2> w2({3, 2});
  tensor<float, 1> b2({2});
  tensor<float, 4> k2({4, 3, 3, 2});
  init::he_normal.fill(w2.as_view(), g);
  init::constant(0.5).fill(b2.as_view(), g);
  init::glorot_uniform.fill(k2.as_view(), g);
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(params[w][i] == w2[i]);
  for (std::size_t i = 0; i < 72; ++i) BOOST_TEST(params[k][i] == k2[i]);
  auto again = make_parameters<float>(param(w, {3, 2}, init::he_normal), param(b, {2}, init::constant(0.5)),
                                      param(k, {4, 3, 3, 2}, init::glorot_uniform));
  again.initialize(8);
  BOOST_TEST(again[w][0] != params[w][0]);

  const auto entries = params.entries();
  BOOST_TEST(entries[0].name == "w");
  BOOST_TEST(entries[1].name == "b");
  BOOST_TEST(entries[2].name == "k");
  BOOST_TEST(entries[2].value.data == params[k].data());
  BOOST_TEST((entries[2].value.shape == shape{4, 3, 3, 2}));
}

BOOST_AUTO_TEST_CASE(parameter_set_binds_a_program_and_reads_its_gradients) {
  auto params = make_parameters<double>(param(w, {3, 2}, init::glorot_normal), param(b, {2}, init::constant(0.1)));
  params.initialize(3);
  auto loss = sum(dense(x, w, b));
  auto program = compile<double>(loss, wrt(w, b));
  tensor<double, 2> xv({4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  program.bind(x, xv);
  params.bind(program);
  program.run();
  double expected = 0;
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 2; ++j) {
      expected += params[b][j];
      for (std::size_t c = 0; c < 3; ++c) expected += xv(i, c) * params[w](c, j);
    }
  BOOST_TEST(program.scalar(loss) == expected, tt::tolerance(1e-12));
  const auto grads = decltype(params)::gradients(program);
  BOOST_TEST(grads[0].data[0] == 1 + 4 + 7 + 10);  // d/dw(0, 0) = sum_i x(i, 0)
  BOOST_TEST(grads[1].data[1] == 4.0);             // d/db(1) = batch size
}

#define BOOST_TEST_MODULE unary
#include <boost/test/unit_test.hpp>

#include <typegrad/kernels/unary.hpp>
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "support.hpp"

using namespace typegrad;
namespace tt = boost::test_tools;
namespace km = typegrad::kernels::math;

namespace {
constexpr var<"x", 1> x;  // signed inputs
constexpr var<"p", 1> p;  // positive inputs
constexpr var<"r", 1> r;  // random projection
constexpr var<"v", 1> v;  // Hessian-vector direction

// One variable per function in the gradient checks, so the checker's per-variable report names
// the function whose gradient is wrong.
constexpr var<"exp", 1> a_exp;
constexpr var<"square", 1> a_square;
constexpr var<"pow3", 1> a_pow3;
constexpr var<"pow-1", 1> a_powm1;
constexpr var<"sigmoid", 1> a_sigmoid;
constexpr var<"tanh", 1> a_tanh;
constexpr var<"softplus", 1> a_softplus;
constexpr var<"gelu", 1> a_gelu;
constexpr var<"gelu_tanh", 1> a_gelu_tanh;
constexpr var<"erf", 1> a_erf;
constexpr var<"normal_cdf", 1> a_cdf;
constexpr var<"normal_pdf", 1> a_pdf;
constexpr var<"elu", 1> a_elu;
constexpr var<"elu0.5", 1> a_elu05;
constexpr var<"log", 1> a_log;
constexpr var<"sqrt", 1> a_sqrt;
constexpr var<"pow2.5", 1> a_pow25;
constexpr var<"pow-1.5", 1> a_powm15;
constexpr var<"pow0.3", 1> a_pow03;
constexpr var<"abs", 1> a_abs;
constexpr var<"relu", 1> a_relu;
constexpr var<"leaky_relu", 1> a_leaky;
constexpr var<"leaky_relu0.2", 1> a_leaky02;

// Values in [lo, hi] with a random sign (signed) or positive: away from 0, where relu, abs,
// leaky_relu and elu<0.5> have kinks and pow<-1>, log blow up.
tensor<double, 1> random_values(unsigned seed, double lo, double hi, bool signed_values, std::size_t n = 6) {
  tensor<double, 1> t({n});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  for (auto& e : t) e = (signed_values && (rng() & 1)) ? -u(rng) : u(rng);
  return t;
}
const tensor<double, 1> signed_values = random_values(1, 0.15, 2.0, true);
const tensor<double, 1> positive_values = random_values(2, 0.2, 2.0, false);
const tensor<double, 1> projection = random_values(3, -1.0, 1.0, false);
const tensor<double, 1> direction = random_values(4, -1.0, 1.0, false);

using test_support::cast;

// Distance in units in the last place of T between a result and a (more precise) reference.
template <class T>
double ulps(T got, long double ref) {
  if (std::isnan(ref)) return std::isnan(got) ? 0 : 1e30;
  const T rounded = static_cast<T>(ref);
  if (std::isinf(rounded)) return got == rounded ? 0 : 1e30;
  long double ulp = std::nextafter(std::abs(rounded), std::numeric_limits<T>::infinity()) - std::abs(rounded);
  if (ulp == 0) ulp = std::numeric_limits<T>::denorm_min();
  return double(std::abs((long double)got - ref) / ulp);
}
}  // namespace

// ---- printing ----------------------------------------------------------------------------------
BOOST_AUTO_TEST_CASE(nodes_and_symbolic_gradients_print_readably) {
  BOOST_TEST(to_string(exp(x) + log(p)) == "exp(x) + log(p)");
  BOOST_TEST(to_string(leaky_relu(x)) == "leaky_relu[alpha=0.01](x)");
  BOOST_TEST(to_string(leaky_relu<0.2>(x)) == "leaky_relu[alpha=0.2](x)");
  BOOST_TEST(to_string(elu(x)) == "elu[alpha=1](x)");
  BOOST_TEST(to_string(pow<3>(x)) == "pow[3](x)");
  BOOST_TEST(to_string(pow(x, lit<2.5>)) == "pow[2.5](x)");
  // pow simplifies to the equivalent rows (same nodes, shared work).
  BOOST_TEST(to_string(pow<1>(x)) == "x");
  BOOST_TEST(to_string(pow<2>(x)) == "square(x)");
  BOOST_TEST(to_string(pow<0.5>(x)) == "sqrt(x)");

  BOOST_TEST(to_string(grad(sum(exp(x)), x)) == "exp(x)");
  BOOST_TEST(to_string(grad(sum(log(x)), x)) == "1 / x");
  BOOST_TEST(to_string(grad(sum(sqrt(x)), x)) == "0.5 / sqrt(x)");
  BOOST_TEST(to_string(grad(sum(square(x)), x)) == "2 * x");
  BOOST_TEST(to_string(grad(sum(pow<2.5>(x)), x)) == "2.5 * pow[1.5](x)");
  BOOST_TEST(to_string(grad(sum(pow<3>(x)), x)) == "3 * square(x)");
  BOOST_TEST(to_string(grad(sum(pow<-1>(x)), x)) == "-pow[-2](x)");
  BOOST_TEST(to_string(grad(sum(tanh(x)), x)) == "1 - square(tanh(x))");
  BOOST_TEST(to_string(grad(sum(sigmoid(x)), x)) == "sigmoid(x) * (1 - sigmoid(x))");
  BOOST_TEST(to_string(grad(sum(softplus(x)), x)) == "sigmoid(x)");
  BOOST_TEST(to_string(grad(sum(relu(x)), x)) == "step(x)");
  BOOST_TEST(to_string(grad(sum(abs(x)), x)) == "sign(x)");
  BOOST_TEST(to_string(grad(sum(leaky_relu(x)), x)) == "0.01 + 0.99 * step(x)");
  BOOST_TEST(to_string(grad(sum(elu(x)), x)) == "step(x) + (1 - step(x)) * (elu[alpha=1](x) + 1)");
  BOOST_TEST(to_string(grad(sum(gelu(x)), x)) == "normal_cdf(x) + x * normal_pdf(x)");
  // Second derivatives come out of the same rules.
  BOOST_TEST(to_string(grad(sum(grad(sum(exp(x)), x)), x)) == "exp(x)");
  BOOST_TEST(to_string(grad(sum(grad(sum(relu(x)), x)), x)) == "sum_to(0, x)");
}

// ---- forward against hand-computed values -----------------------------------------------------
template <class T>
void check_forward_values() {
  // x = (-2, -0.5, 0.25, 1.5), p = (0.25, 1, 2, 9); expected values computed independently.
  const tensor<T, 1> xv({4}, {T(-2), T(-0.5), T(0.25), T(1.5)});
  const tensor<T, 1> pv({4}, {T(0.25), T(1), T(2), T(9)});
  using row = std::array<double, 4>;
  auto outputs = std::tuple{
      exp(x), log(p), sqrt(p), square(x), pow<3>(x), pow<2.5>(p), pow<-1>(x), pow<-1.5>(p), pow<0.3>(p),
      abs(x), relu(x), leaky_relu(x), leaky_relu<0.2>(x), elu(x), elu<0.5>(x), sigmoid(x), tanh(x),
      softplus(x), gelu(x), gelu_tanh(x), erf(x), normal_cdf(x), normal_pdf(x), step(x), sign(x)};
  const std::array<row, std::tuple_size_v<decltype(outputs)>> expected{{
      {0.1353352832366127, 0.6065306597126334, 1.2840254166877414, 4.4816890703380645},   // exp
      {-1.3862943611198906, 0.0, 0.6931471805599453, 2.1972245773362196},                 // log
      {0.5, 1.0, 1.4142135623730951, 3.0},                                                // sqrt
      {4.0, 0.25, 0.0625, 2.25},                                                          // square
      {-8.0, -0.125, 0.015625, 3.375},                                                    // pow<3>
      {0.03125, 1.0, 5.656854249492381, 243.0},                                           // pow<2.5>
      {-0.5, -2.0, 4.0, 0.6666666666666666},                                              // pow<-1>
      {8.0, 1.0, 0.3535533905932738, 0.037037037037037035},                               // pow<-1.5>
      {0.6597539553864471, 1.0, 1.2311444133449163, 1.9331820449317627},                  // pow<0.3>
      {2.0, 0.5, 0.25, 1.5},                                                              // abs
      {0.0, 0.0, 0.25, 1.5},                                                              // relu
      {-0.02, -0.005, 0.25, 1.5},                                                         // leaky_relu
      {-0.4, -0.1, 0.25, 1.5},                                                            // leaky_relu<0.2>
      {-0.8646647167633873, -0.3934693402873666, 0.25, 1.5},                              // elu
      {-0.43233235838169365, -0.1967346701436833, 0.25, 1.5},                             // elu<0.5>
      {0.11920292202211755, 0.3775406687981454, 0.5621765008857981, 0.8175744761936437},  // sigmoid
      {-0.9640275800758169, -0.46211715726000974, 0.24491866240370913, 0.9051482536448664},  // tanh
      {0.1269280110429725, 0.4740769841801067, 0.8259394198788436, 1.7014132779827524},      // softplus
      {-0.04550026389635844, -0.15426876936299344, 0.14967658142073093, 1.399789198096713},  // gelu
      {-0.04540230591222494, -0.15428599017485606, 0.149675350701685, 1.3995715769802328},   // gelu_tanh
      {-0.9953222650189527, -0.5204998778130465, 0.2763263901682369, 0.9661051464753108},    // erf
      {0.02275013194817922, 0.3085375387259869, 0.5987063256829237, 0.9331927987311419},     // normal_cdf
      {0.05399096651318806, 0.3520653267642995, 0.3866681168028493, 0.12951759566589174},    // normal_pdf
      {0.0, 0.0, 1.0, 1.0},                                                                  // step
      {-1.0, -1.0, 1.0, 1.0},                                                                // sign
  }};
  auto program = std::apply([](auto... e) { return compile<T>(e...); }, outputs);
  program.bind(x, xv).bind(p, pv).run();
  // A few ulp: normal_cdf and gelu go through std::erfc, whose argument -x/sqrt(2) is rounded.
  const double tolerance = std::is_same_v<T, float> ? 4e-7 : 2e-15;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          auto out = program.template output<I>();
          BOOST_TEST_CONTEXT(to_string(std::get<I>(outputs)) << " in " << (sizeof(T) == 4 ? "float" : "double")) {
            BOOST_TEST(out.shape == (shape{4}));
            for (std::size_t i = 0; i < 4; ++i)
              BOOST_TEST(double(out.data[i]) == expected[I][i], tt::tolerance(tolerance));
          }
        }(),
        ...);
  }(std::make_index_sequence<std::tuple_size_v<decltype(outputs)>>{});
}
BOOST_AUTO_TEST_CASE(forward_float) { check_forward_values<float>(); }
BOOST_AUTO_TEST_CASE(forward_double) { check_forward_values<double>(); }

// Extremes: no overflow, no NaN, tails accurate (subnormal results in float).
BOOST_AUTO_TEST_CASE(extreme_arguments) {
  BOOST_TEST(sigmoid_fn::apply(-100.0) == 3.7200759760208356e-44, tt::tolerance(1e-14));
  BOOST_TEST(sigmoid_fn::apply(-100.0f) == 3.72e-44f, tt::tolerance(0.05f));  // subnormal float
  BOOST_TEST(sigmoid_fn::apply(100.0f) == 1.0f);
  BOOST_TEST(softplus_fn::apply(100.0f) == 100.0f);
  BOOST_TEST(softplus_fn::apply(1000.0) == 1000.0);
  BOOST_TEST(softplus_fn::apply(-100.0) == 3.720075976020836e-44, tt::tolerance(1e-14));
  BOOST_TEST(softplus_fn::apply(-1000.0f) == 0.0f);
  BOOST_TEST(tanh_fn::apply(30.0f) == 1.0f);
  BOOST_TEST(tanh_fn::apply(-1000.0) == -1.0);
  BOOST_TEST(tanh_fn::apply(1e-30) == 1e-30);
  BOOST_TEST(elu_fn<1.0>::apply(-1000.0) == -1.0);
  BOOST_TEST(elu_fn<1.0>::apply(1e30f) == 1e30f);
  BOOST_TEST(normal_cdf_fn::apply(-10.0) == 7.619853024160593e-24, tt::tolerance(1e-13));
  BOOST_TEST(gelu_fn::apply(-40.0f) == 0.0f);
  BOOST_TEST(gelu_fn::apply(40.0) == 40.0);
  BOOST_TEST(exp_fn::apply(-1000.0) == 0.0);
  BOOST_TEST(std::isinf(exp_fn::apply(100.0f)));
  BOOST_TEST(std::isnan(relu_fn::apply(std::numeric_limits<float>::quiet_NaN())));
  BOOST_TEST(std::isnan(sign_fn::apply(std::numeric_limits<double>::quiet_NaN())));
  BOOST_TEST(step_fn::apply(0.0) == 0.0);
  BOOST_TEST(pow_fn<3.0>::apply(-2.0f) == -8.0f);
  BOOST_TEST(pow_fn<-2.0>::apply(-0.5) == 4.0);
}

// ---- the vectorizable elementary functions against <cmath> --------------------------------------
template <class T>
void check_math_accuracy() {
  std::mt19937_64 rng(7);
  struct probe {
    const char* name;
    T (*f)(T);
    long double (*ref)(long double);
    long double lo, hi;
  };
  const probe probes[] = {
      {"exp", km::exp<T>, [](long double a) { return std::exp(a); }, -800, 800},
      {"exp", km::exp<T>, [](long double a) { return std::exp(a); }, -3, 3},
      {"expm1", km::expm1<T>, [](long double a) { return std::expm1(a); }, -1, 1},
      {"expm1", km::expm1<T>, [](long double a) { return std::expm1(a); }, -60, 720},
      {"log", km::log<T>, [](long double a) { return std::log(a); }, 0, 3},
      {"log", km::log<T>, [](long double a) { return std::log(a); }, 0, 1e30},
      {"log1p", km::log1p<T>, [](long double a) { return std::log1p(a); }, -0.999, 2},
      {"tanh", km::tanh<T>, [](long double a) { return std::tanh(a); }, -1, 1},
      {"tanh", km::tanh<T>, [](long double a) { return std::tanh(a); }, -25, 25},
      {"sigmoid", km::sigmoid<T>, [](long double a) { return 1 / (1 + std::exp(-a)); }, -120, 120},
      {"softplus", km::softplus<T>,
       [](long double a) { return std::log1p(std::exp(-std::abs(a))) + std::max(a, 0.0L); }, -120, 120},
  };
  for (const auto& pr : probes) {
    std::uniform_real_distribution<long double> u(pr.lo, pr.hi);
    double worst = 0;
    T worst_at = 0;
    for (int i = 0; i < 20000; ++i) {
      const T a = static_cast<T>(u(rng));
      const double e = ulps<T>(pr.f(a), pr.ref(a));
      if (e > worst) worst = e, worst_at = a;
    }
    BOOST_TEST_CONTEXT(pr.name << " on [" << double(pr.lo) << ", " << double(pr.hi) << "], worst at " << worst_at) {
      BOOST_TEST(worst <= 3.5);  // measured: <= 1.1 ulp for exp/log, <= 2.8 for the others
    }
  }
  // Tiny arguments, subnormal results and the special values.
  constexpr T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  constexpr T tiny = std::numeric_limits<T>::denorm_min(), least = std::numeric_limits<T>::min();
  BOOST_TEST(km::expm1(T(1e-20)) == T(1e-20));
  BOOST_TEST(km::log1p(T(1e-20)) == T(1e-20));
  BOOST_TEST(km::expm1(tiny) == tiny);
  BOOST_TEST(ulps<T>(km::exp(std::is_same_v<T, float> ? T(-100) : T(-740)),
                     std::exp(std::is_same_v<T, float> ? -100.0L : -740.0L)) <= 1);  // subnormal
  BOOST_TEST(ulps<T>(km::log(tiny), std::log((long double)tiny)) <= 1);
  BOOST_TEST(ulps<T>(km::log(least / 3), std::log((long double)(least / 3))) <= 1);
  BOOST_TEST(km::exp(inf) == inf);
  BOOST_TEST(km::exp(-inf) == T(0));
  BOOST_TEST(km::exp(T(0)) == T(1));
  BOOST_TEST(km::expm1(-inf) == T(-1));
  BOOST_TEST(km::expm1(inf) == inf);
  BOOST_TEST(km::log(T(0)) == -inf);
  BOOST_TEST(km::log(-T(0)) == -inf);
  BOOST_TEST(km::log(inf) == inf);
  BOOST_TEST(km::log(T(1)) == T(0));
  BOOST_TEST(std::isnan(km::log(T(-1))));
  BOOST_TEST(std::isnan(km::log(-inf)));
  BOOST_TEST(km::log1p(T(-1)) == -inf);
  BOOST_TEST(km::log1p(inf) == inf);
  BOOST_TEST(km::tanh(inf) == T(1));
  BOOST_TEST(km::tanh(-inf) == T(-1));
  BOOST_TEST(std::signbit(km::tanh(-T(0))));
  BOOST_TEST(km::sigmoid(-inf) == T(0));
  BOOST_TEST(km::sigmoid(inf) == T(1));
  BOOST_TEST(km::softplus(inf) == inf);
  BOOST_TEST(km::softplus(-inf) == T(0));
  for (T (*f)(T) : {km::exp<T>, km::expm1<T>, km::log<T>, km::log1p<T>, km::tanh<T>, km::sigmoid<T>, km::softplus<T>})
    BOOST_TEST(std::isnan(f(nan)));
}
BOOST_AUTO_TEST_CASE(elementary_functions_float) { check_math_accuracy<float>(); }
BOOST_AUTO_TEST_CASE(elementary_functions_double) { check_math_accuracy<double>(); }

// ---- gradients against finite differences -------------------------------------------------------
// Every row at once, each on its own variable (the report is per variable, i.e. per function).
auto smooth_functions() {
  return sum(exp(a_exp) * r) + sum(square(a_square) * r) + sum(pow<3>(a_pow3) * r) +
         sum(pow<-1>(a_powm1) * r) + sum(sigmoid(a_sigmoid) * r) + sum(tanh(a_tanh) * r) +
         sum(softplus(a_softplus) * r) + sum(gelu(a_gelu) * r) + sum(gelu_tanh(a_gelu_tanh) * r) +
         sum(erf(a_erf) * r) + sum(normal_cdf(a_cdf) * r) + sum(normal_pdf(a_pdf) * r) +
         sum(elu(a_elu) * r) + sum(elu<0.5>(a_elu05) * r);
}
auto positive_functions() {
  return sum(log(a_log) * r) + sum(sqrt(a_sqrt) * r) + sum(pow<2.5>(a_pow25) * r) +
         sum(pow<-1.5>(a_powm15) * r) + sum(pow<0.3>(a_pow03) * r);
}
auto kinked_functions() {
  return sum(abs(a_abs) * r) + sum(relu(a_relu) * r) + sum(leaky_relu(a_leaky) * r) +
         sum(leaky_relu<0.2>(a_leaky02) * r);
}
constexpr auto smooth_vars = std::tuple{a_exp, a_square, a_pow3, a_powm1, a_sigmoid, a_tanh, a_softplus,
                                        a_gelu, a_gelu_tanh, a_erf, a_cdf, a_pdf, a_elu, a_elu05};
constexpr auto positive_vars = std::tuple{a_log, a_sqrt, a_pow25, a_powm15, a_pow03};
constexpr auto kinked_vars = std::tuple{a_abs, a_relu, a_leaky, a_leaky02};

// check_gradients<T>(f, wrt(vars...), given(var, values)..., given(r), extra...).
template <class T, class F, class Vars, class... Extra>
gradient_report check_all(F f, Vars vars, const tensor<double, 1>& values, const Extra&... extra) {
  return std::apply(
      [&](auto... vs) {
        return check_gradients<T>(f, wrt(vs...), given(vs, values)..., given(r, projection), extra...);
      },
      vars);
}

BOOST_AUTO_TEST_CASE(gradients_float) {
  BOOST_TEST(testing::gradients_ok(check_all<float>(smooth_functions(), smooth_vars, signed_values)));
  BOOST_TEST(testing::gradients_ok(check_all<float>(positive_functions(), positive_vars, positive_values)));
  BOOST_TEST(testing::gradients_ok(check_all<float>(kinked_functions(), kinked_vars, signed_values)));
}
BOOST_AUTO_TEST_CASE(gradients_double) {
  BOOST_TEST(testing::gradients_ok(check_all<double>(smooth_functions(), smooth_vars, signed_values)));
  BOOST_TEST(testing::gradients_ok(check_all<double>(positive_functions(), positive_vars, positive_values)));
  BOOST_TEST(testing::gradients_ok(check_all<double>(kinked_functions(), kinked_vars, signed_values)));
}

// ---- second derivatives: hvp = grad(sum(grad(f, x) * v), x), per variable -------------------------
// In double only: the symbolic second derivative is the same expression in float, and these
// programs are the most expensive part of this file to compile.
template <class... G>
auto sum_times_v(std::tuple<G...>) {
  return (sum(G{} * v) + ...);
}
template <class F, class... Vs>
auto hessian_vector_function(F f, std::tuple<Vs...>) {
  return sum_times_v(grad(f, Vs{}...));
}
BOOST_AUTO_TEST_CASE(second_derivatives) {
  const auto vd = given(v, direction);
  auto smooth = hessian_vector_function(smooth_functions(), smooth_vars);
  auto positive = hessian_vector_function(positive_functions(), positive_vars);
  auto kinked = hessian_vector_function(kinked_functions(), kinked_vars);  // zero away from the kinks
  BOOST_TEST(testing::gradients_ok(check_all<double>(smooth, smooth_vars, signed_values, vd)));
  BOOST_TEST(testing::gradients_ok(check_all<double>(positive, positive_vars, positive_values, vd)));
  BOOST_TEST(testing::gradients_ok(check_all<double>(kinked, kinked_vars, signed_values, vd)));
}

// ---- a composite, with broadcasting -------------------------------------------------------------
namespace {
constexpr var<"x", 2> x2;
constexpr var<"y", 2> y2;
constexpr var<"b", 1> b1;
constexpr var<"s", 0> s0;
constexpr var<"r", 2> r2;
constexpr var<"v", 2> v2;
tensor<double, 2> random2(unsigned seed) {
  tensor<double, 2> t({2, 3});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.5, 1.5);
  for (auto& e : t) e = u(rng);
  return t;
}
}  // namespace

BOOST_AUTO_TEST_CASE(composite_forward) {
  auto f = sigmoid(tanh(x2) * y2);
  auto program = compile<double>(f);
  const tensor<double, 2> xv({1, 2}, {0.5, -1.0}), yv({1, 2}, {2.0, 0.5});
  program.bind(x2, xv).bind(y2, yv).run();
  BOOST_TEST(program.value(f).data[0] == 0.7159040902975481, tt::tolerance(1e-15));
  BOOST_TEST(program.value(f).data[1] == 0.4059346659433397, tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(composite_gradients_with_broadcasting) {
  // An activation of a broadcast sum, and a unary of a scalar broadcast over a matrix.
  auto f = sum(sigmoid(tanh(x2) * y2) * r2) + sum(elu(x2 + b1) * r2) + sum(softplus(s0) * exp(y2) * r2);
  const tensor<double, 1> bv({3}, {0.3, -0.2, 0.1});
  const tensor<double, 0> sv(0.7);
  auto check = [&]<class T>(std::type_identity<T>) {
    return check_gradients<T>(f, wrt(x2, y2, b1, s0), given(x2, random2(1)), given(y2, random2(2)), given(b1, bv),
                              given(s0, sv), given(r2, random2(3)));
  };
  BOOST_TEST(testing::gradients_ok(check(std::type_identity<float>{})));
  BOOST_TEST(testing::gradients_ok(check(std::type_identity<double>{})));
  // Second derivative in x (the s0 term does not depend on x, so s0 is not a leaf of grad(f, x)).
  auto report = check_gradients<double>(sum(grad(f, x2) * v2), wrt(x2), given(x2, random2(1)), given(y2, random2(2)),
                                        given(b1, bv), given(r2, random2(3)), given(v2, random2(4)));
  BOOST_TEST(testing::gradients_ok(report));
}

// ---- the parallel, vectorized map: every element, any thread count --------------------------------
// Compared bitwise with the scalar formula evaluated on this thread, so with gradual underflow
// in the kernels too (gelu's far negative tail is subnormal, which flushing would zero).
template <class T, class Fn, class E>
void check_large_map(E e) {
  set_flush_denormals(false);
  struct restore {
    ~restore() { set_flush_denormals(true); }
  } restore_flushing;
  constexpr std::size_t n = 200003;  // several parallel chunks and an odd tail
  tensor<T, 1> xv({n});
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-30, 30);
  for (auto& a : xv) a = static_cast<T>(u(rng));
  auto program = compile<T>(e);
  program.bind(x, xv).run();
  const std::vector<T> parallel(program.value(e).data, program.value(e).data + n);
  program.set_threads(1).run();
  std::size_t mismatches = 0, thread_mismatches = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T expect = Fn::apply(xv[i]);
    mismatches += !(parallel[i] == expect || (std::isnan(expect) && std::isnan(parallel[i])));
    thread_mismatches += !(parallel[i] == program.value(e).data[i] || std::isnan(parallel[i]));
  }
  BOOST_TEST_CONTEXT(to_string(e)) {
    BOOST_TEST(mismatches == 0u);
    BOOST_TEST(thread_mismatches == 0u);
  }
}
BOOST_AUTO_TEST_CASE(large_tensors_match_the_scalar_formula) {
  check_large_map<float, tanh_fn>(tanh(x));
  check_large_map<double, exp_fn>(exp(x));
  check_large_map<float, gelu_fn>(gelu(x));
  check_large_map<double, log_fn>(log(x));  // NaN for the negative half
}

BOOST_AUTO_TEST_CASE(shape_follows_the_argument) {
  constexpr var<"z", 3> z;
  auto program = compile<float>(relu(z));
  tensor<float, 3> zv({2, 1, 3}, {-1, 2, -3, 4, -5, 6});
  program.bind(z, zv).run();
  BOOST_TEST(program.value(relu(z)).shape == (shape{2, 1, 3}));
  BOOST_TEST(program.value(relu(z)).data[3] == 4.0f);
  BOOST_TEST(program.value(relu(z)).data[4] == 0.0f);
}

// relu's gradient g * step(x) runs fused (fusion_rule<mul_op, ., step>): one pass reading x, the
// step node not computed. Bitwise the unfused product g * T(x > 0), special values included
// (inf * 0 = NaN, -g * 0 = -0, NaN x -> 0), with broadcasting on either side, and step(x) itself
// still computed when it is an output too.
BOOST_AUTO_TEST_CASE(relu_gradient_is_fused_and_bitwise_unfused) {
  constexpr var<"g", 2> g;
  constexpr var<"h", 2> h;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const tensor<double, 2> gv({2, 4}, {1.5, -2.0, inf, -inf, nan, 3.0, -1.0, 0.5});
  const tensor<double, 2> hv({2, 4}, {1.0, -1.0, 0.0, -0.0, 2.0, nan, 1e-300, -3.0});
  const tensor<double, 1> xv({4}, {1.0, -1.0, 0.0, 2.0});
  auto fused_right = g * step(h);
  auto fused_left = step(h) * g;
  auto broadcast = g * step(x);
  auto program = compile<double>(fused_right, fused_left, broadcast, step(h));
  program.bind(g, gv).bind(h, hv).bind(x, xv).run();
  BOOST_TEST(program.listing().find("on the fly") != std::string::npos, program.listing());
  auto same_bits = [](double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; };
  for (std::size_t i = 0; i < 8; ++i) {
    const double s = hv[i] > 0 ? 1.0 : 0.0, sx = xv[i % 4] > 0 ? 1.0 : 0.0;
    BOOST_TEST(same_bits(program.value(fused_right).data[i], gv[i] * s), "element " << i);
    BOOST_TEST(same_bits(program.value(fused_left).data[i], s * gv[i]), "element " << i);
    BOOST_TEST(same_bits(program.value(broadcast).data[i], gv[i] * sx), "element " << i);
    BOOST_TEST(program.value(step(h)).data[i] == s);
  }
  // The gradient of relu reaches the fused kernel: forward + backward agree with the formula.
  auto f = sum(relu(h) * g);
  auto grad_program = compile<float>(f, wrt(h));
  const auto gf = test_support::cast<float>(test_support::random_uniform<2>({2, 4}, 5));
  const auto hf = test_support::cast<float>(test_support::random_uniform<2>({2, 4}, 6));
  grad_program.bind(g, gf).bind(h, hf).run();
  BOOST_TEST(grad_program.listing().find("[not computed]") != std::string::npos, grad_program.listing());
  for (std::size_t i = 0; i < 8; ++i) BOOST_TEST(grad_program.gradient(h).data[i] == (hf[i] > 0 ? gf[i] : 0.0f));
}

// relu(a + b) runs as one pass (fusion_rule<relu, add>), and relu's gradient then reads relu's
// output instead of a + b, so a + b is never stored: values bitwise those of the formulas, with a
// broadcast bias, NaN and -0 among the inputs.
BOOST_AUTO_TEST_CASE(bias_relu_is_fused_and_its_sum_not_stored) {
  constexpr var<"a", 2> a;
  constexpr var<"bias", 1> bias;
  constexpr var<"up", 2> up;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const tensor<double, 2> av({2, 3}, {1.0, -2.0, nan, 0.5, -0.0, 3.0});
  const tensor<double, 1> bv({3}, {0.25, 1.5, -1.0});
  const tensor<double, 2> uv({2, 3}, {1.0, 2.0, 3.0, -4.0, 5.0, -6.0});
  auto y = relu(a + bias);
  auto f = sum(y * up);
  auto program = compile<double>(f, y, wrt(a, bias));
  program.bind(a, av).bind(bias, bv).bind(up, uv).run();
  const std::string listing = program.listing();
  BOOST_TEST(listing.find("add(%0, %1) : (2, 3)  [not computed]") != std::string::npos, listing);
  BOOST_TEST(listing.find("on the fly from") != std::string::npos, listing);
  auto same_bits = [](double p, double q) { return std::memcmp(&p, &q, sizeof p) == 0; };
  for (std::size_t i = 0; i < 6; ++i) {
    const double s = av[i] + bv[i % 3], r = s < 0 ? 0.0 : s;  // relu's formula: NaN passes
    BOOST_TEST(same_bits(program.value(y).data[i], r), "element " << i);
    BOOST_TEST(same_bits(program.gradient(a).data[i], s > 0 ? uv[i] : uv[i] * 0.0), "element " << i);
  }
}

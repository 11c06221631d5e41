#define BOOST_TEST_MODULE matmul
#include <boost/test/unit_test.hpp>

#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {

using test_support::cast;
using test_support::random_away_from_zero;
using test_support::random_uniform;

template <class T, std::size_t R>
view<const T> cv(const tensor<T, R>& t) {
  return t.as_view();
}

// The library's reference implementation (gemm.hpp's "reference") of the product `form` names.
template <class T>
std::vector<T> reference_matmul(view<const T> a, view<const T> b, kernels::matmul_form form, const shape& out_shape) {
  std::vector<T> out(out_shape.numel());
  kernels::matmul_with<T>("reference", {out.data(), out_shape}, a, b, form);
  return out;
}

template <class T>
double tolerance(std::size_t k) {
  return (std::is_same_v<T, float> ? 2e-6 : 1e-14) * double(k + 1) * 4;
}

template <class T>
void check_close(view<const T> got, const std::vector<T>& want, std::size_t k, const std::string& what) {
  BOOST_TEST_REQUIRE(got.size() == want.size(), what);
  double worst = 0;
  for (std::size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(double(got.data[i]) - double(want[i])));
  BOOST_TEST(worst <= tolerance<T>(k), what << ": max error " << worst);
}

struct dims {
  std::size_t m, k, n;
};
constexpr std::array<dims, 7> odd_dims{{{1, 1, 1}, {7, 65, 1}, {1, 7, 65}, {65, 7, 33}, {33, 65, 7}, {65, 1, 7}, {130, 257, 70}}};

// Stored shape of an argument: batch dims, then (rows, cols) or (cols, rows) when transposed.
shape stored(const std::vector<std::size_t>& batch, std::size_t rows, std::size_t cols, bool transposed) {
  shape s;
  for (auto b : batch) s.push_back(b);
  s.push_back(transposed ? cols : rows);
  s.push_back(transposed ? rows : cols);
  return s;
}

// Every form of the kernel (both transposes, sum_batch) against the naive reference, for one
// batch configuration. The output shape comes from the op's own shape rule.
template <class T, bool TA, bool TB, bool SB>
void check_kernel_form(const std::vector<std::size_t>& batch_a, const std::vector<std::size_t>& batch_b, unsigned seed) {
  for (const auto& d : odd_dims) {
    shape as = stored(batch_a, d.m, d.k, TA), bs = stored(batch_b, d.k, d.n, TB);
    std::array<shape, 2> in{as, bs};
    shape os = matmul_op<TA, TB, SB>::infer_shape(in);
    std::vector<T> a(as.numel()), b(bs.numel()), out(os.numel(), T(12345));
    std::mt19937 rng(seed++);
    std::uniform_real_distribution<double> u(-1, 1);
    for (auto& v : a) v = T(u(rng));
    for (auto& v : b) v = T(u(rng));
    view<const T> av{a.data(), as}, bv{b.data(), bs};
    kernels::matmul<T>(view<T>{out.data(), os}, av, bv, matmul_op<TA, TB, SB>::form);
    auto want = reference_matmul<T>(av, bv, matmul_op<TA, TB, SB>::form, os);
    std::size_t batch = 1;
    for (auto e : batch_a) batch *= e;
    check_close<T>(view<const T>{out.data(), os}, want, SB ? d.k * batch : d.k,
                   fmt::format("{} a{} b{}", op_label<matmul_op<TA, TB, SB>>(), as, bs));
  }
}

template <class T>
void check_all_kernel_forms() {
  auto each_transpose = [](auto&& f) {
    f.template operator()<false, false>();
    f.template operator()<true, false>();
    f.template operator()<false, true>();
    f.template operator()<true, true>();
  };
  const std::vector<std::size_t> none{}, b23{2, 3}, b3{3};
  each_transpose([&]<bool TA, bool TB>() {
    check_kernel_form<T, TA, TB, false>(none, none, 1);  // (M, K) x (K, N)
    check_kernel_form<T, TA, TB, false>(b23, b23, 2);    // identical batch dims
    check_kernel_form<T, TA, TB, false>(b3, none, 3);    // shared b
    check_kernel_form<T, TA, TB, false>(none, b3, 4);    // shared a
    check_kernel_form<T, TA, TB, true>(b23, b23, 5);     // summed over the batch
    check_kernel_form<T, TA, TB, true>(b3, b3, 6);
  });
}

constexpr var<"a", 2> a2;
constexpr var<"b", 2> b2;
constexpr var<"a", 3> a3;
constexpr var<"b", 3> b3;
constexpr var<"a", 4> a4;
constexpr var<"b", 4> b4;
constexpr var<"r", 2> r2;
constexpr var<"r", 3> r3;
constexpr var<"r", 4> r4;

}  // namespace

BOOST_AUTO_TEST_CASE(prints_as_matmul_with_transpose_attributes) {
  BOOST_TEST(to_string(matmul(a2, b2)) == "matmul(a, b)");
  BOOST_TEST(to_string(dense(a2, b2)) == "matmul(a, b)");
  auto [ga, gb] = grad(sum(matmul(a2, b2) * r2), a2, b2);
  BOOST_TEST_MESSAGE("d/da: " << to_string(ga) << "\nd/db: " << to_string(gb));
  // dA = g b^T and dB = a^T g, with g the adjoint of matmul(a, b) (its exact form is grad's).
  BOOST_TEST(to_string(ga).starts_with("sum_to(matmul[_,T]("));
  BOOST_TEST(to_string(ga).ends_with(", matmul(a, b)), b), a)"));
  BOOST_TEST(to_string(gb).starts_with("sum_to(matmul[T,_](a, "));
  // A 2-d b shared by a batch of a: its adjoint sums over the batch, in one op.
  auto gw = grad(sum(matmul(a3, b2)), b2);
  BOOST_TEST_MESSAGE("d/db (batched a): " << to_string(gw));
  BOOST_TEST(to_string(gw).find("matmul[T,_,sum_batch](a, ") != std::string::npos);
  // Second derivatives are matmuls again.
  auto h = grad(sum(grad(sum(matmul(a3, b2) * matmul(a3, b2)), b2) * r2), a3);
  BOOST_TEST_MESSAGE("second derivative: " << to_string(h));
  BOOST_TEST(to_string(h).find("matmul[_,T](") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(forward_hand_computed) {
  auto prog = compile<double>(matmul(a2, b2));
  tensor<double, 2> av({2, 3}, {1, 2, 3, 4, 5, 6});
  tensor<double, 2> bv({3, 2}, {7, 8, 9, 10, 11, 12});
  prog.bind(a2, av).bind(b2, bv).run();
  auto c = prog.output<0>();
  BOOST_TEST(c.shape == (shape{2, 2}));
  const double want[] = {58, 64, 139, 154};
  for (int i = 0; i < 4; ++i) BOOST_TEST(c.data[i] == want[i]);
}

BOOST_AUTO_TEST_CASE(kernel_forms_match_reference_float) { check_all_kernel_forms<float>(); }
BOOST_AUTO_TEST_CASE(kernel_forms_match_reference_double) { check_all_kernel_forms<double>(); }

BOOST_AUTO_TEST_CASE(kernel_large_tiled_products_match_reference) {
  // Large enough to be cut into many tiles (with ragged edges), small enough for the reference.
  for (auto [m, k, n] : {std::array<std::size_t, 3>{300, 200, 260}, {517, 64, 129}, {1, 3000, 1000}}) {
    auto a = cast<float>(random_uniform<2>({m, k}, 7)), b = cast<float>(random_uniform<2>({k, n}, 8));
    std::vector<float> c(m * n);
    kernels::gemm_dims d{false, false, m, n, k, k, n, n};
    kernels::gemm<float>(d, a.data(), b.data(), c.data());
    auto want = reference_matmul<float>(cv(a), cv(b), {}, shape{m, n});
    check_close<float>(view<const float>{c.data(), shape{m, n}}, want, k, fmt::format("gemm {}x{}x{}", m, k, n));
  }
}

BOOST_AUTO_TEST_CASE(program_forward_matches_reference) {
  // The user-facing op: 2-d, batched, shared b (dense on sequences), shared a; odd sizes.
  for (const auto& d : odd_dims) {
    {
      auto av = cast<float>(random_uniform<2>({d.m, d.k}, 11)), bv = cast<float>(random_uniform<2>({d.k, d.n}, 12));
      auto prog = compile<float>(matmul(a2, b2));
      prog.bind(a2, av).bind(b2, bv).run();
      check_close<float>(prog.output<0>(), reference_matmul<float>(cv(av), cv(bv), {}, shape{d.m, d.n}),
                         d.k, "2-d");
    }
    {
      auto av = cast<float>(random_uniform<3>({3, d.m, d.k}, 13)),
           bv = cast<float>(random_uniform<3>({3, d.k, d.n}, 14));
      auto prog = compile<float>(matmul(a3, b3));
      prog.bind(a3, av).bind(b3, bv).run();
      check_close<float>(prog.output<0>(),
                         reference_matmul<float>(cv(av), cv(bv), {}, shape{3, d.m, d.n}), d.k, "batched");
    }
    {
      auto av = random_uniform<4>({2, 3, d.m, d.k}, 15);
      auto bv = random_uniform<2>({d.k, d.n}, 16);
      auto prog = compile<double>(matmul(a4, b2));
      prog.bind(a4, av).bind(b2, bv).run();
      check_close<double>(prog.output<0>(),
                          reference_matmul<double>(cv(av), cv(bv), {}, shape{2, 3, d.m, d.n}), d.k,
                          "shared b");
    }
    {
      auto av = random_uniform<2>({d.m, d.k}, 17);
      auto bv = random_uniform<3>({4, d.k, d.n}, 18);
      auto prog = compile<double>(matmul(a2, b3));
      prog.bind(a2, av).bind(b3, bv).run();
      check_close<double>(prog.output<0>(),
                          reference_matmul<double>(cv(av), cv(bv), {}, shape{4, d.m, d.n}), d.k,
                          "shared a");
    }
  }
}

BOOST_AUTO_TEST_CASE(empty_extents_give_zeros) {
  auto prog = compile<float>(matmul(a2, b2));
  tensor<float, 2> av({3, 0}), bv({0, 2});
  prog.bind(a2, av).bind(b2, bv).run();
  auto c = prog.output<0>();
  BOOST_TEST(c.shape == (shape{3, 2}));
  for (std::size_t i = 0; i < c.size(); ++i) BOOST_TEST(c.data[i] == 0.0f);
}

template <class T>
void check_matmul_gradients() {
  using namespace typegrad::testing;
  {  // 2-d, with a 1-row and a 1-column side
    auto f = sum(matmul(a2, b2) * r2);
    auto report = check_gradients<T>(f, wrt(a2, b2), given(a2, random_away_from_zero<2>({1, 7}, 1)),
                                     given(b2, random_away_from_zero<2>({7, 5}, 2)),
                                     given(r2, random_away_from_zero<2>({1, 5}, 3)));
    BOOST_TEST(gradients_ok(report));
    report = check_gradients<T>(f, wrt(a2, b2), given(a2, random_away_from_zero<2>({6, 4}, 4)),
                                given(b2, random_away_from_zero<2>({4, 1}, 5)),
                                given(r2, random_away_from_zero<2>({6, 1}, 6)));
    BOOST_TEST(gradients_ok(report));
  }
  {  // identical batch dims
    auto f = sum(matmul(a4, b4) * r4);
    auto report = check_gradients<T>(f, wrt(a4, b4), given(a4, random_away_from_zero<4>({2, 3, 4, 5}, 7)),
                                     given(b4, random_away_from_zero<4>({2, 3, 5, 3}, 8)),
                                     given(r4, random_away_from_zero<4>({2, 3, 4, 3}, 9)));
    BOOST_TEST(gradients_ok(report));
  }
  {  // shared 2-d b (its gradient sums over the batch)
    auto f = sum(matmul(a3, b2) * r3);
    auto report = check_gradients<T>(f, wrt(a3, b2), given(a3, random_away_from_zero<3>({3, 4, 5}, 10)),
                                     given(b2, random_away_from_zero<2>({5, 2}, 11)),
                                     given(r3, random_away_from_zero<3>({3, 4, 2}, 12)));
    BOOST_TEST(gradients_ok(report));
  }
  {  // shared 2-d a
    auto f = sum(matmul(a2, b3) * r3);
    auto report = check_gradients<T>(f, wrt(a2, b3), given(a2, random_away_from_zero<2>({4, 5}, 13)),
                                     given(b3, random_away_from_zero<3>({3, 5, 2}, 14)),
                                     given(r3, random_away_from_zero<3>({3, 4, 2}, 15)));
    BOOST_TEST(gradients_ok(report));
  }
  {  // the same leaf on both sides: x x
    auto f = sum(matmul(a2, a2) * r2);
    auto report = check_gradients<T>(f, wrt(a2), given(a2, random_away_from_zero<2>({4, 4}, 16)),
                                     given(r2, random_away_from_zero<2>({4, 4}, 17)));
    BOOST_TEST(gradients_ok(report));
  }
}
BOOST_AUTO_TEST_CASE(gradients_float) { check_matmul_gradients<float>(); }
BOOST_AUTO_TEST_CASE(gradients_double) { check_matmul_gradients<double>(); }

namespace {
// A two-layer network with a polynomial nonlinearity (matmul, +, *, mean only):
//   h = x w1,  y = (h + 0.1 h*h) w2,  f = mean(y * y).
constexpr var<"x", 3> x3;
constexpr var<"w1", 2> w1;
constexpr var<"w2", 2> w2;
constexpr var<"v", 2> v2;
constexpr auto two_layer() {
  auto h = matmul(x3, w1);
  auto y = matmul(h + lit<0.1> * h * h, w2);
  return mean(y * y);
}
}  // namespace

template <class T>
void check_second_derivatives() {
  using namespace typegrad::testing;
  // The gradient of <grad_w1 f, v> is the Hessian-vector product H v (and, with respect to x and
  // w2, the mixed second derivatives): every path runs through the adjoints of matmul adjoints,
  // including the sum_batch products of the shared weights.
  auto f = two_layer();
  auto hv = sum(grad(f, w1) * v2);
  auto report = check_gradients<T>(hv, wrt(w1, x3, w2), given(x3, random_away_from_zero<3>({2, 3, 4}, 21)),
                                   given(w1, random_away_from_zero<2>({4, 5}, 22)),
                                   given(w2, random_away_from_zero<2>({5, 3}, 23)),
                                   given(v2, random_away_from_zero<2>({4, 5}, 24)));
  BOOST_TEST(gradients_ok(report));
  // A shared 2-d left factor: the sum_batch product without the single-GEMM folding.
  constexpr var<"p", 2> p2;
  auto g = mean(matmul(p2, x3) * matmul(p2, x3) * matmul(p2, x3));
  auto gv = sum(grad(g, p2) * v2);
  report = check_gradients<T>(gv, wrt(p2, x3), given(p2, random_away_from_zero<2>({5, 2}, 25)),
                              given(x3, random_away_from_zero<3>({3, 2, 4}, 26)),
                              given(v2, random_away_from_zero<2>({5, 2}, 27)));
  BOOST_TEST(gradients_ok(report));
}
BOOST_AUTO_TEST_CASE(second_derivatives_float) { check_second_derivatives<float>(); }
BOOST_AUTO_TEST_CASE(second_derivatives_double) { check_second_derivatives<double>(); }

BOOST_AUTO_TEST_CASE(hvp_matches_differenced_gradients) {
  auto f = two_layer();
  auto xv = random_away_from_zero<3>({2, 3, 4}, 31);
  auto w1v = random_away_from_zero<2>({4, 5}, 32), w2v = random_away_from_zero<2>({5, 3}, 33),
       vv = random_away_from_zero<2>({4, 5}, 34);
  auto hprog = compile<double>(hvp(f, w1, v2));
  hprog.bind(x3, xv).bind(w1, w1v).bind(w2, w2v).bind(v2, vv).run();
  auto gprog = compile<double>(f, wrt(w1));
  const double h = 1e-5;
  auto w_plus = w1v, w_minus = w1v;
  for (std::size_t i = 0; i < w1v.size(); ++i) {
    w_plus[i] += h * vv[i];
    w_minus[i] -= h * vv[i];
  }
  gprog.bind(x3, xv).bind(w2, w2v).bind(w1, w_plus).run();
  tensor<double, 2> g_plus(gprog.gradient(w1));
  gprog.bind(w1, w_minus).run();
  tensor<double, 2> g_minus(gprog.gradient(w1));
  auto hv = hprog.output<0>();
  BOOST_TEST_REQUIRE(hv.shape == w1v.shape_of());
  for (std::size_t i = 0; i < w1v.size(); ++i)
    BOOST_TEST(hv.data[i] == (g_plus[i] - g_minus[i]) / (2 * h), boost::test_tools::tolerance(1e-6));
}

BOOST_AUTO_TEST_CASE(dense_with_bias_broadcasts) {
  constexpr var<"x", 3> x;
  constexpr var<"w", 2> w;
  constexpr var<"b", 1> b;
  // Forward, hand computed: x (2, 2, 3) of 0..11, w (3, 2), b (2).
  auto prog = compile<double>(dense(x, w, b));
  tensor<double, 3> xv({2, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  tensor<double, 2> wv({3, 2}, {1, 0, 0, 1, 1, -1});
  tensor<double, 1> bv({2}, {10, 20});
  prog.bind(x, xv).bind(w, wv).bind(b, bv).run();
  auto y = prog.output<0>();
  BOOST_TEST(y.shape == (shape{2, 2, 2}));
  // row (x0, x1, x2) -> (x0 + x2 + 10, x1 - x2 + 20)
  const double want[] = {12, 19, 18, 19, 24, 19, 30, 19};
  for (int i = 0; i < 8; ++i) BOOST_TEST(y.data[i] == want[i]);
  BOOST_TEST(to_string(dense(x, w, b)) == "matmul(x, w) + b");

  using namespace typegrad::testing;
  constexpr var<"r", 3> r;
  auto f = sum(dense(x, w, b) * r);
  auto xg = random_away_from_zero<3>({3, 4, 5}, 41), rg = random_away_from_zero<3>({3, 4, 2}, 44);
  auto wg = random_away_from_zero<2>({5, 2}, 42);
  tensor<double, 1> bg({2}, {0.5, -0.75});
  BOOST_TEST(gradients_ok(check_gradients<float>(f, wrt(x, w, b), given(x, xg), given(w, wg), given(b, bg), given(r, rg))));
  BOOST_TEST(gradients_ok(check_gradients<double>(f, wrt(x, w, b), given(x, xg), given(w, wg), given(b, bg), given(r, rg))));
  // The bias gradient sums the output adjoint over every leading dim.
  auto gprog = compile<double>(f, wrt(b));
  gprog.bind(x, xg).bind(w, wg).bind(b, bg).bind(r, rg).run();
  auto gb = gprog.gradient(b);
  for (std::size_t j = 0; j < 2; ++j) {
    double s = 0;
    for (std::size_t i = 0; i < 12; ++i) s += rg[i * 2 + j];
    BOOST_TEST(gb.data[j] == s, boost::test_tools::tolerance(1e-12));
  }
}

namespace {
std::string shape_error_message(auto& prog) {
  try {
    prog.run();
  } catch (const shape_error& e) {
    BOOST_TEST_MESSAGE(e.what());
    return e.what();
  }
  BOOST_FAIL("expected a shape_error");
  return {};
}
}  // namespace

BOOST_AUTO_TEST_CASE(shape_errors_explain_the_rule) {
  {
    auto prog = compile<float>(matmul(a2, b2));
    tensor<float, 2> av({2, 3}), bv({4, 5});
    prog.bind(a2, av).bind(b2, bv);
    auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("matmul: inner extents differ: a is 2 x 3 but b is 4 x 5") != std::string::npos);
    BOOST_TEST(msg.find("leaf 'a' has shape (2, 3)") != std::string::npos);
    BOOST_TEST(msg.find("leaf 'b' has shape (4, 5)") != std::string::npos);
  }
  {
    auto prog = compile<float>(matmul(a3, b3));
    tensor<float, 3> av({2, 3, 4}), bv({3, 4, 5});
    prog.bind(a3, av).bind(b3, bv);
    auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("batch dims differ: a's leading dims (2) vs b's (3)") != std::string::npos);
  }
  {  // the error in an adjoint names it too (here forward fails first, at the same op)
    auto prog = compile<float>(sum(dense(a3, b2)), wrt(b2));
    tensor<float, 3> av({2, 3, 4});
    tensor<float, 2> bv({5, 6});
    prog.bind(a3, av).bind(b2, bv);
    auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("inner extents differ") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(two_threads_match_one_thread_bitwise) {
  // Large enough that every product is cut into several tiles. Covers the folded single GEMMs
  // (shared w and its weight gradient), batched products, a shared transposed left factor (the
  // per-item loop) and the per-tile sum over a batch (the gradient of the shared p).
  constexpr var<"x", 3> x;
  constexpr var<"w", 2> w;
  constexpr var<"b", 1> b;
  constexpr var<"p", 2> p;
  constexpr var<"q", 3> q;
  auto y = dense(x, w, b);  // (4, 96, 200) x (200, 150) + (150)
  auto z = matmul(p, y);    // (160, 96) x (4, 96, 150)
  auto t = matmul(z, q);    // (4, 160, 150) x (4, 150, 120)
  auto f = mean(t * t);
  auto prog = compile<float>(f, wrt(x, w, b, p, q));
  auto xv = cast<float>(random_uniform<3>({4, 96, 200}, 51)), qv = cast<float>(random_uniform<3>({4, 150, 120}, 52));
  auto wv = cast<float>(random_uniform<2>({200, 150}, 53)), pv = cast<float>(random_uniform<2>({160, 96}, 54));
  auto bv = cast<float>(random_uniform<1>({150}, 55));
  prog.bind(x, xv).bind(w, wv).bind(b, bv).bind(p, pv).bind(q, qv);
  auto snapshot = [&] {
    std::vector<std::vector<float>> out;
    auto keep = [&](view<const float> v) { out.emplace_back(v.data, v.data + v.size()); };
    keep(prog.value(f));
    keep(prog.gradient(x));
    keep(prog.gradient(w));
    keep(prog.gradient(b));
    keep(prog.gradient(p));
    keep(prog.gradient(q));
    return out;
  };
  prog.set_threads(1).run();
  auto one = snapshot();
  prog.set_threads(2).run();
  auto two = snapshot();
  prog.run();
  auto again = snapshot();
  BOOST_TEST(prog.threads() == 2);
  for (std::size_t i = 0; i < one.size(); ++i) {
    BOOST_TEST_REQUIRE(one[i].size() == two[i].size());
    BOOST_TEST(std::memcmp(one[i].data(), two[i].data(), one[i].size() * sizeof(float)) == 0, "output " << i);
    BOOST_TEST(std::memcmp(two[i].data(), again[i].data(), two[i].size() * sizeof(float)) == 0, "output " << i);
  }
  // And the values are right: the forward against the reference chain.
  auto yr = reference_matmul<float>(cv(xv), cv(wv), {}, shape{4, 96, 150});
  for (std::size_t i = 0; i < yr.size(); ++i) yr[i] += bv[i % 150];
  auto zr = reference_matmul<float>(cv(pv), view<const float>{yr.data(), shape{4, 96, 150}}, {}, shape{4, 160, 150});
  auto tr = reference_matmul<float>(view<const float>{zr.data(), shape{4, 160, 150}}, cv(qv), {}, shape{4, 160, 120});
  double ms = 0;
  for (float e : tr) ms += double(e) * e;
  ms /= double(tr.size());
  BOOST_TEST(one[0][0] == ms, boost::test_tools::tolerance(1e-4));
}

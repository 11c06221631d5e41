// Pooling: printing, hand-computed values (clipped windows, the in-range divisor, the first-max
// rule), the kernels against the library's naive reference implementation on random
// configurations, determinism, global pools and errors. Gradients by finite differences:
// test_pool_gradients.cpp; every implementation by name: test_pool_implementations.cpp.
#define BOOST_TEST_MODULE pool
#include <boost/test/unit_test.hpp>

#include <typegrad/kernels/pool.hpp>
#include <typegrad/typegrad.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support.hpp"

using namespace typegrad;
namespace tt = boost::test_tools;

namespace {
constexpr var<"s", 3> s;  // (N, L, C)
constexpr var<"x", 4> x;  // (N, H, W, C)
constexpr var<"r", 4> r;
constexpr var<"r3", 3> r3;

using kernels::pool_kernel;
using test_support::cast;
using test_support::max_error;
using test_support::random_uniform;
using test_support::values;

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

BOOST_AUTO_TEST_CASE(pools_print) {
  BOOST_TEST(to_string(max_pool(x, window<2>, stride<2>)) == "max_pool[window=2, stride=2](x)");
  BOOST_TEST(to_string(max_pool(x, window<2>)) == "max_pool[window=2, stride=2](x)");  // stride = window
  BOOST_TEST(to_string(avg_pool(x, stride<1, 2>, window<3, 2>)) == "avg_pool[window=(3, 2), stride=(1, 2)](x)");
  BOOST_TEST(to_string(global_avg_pool(x)) == "mean[axes=(1, 2)](x)");
  BOOST_TEST(to_string(global_max_pool(s)) == "max[axes=(1)](s)");
  // The default stride is the window's: the same node.
  static_assert(std::is_same_v<decltype(max_pool(x, window<2>)), decltype(max_pool(x, window<2>, stride<2>))>);
  // The gradients are the backward ops of the families, applied to the adjoint and x.
  const auto dmax = to_string(grad(sum(max_pool(x, window<3>, stride<2>) * r3), x));
  const auto davg = to_string(grad(sum(avg_pool(x, window<2>) * r3), x));
  BOOST_TEST(dmax.starts_with("max_pool_backward[window=3, stride=2]("));
  BOOST_TEST(dmax.ends_with(", x)"));
  BOOST_TEST(davg.starts_with("avg_pool_transpose[window=2, stride=2]("));
  BOOST_TEST(davg.ends_with(", x)"));
}

// The seed's sequence X = (1, -3, 4, 4, 2), one batch item, one channel.
BOOST_AUTO_TEST_CASE(one_dim_by_hand) {
  tensor<double, 3> xv({1, 5, 1}, {1, -3, 4, 4, 2});
  auto m2 = max_pool(s, window<2>);
  auto a2 = avg_pool(s, window<2>);
  auto m3 = max_pool(s, window<3>, stride<2>);
  auto a3 = avg_pool(s, window<3>, stride<2>);
  auto a3s3 = avg_pool(s, window<2>, stride<3>);  // s > v: input 2 is in no window
  auto prog = compile<double>(m2, a2, m3, a3, a3s3);
  prog.bind(s, xv).run();
  // 2/2: windows {1, -3}, {4, 4}, {2} (clipped: the last one holds one input).
  BOOST_TEST(values(prog.value(m2)) == (std::vector<double>{1, 4, 2}), tt::per_element());
  BOOST_TEST(values(prog.value(a2)) == (std::vector<double>{-1, 4, 2}), tt::per_element());
  // 3/2: windows {1, -3, 4}, {4, 4, 2}, {2}: the average divides by 3, 3 and 1 (in range), not by 3.
  BOOST_TEST(values(prog.value(m3)) == (std::vector<double>{4, 4, 2}), tt::per_element());
  BOOST_TEST(values(prog.value(a3)) == (std::vector<double>{2.0 / 3, 10.0 / 3, 2}),
             tt::tolerance(1e-15) << tt::per_element());
  // 2/3: windows {1, -3}, {4, 2}.
  BOOST_TEST(values(prog.value(a3s3)) == (std::vector<double>{-1, 3}), tt::per_element());
}

// Gradients by hand, 1-d, window 3 stride 2 (overlapping): argmax of {1, -3, 4} is position 2;
// {4, 4, 2} ties, and the first maximum in window order, position 2 again, takes it. So position
// 2 receives g0 + g1 (the overlapping windows add up), and the clipped {2} sends g2 to position 4.
// The average spreads g0/3, g1/3 and g2/1.
BOOST_AUTO_TEST_CASE(one_dim_gradients_by_hand) {
  tensor<double, 3> xv({1, 5, 1}, {1, -3, 4, 4, 2});
  tensor<double, 3> gv({1, 3, 1}, {10, 100, 1000});
  auto fm = sum(max_pool(s, window<3>, stride<2>) * r3);
  auto fa = sum(avg_pool(s, window<3>, stride<2>) * r3);
  auto pm = compile<double>(fm, wrt(s));
  auto pa = compile<double>(fa, wrt(s));
  pm.bind(s, xv).bind(r3, gv).run();
  pa.bind(s, xv).bind(r3, gv).run();
  BOOST_TEST(values(pm.gradient(s)) == (std::vector<double>{0, 0, 110, 0, 1000}), tt::per_element());
  const double a = 10.0 / 3, b = 100.0 / 3;
  BOOST_TEST(values(pa.gradient(s)) == (std::vector<double>{a, a, a + b, b, b + 1000}),
             tt::tolerance(1e-14) << tt::per_element());
}

// 2-d, 3x3 inputs with two channels and window 2: the last row and column of windows are clipped
// (2x2, 2x1, 1x2, 1x1 in-range inputs).
BOOST_AUTO_TEST_CASE(two_dims_clipped_by_hand) {
  // channel 0: 1..9 row-major; channel 1: its negation.
  tensor<float, 4> xv({1, 3, 3, 2});
  for (int i = 0; i < 9; ++i) {
    xv[2 * i] = float(i + 1);
    xv[2 * i + 1] = -float(i + 1);
  }
  auto m = max_pool(x, window<2>);
  auto a = avg_pool(x, window<2>);
  auto prog = compile<float>(m, a);
  prog.bind(x, xv).run();
  // Windows: {1,2,4,5}, {3,6}, {7,8}, {9}.
  BOOST_TEST(prog.value(m).shape == (shape{1, 2, 2, 2}));
  BOOST_TEST(values(prog.value(m)) == (std::vector<float>{5, -1, 6, -3, 8, -7, 9, -9}), tt::per_element());
  BOOST_TEST(values(prog.value(a)) == (std::vector<float>{3, -3, 4.5f, -4.5f, 7.5f, -7.5f, 9, -9}),
             tt::per_element());
}

// ---- the kernels against the naive reference ---------------------------------------------------

namespace {
struct random_config {
  shape x;
  kernels::pool_window w;
};

// D ordered dims of extents 1..7, windows 1..3 and strides 1..3 drawn per dim (so s < v, s = v
// and s > v all occur), batch 1..3, channels 1..5 (odd counts leave vector remainders).
random_config draw_config(std::size_t dims, std::mt19937& rng) {
  auto pick = [&](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  random_config cfg;
  cfg.x.push_back(pick(1, 3));
  for (std::size_t d = 0; d < dims; ++d) cfg.x.push_back(pick(1, 7));
  cfg.x.push_back(pick(1, 5));
  cfg.w.dims = dims;
  for (std::size_t d = 0; d < dims; ++d) {
    cfg.w.size[d] = pick(1, 3);
    cfg.w.stride[d] = pick(1, 3);
  }
  return cfg;
}

// The library's reference implementation (pool.hpp's "reference") of max_pool or avg_pool.
template <class T>
std::vector<T> reference_pool(pool_kernel k, view<const T> x, const kernels::pool_window& w) {
  const shape pooled = detail::pooled_shape(x.shape, w);
  std::vector<T> out(pooled.numel());
  if (k == pool_kernel::max_pool) kernels::max_pool_with<T>("reference", {out.data(), pooled}, x, w);
  else kernels::avg_pool_with<T>("reference", {out.data(), pooled}, x, w);
  return out;
}

std::vector<double> random_values(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> v(n);
  for (auto& e : v) e = u(rng);
  return v;
}

template <class T>
void check_kernels_against_reference(std::size_t dims) {
  std::mt19937 rng(unsigned(100 + dims));
  // Values in [-1, 1]; a sum of at most 27 window terms (or 27 overlapping windows' g) is off by
  // a few eps of its terms' magnitudes.
  const double tol = 32 * std::numeric_limits<T>::epsilon();
  for (int trial = 0; trial < 60; ++trial) {
    const auto cfg = draw_config(dims, rng);
    const shape pooled = detail::pooled_shape(cfg.x, cfg.w);
    for (std::size_t d = 0; d < dims; ++d)  // DESIGN.md's output extent, ceil(n/s)
      BOOST_TEST(pooled[d + 1] == (cfg.x[d + 1] + cfg.w.stride[d] - 1) / cfg.w.stride[d]);
    // Distinct random values (ties have probability 0), in T.
    auto to_t = [](const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); };
    const auto xs = to_t(random_values(cfg.x.numel(), trial));
    const auto hs = to_t(random_values(cfg.x.numel(), 1000 + trial));
    const auto gs = to_t(random_values(pooled.numel(), 2000 + trial));
    const view<const T> xv{xs.data(), cfg.x}, hv{hs.data(), cfg.x}, gv{gs.data(), pooled};
    const std::string what = fmt::format("x {} window ({}) stride ({})", cfg.x,
                                         fmt::join(cfg.w.size.begin(), cfg.w.size.begin() + dims, ", "),
                                         fmt::join(cfg.w.stride.begin(), cfg.w.stride.begin() + dims, ", "));

    std::vector<T> out(pooled.numel()), want(pooled.numel()), dx(cfg.x.numel()), want_dx(cfg.x.numel());
    kernels::max_pool<T>({out.data(), pooled}, xv, cfg.w);
    BOOST_TEST(out == reference_pool<T>(pool_kernel::max_pool, xv, cfg.w), what << " max_pool" << tt::per_element());
    kernels::max_pool_gather<T>({out.data(), pooled}, hv, xv, cfg.w);
    kernels::max_pool_gather_with<T>("reference", {want.data(), pooled}, hv, xv, cfg.w);
    BOOST_TEST(out == want, what << " gather" << tt::per_element());
    kernels::avg_pool<T>({out.data(), pooled}, xv, cfg.w);
    BOOST_TEST(max_error(out, reference_pool<T>(pool_kernel::avg_pool, xv, cfg.w)) <= tol, what << " avg_pool");
    // Scratch garbage in dx must be overwritten, not accumulated into.
    std::fill(dx.begin(), dx.end(), T(7));
    kernels::max_pool_backward<T>({dx.data(), cfg.x}, gv, xv, cfg.w);
    kernels::max_pool_backward_with<T>("reference", {want_dx.data(), cfg.x}, gv, xv, cfg.w);
    BOOST_TEST(max_error(dx, want_dx) <= tol, what << " max_pool_backward");
    std::fill(dx.begin(), dx.end(), T(7));
    kernels::avg_pool_transpose<T>({dx.data(), cfg.x}, gv, cfg.w);
    kernels::avg_pool_transpose_with<T>("reference", {want_dx.data(), cfg.x}, gv, cfg.w);
    BOOST_TEST(max_error(dx, want_dx) <= tol, what << " avg_pool_transpose");
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(kernels_match_reference_1d) {
  check_kernels_against_reference<float>(1);
  check_kernels_against_reference<double>(1);
}
BOOST_AUTO_TEST_CASE(kernels_match_reference_2d) {
  check_kernels_against_reference<float>(2);
  check_kernels_against_reference<double>(2);
}
BOOST_AUTO_TEST_CASE(kernels_match_reference_3d) {
  check_kernels_against_reference<float>(3);
  check_kernels_against_reference<double>(3);
}

// Through programs, with per-dim options, against the reference.
BOOST_AUTO_TEST_CASE(program_matches_reference_per_dim_options) {
  const auto xv = cast<float>(random_uniform<4>({2, 7, 6, 3}, 5));
  auto m = max_pool(x, window<3, 2>, stride<2, 1>);
  auto a = avg_pool(x, window<1, 3>, stride<3, 2>);
  auto prog = compile<float>(m, a);
  prog.bind(x, xv).run();
  const kernels::pool_window wm{2, {3, 2}, {2, 1}}, wa{2, {1, 3}, {3, 2}};
  BOOST_TEST(values(prog.value(m)) == reference_pool<float>(pool_kernel::max_pool, xv.as_view(), wm),
             tt::per_element());
  BOOST_TEST(prog.value(a).shape == (shape{2, 3, 3, 3}));
  const auto want_a = reference_pool<float>(pool_kernel::avg_pool, xv.as_view(), wa);
  BOOST_TEST(max_error(values(prog.value(a)), want_a) <= 1e-6);
}

// Forward and backward kernels are cut into many tasks here; one thread must give the same bits.
BOOST_AUTO_TEST_CASE(parallel_matches_one_thread_bitwise) {
  const auto xv = cast<float>(random_uniform<4>({4, 33, 31, 16}, 11));
  const auto rv = cast<float>(random_uniform<4>({4, 17, 11, 16}, 12));
  auto m = max_pool(x, window<3>, stride<2, 3>);
  auto a = avg_pool(x, window<3>, stride<2, 3>);
  auto prog = compile<float>(sum((m + a) * r), m, a, wrt(x));
  prog.bind(x, xv).bind(r, rv);
  prog.set_threads(1).run();
  const auto m1 = values(prog.value(m)), a1 = values(prog.value(a)), g1 = values(prog.gradient(x));
  prog.set_threads(0).run();
  BOOST_TEST((values(prog.value(m)) == m1));
  BOOST_TEST((values(prog.value(a)) == a1));
  BOOST_TEST((values(prog.gradient(x)) == g1));
}

BOOST_AUTO_TEST_CASE(global_pools) {
  const auto sv = random_uniform<3>({2, 5, 3}, 21);
  auto ga = global_avg_pool(s);
  auto gm = global_max_pool(s);
  auto prog = compile<double>(ga, gm);
  prog.bind(s, sv).run();
  BOOST_TEST(prog.value(ga).shape == (shape{2, 3}));
  std::vector<double> mean(6, 0), mx(6, -1e300);
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t l = 0; l < 5; ++l)
      for (std::size_t c = 0; c < 3; ++c) {
        mean[n * 3 + c] += sv(n, l, c) / 5;
        mx[n * 3 + c] = std::max(mx[n * 3 + c], sv(n, l, c));
      }
  BOOST_TEST(values(prog.value(ga)) == mean, tt::tolerance(1e-14) << tt::per_element());
  BOOST_TEST(values(prog.value(gm)) == mx, tt::per_element());
  // A global pool is the full-window pool.
  const auto xv = random_uniform<4>({2, 3, 4, 2}, 22);
  auto full = compile<double>(global_avg_pool(x), avg_pool(x, window<3, 4>), global_max_pool(x),
                              max_pool(x, window<3, 4>));
  full.bind(x, xv).run();
  BOOST_TEST(values(full.value(global_avg_pool(x))) == values(full.value(avg_pool(x, window<3, 4>))),
             tt::tolerance(1e-14) << tt::per_element());
  BOOST_TEST(values(full.value(global_max_pool(x))) == values(full.value(max_pool(x, window<3, 4>))),
             tt::per_element());
}

BOOST_AUTO_TEST_CASE(shape_errors_name_the_op) {
  {  // an ordered dim of extent 0 has no window to pool
    auto prog = compile<float>(max_pool(x, window<2>));
    tensor<float, 4> xv({2, 0, 4, 3});
    prog.bind(x, xv);
    auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("max_pool") != std::string::npos);
    BOOST_TEST(msg.find("ordered dim 0 of x (2, 0, 4, 3) has extent 0") != std::string::npos);
  }
  {  // the backward ops check that the adjoint has the pooled shape
    constexpr var<"g", 4> g;
    auto back = node<max_pool_backward_op<window_t<2>, stride_t<2>>, var<"g", 4>, var<"x", 4>>{};
    auto prog = compile<float>(back);
    tensor<float, 4> xv({1, 5, 4, 3}), gv({1, 2, 2, 3});
    prog.bind(x, xv).bind(g, gv);
    auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("max_pool_backward") != std::string::npos);
    BOOST_TEST(msg.find("the adjoint's shape (1, 2, 2, 3) is not the pooled shape (1, 3, 2, 3) of x (1, 5, 4, 3)") !=
               std::string::npos);
  }
}

// relu -> max_pool, backward: mul(max_pool_backward(G, relu(Y)), step(Y)) runs fused as one masked
// pool backward (fusion_rule in ops/pool.hpp). Bitwise the unfused kernels' result, for tiling
// 2-d windows (the fast path), overlapping 2-d windows and 1-d (the general path), with zeros,
// negatives and NaN among the inputs.
namespace {
template <std::size_t R>
tensor<double, R> signed_values(const std::array<std::size_t, R>& extents) {
  auto t = random_uniform<R>(extents, 5);
  t[0] = 0.0;
  t[1] = -0.0;
  t[2] = std::numeric_limits<double>::quiet_NaN();
  return t;
}
// The unfused computation from the kernels: step(Y) * max_pool_backward(G, relu(Y)), G = r.
template <std::size_t R>
std::vector<double> unfused(const tensor<double, R>& yv, const tensor<double, R>& gv, const kernels::pool_window& w) {
  std::vector<double> relu_y(yv.size()), dx(yv.size());
  for (std::size_t i = 0; i < yv.size(); ++i) relu_y[i] = yv[i] < 0 ? 0.0 : yv[i];
  kernels::max_pool_backward<double>(view<double>{dx.data(), yv.shape_of()}, gv.as_view(),
                                     view<const double>{relu_y.data(), yv.shape_of()}, w);
  for (std::size_t i = 0; i < dx.size(); ++i) dx[i] = dx[i] * (yv[i] > 0 ? 1.0 : 0.0);
  return dx;
}
bool bitwise_equal(const std::vector<double>& a, view<const double> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data, a.size() * sizeof(double)) == 0;
}
}  // namespace

BOOST_AUTO_TEST_CASE(relu_max_pool_gradient_is_fused_and_bitwise_unfused) {
  {  // 2-d, 2x2 windows of stride 2 on odd extents (clipped last windows)
    auto f = sum(max_pool(relu(x), window<2>) * r);
    auto program = compile<double>(f, wrt(x));
    const auto xv = signed_values<4>({2, 5, 7, 3});
    const auto rv = random_uniform<4>({2, 3, 4, 3}, 6);
    program.bind(x, xv).bind(r, rv).run();
    BOOST_TEST(program.listing().find("max_pool_backward[window=2, stride=2](%") != std::string::npos);
    BOOST_TEST(program.listing().find("[not computed]  [adjoint]") != std::string::npos, program.listing());
    kernels::pool_window w;
    w.dims = 2;
    w.size = {2, 2};
    w.stride = {2, 2};
    BOOST_TEST(bitwise_equal(unfused<4>(xv, rv, w), program.gradient(x)));
  }
  {  // 2-d, overlapping 3x3 windows of stride 2 (the general path)
    auto f = sum(max_pool(relu(x), window<3>, stride<2>) * r);
    auto program = compile<double>(f, wrt(x));
    const auto xv = signed_values<4>({2, 6, 5, 2});
    const auto rv = random_uniform<4>({2, 3, 3, 2}, 7);
    program.bind(x, xv).bind(r, rv).run();
    kernels::pool_window w;
    w.dims = 2;
    w.size = {3, 3};
    w.stride = {2, 2};
    BOOST_TEST(bitwise_equal(unfused<4>(xv, rv, w), program.gradient(x)));
  }
  {  // 1-d
    auto f = sum(max_pool(relu(s), window<2>) * r3);
    auto program = compile<double>(f, wrt(s));
    const auto sv = signed_values<3>({3, 9, 4});
    const auto rv = random_uniform<3>({3, 5, 4}, 8);
    program.bind(s, sv).bind(r3, rv).run();
    kernels::pool_window w;
    w.dims = 1;
    w.size = {2};
    w.stride = {2};
    BOOST_TEST(bitwise_equal(unfused<3>(sv, rv, w), program.gradient(s)));
  }
}

// The 2x2 / stride 2 pool over even extents (the CNN's pool) has its own kernels, vectorized over
// channels per instruction set. Forward and backward must give bitwise what the general path
// gives for the same windows: the same data seen as 3 ordered dims (N, H, W, 1, C) with window
// (2, 2, 1) takes the any-D code. Values with ties (the first maximum in window order wins), NaN,
// +-0 and negatives; channel counts below, at and around the vector width; with and without
// relu's mask (positive_only). ctest runs this file again with TYPEGRAD_ISA=avx2 and portable.
namespace {
template <class T>
void check_2x2_against_general_path(std::size_t n, std::size_t h, std::size_t w, std::size_t c,
                                             bool positive_only) {
  std::mt19937 rng(unsigned(n * 1000 + h * 100 + w * 10 + c));
  std::uniform_int_distribution<int> level(-2, 2);  // few distinct values: many ties
  std::vector<T> xs(n * h * w * c), gs(n * (h / 2) * (w / 2) * c);
  for (auto& v : xs) v = T(level(rng)) / T(2);
  for (std::size_t i = 0; i < xs.size(); i += 7) xs[i] = std::numeric_limits<T>::quiet_NaN();
  for (std::size_t i = 3; i < xs.size(); i += 11) xs[i] = T(-0.0);
  for (auto& v : gs) v = T(level(rng) + 3) / T(3);
  kernels::pool_window w2;
  w2.dims = 2;
  w2.size = {2, 2};
  w2.stride = {2, 2};
  kernels::pool_window w3;
  w3.dims = 3;
  w3.size = {2, 2, 1};
  w3.stride = {2, 2, 1};
  std::vector<T> fast(xs.size(), T(7)), general(xs.size(), T(7));
  kernels::max_pool_backward<T>({fast.data(), shape{n, h, w, c}}, {gs.data(), shape{n, h / 2, w / 2, c}},
                                {xs.data(), shape{n, h, w, c}}, w2, positive_only);
  kernels::max_pool_backward<T>({general.data(), shape{n, h, w, 1, c}}, {gs.data(), shape{n, h / 2, w / 2, 1, c}},
                                {xs.data(), shape{n, h, w, 1, c}}, w3, positive_only);
  BOOST_TEST(std::memcmp(fast.data(), general.data(), xs.size() * sizeof(T)) == 0,
             "2x2 backward (" << n << ", " << h << ", " << w << ", " << c << ") positive_only " << positive_only);
  std::vector<T> pooled(gs.size(), T(7)), pooled_general(gs.size(), T(7));
  kernels::max_pool<T>({pooled.data(), shape{n, h / 2, w / 2, c}}, {xs.data(), shape{n, h, w, c}}, w2);
  kernels::max_pool<T>({pooled_general.data(), shape{n, h / 2, w / 2, 1, c}}, {xs.data(), shape{n, h, w, 1, c}}, w3);
  BOOST_TEST(std::memcmp(pooled.data(), pooled_general.data(), gs.size() * sizeof(T)) == 0,
             "2x2 forward (" << n << ", " << h << ", " << w << ", " << c << ")");
}
}  // namespace

BOOST_AUTO_TEST_CASE(max_pool_2x2_is_bitwise_the_general_path) {
  for (std::size_t c : {1, 3, 8, 15, 16, 17, 32, 35, 64})
    for (bool positive_only : {false, true}) {
      check_2x2_against_general_path<float>(3, 6, 4, c, positive_only);
      check_2x2_against_general_path<double>(2, 4, 8, c, positive_only);
    }
}

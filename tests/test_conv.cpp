#define BOOST_TEST_MODULE conv
#include <boost/test/unit_test.hpp>

#include <typegrad/kernels/conv.hpp>
#include <typegrad/typegrad.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "reference/conv.hpp"
#include "support.hpp"

using namespace typegrad;
namespace tt = boost::test_tools;

namespace {
using test_support::cast;
using test_support::random_uniform;
using test_support::values;

constexpr var<"x", 3> x;
constexpr var<"w", 3> w;
constexpr var<"x2", 4> x2;
constexpr var<"w2", 4> w2;

template <std::size_t D, class... Opts>
constexpr conv_params params_of(Opts...) {
  return detail::conv_options<D, Opts...>::params();
}

// The worst |got - want| over the elements.
template <class T>
double max_error(const T* got, const std::vector<T>& want) {
  double e = 0;
  for (std::size_t i = 0; i < want.size(); ++i) e = std::max(e, std::abs(double(got[i]) - double(want[i])));
  return e;
}
}  // namespace

// ---- the seed's worked example ------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(seed_example_in_every_mode) {
  tensor<double, 3> xv({1, 5, 1}, {1, -3, 4, 4, 2});
  tensor<double, 3> wv({1, 3, 1}, {-1, 1, 2});
  auto valid = conv(x, w, padding_valid);
  auto uncentered = conv(x, w, padding_uncentered);
  auto same = conv(x, w);
  auto prog = compile<double>(valid, uncentered, same, conv(x, w, padding_same));
  prog.bind(x, xv).bind(w, wv).run();
  BOOST_TEST(values(prog.value(valid)) == (std::vector<double>{4, 15, 4}), tt::per_element());
  BOOST_TEST(values(prog.value(uncentered)) == (std::vector<double>{4, 15, 4, -2, -2}), tt::per_element());
  BOOST_TEST(values(prog.value(same)) == (std::vector<double>{-5, 4, 15, 4, -2}), tt::per_element());
  BOOST_TEST(prog.value(valid).shape == (shape{1, 3, 1}));
  // padding_same is the default: the same node.
  static_assert(std::is_same_v<decltype(same), decltype(conv(x, w, padding_same))>);
}

BOOST_AUTO_TEST_CASE(hand_values_stride_dilation_even_kernel_explicit) {
  tensor<float, 3> xv({1, 5, 1}, {1, -3, 4, 4, 2});
  tensor<float, 3> w4({1, 4, 1}, {1, 2, 3, 4});  // even k: same reads offsets -1, 0, 1, 2
  tensor<float, 3> w3({1, 3, 1}, {-1, 1, 2});
  auto even = conv(x, w, padding_same);
  auto strided = conv(x, w, stride<2>);                    // same, o*2 + (j - 1)
  auto dilated = conv(x, w, dilation<2>, padding_valid);   // taps at o, o+2, o+4
  auto padded = conv(x, w, explicit_padding<2, 1>);        // zeros (0, 0 | x | 0)
  {
    auto prog = compile<float>(even);
    prog.bind(x, xv).bind(w, w4).run();
    // o=0: x[-1..2] = (0, 1, -3, 4) . (1,2,3,4) = 2 - 9 + 16 = 9; o=1: 1 + -6 + 12 + 16 = 23;
    // o=2: -3 + 8 + 12 + 8 = 25; o=3: 4 + 8 + 6 + 0 = 18; o=4: 4 + 4 = 8
    BOOST_TEST(values(prog.value(even)) == (std::vector<float>{9, 23, 25, 18, 8}), tt::per_element());
  }
  auto prog = compile<float>(strided, dilated, padded);
  prog.bind(x, xv).bind(w, w3).run();
  // same values at o = 0, 2, 4 of (-5, 4, 15, 4, -2)
  BOOST_TEST(values(prog.value(strided)) == (std::vector<float>{-5, 15, -2}), tt::per_element());
  // -1*1 + 1*4 + 2*2 = 7
  BOOST_TEST(values(prog.value(dilated)) == (std::vector<float>{7}), tt::per_element());
  // padded input (0, 0, 1, -3, 4, 4, 2, 0), valid: 6 outputs
  BOOST_TEST(values(prog.value(padded)) == (std::vector<float>{2, -5, 4, 15, 4, -2}), tt::per_element());
}

// ---- printing -----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(prints) {
  constexpr var<"r", 3> r;
  BOOST_TEST(to_string(conv(x, w)) == "conv(x, w)");
  BOOST_TEST(to_string(conv(x2, w2, padding_valid, stride<2>, dilation<1, 2>, groups<4>)) ==
             "conv[valid, stride=2, dilation=(1, 2), groups=4](x2, w2)");
  BOOST_TEST(to_string(conv(x2, w2, groups<4>, explicit_padding<1, 2, 0, 0>)) ==
             "conv[pad=(1:2, 0:0), groups=4](x2, w2)");
  BOOST_TEST(to_string(conv(x, w, padding_uncentered, stride<3>)) == "conv[uncentered, stride=3](x, w)");
  BOOST_TEST(to_string(conv_transpose(x, w, stride<2>)) == "conv_transpose[stride=2](x, w)");
  // The gradients of sum(z * r): the adjoint of z is r expanded to z's shape (a runtime fact).
  auto f = sum(conv(x, w, stride<2>) * r);
  const std::string g = "sum_to(sum_to(1, conv[stride=2](x, w) * r) * r, conv[stride=2](x, w))";
  BOOST_TEST(to_string(grad(f, x)) == "conv_transpose[stride=2](" + g + ", w, x)");
  BOOST_TEST(to_string(grad(f, w)) == "conv_weight_grad[stride=2](x, " + g + ", w)");
}

// ---- kernels against the naive reference ---------------------------------------------------------

namespace {
// One random configuration: D, extents, options, channels, batch. Draws again when the shape rule
// rejects the shapes (e.g. a valid window larger than the input).
struct config {
  conv_params p;
  shape xs, ws;
};

// few_channels: one group of 1 to 4 input channels and 16 or 32 output channels, the gathered
// (im2col-free) path of the first layers.
config random_config(std::mt19937& rng, bool few_channels = false) {
  auto pick = [&](std::size_t lo, std::size_t hi) { return std::uniform_int_distribution<std::size_t>(lo, hi)(rng); };
  for (;;) {
    config c;
    const std::size_t d = pick(1, 3);
    c.p.dims = d;
    c.p.padding = padding_mode(pick(0, 3));
    const std::size_t group_kind = few_channels ? 0 : pick(0, 3);  // 0, 1: one group; 2: groups of 2; 3: depthwise
    const std::size_t groups = group_kind < 2 ? 1 : pick(2, 3);
    const std::size_t cg = group_kind == 3 ? 1 : pick(1, 4);
    const std::size_t kg = few_channels ? 16 * pick(1, 2) : group_kind == 3 ? pick(1, 2) : pick(1, 4);
    c.p.groups = groups;
    c.xs.push_back(pick(1, 3));
    c.ws.push_back(kg * groups);
    const std::size_t max_n = d == 3 ? 6 : d == 2 ? 9 : 14;
    for (std::size_t i = 0; i < d; ++i) {
      c.p.stride[i] = pick(1, 3);
      c.p.dilation[i] = pick(0, 2) == 0 ? 2 : 1;
      c.p.pad_low[i] = pick(0, 2);
      c.p.pad_high[i] = pick(0, 2);
      c.xs.push_back(pick(1, max_n));
      c.ws.push_back(pick(1, d == 3 ? 3 : 4));
    }
    c.xs.push_back(cg * groups);
    c.ws.push_back(cg);
    try {
      (void)detail::conv_geometry_of(c.p, c.xs, c.ws);
      return c;
    } catch (const shape_rule_violation&) {
    }
  }
}

template <class T>
void check_config(const config& c, unsigned seed, const std::string& what) {
  const auto geom = detail::conv_geometry_of(c.p, c.xs, c.ws);
  const shape zs = detail::conv_output_shape(geom);
  BOOST_TEST_REQUIRE(zs == reference::conv_output_shape(c.p, c.xs, c.ws), what);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  auto fill = [&](std::size_t n) {
    std::vector<T> v(n);
    for (auto& e : v) e = T(u(rng));
    return v;
  };
  auto xv = fill(c.xs.numel()), wv = fill(c.ws.numel()), gv = fill(zs.numel());
  view<const T> xw{xv.data(), c.xs}, ww{wv.data(), c.ws}, gw{gv.data(), zs};
  const double eps = std::numeric_limits<T>::epsilon();
  const std::size_t taps = c.ws.numel() / (c.ws[0] * c.ws[c.p.dims + 1]);

  // The three kernels at 1 and at 2 threads: each against the reference, and bitwise equal.
  std::vector<T> z[2], dx[2], dw[2];
  for (int t = 0; t < 2; ++t) {
    z[t].assign(zs.numel(), T(7));
    dx[t].assign(c.xs.numel(), T(7));
    dw[t].assign(c.ws.numel(), T(7));
    tbb::task_arena(t + 1).execute([&] {
      kernels::conv_forward<T>(view<T>{z[t].data(), zs}, xw, ww, geom);
      kernels::conv_input_grad<T>(view<T>{dx[t].data(), c.xs}, gw, ww, geom);
      kernels::conv_weight_grad<T>(view<T>{dw[t].data(), c.ws}, xw, gw, geom);
    });
  }
  BOOST_TEST(max_error(z[0].data(), reference::conv<T>(c.p, xw, ww)) <= 4 * eps * double(c.ws.numel() / c.ws[0] + 1),
             what << " forward");
  BOOST_TEST(max_error(dx[0].data(), reference::conv_transpose<T>(c.p, gw, ww, c.xs)) <=
                 4 * eps * double(taps * c.ws[0] + 1),
             what << " input gradient");
  BOOST_TEST(max_error(dw[0].data(), reference::conv_weight_grad<T>(c.p, xw, gw, c.ws)) <=
                 4 * eps * double(zs.numel() / zs[c.p.dims + 1] + 1),
             what << " weight gradient");
  BOOST_TEST((z[0] == z[1] && dx[0] == dx[1] && dw[0] == dw[1]), what << ": 1 and 2 threads differ");

  // The epilogue (relu(z + bias), bias per channel or one value) bitwise equals the separate passes
  // over the plain output, on every path and at 1 and 2 threads.
  const std::size_t k = zs[c.p.dims + 1];
  const auto bias = fill(seed % 3 == 0 ? 1 : k);
  for (int t = 0; t < 2; ++t) {
    std::vector<T> fused(zs.numel(), T(7));
    tbb::task_arena(t + 1).execute([&] {
      kernels::conv_forward<T>(view<T>{fused.data(), zs}, xw, ww, geom,
                               {.bias = bias.data(), .bias_size = bias.size(), .relu = true});
    });
    std::vector<T> want(zs.numel());
    for (std::size_t i = 0; i < want.size(); ++i) {
      const T sum = z[0][i] + bias[bias.size() == 1 ? 0 : i % k];
      want[i] = sum < T(0) ? T(0) : sum;
    }
    BOOST_TEST(std::memcmp(fused.data(), want.data(), want.size() * sizeof(T)) == 0,
               what << ": conv with a bias+relu epilogue, " << t + 1 << " thread(s)");
  }
}

std::string describe(const config& c) {
  return fmt::format("x{} w{} {} stride={} dilation={} pad_low={} pad_high={} groups={}", c.xs, c.ws,
                     detail::conv_attributes(c.p), fmt::join(c.p.stride.begin(), c.p.stride.begin() + c.p.dims, ","),
                     fmt::join(c.p.dilation.begin(), c.p.dilation.begin() + c.p.dims, ","),
                     fmt::join(c.p.pad_low.begin(), c.p.pad_low.begin() + c.p.dims, ","),
                     fmt::join(c.p.pad_high.begin(), c.p.pad_high.begin() + c.p.dims, ","), c.p.groups);
}

// Larger configurations: several tiles, several weight-gradient partials, the unpacked 1x1 path,
// strided phases with padding, depthwise with a channel multiplier.
std::vector<config> large_configs() {
  std::vector<config> out;
  auto add = [&](conv_params p, shape xs, shape ws) { out.push_back({p, xs, ws}); };
  add(params_of<2>(), {3, 30, 30, 16}, {24, 3, 3, 16});
  add(params_of<2>(stride<2>), {2, 31, 29, 12}, {20, 4, 3, 12});
  add(params_of<2>(stride<3, 2>, explicit_padding<2, 1, 0, 3>, dilation<2, 1>), {2, 25, 17, 8}, {8, 3, 2, 8});
  add(params_of<2>(), {4, 20, 20, 32}, {48, 1, 1, 32});
  add(params_of<2>(groups<4>), {2, 18, 18, 16}, {32, 3, 3, 4});
  add(params_of<2>(groups<16>), {3, 40, 40, 16}, {32, 3, 3, 1});
  add(params_of<1>(padding_valid), {5, 300, 24}, {16, 7, 24});
  add(params_of<3>(stride<2>), {2, 11, 12, 13, 6}, {5, 3, 3, 3, 6});
  // multiples of 8 (double) or 16 (float) channels up to 128: the register-blocked narrow product
  add(params_of<3>(), {2, 9, 10, 11, 16}, {16, 3, 3, 3, 16});
  add(params_of<2>(), {3, 20, 21, 1}, {32, 3, 3, 1});
  add(params_of<2>(stride<2>, padding_uncentered), {2, 15, 14, 8}, {12, 3, 3, 8});
  add(params_of<2>(groups<2>), {2, 13, 12, 64}, {64, 2, 3, 32});
  add(params_of<2>(), {2, 11, 10, 48}, {64, 3, 3, 48});
  add(params_of<2>(stride<2>), {2, 9, 8, 40}, {128, 3, 3, 40});
  add(params_of<2>(), {2, 9, 8, 64}, {48, 2, 2, 64});
  return out;
}
}  // namespace

// The differential fuzzer of the conv kernels: TYPEGRAD_FUZZ_CONV=N configurations (default 1000,
// about 5 s; docs/reliability.md), each in float and double, at 1 and 2 threads.
BOOST_AUTO_TEST_CASE(random_configurations_match_reference) {
  const char* count_env = std::getenv("TYPEGRAD_FUZZ_CONV");
  const unsigned count = count_env ? unsigned(std::strtoul(count_env, nullptr, 10)) : 1000;
  std::mt19937 rng(2024);
  for (unsigned i = 0; i < count; ++i) {
    const config c = random_config(rng);
    const std::string what = describe(c);
    check_config<float>(c, i, what);
    check_config<double>(c, i, what);
  }
  BOOST_TEST_MESSAGE("conv kernels: " << count << " random configurations checked");
}

BOOST_AUTO_TEST_CASE(few_channel_configurations_match_reference) {
  std::mt19937 rng(77);
  for (unsigned i = 0; i < 60; ++i) {
    const config c = random_config(rng, true);
    const std::string what = describe(c);
    check_config<float>(c, i, what);
    check_config<double>(c, i, what);
  }
}

BOOST_AUTO_TEST_CASE(large_configurations_match_reference) {
  unsigned seed = 100;
  for (const auto& c : large_configs()) {
    check_config<float>(c, seed, describe(c));
    check_config<double>(c, seed++, describe(c));
  }
}

// ---- the seed's equivalence: a conv is a dense layer with a sparse, position-shared matrix -----

namespace {
// The (n*C) x (m*K) matrix M with conv(x, w) = x M for one batch item, built from w by the
// design's tap formula (channels-last flattening of x and z).
template <std::size_t D>
tensor<double, 2> dense_matrix(const conv_params& p, const shape& xs, const tensor<double, D + 2>& wv) {
  const shape ws = wv.shape_of();
  const shape zs = reference::conv_output_shape(p, xs, ws);
  const std::size_t in = xs.numel() / xs[0], out = zs.numel() / zs[0];
  tensor<double, 2> m({in, out});
  const std::size_t c = xs[D + 1], k = ws[0];
  std::array<std::size_t, D> o{}, j{};
  const std::size_t out_pos = out / k, taps = ws.numel() / (k * c);
  for (std::size_t of = 0; of < out_pos; ++of) {
    for (std::size_t i = D, r = of; i-- > 0;) o[i] = r % zs[i + 1], r /= zs[i + 1];
    for (std::size_t jf = 0; jf < taps; ++jf) {
      for (std::size_t i = D, r = jf; i-- > 0;) j[i] = r % ws[i + 1], r /= ws[i + 1];
      long flat = 0;
      bool inside = true;
      for (std::size_t i = 0; i < D; ++i) {
        const long pos = reference::conv_tap_position(p, i, o[i], j[i], ws[i + 1]);
        inside = inside && pos >= 0 && pos < long(xs[i + 1]);
        flat = flat * long(xs[i + 1]) + pos;
      }
      if (!inside) continue;
      for (std::size_t ci = 0; ci < c; ++ci)
        for (std::size_t co = 0; co < k; ++co)
          m[(std::size_t(flat) * c + ci) * out + of * k + co] = wv[(co * taps + jf) * c + ci];
    }
  }
  return m;
}
}  // namespace

BOOST_AUTO_TEST_CASE(conv_equals_dense_with_shared_sparse_matrix) {
  constexpr var<"flat", 2> flat;
  constexpr var<"m", 2> mat;
  {  // 1-d, valid and strided same
    auto xv = random_uniform<3>({2, 9, 3}, 1), wv = random_uniform<3>({4, 3, 3}, 2);
    tensor<double, 2> xf({2, 27}, std::span<const double>(xv.data(), xv.size()));
    auto check = [&](auto z, conv_params p) {
      auto prog = compile<double>(z, matmul(flat, mat));
      auto mv = dense_matrix<1>(p, xv.shape_of(), wv);
      prog.bind(x, xv).bind(w, wv).bind(flat, xf).bind(mat, mv).run();
      BOOST_TEST(values(prog.value(z)) == values(prog.value(matmul(flat, mat))), tt::tolerance(1e-12) << tt::per_element());
    };
    check(conv(x, w, padding_valid), params_of<1>(padding_valid));
    check(conv(x, w, stride<2>), params_of<1>(stride<2>));
  }
  {  // 2-d same with an even window
    auto xv = random_uniform<4>({2, 5, 6, 2}, 3), wv = random_uniform<4>({3, 2, 3, 2}, 4);
    tensor<double, 2> xf({2, 60}, std::span<const double>(xv.data(), xv.size()));
    auto z = conv(x2, w2);
    auto prog = compile<double>(z, matmul(flat, mat));
    auto mv = dense_matrix<2>(params_of<2>(), xv.shape_of(), wv);
    prog.bind(x2, xv).bind(w2, wv).bind(flat, xf).bind(mat, mv).run();
    BOOST_TEST(values(prog.value(z)) == values(prog.value(matmul(flat, mat))), tt::tolerance(1e-12) << tt::per_element());
  }
}

// ---- determinism ----------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(two_threads_match_one_thread_bitwise) {
  constexpr var<"r", 4> r;
  constexpr var<"r2", 4> r2;
  constexpr var<"w3", 4> w3;
  // Large enough for several forward tiles, input-gradient phases and weight-gradient partials.
  auto z1 = conv(x2, w2);
  auto z2 = conv(x2, w3, stride<2>);
  auto f = sum(z1 * r) + sum(z2 * r2);
  auto prog = compile<float>(f, wrt(x2, w2, w3));
  auto xv = cast<float>(random_uniform<4>({8, 24, 24, 16}, 1));
  auto wv = cast<float>(random_uniform<4>({32, 3, 3, 16}, 2));
  auto w3v = cast<float>(random_uniform<4>({24, 3, 3, 16}, 3));
  auto rv = cast<float>(random_uniform<4>({8, 24, 24, 32}, 4));
  auto r2v = cast<float>(random_uniform<4>({8, 12, 12, 24}, 5));
  prog.bind(x2, xv).bind(w2, wv).bind(w3, w3v).bind(r, rv).bind(r2, r2v);
  auto snapshot = [&] {
    std::vector<std::vector<float>> out;
    out.push_back(values(prog.value(f)));
    out.push_back(values(prog.gradient(x2)));
    out.push_back(values(prog.gradient(w2)));
    out.push_back(values(prog.gradient(w3)));
    return out;
  };
  prog.set_threads(1).run();
  auto one = snapshot();
  prog.set_threads(2).run();
  auto two = snapshot();
  prog.run();
  auto again = snapshot();
  for (std::size_t i = 0; i < one.size(); ++i) {
    BOOST_TEST_REQUIRE(one[i].size() == two[i].size());
    BOOST_TEST(std::memcmp(one[i].data(), two[i].data(), one[i].size() * sizeof(float)) == 0, "output " << i);
    BOOST_TEST(std::memcmp(two[i].data(), again[i].data(), two[i].size() * sizeof(float)) == 0, "output " << i);
  }
}

// relu(conv(x, w) + b) runs as one conv with a bias+relu epilogue: neither the conv's output nor the
// sum is computed as a node, and values and gradients are bitwise those of the unfused program
// (here: the same graph with the conv as an output too, which the executor then computes and reads),
// on the gathered, GEMM, narrow, pointwise and depthwise paths, b + conv as well as conv + b.
namespace {
constexpr var<"b", 1> b;
constexpr var<"up", 4> up;

template <class T>
bool same_bits(view<const T> p, view<const T> q) {
  return p.shape == q.shape && std::memcmp(p.data, q.data, p.size() * sizeof(T)) == 0;
}

// y = relu(z + b) (or relu(b + z)) for z = conv(x2, w2, options of p), of output shape zs.
template <class T, class Z, class Y>
void check_conv_bias_relu(Z z, Y y, const conv_params& p, const shape& xs, const shape& ws, std::size_t bias_size,
                          unsigned seed) {
  shape zs = reference::conv_output_shape(p, xs, ws);
  const std::size_t k = std::max(zs[3], bias_size);  // (a longer b widens one channel)
  const shape ys{zs[0], zs[1], zs[2], k};
  auto f = sum(y * up);
  auto fused = compile<T>(f, y, wrt(x2, w2, b));
  auto unfused = compile<T>(f, y, z, wrt(x2, w2, b));
  const auto xv = cast<T>(random_uniform<4>({xs[0], xs[1], xs[2], xs[3]}, seed));
  const auto wv = cast<T>(random_uniform<4>({ws[0], ws[1], ws[2], ws[3]}, seed + 1));
  const auto bv = cast<T>(random_uniform<1>({bias_size}, seed + 2));
  const auto uv = cast<T>(random_uniform<4>({ys[0], ys[1], ys[2], ys[3]}, seed + 3));
  for (int threads : {1, 2}) {
    fused.bind(x2, xv).bind(w2, wv).bind(b, bv).bind(up, uv).set_threads(threads).run();
    unfused.bind(x2, xv).bind(w2, wv).bind(b, bv).bind(up, uv).set_threads(threads).run();
    const std::string what = fmt::format("x{} w{} b({}), {} thread(s)", xs, ws, bias_size, threads);
    BOOST_TEST(fused.listing().find(" on the fly]") != std::string::npos, fused.listing());
    BOOST_TEST(fused.listing().find("[computes %") != std::string::npos, fused.listing());
    BOOST_TEST(fused.listing().find(" and %") != std::string::npos, fused.listing());  // conv and sum fused
    BOOST_TEST(unfused.listing().find(" and %") == std::string::npos, unfused.listing());
    BOOST_TEST(same_bits(fused.value(y), unfused.value(y)), what << ": relu(conv + b)");
    BOOST_TEST(same_bits(fused.value(f), unfused.value(f)), what << ": f");
    BOOST_TEST(same_bits(fused.gradient(x2), unfused.gradient(x2)), what << ": df/dx");
    BOOST_TEST(same_bits(fused.gradient(w2), unfused.gradient(w2)), what << ": df/dw");
    BOOST_TEST(same_bits(fused.gradient(b), unfused.gradient(b)), what << ": df/db");
  }
  // and the values against the naive conv, bias and relu
  const auto zr = reference::conv<T>(p, view<const T>{xv.data(), xs}, view<const T>{wv.data(), ws});
  const double tolerance = 8 * std::numeric_limits<T>::epsilon() * double(ws.numel() / ws[0] + 1);
  double worst = 0;
  for (std::size_t i = 0; i < ys.numel(); ++i) {
    const double z = double(zr[zs[3] == 1 ? i / k : i]);
    const double want = std::max(0.0, z + double(bv[bias_size == 1 ? 0 : i % k]));
    worst = std::max(worst, std::abs(double(fused.value(y).data[i]) - want));
  }
  BOOST_TEST(worst <= tolerance, "x" << xs << " w" << ws << ": worst error " << worst);
}
}  // namespace

BOOST_AUTO_TEST_CASE(conv_bias_relu_runs_as_one_conv_bitwise_unfused) {
  unsigned seed = 300;
  auto check = [&]<class T>(T) {
    {  // gathered patches (one input channel), per-channel bias
      auto z = conv(x2, w2);
      check_conv_bias_relu<T>(z, relu(z + b), params_of<2>(), {3, 11, 9, 1}, {16, 3, 3, 1}, 16, seed++);
    }
    {  // packed GEMM, strided, b + conv, one bias value for every channel
      auto z = conv(x2, w2, stride<2>);
      check_conv_bias_relu<T>(z, relu(b + z), params_of<2>(stride<2>), {2, 12, 13, 20}, {200, 3, 3, 20}, 1, seed++);
    }
    {  // narrow product
      auto z = conv(x2, w2, padding_valid);
      check_conv_bias_relu<T>(z, relu(z + b), params_of<2>(padding_valid), {2, 10, 10, 24}, {32, 3, 3, 24}, 32,
                              seed++);
    }
    {  // pointwise (1x1: the GEMM reads x in place)
      auto z = conv(x2, w2);
      check_conv_bias_relu<T>(z, relu(z + b), params_of<2>(), {2, 7, 6, 12}, {40, 1, 1, 12}, 40, seed++);
    }
    {  // depthwise with a channel multiplier
      auto z = conv(x2, w2, groups<8>);
      check_conv_bias_relu<T>(z, relu(b + z), params_of<2>(groups<8>), {2, 9, 10, 8}, {16, 3, 3, 1}, 16, seed++);
    }
    {  // one output channel widened by a longer b (broadcasting): the sum has b's channels
      auto z = conv(x2, w2);
      check_conv_bias_relu<T>(z, relu(z + b), params_of<2>(), {2, 5, 4, 3}, {1, 3, 3, 3}, 5, seed++);
      check_conv_bias_relu<T>(z, relu(b + z), params_of<2>(), {2, 5, 4, 3}, {1, 3, 3, 3}, 4, seed++);
    }
  };
  check(float{});
  check(double{});
}

// ---- errors -----------------------------------------------------------------------------------------

namespace {
template <class Program>
std::string shape_error_message(Program& prog) {
  try {
    prog.run();
  } catch (const shape_error& e) {
    return e.what();
  }
  return "no shape_error";
}
}  // namespace

BOOST_AUTO_TEST_CASE(shape_errors_name_conv) {
  {
    auto prog = compile<float>(conv(x, w));
    tensor<float, 3> xv({1, 5, 2}), wv({1, 3, 1});
    prog.bind(x, xv).bind(w, wv);
    const auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("conv") != std::string::npos, msg);
    BOOST_TEST(msg.find("w's in-channels 1 (its last extent) must equal x's channels 2") != std::string::npos, msg);
  }
  {
    auto prog = compile<float>(conv(x, w, padding_valid));
    tensor<float, 3> xv({1, 2, 1}), wv({1, 3, 1});
    prog.bind(x, xv).bind(w, wv);
    const auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("conv[valid]") != std::string::npos, msg);
    BOOST_TEST(msg.find("larger than the input (extent 2)") != std::string::npos, msg);
  }
  {
    auto prog = compile<float>(conv(x, w, groups<2>));
    tensor<float, 3> xv({1, 5, 4}), wv({3, 3, 2});
    prog.bind(x, xv).bind(w, wv);
    const auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("divisible by groups 2") != std::string::npos, msg);
  }
  {
    // like = x: g (here x itself) must have conv(x, w)'s shape (1, 5, 3)
    auto prog = compile<float>(conv_transpose(x, w, x));
    tensor<float, 3> xv({1, 5, 2}), wv({3, 3, 2});
    prog.bind(x, xv).bind(w, wv);
    const auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("conv_transpose") != std::string::npos, msg);
    BOOST_TEST(msg.find("g's shape (1, 5, 2) differs from (1, 5, 3)") != std::string::npos, msg);
  }
  {
    auto prog = compile<float>(conv_transpose(x, w));
    tensor<float, 3> xv({1, 5, 2}), wv({3, 3, 2});
    prog.bind(x, xv).bind(w, wv);
    const auto msg = shape_error_message(prog);
    BOOST_TEST(msg.find("g has 2 channels but w has 3 out channels") != std::string::npos, msg);
  }
}

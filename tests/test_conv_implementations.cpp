#define BOOST_TEST_MODULE conv_implementations
// Every implementation of every conv direction (conv_kernels.hpp's lists), run by name on every
// shape of a fixed set where it applies, against the library's reference implementation; the
// epilogue on each forward one; 1 and 2 threads bitwise; that each implementation applies to some
// shape of the set (so none goes untested); and which one the default dispatch picks for known
// shapes. Kernels are called directly: no programs, no graphs.
#include <boost/test/unit_test.hpp>

#include <typegrad/core/errors.hpp>
#include <typegrad/kernels/conv.hpp>
#include <typegrad/ops/conv.hpp>

#include <algorithm>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <tbb/task_arena.h>

#include "support.hpp"

using namespace typegrad;
using kernels::conv_direction;
using kernels::conv_geometry;
using test_support::max_error;
using test_support::random_values;
using test_support::same_bits;

namespace {

constexpr conv_direction directions[] = {conv_direction::forward, conv_direction::input_grad,
                                         conv_direction::weight_grad};

// x (N, n..., C) and w (K, k..., C/groups) under p.
struct shape_case {
  conv_params p;
  shape xs, ws;
};

// The options of a case, the same in every ordered dim unless set per dim afterwards.
conv_params options(std::size_t dims, padding_mode mode = padding_mode::same, std::size_t stride = 1,
                    std::size_t dilation = 1, std::size_t groups = 1, std::size_t pad_low = 0,
                    std::size_t pad_high = 0) {
  conv_params p;
  p.dims = dims;
  p.padding = mode;
  p.groups = groups;
  for (std::size_t i = 0; i < dims; ++i) {
    p.stride[i] = stride;
    p.dilation[i] = dilation;
    p.pad_low[i] = pad_low;
    p.pad_high[i] = pad_high;
  }
  return p;
}

// The shape classes the implementations claim (see the file comment of src/kernels/conv.cpp):
// channels per group of 1 to 16 and of narrow widths (16-128 floats, 8-64 doubles) and neither,
// one group, groups and depthwise, 1x1 windows with and without stride, extents smaller than the
// window, batch 1, odd extents, strides, dilations, every padding mode, 1-d, 2-d and 3-d; and a few
// large enough for several tiles and weight-gradient partials.
std::vector<shape_case> shape_cases() {
  using enum padding_mode;
  std::vector<shape_case> out;
  auto add = [&](conv_params p, shape xs, shape ws) { out.push_back({p, xs, ws}); };
  // one group, few input channels (gathered, few_channel_dots; one channel and 3x3: direct, with
  // lines of 9, 5, 1 and 2 outputs, one to four blocks of 64 bytes, strides and dilations along
  // the first dim only, which it takes)
  add(options(2), {2, 11, 9, 1}, {32, 3, 3, 1});
  add(options(2, valid), {1, 6, 7, 1}, {16, 3, 3, 1});
  add(options(2), {1, 2, 1, 1}, {64, 3, 3, 1});  // extents smaller than the window
  {
    auto p = options(2, explicit_pads, 1, 1, 1, 1, 2);
    p.stride = {2, 1};
    p.dilation = {3, 1};
    add(p, {2, 9, 5, 1}, {48, 3, 3, 1});
  }
  add(options(2), {1, 7, 8, 3}, {16, 5, 5, 3});
  add(options(2, same, 2), {2, 9, 10, 3}, {16, 3, 3, 3});
  add(options(1, explicit_pads, 1, 2, 1, 3, 1), {3, 13, 5}, {32, 4, 5});
  add(options(3), {1, 5, 6, 7, 16}, {16, 3, 3, 3, 16});
  add(options(2), {1, 2, 3, 3}, {16, 5, 5, 3});  // extents smaller than the window
  add(options(2, valid), {2, 6, 7, 12}, {24, 3, 2, 12});
  // more input channels (indirect, packed_gemm, phases)
  add(options(2, valid), {2, 6, 5, 20}, {48, 3, 3, 20});
  add(options(2, uncentered, 2), {2, 9, 8, 12}, {40, 3, 3, 12});
  add(options(1, same, 3), {2, 33, 64}, {64, 3, 64});
  add(options(1), {1, 2, 24}, {16, 7, 24});  // extent smaller than the window
  add(options(2, same, 1, 2), {2, 7, 9, 17}, {16, 3, 3, 17});
  add(options(2), {1, 5, 6, 7}, {9, 4, 2, 7});  // even windows
  // window lines of 1 KiB or more (the indirect forward's pointer per line), with border rows
  add(options(1), {2, 40, 64}, {32, 7, 64});
  add(options(2, same, 2), {1, 7, 8, 96}, {32, 3, 3, 96});
  // stride 2 in 2-d into 8 or 16 channels (pairs): odd extents, odd padding, an even window
  add(options(2, same, 2), {2, 7, 9, 8}, {16, 3, 3, 8});
  add(options(2, explicit_pads, 2, 1, 1, 1, 2), {1, 6, 7, 16}, {32, 3, 3, 16});
  add(options(2, valid, 2), {2, 9, 8, 16}, {16, 4, 2, 16});
  // input gradients summed over more than 32 channels (indirect): dilation, batch 1
  add(options(2, same, 1, 2), {2, 6, 7, 16}, {48, 3, 3, 16});
  add(options(1), {1, 9, 32}, {64, 3, 32});
  add(options(2, valid), {2, 5, 5, 4}, {8, 5, 5, 4});  // the window is the whole input
  {
    auto p = options(3, explicit_pads, 2, 1);
    p.pad_low = {1, 0, 2};
    p.pad_high = {0, 2, 1};
    p.dilation = {1, 2, 1};
    add(p, {2, 7, 5, 6, 2}, {3, 3, 2, 2, 2});
  }
  // 3x3, stride 1, 16 or more channels summed over (winograd): odd output extents (clipped 2x2
  // tiles), channels not a multiple of the vector width, batch 1, no padding
  add(options(2), {1, 7, 9, 33}, {48, 3, 3, 33});
  add(options(2, valid), {2, 9, 8, 48}, {32, 3, 3, 48});
  // channels in whole 64-byte runs (gathered_columns' weight gradient): output channels not a
  // multiple of its 8-row tiles, tap counts leaving partial column blocks
  add(options(2), {2, 6, 7, 16}, {13, 2, 3, 16});
  add(options(1, same, 2), {1, 9, 32}, {5, 5, 32});
  add(options(2), {1, 2, 3, 16}, {8, 5, 5, 16});  // extents smaller than the window
  // 3-d with several tiles: the gathered weight gradients copy all of x padded, where per-tile
  // slabs would copy it 1.8 times over (2-d cases above and below take the slabs)
  add(options(3), {1, 12, 12, 12, 16}, {16, 3, 3, 3, 16});
  // 1x1 windows (pointwise), one with a stride (not pointwise)
  add(options(2), {2, 7, 6, 32}, {16, 1, 1, 32});
  add(options(2), {2, 5, 3, 12}, {40, 1, 1, 12});
  add(options(1), {3, 11, 3}, {16, 1, 3});
  add(options(2, same, 1, 1, 2), {2, 4, 5, 16}, {32, 1, 1, 8});
  add(options(2, same, 2), {2, 7, 6, 8}, {16, 1, 1, 8});
  // groups
  add(options(2, same, 1, 1, 4), {2, 6, 7, 16}, {64, 3, 3, 4});
  {
    auto p = options(2, same, 1, 1, 2);
    p.stride = {2, 1};
    p.dilation = {1, 2};
    add(p, {2, 7, 9, 6}, {10, 3, 3, 3});
  }
  // depthwise: channel multiplier 1 and 2, 1-d to 3-d, 1x1
  add(options(2, same, 1, 1, 8), {2, 6, 5, 8}, {8, 3, 3, 1});
  add(options(2, explicit_pads, 2, 1, 6, 1, 0), {1, 7, 8, 6}, {12, 3, 3, 1});
  add(options(1, same, 1, 2, 5), {2, 17, 5}, {5, 5, 1});
  add(options(3, same, 2, 1, 4), {1, 5, 4, 5, 4}, {8, 3, 3, 3, 1});
  add(options(2, same, 1, 1, 16), {2, 3, 4, 16}, {16, 1, 1, 1});
  // several tiles and weight-gradient partials
  add(options(2), {8, 64, 64, 1}, {32, 3, 3, 1});
  add(options(2), {4, 30, 30, 16}, {32, 3, 3, 16});
  add(options(2, same, 2), {2, 31, 29, 12}, {20, 3, 3, 12});
  add(options(2, same, 2), {4, 40, 41, 16}, {16, 3, 3, 16});  // pairs: tiles that end mid-line
  add(options(2), {8, 32, 32, 32}, {32, 1, 1, 32});
  add(options(2), {1, 12, 14, 512}, {16, 3, 3, 512});  // 5 partials would take over 1 MiB: 4 instead
  add(options(2, same, 1, 1, 16), {8, 64, 64, 16}, {32, 3, 3, 1});
  return out;
}

// One case's tensors, and the reference's results.
template <class T>
struct problem {
  conv_geometry g;
  shape xs, ws, zs;
  std::vector<T> x, w, gz;   // input, weights, and an adjoint of the output
  std::vector<T> z, dx, dw;  // the reference's forward, input gradient and weight gradient

  problem(const shape_case& c, unsigned seed)
      : g(detail::conv_geometry_of(c.p, c.xs, c.ws)),
        xs(c.xs),
        ws(c.ws),
        zs(detail::conv_output_shape(g)),
        x(random_values<T>(xs.numel(), seed)),
        w(random_values<T>(ws.numel(), seed + 1)),
        gz(random_values<T>(zs.numel(), seed + 2)) {
    z = run(conv_direction::forward, "reference");
    dx = run(conv_direction::input_grad, "reference");
    dw = run(conv_direction::weight_grad, "reference");
  }

  // Direction d by implementation `name` (empty: the kernel without a name, which runs the first
  // that applies), on `threads` threads, optionally with an epilogue.
  std::vector<T> run(conv_direction d, std::string_view name, int threads = 1,
                     const kernels::conv_epilogue<T>& epilogue = {}) const {
    const shape& os = d == conv_direction::forward ? zs : d == conv_direction::input_grad ? xs : ws;
    std::vector<T> out(os.numel(), T(7));
    const view<T> o{out.data(), os};
    const view<const T> xv{x.data(), xs}, wv{w.data(), ws}, gv{gz.data(), zs};
    tbb::task_arena(threads).execute([&] {
      switch (d) {
        case conv_direction::forward:
          if (name.empty()) kernels::conv_forward<T>(o, xv, wv, g, epilogue);
          else kernels::conv_forward_with<T>(name, o, xv, wv, g, epilogue);
          break;
        case conv_direction::input_grad:
          if (name.empty()) kernels::conv_input_grad<T>(o, gv, wv, g);
          else kernels::conv_input_grad_with<T>(name, o, gv, wv, g);
          break;
        case conv_direction::weight_grad:
          if (name.empty()) kernels::conv_weight_grad<T>(o, xv, gv, g);
          else kernels::conv_weight_grad_with<T>(name, o, xv, gv, g);
          break;
      }
    });
    return out;
  }

  // The reference's result for d, and the tolerance test_conv.cpp uses: 4 eps per term summed
  // (plus one), the terms of a forward sum being taps * C/groups, of an input-gradient sum at most
  // taps * K, of a weight-gradient sum N * output positions.
  const std::vector<T>& want(conv_direction d) const {
    return d == conv_direction::forward ? z : d == conv_direction::input_grad ? dx : dw;
  }
  double tolerance(conv_direction d) const {
    const double terms = d == conv_direction::forward      ? double(g.taps() * g.in_group())
                         : d == conv_direction::input_grad ? double(g.taps() * g.out_channels)
                                                           : double(g.batch * g.out_positions());
    return 4 * std::numeric_limits<T>::epsilon() * (terms + 1);
  }
};

template <class T>
void check_every_implementation() {
  const auto cases = shape_cases();
  std::map<std::pair<conv_direction, std::string_view>, int> applied;  // cases per implementation
  unsigned seed = 1;
  for (const auto& c : cases) {
    const problem<T> pr(c, seed += 3);
    const std::string what = kernels::to_string(pr.g);
    for (const conv_direction d : directions) {
      const std::string_view chosen = kernels::conv_chosen<T>(d, pr.g);
      for (const std::string_view name : kernels::conv_implementations(d)) {
        if (!kernels::conv_applies<T>(d, name, pr.g)) continue;
        ++applied[{d, name}];
        const std::string label = fmt::format("{} {}: {}", kernels::conv_direction_name(d), name, what);
        const bool reference = name == "reference";
        const auto one = reference ? pr.want(d) : pr.run(d, name, 1);
        if (!reference) {
          BOOST_TEST(max_error(one, pr.want(d)) <= pr.tolerance(d), label);
          BOOST_TEST(same_bits(one, pr.run(d, name, 2)), label << ": 1 and 2 threads differ");
        }
        if (name == chosen)
          BOOST_TEST(same_bits(one, pr.run(d, {})), label << ": the kernel without a name differs from its choice");
        if (d != conv_direction::forward) continue;
        // relu(z + bias) in the implementation's epilogue, bias per channel or one value: bitwise
        // the separate passes over its own plain output.
        const std::size_t k = pr.g.out_channels;
        const auto bias = random_values<T>(seed % 2 ? k : 1, seed + 5);
        const auto fused = pr.run(d, name, 2, {.bias = bias.data(), .bias_size = bias.size(), .relu = true});
        std::vector<T> separate(one.size());
        for (std::size_t i = 0; i < one.size(); ++i) {
          const T s = one[i] + bias[bias.size() == 1 ? 0 : i % k];
          separate[i] = s < T(0) ? T(0) : s;
        }
        BOOST_TEST(same_bits(fused, separate), label << ": with a bias+relu epilogue");
      }
    }
  }
  for (const conv_direction d : directions)
    for (const std::string_view name : kernels::conv_implementations(d)) {
      const int n = applied[{d, name}];
      BOOST_TEST_MESSAGE(kernels::conv_direction_name(d) << " " << name << ": " << n << " shapes");
      BOOST_TEST(n > 0, kernels::conv_direction_name(d) << " " << name << " applies to no shape of the set");
      if (name == "reference") BOOST_TEST(n == int(cases.size()), "the reference applies to every shape");
    }
}

// The geometry of a same-padded conv with x (N, n..., C) and w (K, k..., C).
conv_geometry same_geometry(std::size_t dims, std::size_t stride, shape xs, shape ws) {
  return detail::conv_geometry_of(options(dims, padding_mode::same, stride), xs, ws);
}

}  // namespace

BOOST_AUTO_TEST_CASE(lists_end_with_the_reference) {
  for (const conv_direction d : directions) {
    const auto names = kernels::conv_implementations(d);
    BOOST_TEST_REQUIRE(names.size() >= 2u);
    BOOST_TEST(names.back() == "reference");
    for (std::size_t i = 0; i < names.size(); ++i)
      BOOST_TEST(std::count(names.begin(), names.end(), names[i]) == 1, names[i] << " appears twice");
  }
  using names = std::vector<std::string_view>;
  BOOST_TEST((kernels::conv_implementations(conv_direction::forward) ==
              names{"depthwise", "pointwise", "winograd", "direct", "gathered", "indirect", "packed_gemm",
                    "reference"}));
  BOOST_TEST((kernels::conv_implementations(conv_direction::weight_grad) ==
              names{"depthwise", "pointwise", "winograd", "gathered_columns", "gathered", "narrow", "packed_gemm",
                    "reference"}));
  BOOST_TEST((kernels::conv_implementations(conv_direction::input_grad) ==
              names{"depthwise", "few_channel_dots", "pointwise", "winograd", "indirect", "gathered", "pairs",
                    "phases", "reference"}));
}

BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_float) { check_every_implementation<float>(); }
BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_double) { check_every_implementation<double>(); }

// The default dispatch (the first that applies) on bench/bench_cnn.cpp's cases and a few more.
// (check_every_implementation checks that the kernels without a name run what conv_chosen names.)
BOOST_AUTO_TEST_CASE(default_dispatch_picks_the_measured_choice) {
  struct expected {
    conv_geometry g;
    std::string_view forward, input_grad, weight_grad;
  };
  const expected float_cases[] = {
      // bench_cnn a: N=64 C=1 28x28 K=32 3x3
      {same_geometry(2, 1, {64, 28, 28, 1}, {32, 3, 3, 1}), "direct", "few_channel_dots", "gathered"},
      // b: C=K=64 3x3; c: C=K=128 3x3 stride 2 (phases); d: 1-d C=K=64 k=7
      {same_geometry(2, 1, {32, 56, 56, 64}, {64, 3, 3, 64}), "winograd", "winograd", "winograd"},
      {same_geometry(2, 2, {32, 28, 28, 128}, {128, 3, 3, 128}), "indirect", "phases", "gathered_columns"},
      {same_geometry(1, 1, {32, 1024, 64}, {64, 7, 64}), "indirect", "indirect", "gathered_columns"},
      // f: the main example's second conv, C=32 K=64 on 14x14
      {same_geometry(2, 1, {64, 14, 14, 32}, {64, 3, 3, 32}), "winograd", "winograd", "winograd"},
      // e: 3-d C=K=16 (16 floats are a narrow width)
      {same_geometry(3, 1, {4, 32, 32, 32, 16}, {16, 3, 3, 3, 16}), "gathered", "gathered", "gathered_columns"},
      // g, h, i: the small ResNet's first stage, downsampling conv and projection shortcut (strided:
      // x read in place, not gathered from a padded copy, from 8 channels on)
      {same_geometry(2, 1, {64, 28, 28, 16}, {16, 3, 3, 16}), "winograd", "winograd", "winograd"},
      {same_geometry(2, 2, {64, 28, 28, 16}, {32, 3, 3, 16}), "indirect", "pairs", "gathered_columns"},
      {same_geometry(2, 2, {64, 28, 28, 16}, {32, 1, 1, 16}), "indirect", "phases", "narrow"},
      {same_geometry(2, 2, {64, 56, 56, 3}, {32, 3, 3, 3}), "gathered", "phases", "gathered"},
      // 1x1; K = 40 floats is no narrow width, but the indirect products take it (padded weights),
      // and dx into 12 channels; into 6 the dot products along g's channels; depthwise
      {same_geometry(2, 1, {8, 14, 14, 64}, {128, 1, 1, 64}), "pointwise", "pointwise", "pointwise"},
      {same_geometry(2, 1, {8, 14, 14, 12}, {40, 3, 3, 12}), "indirect", "indirect", "packed_gemm"},
      {same_geometry(2, 1, {8, 14, 14, 6}, {40, 3, 3, 6}), "indirect", "few_channel_dots", "packed_gemm"},
      // an Inception block's 3x3 branch: 24 -> 48 channels (Winograd forward, dx into 24)
      {same_geometry(2, 1, {64, 14, 14, 24}, {48, 3, 3, 24}), "winograd", "indirect", "winograd"},
      {detail::conv_geometry_of(options(2, padding_mode::same, 1, 1, 32), {8, 14, 14, 32}, {32, 3, 3, 1}), "depthwise",
       "depthwise", "depthwise"},
  };
  for (const auto& e : float_cases) {
    const std::string what = kernels::to_string(e.g);
    BOOST_TEST(kernels::conv_chosen<float>(conv_direction::forward, e.g) == e.forward, what);
    BOOST_TEST(kernels::conv_chosen<float>(conv_direction::input_grad, e.g) == e.input_grad, what);
    BOOST_TEST(kernels::conv_chosen<float>(conv_direction::weight_grad, e.g) == e.weight_grad, what);
  }
  // 40 floats are 2.5 blocks of 64 bytes: the indirect forward, with padded weights. 40 doubles are 5
  // blocks, a narrow width: gathered forward (20 input channels); the
  // weight gradient's narrow product takes at most 4 blocks (too many channels to gather there);
  // a 5x5 window, which Winograd's F(2x2, 3x3) does not take
  const auto g40 = same_geometry(2, 1, {8, 14, 14, 20}, {40, 5, 5, 20});
  BOOST_TEST(kernels::conv_chosen<float>(conv_direction::forward, g40) == "indirect");
  BOOST_TEST(kernels::conv_chosen<double>(conv_direction::forward, g40) == "gathered");
  BOOST_TEST(kernels::conv_chosen<double>(conv_direction::weight_grad, g40) == "packed_gemm");
  // 32 doubles, 4 blocks: narrow weight gradient
  const auto g32 = same_geometry(2, 1, {8, 14, 14, 20}, {32, 5, 5, 20});
  BOOST_TEST(kernels::conv_chosen<double>(conv_direction::weight_grad, g32) == "narrow");

}

BOOST_AUTO_TEST_CASE(errors_name_the_implementation_direction_and_geometry) {
  const auto g = same_geometry(2, 1, {2, 5, 6, 12}, {40, 3, 3, 12});
  std::vector<float> x(2 * 5 * 6 * 12), w(40 * 3 * 3 * 12), z(2 * 5 * 6 * 40);
  const view<const float> xv{x.data(), {2, 5, 6, 12}}, wv{w.data(), {40, 3, 3, 12}};
  const view<float> zv{z.data(), {2, 5, 6, 40}};
  auto message = [&](std::string_view name) {
    return test_support::error_message([&] { kernels::conv_forward_with<float>(name, zv, xv, wv, g); });
  };
  const std::string not_applying = message("depthwise");
  BOOST_TEST(not_applying ==
                 "conv forward: implementation \"depthwise\" does not apply to x (2, 5, 6, 12), w (40, 3, 3, 12), "
                 "groups 1, stride (1, 1), dilation (1, 1), pad_low (1, 1) -> (2, 5, 6, 40)",
             not_applying);
  const std::string unknown = message("phases");
  BOOST_TEST(unknown ==
                 "conv forward: no implementation \"phases\" (there are: depthwise, pointwise, winograd, direct, "
                 "gathered, indirect, packed_gemm, reference)",
             unknown);
  BOOST_CHECK_THROW((void)kernels::conv_applies<double>(conv_direction::weight_grad, "few_channel_dots", g), error);
  BOOST_TEST(kernels::conv_applies<float>(conv_direction::forward, "indirect", g));  // 40 floats, padded to 48
  BOOST_TEST(kernels::conv_applies<double>(conv_direction::forward, "indirect", g));  // 40 doubles
  BOOST_TEST(!kernels::conv_applies<float>(conv_direction::forward, "gathered", g));  // needs whole blocks
  const auto g136 = same_geometry(2, 1, {2, 5, 6, 12}, {136, 3, 3, 12});  // more than 8 blocks
  BOOST_TEST(!kernels::conv_applies<float>(conv_direction::forward, "indirect", g136));
}

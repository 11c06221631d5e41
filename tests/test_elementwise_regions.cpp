#define BOOST_TEST_MODULE elementwise_regions
#include <boost/test/unit_test.hpp>

// Elementwise regions (src/runtime/executor.cpp): a program runs connected elementwise nodes as
// one pass, block by block. Checked against the same program built with regions off: every
// output bitwise equal, float and double, at 1 and 2 threads, for a residual block with batch
// norms (forward and every gradient), for operands of every kind (full, per-channel column,
// scalar, a literal), and for shapes whose broadcasting does not fit blocks (the region then runs
// its members whole), and for members also read outside (stored by the region). The listing names
// the regions.
#include <typegrad/runtime/executor.hpp>
#include <typegrad/typegrad.hpp>

#include <string>
#include <tuple>
#include <vector>

#include "support.hpp"

using namespace typegrad;
using test_support::cast;
using test_support::random_uniform;

namespace {
constexpr var<"x", 4> x;
constexpr var<"w1", 4> w1;
constexpr var<"w2", 4> w2;
constexpr var<"g1", 1> g1;
constexpr var<"b1", 1> b1;
constexpr var<"g2", 1> g2;
constexpr var<"b2", 1> b2;
constexpr var<"c", 1> c;  // per channel
constexpr var<"s", 0> s;  // a runtime scalar
constexpr var<"y", 4> y;  // another full tensor, or one that broadcasts otherwise

// A residual block with batch norms, summed to a scalar.
constexpr auto block_loss() {
  const auto h = relu(batch_norm(conv(x, w1), g1, b1));
  return sum(square(relu(batch_norm(conv(h, w2), g2, b2) + x)));
}

// Every output of p, flattened, in order.
template <class T, class P>
std::vector<std::vector<T>> all_outputs(const P& p) {
  std::vector<std::vector<T>> out;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (out.push_back(test_support::values(p.template output<I>())), ...);
  }(std::make_index_sequence<P::output_count>{});
  return out;
}

// Builds the program twice (regions on, off), runs both with the bindings at 1 and 2 threads and
// compares every output bitwise; returns the listing of the program with regions.
template <class T, class Bind, class... Args>
std::string same_with_and_without_regions(Bind bind, Args... args) {
  runtime::set_elementwise_regions(false);
  auto plain = compile<T>(args...);
  runtime::set_elementwise_regions(true);
  auto fused = compile<T>(args...);
  bind(plain);
  bind(fused);
  plain.set_threads(1).run();
  const auto want = all_outputs<T>(plain);
  for (int threads : {1, 2}) {
    fused.set_threads(threads).run();
    const auto got = all_outputs<T>(fused);
    BOOST_REQUIRE(got.size() == want.size());
    for (std::size_t o = 0; o < want.size(); ++o)
      BOOST_TEST(test_support::same_bits(got[o], want[o]), "output " << o << " at " << threads << " threads");
  }
  return fused.listing();
}

template <class T>
void residual_block_case() {
  const auto xv = cast<T>(random_uniform<4>({4, 6, 5, 8}, 1));
  const auto w1v = cast<T>(random_uniform<4>({8, 3, 3, 8}, 2));
  const auto w2v = cast<T>(random_uniform<4>({8, 3, 3, 8}, 3));
  const auto g1v = cast<T>(random_uniform<1>({8}, 4)), b1v = cast<T>(random_uniform<1>({8}, 5));
  const auto g2v = cast<T>(random_uniform<1>({8}, 6)), b2v = cast<T>(random_uniform<1>({8}, 7));
  const std::string listing = same_with_and_without_regions<T>(
      [&](auto& p) {
        p.bind(x, xv).bind(w1, w1v).bind(w2, w2v).bind(g1, g1v).bind(b1, b1v).bind(g2, g2v).bind(b2, b2v);
      },
      block_loss(), wrt(x, w1, w2, g1, b1, g2, b2));
  BOOST_TEST(listing.find("[elementwise region: computes") != std::string::npos, listing);
  BOOST_TEST(listing.find("whole this plan") == std::string::npos, listing);
}
}  // namespace

BOOST_AUTO_TEST_CASE(residual_block_with_batch_norms_float) { residual_block_case<float>(); }
BOOST_AUTO_TEST_CASE(residual_block_with_batch_norms_double) { residual_block_case<double>(); }

// Operands of each kind: full (x, y), a per-channel column (c), a scalar leaf and a literal;
// unary functions, neg, div, and expand_mean (a mean's gradient) inside one region.
BOOST_AUTO_TEST_CASE(operand_kinds) {
  const auto xv = random_uniform<4>({3, 4, 5, 6}, 11), yv = random_uniform<4>({3, 4, 5, 6}, 12);
  const auto cv = random_uniform<1>({6}, 13);
  tensor<double, 0> sv{};
  sv.data()[0] = 0.75;
  auto f = sum(exp(-(x * c + s) / (y * y + lit<2>)) * tanh(x - c) + mean(x, axes<0, 1, 2>));
  const std::string listing = same_with_and_without_regions<double>(
      [&](auto& p) { p.bind(x, xv).bind(y, yv).bind(c, cv).bind(s, sv); }, f, wrt(x, y, c));
  BOOST_TEST(listing.find("[elementwise region: computes") != std::string::npos, listing);
}

// Regions that end in a sum over rows (a bias's gradient, a per-channel mean): the sum is taken
// block by block as sum_to takes it, in the same parts; sums over other axes run the sum's own
// kernel on the region's value, a sum_to between equal shapes leaves it in place, and an empty
// batch runs the members whole and then the sum.
BOOST_AUTO_TEST_CASE(regions_ending_in_sums) {
  const auto xv = random_uniform<4>({16, 32, 20, 24}, 31), yv = random_uniform<4>({16, 32, 20, 24}, 32);
  const auto cv = random_uniform<1>({24}, 33);
  auto f = sum(sum(x * y - c, axes<0, 1, 2>) * c) + sum(mean(exp(x) * y, axes<0, 1, 2>)) +
           sum(sum(x * y + x, axes<1>));
  std::string listing =
      same_with_and_without_regions<double>([&](auto& p) { p.bind(x, xv).bind(y, yv).bind(c, cv); }, f, wrt(x, c));
  BOOST_TEST(listing.find("= sum[axes=(0, 1, 2)](%4) : (24)  [elementwise region") != std::string::npos, listing);
  BOOST_TEST(listing.find("= sum[axes=(1)](%13) : (16, 20, 24)  [elementwise region") != std::string::npos, listing);
  BOOST_TEST(listing.find("whole this plan") == std::string::npos, listing);
  const auto xf = cast<float>(xv), yf = cast<float>(yv);
  const auto cf = cast<float>(cv);
  same_with_and_without_regions<float>([&](auto& p) { p.bind(x, xf).bind(y, yf).bind(c, cf); }, f, wrt(x, c));
  const auto empty_x = random_uniform<4>({0, 3, 2, 24}, 34), empty_y = random_uniform<4>({0, 3, 2, 24}, 35);
  auto g = sum(sum(x * y - c, axes<0, 1, 2>) * c);
  same_with_and_without_regions<double>([&](auto& p) { p.bind(x, empty_x).bind(y, empty_y).bind(c, cv); }, g,
                                        wrt(c));
}

// y of shape (N, 1, 1, C) broadcasts over the ordered dims: neither full, a column nor a
// scalar, so the region runs its members whole this plan, and again in blocks when rebound.
BOOST_AUTO_TEST_CASE(shapes_that_do_not_fit_blocks) {
  const auto xv = random_uniform<4>({2, 3, 4, 5}, 21), yv = random_uniform<4>({2, 1, 1, 5}, 22);
  auto f = sum(relu(x * y - x) / (x * x + lit<1>));
  std::string listing = same_with_and_without_regions<double>([&](auto& p) { p.bind(x, xv).bind(y, yv); }, f,
                                                               wrt(x, y));
  BOOST_TEST(listing.find("whole this plan") != std::string::npos, listing);
  const auto full_y = random_uniform<4>({2, 3, 4, 5}, 23);
  listing = same_with_and_without_regions<double>([&](auto& p) { p.bind(x, xv).bind(y, full_y); }, f, wrt(x, y));
  BOOST_TEST(listing.find("[elementwise region: computes") != std::string::npos, listing);
  BOOST_TEST(listing.find("whole this plan") == std::string::npos, listing);
}

// A member read outside its region, by nodes that come after the region's runner: the region
// stores it too (a batch norm's centred input, summed for the variance and normalised later).
// Blocked, run whole (y broadcasting otherwise), with an empty batch; the listing names it.
BOOST_AUTO_TEST_CASE(values_read_outside_are_stored) {
  const auto xv = random_uniform<4>({4, 6, 5, 8}, 41), yv = random_uniform<4>({4, 6, 5, 8}, 42);
  const auto cv = random_uniform<1>({8}, 43);
  const auto d = x * y - c;
  const auto spread = sum(square(d), axes<0, 1, 2>);  // d computed on the fly, and stored
  auto f = sum(relu(d / sqrt(spread + lit<1>)) * c);  // d read again after the sum
  std::string listing =
      same_with_and_without_regions<double>([&](auto& p) { p.bind(x, xv).bind(y, yv).bind(c, cv); }, f, wrt(x, y, c));
  BOOST_TEST(listing.find(", stores %") != std::string::npos, listing);
  BOOST_TEST(listing.find("'s region]") != std::string::npos, listing);
  BOOST_TEST(listing.find("whole this plan") == std::string::npos, listing);
  const auto xf = cast<float>(xv), yf = cast<float>(yv);
  const auto cf = cast<float>(cv);
  same_with_and_without_regions<float>([&](auto& p) { p.bind(x, xf).bind(y, yf).bind(c, cf); }, f, wrt(x, y, c));
  const auto column_y = random_uniform<4>({4, 1, 1, 8}, 44);
  listing = same_with_and_without_regions<double>([&](auto& p) { p.bind(x, xv).bind(y, column_y).bind(c, cv); }, f,
                                                  wrt(x, y, c));
  BOOST_TEST(listing.find("whole this plan") != std::string::npos, listing);
  const auto empty_x = random_uniform<4>({0, 6, 5, 8}, 45), empty_y = random_uniform<4>({0, 6, 5, 8}, 46);
  same_with_and_without_regions<double>([&](auto& p) { p.bind(x, empty_x).bind(y, empty_y).bind(c, cv); }, f,
                                        wrt(x, y, c));
}

#define BOOST_TEST_MODULE static_shapes
#include <boost/test/unit_test.hpp>

// Shapes and multiply-adds at compile time (core/static_shapes.hpp): every op's shape rule in a
// constant expression against hand-written extents, the same shapes as a program infers when it
// binds tensors, and the multiply-adds of convs and products against hand counts.
#include <typegrad/core/static_shapes.hpp>
#include <typegrad/typegrad.hpp>

#include <string>

#include "../examples/nets/fashion_cnn.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 4> x;
constexpr var<"w", 4> w;
constexpr var<"b", 1> b;
constexpr var<"a", 2> a;
constexpr var<"m", 2> m;
constexpr var<"s", 3> s;
constexpr var<"labels", 1> labels;

// (2, 9, 9, 3) images, 4 filters of 3x3.
constexpr leaf_shapes images = {{"x", {2, 9, 9, 3}}, {"w", {4, 3, 3, 3}}, {"b", {4}}};

constexpr bool same(const shape& s, shape want) { return s == want; }

// Conv and pooling: paddings, strides, dilation, groups, and their gradients' ops.
static_assert(same(static_shape(images, conv(x, w)), {2, 9, 9, 4}));
static_assert(same(static_shape(images, conv(x, w, padding_valid)), {2, 7, 7, 4}));
static_assert(same(static_shape(images, conv(x, w, stride<2>)), {2, 5, 5, 4}));
static_assert(same(static_shape(images, conv(x, w, padding_valid, stride<2>, dilation<2>)), {2, 3, 3, 4}));
static_assert(same(static_shape({{"x", {1, 8, 8, 6}}, {"w", {6, 3, 3, 2}}}, conv(x, w, groups<3>)), {1, 8, 8, 6}));
static_assert(same(static_shape(images, relu(conv(x, w) + b)), {2, 9, 9, 4}));
static_assert(same(static_shape(images, max_pool(conv(x, w), window<2>)), {2, 5, 5, 4}));
static_assert(same(static_shape(images, avg_pool(x, window<3>, stride<1>)), {2, 9, 9, 3}));
static_assert(same(static_shape(images, grad(sum(conv(x, w, stride<2>)), x)), {2, 9, 9, 3}));
static_assert(same(static_shape(images, grad(sum(conv(x, w, stride<2>)), w)), {4, 3, 3, 3}));
static_assert(same(static_shape(images, grad(sum(max_pool(relu(x), window<2>)), x)), {2, 9, 9, 3}));

// Products, layout, reductions, broadcasting, losses.
constexpr leaf_shapes matrices = {{"a", {5, 7}}, {"m", {7, 3}}, {"s", {4, 5, 7}}, {"labels", {5}}};
static_assert(same(static_shape(matrices, matmul(a, m)), {5, 3}));
static_assert(same(static_shape(matrices, matmul(s, m)), {4, 5, 3}));
static_assert(same(static_shape(matrices, grad(sum(matmul(a, m)), m)), {7, 3}));
static_assert(same(static_shape(matrices, transpose(a)), {7, 5}));
static_assert(same(static_shape(matrices, reshape<-1, 5>(s)), {28, 5}));
static_assert(same(static_shape(matrices, flatten(s)), {4, 35}));
static_assert(same(static_shape(matrices, slice<1, 4, 0, to_end>(a)), {3, 7}));
static_assert(same(static_shape(matrices, concat<0>(a, a)), {10, 7}));
static_assert(same(static_shape(matrices, sum(s, axes<1>)), {4, 7}));
static_assert(same(static_shape(matrices, mean(s)), {}));
static_assert(same(static_shape(matrices, s * a), {4, 5, 7}));
static_assert(same(static_shape(matrices, softmax(a, axes<0>)), {5, 7}));
static_assert(same(static_shape(matrices, softmax_cross_entropy_unreduced(a, labels)), {5}));
static_assert(same(static_shape(matrices, softmax_cross_entropy(a, labels)), {}));
static_assert(same(static_shape(matrices, grad(mean(softmax_cross_entropy(a, labels)), a)), {5, 7}));

// Every node: the leaves as given, the root last.
constexpr auto all = static_shapes(images, relu(conv(x, w) + b));
static_assert(all.size() == 6 && same(all[5], {2, 9, 9, 4}));

// Multiply-adds: conv = outputs x taps x in-channels per group, both gradients the same again;
// matmul = M N K.
constexpr std::size_t conv_macs = 2 * 9 * 9 * 4 * (3 * 3 * 3);
static_assert(multiply_adds(images, conv(x, w)) == conv_macs);
static_assert(multiply_adds(images, relu(conv(x, w) + b)) == conv_macs);
static_assert(multiply_adds(images, grad(sum(conv(x, w)), x)) == conv_macs);
static_assert(multiply_adds(images, conv(x, w), grad(sum(conv(x, w)), x), grad(sum(conv(x, w)), w)) ==
              3 * conv_macs);
static_assert(multiply_adds({{"x", {1, 8, 8, 6}}, {"w", {6, 3, 3, 2}}}, conv(x, w, groups<3>)) == 8 * 8 * 6 * 9 * 2);
static_assert(multiply_adds(images, conv(x, w, stride<2>)) == 2 * 5 * 5 * 4 * 27);
static_assert(multiply_adds(matrices, matmul(s, m)) == 4 * 5 * 3 * 7);
static_assert(multiply_adds(matrices, grad(sum(matmul(a, m)), m)) == 7 * 3 * 5);
static_assert(multiply_adds(matrices, grad(sum(matmul(s, m)), m)) == 7 * 3 * 5 * 4);  // summed over s's batch

// The main example's network per image (batch 1): conv1 (padding same) 28 x 28 outputs x 32
// filters x 9 taps, conv2 14 x 14 x 64 x 9 taps x 32 channels, the dense layers 3136 x 128 and
// 128 x 10.
namespace fashion = nets::fashion_cnn;
constexpr leaf_shapes fashion_image = {
    {"x", {1, 28, 28, 1}},     {"conv1_w", {32, 3, 3, 1}},  {"conv1_b", {32}},     {"conv2_w", {64, 3, 3, 32}},
    {"conv2_b", {64}},         {"dense1_w", {3136, 128}},   {"dense1_b", {128}},   {"dense2_w", {128, 10}},
    {"dense2_b", {10}},        {"labels", {1}}};
static_assert(same(static_shape(fashion_image, fashion::h2), {1, 7, 7, 64}));
static_assert(same(static_shape(fashion_image, fashion::logits), {1, 10}));
static_assert(multiply_adds(fashion_image, fashion::logits) ==
              28 * 28 * 32 * 9 + 14 * 14 * 64 * 9 * 32 + 3136 * 128 + 128 * 10);
}  // namespace

// The program infers the same shapes at run time: the gradients' outputs of the main example.
BOOST_AUTO_TEST_CASE(program_shapes_match) {
  constexpr shape conv2_w = static_shape(fashion_image, grad(fashion::loss, fashion::conv2_w));
  constexpr shape dense1_w = static_shape(fashion_image, grad(fashion::loss, fashion::dense1_w));
  auto program = compile<double>(fashion::loss, wrt(fashion::conv2_w, fashion::dense1_w));
  auto params = fashion::make_parameters<double>();
  params.bind(program);
  params.initialize(1);
  tensor<double, 4> images({1, 28, 28, 1});
  tensor<double, 1> classes({1});
  program.bind(fashion::x, images).bind(fashion::labels, classes).run();
  BOOST_TEST(program.gradient(fashion::conv2_w).shape == conv2_w);
  BOOST_TEST(program.gradient(fashion::dense1_w).shape == dense1_w);
}

// The same functions at run time (shapes known only then): a missing leaf or a rule's violation
// is a shape_error naming it.
BOOST_AUTO_TEST_CASE(run_time_use_and_errors) {
  const std::size_t batch = 3;
  const leaf_shapes given = {{"x", {batch, 9, 9, 3}}, {"w", {4, 3, 3, 3}}};
  BOOST_TEST(static_shape(given, conv(x, w)) == (shape{batch, 9, 9, 4}));
  BOOST_TEST(multiply_adds(given, conv(x, w)) == batch * 9 * 9 * 4 * 27);
  const leaf_shapes missing = {{"x", {batch, 9, 9, 3}}};
  BOOST_CHECK_EXCEPTION(static_shape(missing, conv(x, w)), shape_error, [](const shape_error& e) {
    return std::string(e.what()).find("no shape given for leaf 'w'") != std::string::npos;
  });
  const leaf_shapes wrong_rank = {{"x", {batch, 9, 9}}, {"w", {4, 3, 3, 3}}};
  BOOST_CHECK_EXCEPTION(static_shape(wrong_rank, conv(x, w)), shape_error, [](const shape_error& e) {
    return std::string(e.what()).find("leaf 'x' has rank 4 but is given the shape (3, 9, 9)") != std::string::npos;
  });
  const leaf_shapes mismatch = {{"x", {batch, 9, 9, 3}}, {"w", {4, 3, 3, 2}}};
  BOOST_CHECK_THROW(static_shape(mismatch, conv(x, w)), shape_rule_violation);
}

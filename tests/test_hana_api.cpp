#define BOOST_TEST_MODULE hana_api
#include <boost/test/unit_test.hpp>

// The graph as Hana values (core/hana.hpp): nodes, leaves and variables as hana::tuples of types,
// predicates usable at compile time, and rewrite(): the relu -> gelu ablation of a network keeps
// every other node, differentiates (finite differences) and runs.
#include <typegrad/core/hana.hpp>
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/train.hpp>
#include <typegrad/typegrad.hpp>

#include <boost/hana/fold_left.hpp>
#include <boost/hana/length.hpp>

#include <string>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 4> x;
constexpr var<"w1", 4> w1;
constexpr var<"b1", 1> b1;
constexpr var<"w2", 4> w2;

// A small residual block: two convs, relus, a skip connection.
constexpr auto block() {
  auto h = relu(conv(x, w1) + b1);
  return relu(conv(h, w2) + x);
}
using block_t = decltype(block());

constexpr auto relu_to_gelu = [](auto e) {
  if constexpr (is_op<unary_op<relu_fn>>(e)) return gelu(hana::at_c<0>(arguments(e)));
  else return e;
};
constexpr auto drop_bias = [](auto e) {  // conv(...) + b1 -> conv(...): a rewrite of a subtree
  if constexpr (is_op<add_op>(e)) {
    if constexpr (std::is_same_v<std::remove_cvref_t<decltype(hana::at_c<1>(arguments(e)))>, var<"b1", 1>>)
      return hana::at_c<0>(arguments(e));
    else return e;
  } else return e;
};

// Compile-time facts about the block, as constants.
static_assert(hana::size(variables(block_t{})) == hana::size_c<4>);
static_assert(hana::count_if(nodes(block_t{}), op_named<"conv">) == hana::size_c<2>);
static_assert(hana::count_if(nodes(block_t{}), op_named<"relu">) == hana::size_c<2>);
static_assert(hana::count_if(nodes(rewrite(block_t{}, relu_to_gelu)), op_named<"relu">) == hana::size_c<0>);
static_assert(hana::count_if(nodes(rewrite(block_t{}, relu_to_gelu)), op_named<"gelu">) == hana::size_c<2>);
static_assert(hana::size(leaves(lit<2> * x)) == hana::size_c<2>);  // the literal is a leaf, not a variable
static_assert(hana::size(variables(lit<2> * x)) == hana::size_c<1>);
static_assert(std::is_same_v<decltype(rewrite(block_t{}, [](auto e) { return e; })), block_t>);  // identity
}  // namespace

BOOST_AUTO_TEST_CASE(nodes_and_variables_in_order) {
  std::vector<std::string> names;
  hana::for_each(variables(block_t{}), [&](auto t) { names.push_back(std::string(decltype(t)::type::name)); });
  BOOST_TEST(names == (std::vector<std::string>{"x", "w1", "b1", "w2"}), boost::test_tools::per_element());
  std::size_t count = 0;
  hana::for_each(nodes(block_t{}), [&](auto) { ++count; });
  BOOST_TEST(count == graph::node_count(block()));
}

BOOST_AUTO_TEST_CASE(rewrites_print_differentiate_and_run) {
  const auto ablation = rewrite(block(), relu_to_gelu);
  BOOST_TEST(to_string(ablation) == "gelu(conv(gelu(conv(x, w1) + b1), w2) + x)");
  BOOST_TEST(to_string(rewrite(block(), drop_bias)) == "relu(conv(relu(conv(x, w1)), w2) + x)");
  // The rewritten graph is an ordinary expression: its gradients against finite differences.
  const auto xv = test_support::random_away_from_zero<4>({2, 5, 4, 3}, 1);
  const auto w1v = test_support::random_away_from_zero<4>({3, 3, 3, 3}, 2);
  const auto b1v = test_support::random_away_from_zero<1>({3}, 3);
  const auto w2v = test_support::random_away_from_zero<4>({3, 3, 3, 3}, 4);
  const auto r = test_support::random_away_from_zero<4>({2, 5, 4, 3}, 5);
  constexpr var<"r", 4> rv;
  auto f = sum(ablation * rv);
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(f, wrt(x, w1, b1, w2), given(x, xv), given(w1, w1v),
                                                           given(b1, b1v), given(w2, w2v), given(rv, r))));
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(f, wrt(w1, b1), given(x, xv), given(w1, w1v),
                                                          given(b1, b1v), given(w2, w2v), given(rv, r))));
}

// A parameter set and a program's outputs are Hana Foldables of valued expressions: each
// element's expression (a var, an output) and its value, in order.
BOOST_AUTO_TEST_CASE(parameter_sets_and_outputs_as_hana_sequences) {
  auto params = train::make_parameters<double>(train::param(w1, {3, 3, 3, 3}), train::param(b1, {3}),
                                               train::param(w2, {3, 3, 3, 3}));
  params.initialize(7);
  std::vector<std::string> names;
  std::size_t elements = 0;
  hana::for_each(params, [&](auto p) {
    names.push_back(std::string(decltype(p.expression)::name));
    elements += p.value.size();
    p.value.data()[0] = 0.5;  // the parameter's own tensor, not a copy
  });
  BOOST_TEST(names == (std::vector<std::string>{"w1", "b1", "w2"}), boost::test_tools::per_element());
  BOOST_TEST(elements == 81u + 3u + 81u);
  BOOST_TEST(params[b1].data()[0] == 0.5);
  BOOST_TEST(std::size_t(hana::length(params)) == 3u);

  auto program = compile<double>(sum(block()), wrt(w1, b1));
  params.bind(program);
  const auto xv = test_support::random_away_from_zero<4>({2, 5, 4, 3}, 1);
  program.bind(x, xv).run();
  std::vector<std::string> outputs;
  hana::for_each(program.output_values(), [&](auto o) {
    outputs.push_back(to_string(o.expression));
    BOOST_TEST(o.value.data != nullptr);
  });
  BOOST_TEST(outputs.size() == 3u);
  BOOST_TEST(outputs[0] == to_string(sum(block())));
  const double total =
      hana::fold_left(program.output_values(), 0.0, [](double s, auto o) { return s + double(o.value.size()); });
  BOOST_TEST(total == 1.0 + 81 + 3);
}

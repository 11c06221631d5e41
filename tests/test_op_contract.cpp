#define BOOST_TEST_MODULE op_contract
#include <boost/test/unit_test.hpp>

// The op contract (core/op_concepts.hpp): the minimal op that satisfies it (the archetype) forms
// nodes, prints, runs, and differentiates (finite differences, float and double); structs that
// each miss one piece fail exactly the concept for that piece. (Using such a struct is a compile
// error with one sentence: tests/compile_fail/op_without_*.cpp.)
#include <typegrad/tools/gradcheck.hpp>
#include <typegrad/tools/gradcheck_boost.hpp>
#include <typegrad/typegrad.hpp>

#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
// The archetype: y = 2 x, with exactly the required members.
struct twice_op {
  static constexpr std::string_view name = "twice";
  static constexpr std::size_t rank(std::size_t x) { return x; }
  static shape infer_shape(std::span<const shape> in) { return in[0]; }
  template <class T>
  static void forward(view<T> out, std::span<const view<const T>> in) {
    for (std::size_t i = 0; i < out.size(); ++i) out.data[i] = T(2) * in[0].data[i];
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X) {
    return g * lit<2>;
  }
};
template <Expression X>
constexpr auto twice(X) {
  return node<twice_op, X>{};
}

struct no_name {
  static constexpr std::size_t rank(std::size_t x) { return x; }
  static shape infer_shape(std::span<const shape> in) { return in[0]; }
  template <class T>
  static void forward(view<T>, std::span<const view<const T>>) {}
};
struct runtime_rank {
  static constexpr std::string_view name = "runtime_rank";
  static std::size_t rank(std::size_t x) { return x; }  // not constexpr
  static shape infer_shape(std::span<const shape> in) { return in[0]; }
  template <class T>
  static void forward(view<T>, std::span<const view<const T>>) {}
};
struct no_shape_rule {
  static constexpr std::string_view name = "no_shape_rule";
  static constexpr std::size_t rank(std::size_t x) { return x; }
  template <class T>
  static void forward(view<T>, std::span<const view<const T>>) {}
};
struct float_only {
  static constexpr std::string_view name = "float_only";
  static constexpr std::size_t rank(std::size_t x) { return x; }
  static shape infer_shape(std::span<const shape> in) { return in[0]; }
  template <class T>
    requires std::same_as<T, float>
  static void forward(view<T>, std::span<const view<const T>>) {}
};

using x_t = var<"x", 2>;
using g_t = var<"g", 2>;
using y_t = var<"y", 2>;
constexpr x_t x;

// The concepts, for the archetype and for each broken struct (decided at compile time).
static_assert(Op<twice_op, 2>);
static_assert(DifferentiableOp<twice_op, g_t, y_t, x_t>);
static_assert(!NamedOp<no_name> && RankedOp<no_name, 2> && ShapedOp<no_name> && ComputableOp<no_name>);
static_assert(NamedOp<runtime_rank> && !RankedOp<runtime_rank, 2> && !Op<runtime_rank, 2>);
static_assert(!ShapedOp<no_shape_rule> && !Op<no_shape_rule, 2>);
static_assert(!ComputableOp<float_only> && !Op<float_only, 2>);
static_assert(Op<twice_op, 2> && !RankedOp<twice_op, 2, 2>);  // rank takes one rank per argument
static_assert(!DifferentiableOp<no_name, g_t, y_t, x_t>);     // (no vjp at all)
static_assert(UnaryFunction<relu_fn> && !UnaryFunction<twice_op>);
}  // namespace

BOOST_AUTO_TEST_CASE(archetype_prints_runs_and_differentiates) {
  BOOST_TEST(to_string(twice(x)) == "twice(x)");
  BOOST_TEST(to_string(grad(sum(twice(x)), x)) == "sum_to(sum_to(1, twice(x)) * 2, x)");  // g expanded, times 2
  auto f = sum(twice(x) * x);
  auto prog = compile<double>(f, wrt(x));
  tensor<double, 2> xv({1, 3}, {1, -2, 0.5});
  prog.bind(x, xv).run();
  BOOST_TEST(prog.scalar(f) == 2 * (1 + 4 + 0.25));
  BOOST_TEST(test_support::values(prog.gradient(x)) == (std::vector<double>{4, -8, 2}),
             boost::test_tools::per_element());
  const auto xr = test_support::random_away_from_zero<2>({3, 4}, 1);
  BOOST_TEST(testing::gradients_ok(check_gradients<float>(f, wrt(x), given(x, xr))));
  BOOST_TEST(testing::gradients_ok(check_gradients<double>(f, wrt(x), given(x, xr))));
}

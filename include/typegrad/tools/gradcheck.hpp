#pragma once
// Finite-difference gradient checking: does the symbolic gradient of f agree with f's values?
//
//   #include <typegrad/tools/gradcheck.hpp>
//
//   constexpr var<"x", 2> x;
//   constexpr var<"w", 2> w;
//   auto f = sum(x * w * w);                                   // f must be a scalar
//   auto report = typegrad::check_gradients<float>(f, wrt(x, w), given(x, xv), given(w, wv));
//   if (!report.ok()) fmt::print("{}\n", report);              // a per-variable table
//
//   // in a Boost.Test case:  #include <typegrad/tools/gradcheck_boost.hpp>
//   BOOST_TEST(typegrad::testing::gradients_ok(report));      // the table is the failure message
//
// What it does
// - The analytic side is the program under test: compile<T>(f, wrt(xs...)) in precision T (float
//   or double), run once at the given point (the given double values rounded to T).
// - The numeric side is always computed in double: compile<double>(f) is bound once to double
//   copies of the given values, which are perturbed in place and re-run (no re-allocation).
//   Central differences (f(x+h) - f(x-h)) / 2h, at the same point as the analytic side (the
//   values rounded to T), so the conversion of the inputs to T is not counted as an error.
// - Every leaf of f must be given a value (tensor<double, R>); a missing one is a compile error.
//   Only the variables named in wrt(...) are checked. A non-scalar output is checked through a
//   random projection: sum(op(x) * r) with r a given random tensor.
//
// Modes (check_options{.mode = ...})
// - check_mode::every_element (default): one central difference per element of every checked
//   variable: 2 runs of f per element. The report names the worst element by index.
// - check_mode::random_directions: for each checked variable, `directions` seeded random unit
//   directions v (over that variable's elements): v . grad against (f(x+hv) - f(x-hv)) / 2h.
//   2 runs of f per direction, whatever the size of the tensor: use it for large tensors.
//   Directions are drawn per variable (not jointly), so a failure is still attributed to one.
//
// Pass/fail: a probe passes when
//   |analytic - numeric| <= atol * scale + rtol * max(|analytic|, |numeric|) + noise
// where scale is the variable's largest |numeric derivative| (1 if all are zero: atol is relative
// to the gradient's magnitude, so tiny gradients such as those of a mean over many elements are
// still checked) and noise is the double finite difference's own rounding floor (~ eps |f| / h).
// Defaults: T = double: rtol 1e-6, atol 1e-8; T = float: rtol 1e-3, atol 1e-4 (about what a float
// program's gradient is accurate to). In random_directions mode the rtol term also scales with
// |v o grad|, the size of the terms of the dot product. The step h defaults to
// cbrt(eps_double) * max(1, |x|) per element (random_directions: max |x| over the variable).
// A probe that fails is retried with the step halved, up to 4 times, and passes if a smaller
// step agrees (a kink or strong curvature just beyond the smaller interval); the report then
// shows the refined numeric value. The report's worst index is the probe with the largest
// error relative to its tolerance.
//
// Kinks: a probe whose interval straddles a point where f is not differentiable (relu at 0, a max
// with a tie, abs at 0) gives a central difference that need not match any gradient. The gap
// between the one-sided differences (f(x+h) - f(x))/h and (f(x) - f(x-h))/h tells: for smooth f
// it is f''h and halves with the step; across a kink it is the jump in slope and does not shrink.
// A probe whose gap persists at half the step, far beyond the tolerance, and whose analytic value
// lies between the one-sided differences (a valid subgradient, e.g. relu'(0) = 0) is a kink: it
// is excluded from pass/fail, counted in the report, and a warning names the variable and index
// (the first 5 per variable). A kink that happens to pass (abs at 0: central difference 0) is
// reported too. A wrong gradient at a kink that is not a subgradient there still fails, and so
// does a wrong gradient on a smooth part. Prefer inputs away from kinks (random values, not zeros).
//
// Locating a wrong op (opt-in): with the tag locate_failing_node among the arguments, a failed
// check goes on to check every op node of f that depends on a checked variable on its own, in
// topological order: node<Op, __arg0, __arg1, ...> over fresh leaves holding its arguments'
// values at the current point, through sum(node * r) with a random r, in the same precision T and
// mode. Only the arguments that depend on a checked variable are differentiated (others, such as
// a loss's labels, keep their values as data). The first node whose own vjp disagrees is reported in first_failing_node, printed as an
// expression (e.g. "bad_square(x + b)"), with a warning saying which argument disagrees.
//   check_gradients<float>(f, wrt(x), given(x, xv), locate_failing_node, check_options{...});
// It is opt-in because it is paid at compile time whether or not a check fails: two small
// programs per op node of f. Measured (g++ 12 -O3, an idle machine) for one translation unit
// checking a 12-node f in float: compiling only the program 4.3 s; check_gradients 5.3 s;
// check_gradients with locate_failing_node 9.9 s (front end alone: 1.3 s, 1.6 s, 2.7 s). So the
// tag roughly doubles the compile time of the check. Without the tag,
// first_failing_node stays empty.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "typegrad/core/expression.hpp"
#include "typegrad/core/graph.hpp"
#include "typegrad/ops/reduce.hpp"
#include "typegrad/runtime/program.hpp"
#include "typegrad/tensor.hpp"

namespace typegrad {

enum class check_mode { every_element, random_directions };

struct check_options {
  check_mode mode = check_mode::every_element;
  double step = 0;       // finite-difference step; 0 = automatic (cbrt(eps_double) * max(1, |x|))
  double rtol = 0;       // 0 = default for T (double 1e-6, float 1e-3)
  double atol = 0;       // 0 = default for T (double 1e-8, float 1e-4), times the gradient's scale
  int directions = 16;   // random_directions: directions per variable
  std::uint64_t seed = 1;
};

// The value a leaf takes at the point where gradients are checked: given(x, tensor).
template <fixed_string N, std::size_t R>
struct given_value {
  using variable = var<N, R>;
  tensor<double, R> value;
};
template <fixed_string N, std::size_t R>
given_value<N, R> given(var<N, R>, const tensor<double, R>& value) {
  return {value};
}

// Tag argument: on failure, check every op node on its own and report the first wrong one.
struct locate_failing_node_t {};
inline constexpr locate_failing_node_t locate_failing_node{};

// The result for one checked variable.
struct variable_report {
  std::string name;
  typegrad::shape shape;
  double max_abs_error = 0;        // over the probes that are not kinks
  double max_rel_error = 0;        // |a - n| / max(|a|, |n|)
  std::size_t worst_index = 0;     // flat element index (every_element) or direction number
  std::string worst_index_text;    // "(1, 2)" or "direction 3"
  double analytic = 0, numeric = 0;  // at the worst index
  std::size_t checked = 0;         // probes evaluated (elements or directions)
  std::size_t kinks = 0;           // probes excluded as straddling a non-differentiable point
  std::size_t failed = 0;          // probes beyond the tolerance
  bool passed = true;
};

struct gradient_report {
  std::string function;            // f, printed
  std::string precision;           // "float" or "double": the analytic side's T
  check_mode mode = check_mode::every_element;
  double rtol = 0, atol = 0;       // the tolerances used
  std::vector<variable_report> variables;
  std::vector<std::string> warnings;
  std::optional<std::string> first_failing_node;  // only with locate_failing_node
  // Every checked variable passed (kinks excluded).
  bool ok() const {
    for (const auto& v : variables)
      if (!v.passed) return false;
    return !variables.empty();
  }
  // The entry of a variable by name (throws std::out_of_range when absent).
  const variable_report& operator[](std::string_view name) const;
};

// The report as a readable table (what fmt and operator<< print).
std::string to_string(const gradient_report& report);
std::ostream& operator<<(std::ostream& os, const gradient_report& report);

namespace detail {
// The type-erased core (src/tools/gradcheck.cpp): probes the double point of each variable in
// place and calls eval() for f's value.
struct checked_variable {
  std::string name;
  typegrad::shape shape;
  std::span<double> point;
  std::vector<double> analytic;
};
struct check_setup {
  std::string function;
  std::string precision;
  check_options options;  // with rtol/atol resolved
};
gradient_report run_gradient_check(std::vector<checked_variable>& vars, const std::function<double()>& eval,
                                   const check_setup& setup);
// The random values of the projection r used when checking single nodes.
void fill_random(std::span<double> out, std::uint64_t seed);

template <class T>
constexpr check_options resolve_tolerances(check_options o) {
  if (o.rtol <= 0) o.rtol = std::is_same_v<T, float> ? 1e-3 : 1e-6;
  if (o.atol <= 0) o.atol = std::is_same_v<T, float> ? 1e-4 : 1e-8;
  return o;
}

template <class A> inline constexpr bool is_given_v = false;
template <fixed_string N, std::size_t R> inline constexpr bool is_given_v<given_value<N, R>> = true;

// The leaves named by the given(...) arguments among Args, in order.
template <class... Args>
struct given_leaves {
  template <class A> struct leaf_of {
    using type = graph::type_list<>;
  };
  template <fixed_string N, std::size_t R> struct leaf_of<given_value<N, R>> {
    using type = graph::type_list<var<N, R>>;
  };
  using type = decltype((graph::type_list<>{} + ... + typename leaf_of<Args>::type{}));
};

template <class List> struct unique_list;
template <class... Ts>
struct unique_list<graph::type_list<Ts...>> {
  static constexpr bool value = [] {
    std::size_t i = 0;
    bool ok = true;
    ((ok = ok && graph::index_of_v<graph::type_list<Ts...>, Ts> == i++), ...);
    return ok;
  }();
};

// Named so that the missing leaf appears in the compiler's instantiation trace.
template <class Leaf, bool Given>
struct leaf_must_be_given {
  static_assert(Given,
                "check_gradients(f, wrt(x...), given(...)...): every leaf of f and every x must be given a value "
                "(the missing leaf is Leaf in this instantiation)");
  static constexpr bool value = Given;
};
template <class Leaf, bool Used>
struct given_leaf_must_be_used {
  static_assert(Used,
                "check_gradients(f, wrt(x...), given(...)...): a given(...) names a leaf that is neither a leaf "
                "of f nor among the x (the leaf is Leaf in this instantiation)");
  static constexpr bool value = Used;
};

template <class List> struct leaves_of;
template <class... Ns>
struct leaves_of<graph::type_list<Ns...>> {
  using type = decltype((graph::type_list<>{} + ... +
                         std::conditional_t<is_var_v<Ns>, graph::type_list<Ns>, graph::type_list<>>{}));
};

template <class T, std::size_t R>
tensor<T, R> convert(const tensor<double, R>& t) {
  tensor<T, R> out(t.extents());
  for (std::size_t i = 0; i < t.size(); ++i) out[i] = static_cast<T>(t[i]);
  return out;
}
// The given value rounded to T (and back): the point both sides are evaluated at.
template <class T, std::size_t R>
tensor<double, R> round_to(const tensor<double, R>& t) {
  tensor<double, R> out(t);
  for (auto& v : out) v = static_cast<double>(static_cast<T>(v));
  return out;
}

// Binds every leaf of Vars that the program reads to the matching tensor of the tuple.
template <class Program, class... Vs, class Tensors>
void bind_leaves(Program& prog, graph::type_list<Vs...>, Tensors& tensors) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          if constexpr (graph::contains_v<typename Program::nodes, Vs>) prog.bind(Vs{}, std::get<I>(tensors));
        }(),
        ...);
  }(std::index_sequence_for<Vs...>{});
}

// The check itself: analytic gradient in T, central differences in double over `point` (the
// values of the leaves Vs, perturbed in place and restored).
template <class T, class F, class... Xs, class... Vs>
gradient_report check_core(F f, wrt_t<Xs...>, graph::type_list<Vs...> leaves,
                           std::tuple<tensor<double, Vs::rank>...>& point, const check_options& options) {
  using leaf_list = graph::type_list<Vs...>;
  std::vector<checked_variable> vars;
  {
    auto analytic_point = std::apply([](const auto&... t) { return std::tuple{convert<T>(t)...}; }, point);
    auto analytic = compile<T>(f, wrt(Xs{}...));
    bind_leaves(analytic, leaves, analytic_point);
    analytic.run();
    (
        [&] {
          auto& x = std::get<graph::index_of_v<leaf_list, Xs>>(point);
          auto g = analytic.gradient(Xs{});
          checked_variable v{std::string(Xs::name), x.shape_of(), x.values(), std::vector<double>(g.size())};
          for (std::size_t i = 0; i < v.analytic.size(); ++i) v.analytic[i] = static_cast<double>(g.data[i]);
          vars.push_back(std::move(v));
        }(),
        ...);
  }
  auto numeric = compile<double>(f);
  bind_leaves(numeric, leaves, point);
  check_setup setup{to_string(f), std::is_same_v<T, float> ? "float" : "double", resolve_tolerances<T>(options)};
  return run_gradient_check(vars, [&] { return numeric.run().scalar(f); }, setup);
}

// ---- checking one node on its own ---------------------------------------------------------
template <std::size_t I>
constexpr auto arg_name() {
  static_assert(I < 100, "locate_failing_node: an op with 100 arguments or more");
  if constexpr (I < 10) {
    fixed_string<7> s("__arg0");
    s.chars[5] = char('0' + I);
    return s;
  } else {
    fixed_string<8> s("__arg00");
    s.chars[5] = char('0' + I / 10);
    s.chars[6] = char('0' + I % 10);
    return s;
  }
}

// A constant argument stays; every other argument becomes a fresh leaf var<"__argI", rank>.
template <std::size_t I, class A>
using fresh_leaf_t = std::conditional_t<is_constant_v<A>, A, var<arg_name<I>(), A::rank>>;

// Checks node P = node<Op, Args...> alone: sum(node<Op, __arg0, ...> * r) at the arguments' values
// (values(arg) -> view<const double>), differentiating the arguments flagged in
// Differentiate::value, those that depend on a variable of the check (others, such as labels,
// keep their values).
// Empty when there is nothing to differentiate.
template <class T, class Differentiate, class Op, class... Args, class Values>
std::optional<gradient_report> check_single_node(basic_node<Op, Args...>, const check_options& options,
                                                 const Values& values) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) -> std::optional<gradient_report> {
    using fresh_all = graph::type_list<fresh_leaf_t<I, Args>...>;
    using fresh_leaves = decltype((graph::type_list<>{} + ... +
                                   std::conditional_t<is_constant_v<Args>, graph::type_list<>,
                                                      graph::type_list<fresh_leaf_t<I, Args>>>{}));
    using differentiated = decltype((graph::type_list<>{} + ... +
                                     std::conditional_t<Differentiate::value[I],
                                                        graph::type_list<fresh_leaf_t<I, Args>>, graph::type_list<>>{}));
    if constexpr (differentiated::size == 0) {
      return std::nullopt;
    } else {
      std::tuple<tensor<double, Args::rank>...> args;
      std::array<shape, sizeof...(Args)> shapes{};
      (
          [&] {
            if constexpr (!is_constant_v<Args>) std::get<I>(args) = tensor<double, Args::rank>(values(resolve_t<Args>{}));
            shapes[I] = std::get<I>(args).shape_of();
          }(),
          ...);
      constexpr std::size_t out_rank = basic_node<Op, Args...>::rank;
      const shape out_shape = Op::infer_shape(std::span<const shape>(shapes));
      std::array<std::size_t, out_rank> extents{};
      for (std::size_t d = 0; d < out_rank; ++d) extents[d] = out_shape[d];
      tensor<double, out_rank> r(extents);
      fill_random(r.values(), options.seed + 7919);
      using r_leaf = var<"__r", out_rank>;
      using isolated = node<Op, fresh_leaf_t<I, Args>...>;
      auto report = [&]<class... Fs, class... Ds>(graph::type_list<Fs...>, graph::type_list<Ds...>) {
        std::tuple<tensor<double, Fs::rank>..., tensor<double, out_rank>> point{
            round_to<T>(std::get<graph::index_of_v<fresh_all, Fs>>(args))..., round_to<T>(r)};
        return check_core<T>(sum(isolated{} * r_leaf{}), wrt_t<Ds...>{}, graph::type_list<Fs..., r_leaf>{}, point,
                             options);
      }(fresh_leaves{}, differentiated{});
      // Name the arguments as they appear in f rather than by their placeholders.
      const std::array<std::string, sizeof...(Args)> printed{to_string(Args{})...};
      for (auto& v : report.variables)
        for (std::size_t i = 0; i < sizeof...(Args); ++i)
          if (v.name == fmt::format("__arg{}", i)) v.name = fmt::format("argument {} ({})", i, printed[i]);
      return report;
    }
  }(std::index_sequence_for<Args...>{});
}

// Which nodes of F to check on their own: the op nodes that depend on one of Xs (candidates), the
// op nodes those read (what a forward program must evaluate first), and which arguments of each
// candidate to differentiate. One pass over F's edges for all of them.
template <class F, class... Xs>
struct isolation_plan {
  using G = graph::graph_of<F>;
  static constexpr std::size_t n = G::size;
  static constexpr const std::array<bool, n>& depends = graph::nodes_depending_on<G, Xs...>::value;
  static constexpr std::array<bool, n> candidates = [] {
    std::array<bool, n> c{};
    for (std::size_t i = 0; i < n; ++i) c[i] = depends[i] && graph::is_op<G>(i);
    return c;
  }();
  struct inner {
    static constexpr std::array<bool, n> value = [] {
      std::array<bool, n> read{};
      for (const auto& e : G::value.edges)
        if (candidates[e.consumer] && graph::is_op<G>(e.arg)) read[e.arg] = true;
      return read;
    }();
  };
  static constexpr auto candidate_positions = graph::detail::positions_of_true(candidates);
  using inner_nodes = graph::nodes_where_t<G, inner>;
  // Which arguments of the node at position C depend on one of Xs (a node's edges are in slot
  // order), in `value`: a class, not a std::array template argument, which g++ 12 confuses.
  template <std::size_t C>
  struct arguments_to_differentiate {
    static constexpr std::array<bool, G::value.first_edge[C + 1] - G::value.first_edge[C]> value = [] {
      std::array<bool, G::value.first_edge[C + 1] - G::value.first_edge[C]> d{};
      for (std::size_t s = 0; s < d.size(); ++s) d[s] = depends[G::value.edges[G::value.first_edge[C] + s].arg];
      return d;
    }();
  };
};

template <class T, class F, class... Xs, class... Vs>
void locate_failing(F, wrt_t<Xs...>, graph::type_list<Vs...>, std::tuple<tensor<double, Vs::rank>...>& point,
                    const check_options& options, gradient_report& report) {
  using leaf_list = graph::type_list<Vs...>;
  using plan = isolation_plan<F, Xs...>;
  using inner = typename plan::inner_nodes;
  auto run = [&](const auto& values) {
    bool found = false;
    [&]<std::size_t... J>(std::index_sequence<J...>) {
      (
          [&] {
            constexpr std::size_t c = plan::candidate_positions.at[J];
            using P = graph::node_at<typename plan::G, c>;
            if (found) return;
            auto sub = check_single_node<T, typename plan::template arguments_to_differentiate<c>>(P{}, options, values);
            if (!sub || sub->ok()) return;
            found = true;
            report.first_failing_node = to_string(P{});
            for (const auto& v : sub->variables)
              if (!v.passed)
                report.warnings.push_back(fmt::format(
                    "the gradient of {} with respect to {} disagrees on its own: max abs error {:.3g} at {} "
                    "(analytic {:.6g}, numeric {:.6g})",
                    op_label<typename P::op>(), v.name, v.max_abs_error, v.worst_index_text, v.analytic,
                    v.numeric));
          }(),
          ...);
    }(std::make_index_sequence<plan::candidate_positions.count>{});
    if (!found)
      report.warnings.push_back(
          "every op node's own gradient agrees with finite differences; the disagreement comes from how they "
          "combine (or from precision: try T = double, or larger tolerances)");
  };
  if constexpr (inner::size == 0) {
    run([&]<class A>(A) -> view<const double> { return std::as_const(std::get<graph::index_of_v<leaf_list, A>>(point)).as_view(); });
  } else {
    auto forward = [&]<class... Is>(graph::type_list<Is...>) { return compile<double>(Is{}...); }(inner{});
    bind_leaves(forward, graph::type_list<Vs...>{}, point);
    forward.run();
    run([&]<class A>(A a) -> view<const double> {
      if constexpr (is_var_v<A>) return std::as_const(std::get<graph::index_of_v<leaf_list, A>>(point)).as_view();
      else return forward.value(a);
    });
  }
}

}  // namespace detail

// Checks df/dx for each x of wrt(...) by central differences. Args: a given(leaf, value) for every
// leaf of f, optionally check_options{...} and the locate_failing_node tag. See the top of this file.
template <Scalar T = double, Expression F, Variable... Xs, class... Args>
gradient_report check_gradients(F f, wrt_t<Xs...> w, const Args&... args) {
  static_assert(F::rank == 0,
                "check_gradients(f, wrt(x...), ...): f must be a scalar (rank 0); check sum(f * r) with a random r");
  static_assert(sizeof...(Xs) > 0, "check_gradients(f, wrt(x...), ...): name at least one variable in wrt(...)");
  static_assert(((detail::is_given_v<Args> || std::is_same_v<Args, check_options> ||
                  std::is_same_v<Args, locate_failing_node_t>) && ...),
                "check_gradients(f, wrt(x...), args...): every argument after wrt(...) must be given(leaf, value), "
                "check_options{...} or locate_failing_node");
  static_assert((std::is_same_v<Args, check_options> + ... + 0) <= 1,
                "check_gradients(f, wrt(x...), args...): pass check_options at most once");
  static_assert(detail::unique_list<graph::type_list<Xs...>>::value,
                "check_gradients(f, wrt(x...), ...): a variable is named twice in wrt(...)");
  // The given leaves, in argument order, and their values rounded to T.
  auto givens = std::tuple_cat([&]<class A>(const A& a) {
    if constexpr (detail::is_given_v<A>) return std::tuple<const A&>(a);
    else return std::tuple<>{};
  }(args)...);
  using given_list = typename detail::given_leaves<Args...>::type;
  static_assert(detail::unique_list<given_list>::value,
                "check_gradients(f, wrt(x...), given(...)...): a leaf is given twice");
  using leaves = typename detail::leaves_of<graph::nodes_of_t<F>>::type;
  constexpr bool all_given = []<class... Ls>(graph::type_list<Ls...>) {
    return (detail::leaf_must_be_given<Ls, graph::contains_v<given_list, Ls>>::value && ... && true) &&
           (detail::leaf_must_be_given<Xs, graph::contains_v<given_list, Xs>>::value && ...);
  }(leaves{});
  constexpr bool all_used = []<class... Gs>(graph::type_list<Gs...>) {
    return (detail::given_leaf_must_be_used<Gs, graph::contains_v<leaves, Gs> ||
                                                    graph::contains_v<graph::type_list<Xs...>, Gs>>::value &&
            ...);
  }(given_list{});
  if constexpr (all_given && all_used) {
    check_options options{};
    (
        [&] {
          if constexpr (std::is_same_v<Args, check_options>) options = args;
        }(),
        ...);
    auto point = std::apply([](const auto&... g) { return std::tuple{detail::round_to<T>(g.value)...}; }, givens);
    auto report = detail::check_core<T>(f, w, given_list{}, point, options);
    if constexpr ((std::is_same_v<Args, locate_failing_node_t> || ...)) {
      if (!report.ok()) detail::locate_failing<T>(f, w, given_list{}, point, options, report);
    }
    return report;
  } else {
    return {};
  }
}

}  // namespace typegrad

template <>
struct fmt::formatter<typegrad::gradient_report> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const typegrad::gradient_report& report, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(typegrad::to_string(report), ctx);
  }
};

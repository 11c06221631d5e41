#pragma once
// compile<T>(outputs..., wrt(vars...)) lowers a graph type into a runnable program:
// the distinct nodes of all outputs (and of the gradients of the first output with respect to
// vars) in topological order, each with its shape rule and kernel. Binding is by leaf and is
// checked at compile time (unknown leaf, wrong rank); extents are checked when the program runs.
#include <array>
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "typegrad/core/grad.hpp"
#include "typegrad/core/graph.hpp"
#include "typegrad/core/print.hpp"
#include "typegrad/runtime/executor.hpp"
#include "typegrad/tensor.hpp"

namespace typegrad {

namespace detail {
// Lowering of one node type to its runtime description: a spec-making function and a kernel
// pointer, reached through a constexpr table. They are named by the op and rank (or the leaf)
// only, never by the node's arguments: symbols stay short and shared by all nodes of one op, and
// inputs come from the constexpr edge table.
template <fixed_string N, std::size_t R>
runtime::node_spec leaf_spec() {
  runtime::node_spec s;
  s.kind = runtime::node_kind::leaf;
  s.label = std::string(N.view());
  s.rank = R;
  return s;
}
template <double V>
runtime::node_spec constant_spec() {
  runtime::node_spec s;
  s.kind = runtime::node_kind::constant;
  s.label = notation::literal(V);
  s.constant_value = V;
  return s;
}
template <class Op, std::size_t Rank, class Fusion>
runtime::node_spec op_spec() {
  runtime::node_spec s;
  s.kind = runtime::node_kind::op;
  s.label = op_label<Op>();
  s.rank = Rank;
  s.infer_shape = &Op::infer_shape;
  if constexpr (requires { Op::checked_argument; }) s.checked_argument = Op::checked_argument;
  if constexpr (requires { &Op::is_view; }) s.is_view = &Op::is_view;
  if constexpr (requires { Op::shape_only_arguments; }) s.shape_only_arguments = Op::shape_only_arguments;
  if constexpr (requires { &Op::block_applies; }) s.block_applies = &Op::block_applies;
  if constexpr (requires { &Op::sums_rows; }) s.sums_rows = &Op::sums_rows;
  if constexpr (requires { Op::mean_of_rows; }) s.mean_of_rows = Op::mean_of_rows;
  if constexpr (Fusion::argument != no_fusion) s.fused_argument = Fusion::argument;
  if constexpr (requires { Fusion::unused_arguments; }) s.unused_arguments = Fusion::unused_arguments;
  if constexpr (requires { Fusion::inner_argument; }) s.fused_inner_argument = Fusion::inner_argument;
  s.form = op_form_of<Op>();
  return s;
}
template <class T, class Op>
consteval runtime::check_fn<T> op_check() {
  if constexpr (requires { Op::checked_argument; }) return &Op::template check_argument<T>;
  else return nullptr;
}
template <class T, class Op>
consteval runtime::block_fn<T> op_block() {
  if constexpr (requires { &Op::template block<T>; }) return &Op::template block<T>;
  else return nullptr;
}
template <class T, class Op>
struct op_kernel {
  static constexpr runtime::kernel_fn<T> value = &Op::template forward<T>;
  static constexpr runtime::check_fn<T> check = op_check<T, Op>();
  static constexpr runtime::block_fn<T> block = op_block<T, Op>();
};
template <class T, class Rule>
struct fused_kernel {
  static constexpr runtime::kernel_fn<T> value = &Rule::template forward<T>;
  static constexpr runtime::check_fn<T> check = nullptr;
  static constexpr runtime::block_fn<T> block = op_block<T, Rule>();
};
template <class T>
struct no_kernel {
  static constexpr runtime::kernel_fn<T> value = nullptr;
  static constexpr runtime::check_fn<T> check = nullptr;
  static constexpr runtime::block_fn<T> block = nullptr;
};

// Aliases only (no members of their own): see the symbol rule in core/graph.hpp.
template <class E> struct lower;
template <fixed_string N, std::size_t R>
struct lower<var<N, R>> {
  template <class T> using kernel = no_kernel<T>;
  using spec_of = std::integral_constant<runtime::node_spec (*)(), &leaf_spec<N, R>>;
};
template <double V>
struct lower<constant<V>> {
  template <class T> using kernel = no_kernel<T>;
  using spec_of = std::integral_constant<runtime::node_spec (*)(), &constant_spec<V>>;
};
template <bool Fuses, class Op, class... Args>
struct fusion_lookup {
  using type = fusion_rule<void>;
};
template <class Op, class... Args>
struct fusion_lookup<true, Op, Args...> {
  using type = fusion_rule<Op, resolve_t<Args>...>;
};
template <class Op, class... Args>
struct lower<basic_node<Op, Args...>> {
  using fusion = typename fusion_lookup<has_fusion_rules_v<Op>, Op, Args...>::type;
  template <class T>
  using kernel = std::conditional_t<fusion::argument == no_fusion, op_kernel<T, Op>, fused_kernel<T, fusion>>;
  using spec_of = std::integral_constant<runtime::node_spec (*)(),
                                         &op_spec<Op, basic_node<Op, Args...>::rank, fusion>>;
};

// The position in G of the node a fused kernel reads instead of its fused argument
// (fusion_rule::read_instead), or G::size when there is none or G does not have it.
template <class G, class Node>
consteval std::size_t fused_source_position() {
  if constexpr (requires { typename lower<Node>::fusion::read_instead; })
    return G::template position<typename lower<Node>::fusion::read_instead>;
  else return G::size;
}

template <class T, class Nodes> struct lowering_table;
template <class T, class... Ns>
struct lowering_table<T, graph::type_list<Ns...>> {
  template <class G>
  static constexpr std::array<std::size_t, sizeof...(Ns)> fused_sources{fused_source_position<G, Ns>()...};
  static constexpr std::array<runtime::node_spec (*)(), sizeof...(Ns)> specs{lower<Ns>::spec_of::value...};
  static constexpr std::array<runtime::kernel_fn<T>, sizeof...(Ns)> kernels{lower<Ns>::template kernel<T>::value...};
  static constexpr std::array<runtime::check_fn<T>, sizeof...(Ns)> checks{lower<Ns>::template kernel<T>::check...};
  static constexpr std::array<runtime::block_fn<T>, sizeof...(Ns)> blocks{lower<Ns>::template kernel<T>::block...};
};
}  // namespace detail

// A compiled program over scalar type T. Outputs is a type_list of output expressions, Vars the
// variables whose gradients are outputs too (the last Vars::size outputs).
template <Scalar T, class Outputs, class Vars>
class program;

template <Scalar T, class... Outs, class... Vars>
class program<T, graph::type_list<Outs...>, graph::type_list<Vars...>> {
 public:
  using graph_type = graph::graph_t<Outs...>;
  using nodes = graph::nodes_t<graph_type>;
  using outputs = graph::type_list<Outs...>;
  static constexpr std::size_t output_count = sizeof...(Outs);
  static constexpr std::size_t gradient_count = sizeof...(Vars);

  program() : exec_(make_executor()) {}

  // Binds a leaf to a tensor by reference: the tensor must outlive the runs that read it.
  template <fixed_string N, std::size_t R, std::size_t TR>
  program& bind(var<N, R>, const tensor<T, TR>& t) {
    static_assert(graph_type::template position<var<N, R>> < graph_type::size,
                  "program.bind(x, t): x is not a leaf of this program's graph");
    static_assert(TR == R, "program.bind(x, t): t's rank differs from the rank declared in var<name, rank>");
    exec_.bind(graph_type::template position<var<N, R>>, t.as_view());
    return *this;
  }
  // Binding by name: prog.bind<"x">(t).
  template <fixed_string N, std::size_t TR>
  program& bind(const tensor<T, TR>& t) {
    return bind(var<N, TR>{}, t);
  }
  template <fixed_string N, std::size_t R>
  program& bind(var<N, R>, tensor<T, R>&&) = delete;  // a temporary would dangle

  // Runs forward and gradients. Re-plans only when a bound tensor's shape changed.
  program& run() {
    exec_.run();
    return *this;
  }

  // The value of an output expression after run(). Outputs are views into the program's planned
  // storage: valid until the next run() (which overwrites them) or re-plan; copy with tensor<T, R>(view).
  template <Expression E>
  view<const T> value(E) const {
    constexpr std::size_t i = graph::index_of_v<outputs, E>;
    static_assert(i < output_count, "program.value(e): e is not an output of this program");
    return exec_.output(i);
  }
  template <std::size_t I>
  view<const T> output() const {
    static_assert(I < output_count, "program.output<I>(): I is beyond the number of outputs");
    return exec_.output(I);
  }
  // The outputs with their values after run(), as a sequence (with core/hana.hpp, a Hana
  // Foldable: hana::for_each(program.output_values(), f) gets valued<E, view<const T>> for each
  // output expression E, gradients last).
  auto output_values() const { return output_sequence{*this}; }

  // The value of a rank-0 output.
  template <Expression E>
  T scalar(E e) const {
    static_assert(E::rank == 0, "program.scalar(e): e must be rank 0; use value(e) for tensors");
    return value(e).data[0];
  }
  // The gradient of the first output with respect to a variable listed in wrt(...).
  template <Variable V>
  view<const T> gradient(V) const {
    constexpr std::size_t i = graph::index_of_v<graph::type_list<Vars...>, V>;
    static_assert(i < gradient_count, "program.gradient(x): x is not among the wrt(...) variables of compile()");
    return exec_.output(output_count - gradient_count + i);
  }

  struct output_sequence {
    using hana_tag = hana_sequence_tag;
    const program& p;
    template <class F>
    decltype(auto) unpack(F&& f) const {
      return [&]<std::size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
        return static_cast<F&&>(f)(valued<Outs, view<const T>>{{}, p.exec_.output(I)}...);
      }(std::index_sequence_for<Outs...>{});
    }
  };

  // Debug mode: run() throws value_error naming the first leaf or node (printed, forward or
  // adjoint) whose values contain NaN or inf. Off by default, and then free.
  program& set_check_finite(bool on = true) {
    exec_.set_check_finite(on);
    return *this;
  }
  // Profiling: each node's kernel timed, nodes one at a time (runtime::executor::set_profiling);
  // profile() is the table of milliseconds per run by node, slowest first; profile_ms() the same
  // figures by node index (executor().nodes()).
  program& set_profiling(bool on = true) {
    exec_.set_profiling(on);
    return *this;
  }
  std::string profile() const { return exec_.profile(); }
  std::vector<double> profile_ms() const { return exec_.profile_ms(); }
  program& reset_profile() {
    exec_.reset_profile();
    return *this;
  }
  // Calls fn(i) as soon as output i is final during each run(), on the thread that computed it
  // (runtime::executor::set_output_ready; outputs are numbered as listed, gradients last).
  // typegrad::distributed starts each gradient's all-reduce from it. Empty: no hook.
  program& on_output_ready(typename runtime::executor<T>::output_ready_fn fn) {
    exec_.set_output_ready(std::move(fn));
    return *this;
  }
  program& set_threads(int n) {
    exec_.set_threads(n);
    return *this;
  }
  int threads() const { return exec_.threads(); }
  static constexpr std::size_t node_count() { return nodes::size; }
  std::size_t plan_count() const { return exec_.plan_count(); }
  std::size_t arena_bytes() const { return exec_.arena_bytes(); }
  std::size_t unplanned_bytes() const { return exec_.unplanned_bytes(); }
  std::string listing() const { return exec_.listing(); }
  std::string dot() const { return exec_.dot(); }
  const runtime::executor<T>& executor() const { return exec_; }

 private:
  static runtime::executor<T> make_executor() {
    using table = detail::lowering_table<T, nodes>;
    std::vector<runtime::node_spec> specs;
    specs.reserve(nodes::size);
    for (auto make : table::specs) specs.push_back(make());
    for (const auto& e : graph_type::value.edges) specs[e.consumer].inputs.push_back(e.arg);
    for (std::size_t i = 0; i < specs.size(); ++i)
      if (table::template fused_sources<graph_type>[i] < graph_type::size)
        specs[i].fused_source = table::template fused_sources<graph_type>[i];
    std::vector<runtime::kernel_fn<T>> kernels(table::kernels.begin(), table::kernels.end());
    std::vector<runtime::check_fn<T>> checks(table::checks.begin(), table::checks.end());
    std::vector<runtime::block_fn<T>> blocks(table::blocks.begin(), table::blocks.end());
    const std::vector<std::size_t> outs(graph_type::value.roots.begin(), graph_type::value.roots.end());
    // Nodes reachable from the non-gradient outputs are forward nodes; the rest are adjoint nodes.
    std::vector<bool> forward(specs.size(), false);
    for (std::size_t o = 0; o < output_count - gradient_count; ++o) forward[outs[o]] = true;
    for (std::size_t i = specs.size(); i-- > 0;)
      if (forward[i])
        for (auto j : specs[i].inputs) forward[j] = true;
    for (std::size_t i = 0; i < specs.size(); ++i) specs[i].adjoint = !forward[i];
    return runtime::executor<T>(std::move(specs), std::move(kernels), outs, std::move(checks), std::move(blocks));
  }
  runtime::executor<T> exec_;
};

namespace detail {
template <class W> inline constexpr bool is_wrt_v = false;
template <class... Vs> inline constexpr bool is_wrt_v<wrt_t<Vs...>> = true;

template <Scalar T, class F, class... Os, class... Vs>
constexpr auto compile_with_gradients(graph::type_list<F, Os...>, wrt_t<Vs...>) {
  static_assert(F::rank == 0, "compile(f, ..., wrt(x...)): f, the first output, must be a scalar (rank 0)");
  // Instantiate the adjoints top-down (see grad.hpp) without building grad()'s tuple of them.
  static_assert(detail::warm_adjoints<F, Vs...>::value);
  return program<T, graph::type_list<F, Os..., decltype(gradient_of<F, Vs>())...>, graph::type_list<Vs...>>{};
}

// compile()'s arguments split into the outputs and the last one (maybe a wrt_t), by types only.
// (Values must not pass through a function template whose parameters have graph types, such as
// std::tuple's constructors: see "Parameters of graph type" in docs/compile-time.md.)
template <class... Args>
struct split_last {
  using init = graph::type_list<>;
  using last = void;
};
template <class A, class... Args>
struct split_last<A, Args...> {
  using all = graph::detail::indexer<std::index_sequence_for<A, Args...>, A, Args...>;
  template <class Seq> struct take;
  template <std::size_t... I> struct take<std::index_sequence<I...>> {
    using type = graph::type_list<decltype(graph::detail::select<I>(all{}))...>;
  };
  using init = typename take<std::make_index_sequence<sizeof...(Args)>>::type;
  using last = decltype(graph::detail::select<sizeof...(Args)>(all{}));
};
}  // namespace detail

// compile<T>(f, g, ..., wrt(x, y)) -> program computing f, g, ... and df/dx, df/dy.
// compile<T>(f, g) -> forward only. Gradients are of the first output, which must be a scalar.
template <Scalar T = float, class... Args>
auto compile(Args...) {
  static_assert(sizeof...(Args) > 0, "compile(outputs..., wrt(vars...)): give at least one output");
  using last = typename detail::split_last<Args...>::last;
  if constexpr (detail::is_wrt_v<last>) {
    static_assert(sizeof...(Args) > 1, "compile(f, wrt(x...)): give the function to differentiate before wrt(...)");
    return detail::compile_with_gradients<T>(typename detail::split_last<Args...>::init{}, last{});
  } else {
    static_assert((Expression<Args> && ...), "compile(outputs...): every output must be an expression");
    return program<T, graph::type_list<Args...>, graph::type_list<>>{};
  }
}

}  // namespace typegrad

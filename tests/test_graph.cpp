// Graph-level behaviour: DAGs and fan-out, CSE by type identity, pruning, buffer reuse,
// parallel == serial results, DOT/listing export, deep graphs.
#define BOOST_TEST_MODULE graph
#include <boost/test/unit_test.hpp>

#include <typegrad/typegrad.hpp>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
constexpr var<"y", 2> y;
constexpr var<"w", 1> w;

using test_support::cast;
using test_support::random_uniform;
}  // namespace

BOOST_AUTO_TEST_CASE(common_subexpressions_are_one_node) {
  auto h = x * y + w;
  auto f = sum(h * h) + mean(h);  // h used three times
  // Distinct nodes: x, y, w, x*y, x*y+w, h*h, sum, mean, +  -> 9
  BOOST_TEST(graph::node_count(f) == 9u);
  auto same_again = sum((x * y + w) * (x * y + w)) + mean(x * y + w);
  static_assert(std::is_same_v<decltype(f), decltype(same_again)>, "same expression, same type");
  auto prog = compile<double>(f);
  BOOST_TEST(prog.node_count() == 9u);
}

BOOST_AUTO_TEST_CASE(graph_value_orders_nodes_and_lists_edges_and_readers) {
  // Diamond: a = x*x read twice, f = sum((a + y) * (a * y)).
  auto a = x * x;
  auto f = sum((a + y) * (a * y));
  using G = graph::graph_t<decltype(f)>;
  // Post-order, arguments left to right: x, a, y, a + y, a * y, product, sum.
  static_assert(G::size == 7);
  static_assert(std::is_same_v<graph::node_at<G, 0>, var<"x", 2>>);
  static_assert(std::is_same_v<graph::node_at<G, 1>, decltype(a)>);
  static_assert(std::is_same_v<graph::node_at<G, 2>, var<"y", 2>>);
  static_assert(std::is_same_v<graph::node_at<G, 3>, decltype(a + y)>);
  static_assert(std::is_same_v<graph::node_at<G, 6>, decltype(f)>);
  static_assert(std::is_same_v<graph::nodes_t<G>, graph::nodes_of_t<decltype(f)>>);
  static_assert(G::value.roots[0] == 6);
  static_assert(G::position<decltype(a * y)> == 4 && G::position<var<"w", 1>> == G::size);
  static_assert(G::position<decltype(x)> == 0 && graph::depends_on_v<decltype(f), decltype(y)>);  // const types
  // Edges by consumer, then slot; a (position 1) is read by x*x's consumers a + y and a * y.
  constexpr std::array<graph::edge, 7> expected{{{1, 0, 0}, {1, 1, 0}, {3, 0, 1}, {3, 1, 2}, {4, 0, 1}, {4, 1, 2}, {5, 0, 3}}};
  for (std::size_t k = 0; k < expected.size(); ++k) {
    BOOST_TEST(G::value.edges[k].consumer == expected[k].consumer);
    BOOST_TEST(G::value.edges[k].slot == expected[k].slot);
    BOOST_TEST(G::value.edges[k].arg == expected[k].arg);
  }
  BOOST_TEST(G::value.first_edge[5] == 6u);  // the product reads edges 6 and 7
  BOOST_TEST(G::readers.begin[2] - G::readers.begin[1] == 2u);  // a has two readers
  BOOST_TEST(G::readers.begin[7] - G::readers.begin[6] == 0u);  // nothing reads f
  // Several roots: one traversal, shared nodes once, each root's position.
  using H = graph::graph_t<decltype(a + y), decltype(a * w)>;
  static_assert(H::size == 6 && H::value.roots[0] == 3 && H::value.roots[1] == 5);
  static_assert(graph::depends_on_v<decltype(f), var<"y", 2>> && !graph::depends_on_v<decltype(a), var<"y", 2>>);
  // Leaf names for templated layers: two digits, then three.
  static_assert(var<numbered<7>("w"), 1>::name == "w07" && var<numbered<123>("w"), 1>::name == "w123");
}

BOOST_AUTO_TEST_CASE(gradients_share_forward_nodes_and_prune_unreached_branches) {
  auto h = x * y;
  auto f = sum(h * w) + sum(y * y);  // sum(y*y) cannot reach x
  auto gx = grad(f, x);
  // d/dx: nothing from the y*y branch. (w may broadcast against x*y, so the scalar adjoint is
  // expanded to the product's shape before it is multiplied through.)
  BOOST_TEST(to_string(gx) == "sum_to(sum_to(sum_to(1, x * y * w) * w, x * y) * y, x)");
  BOOST_TEST(to_string(gx).find("y * y") == std::string::npos);
  BOOST_TEST(!(graph::depends_on_v<decltype(gx), var<"__none", 0>>));
  auto prog = compile<double>(f, wrt(x, y));
  // The forward graph is shared: x*y is one node even though both gradients read its operands.
  BOOST_TEST(prog.node_count() < graph::node_count(f) + graph::node_count(gx) + graph::node_count(grad(f, y)));
}

BOOST_AUTO_TEST_CASE(diamond_and_residual_fan_out_values) {
  // Diamond: a = x*x; b = a + y; c = a * y; f = sum(b * c). Residual: r = h + h*w.
  auto a = x * x;
  auto f = sum((a + y) * (a * y));
  auto xv = random_uniform<2>({3, 4}, 1), yv = random_uniform<2>({3, 4}, 2);
  auto prog = compile<double>(f, wrt(x, y));
  prog.bind(x, xv).bind(y, yv).run();
  double expect = 0;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    double av = xv[i] * xv[i];
    expect += (av + yv[i]) * (av * yv[i]);
  }
  BOOST_TEST(prog.scalar(f) == expect, boost::test_tools::tolerance(1e-12));
  auto gx = prog.gradient(x);
  for (std::size_t i = 0; i < xv.size(); ++i) {
    // f_i = a^2 y + a y^2, a = x^2: df/dx = (2 a y + y^2) * 2x
    double av = xv[i] * xv[i];
    BOOST_TEST(gx.data[i] == (2 * av * yv[i] + yv[i] * yv[i]) * 2 * xv[i], boost::test_tools::tolerance(1e-12));
  }

  auto h = x * y;
  auto residual = sum((h + h * w) * (h + h * w));
  auto wv = random_uniform<1>({4}, 3);
  auto rp = compile<double>(residual, wrt(w));
  rp.bind(x, xv).bind(y, yv).bind(w, wv).run();
  auto gw = rp.gradient(w);
  for (std::size_t j = 0; j < 4; ++j) {
    double e = 0;
    for (std::size_t i = 0; i < 3; ++i) {
      double hv = xv(i, j) * yv(i, j), r = hv + hv * wv[j];
      e += 2 * r * hv;
    }
    BOOST_TEST(gw.data[j] == e, boost::test_tools::tolerance(1e-12));
  }
}

BOOST_AUTO_TEST_CASE(buffers_are_reused_and_not_reallocated_per_run) {
  // A long chain: liveness planning needs only a couple of intermediate buffers.
  auto h1 = x * y + x;
  auto h2 = h1 * y + h1;
  auto h3 = h2 * y + h2;
  auto h4 = h3 * y + h3;
  auto f = sum(h4 * h4);
  auto prog = compile<float>(f, wrt(x));
  auto xv = cast<float>(random_uniform<2>({64, 256}, 4)), yv = cast<float>(random_uniform<2>({64, 256}, 5));
  prog.bind(x, xv).bind(y, yv).run();
  BOOST_TEST(prog.arena_bytes() < prog.unplanned_bytes() / 2);
  const float* before = prog.gradient(x).data;
  prog.run();
  BOOST_TEST(prog.plan_count() == 1u);
  BOOST_TEST(prog.gradient(x).data == before);
  // A new batch size re-plans once.
  auto x2 = cast<float>(random_uniform<2>({32, 256}, 6)), y2 = cast<float>(random_uniform<2>({32, 256}, 7));
  prog.bind(x, x2).bind(y, y2).run().run();
  BOOST_TEST(prog.plan_count() == 2u);
  BOOST_TEST(prog.gradient(x).shape == (shape{32, 256}));
}

BOOST_AUTO_TEST_CASE(same_shape_sum_to_and_reshape_share_storage) {
  // d/dx of sum(reshape(x*y + x) * ...) has sum_to(g, x * y) between equal shapes (known only at
  // run time) and a reshape_like: both become views of their argument, with no kernel and no buffer.
  auto h = reshape<-1>(x * y + x);
  auto f = sum(h * h);
  auto prog = compile<double>(f, h, wrt(x, y));
  auto xv = random_uniform<2>({3, 4}, 11), yv = random_uniform<2>({3, 4}, 12);
  prog.bind(x, xv).bind(y, yv).run();
  const std::string listing = prog.listing();
  BOOST_TEST(listing.find("[view of") != std::string::npos, listing);
  BOOST_TEST(prog.value(h).data != nullptr);
  for (std::size_t i = 0; i < 12; ++i) {
    const double hv = xv[i] * yv[i] + xv[i];
    BOOST_TEST(prog.value(h).data[i] == hv);
    BOOST_TEST(prog.gradient(x).data[i] == 2 * hv * (yv[i] + 1), boost::test_tools::tolerance(1e-14));
    BOOST_TEST(prog.gradient(y).data[i] == 2 * hv * xv[i], boost::test_tools::tolerance(1e-14));
  }
  // Views of outputs stay valid while later nodes run: two runs give the same values.
  const std::vector<double> first(prog.gradient(x).data, prog.gradient(x).data + 12);
  prog.set_threads(2).run();
  BOOST_TEST(std::equal(first.begin(), first.end(), prog.gradient(x).data));
}

template <class T>
void check_parallel_equals_serial() {
  // Wide independent branches and tensors large enough to be split into parallel chunks.
  auto b1 = sum(x * y, axes<0>);
  auto b2 = mean(x * x, axes<1>);
  auto b3 = sum((x - y) * (x + y), axes<0>);
  auto f = sum(b1 * w) + sum(b2) + sum(b3 * b3 * w);
  auto xv = cast<T>(random_uniform<2>({300, 500}, 8)), yv = cast<T>(random_uniform<2>({300, 500}, 9));
  auto wv = cast<T>(random_uniform<1>({500}, 10));
  auto serial = compile<T>(f, wrt(x, y, w));
  auto parallel = compile<T>(f, wrt(x, y, w));
  serial.set_threads(1);
  parallel.set_threads(2);
  BOOST_TEST(serial.threads() == 1);
  serial.bind(x, xv).bind(y, yv).bind(w, wv).run();
  parallel.bind(x, xv).bind(y, yv).bind(w, wv).run();
  BOOST_TEST(serial.scalar(f) == parallel.scalar(f));  // bitwise
  for (auto [s, p] : {std::pair{serial.gradient(x), parallel.gradient(x)}, {serial.gradient(y), parallel.gradient(y)},
                      {serial.gradient(w), parallel.gradient(w)}}) {
    BOOST_REQUIRE(s.shape == p.shape);
    BOOST_TEST(std::equal(s.data, s.data + s.size(), p.data));
  }
  // And repeated parallel runs agree with themselves.
  T first = parallel.scalar(f);
  for (int i = 0; i < 5; ++i) BOOST_TEST(parallel.run().scalar(f) == first);
}
BOOST_AUTO_TEST_CASE(parallel_equals_serial_float) { check_parallel_equals_serial<float>(); }
BOOST_AUTO_TEST_CASE(parallel_equals_serial_double) { check_parallel_equals_serial<double>(); }

BOOST_AUTO_TEST_CASE(second_derivative_of_a_product) {
  // f = sum(x*x*y): grad_x = 2xy (elementwise), Hessian-vector product with v: 2 y v.
  constexpr var<"v", 2> v;
  auto f = sum(x * x * y);
  auto hv = hvp(f, x, v);
  auto prog = compile<double>(hv);
  auto xv = random_uniform<2>({2, 3}, 11), yv = random_uniform<2>({2, 3}, 12), vv = random_uniform<2>({2, 3}, 13);
  prog.bind(x, xv).bind(y, yv).bind(v, vv).run();
  auto r = prog.value(hv);
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(r.data[i] == 2 * yv[i] * vv[i], boost::test_tools::tolerance(1e-12));
}

template <std::size_t N>
constexpr auto deep_chain() {
  if constexpr (N == 0) return x;
  else return deep_chain<N - 1>() * y + x;
}

BOOST_AUTO_TEST_CASE(deep_graphs_compile_and_differentiate) {
  // 2 x 150 nested ops, gradient included: type-level work is not bounded by the template depth.
  constexpr std::size_t depth = 150;
  auto f = sum(deep_chain<depth>());
  auto prog = compile<double>(f, wrt(x));
  tensor<double, 2> xv({1, 2}, {0.5, -0.25}), yv({1, 2}, {0.9, -0.8});
  prog.bind(x, xv).bind(y, yv).run();
  for (std::size_t i = 0; i < 2; ++i) {
    double h = xv[i], dh = 1;  // forward value and d h / d x
    for (std::size_t k = 0; k < depth; ++k) {
      h = h * yv[i] + xv[i];
      dh = dh * yv[i] + 1;
    }
    BOOST_TEST(prog.gradient(x).data[i] == dh, boost::test_tools::tolerance(1e-12));
  }
}

// h squared K times: K + 1 nodes, but a tree of 2^K leaves.
template <std::size_t K, Expression X>
constexpr auto repeated_square(X h) {
  if constexpr (K == 0) return h;
  else return repeated_square<K - 1>(h * h);
}

BOOST_AUTO_TEST_CASE(large_trees_print_shared_subexpressions_once) {
  // Small trees print as trees; beyond detail::tree_print_limit leaves, in let form.
  BOOST_TEST(to_string(repeated_square<2>(x + w)) == "(x + w) * (x + w) * ((x + w) * (x + w))");
  std::string expected = "%1 = x + w\n";
  for (int k = 2; k <= 14; ++k) expected += fmt::format("%{} = %{} * %{}\n", k, k - 1, k - 1);
  expected += "%14 * %14";
  BOOST_TEST(to_string(repeated_square<14>(x + w)) == expected);
  BOOST_TEST(fmt::format("{}", repeated_square<14>(x + w)) == expected);
}

BOOST_AUTO_TEST_CASE(listing_and_dot_mark_adjoint_nodes) {
  auto f = sum(x * y);
  auto prog = compile<float>(f, wrt(x));
  tensor<float, 2> xv({2, 2}, {1, 2, 3, 4}), yv({2, 2}, {1, 1, 1, 1});
  prog.bind(x, xv).bind(y, yv).run();
  std::string text = prog.listing();
  BOOST_TEST_MESSAGE(text);
  BOOST_TEST(text.find("leaf x") != std::string::npos);
  BOOST_TEST(text.find("-> output 0") != std::string::npos);
  std::string dot = prog.dot();
  BOOST_TEST(dot.rfind("digraph program {", 0) == 0u);
  BOOST_TEST(dot.find("label=\"x\\n(2, 2)\"") != std::string::npos);
  BOOST_TEST(dot.find("-> out0") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(adjoint_nodes_are_marked) {
  constexpr var<"s", 0> s;
  auto f = sum(x * s);
  auto prog = compile<double>(f, wrt(s));
  tensor<double, 2> xv({2, 2}, {1, 2, 3, 4});
  tensor<double, 0> sv(2.0);
  prog.bind(x, xv).bind(s, sv).run();
  BOOST_TEST(prog.scalar(f) == 20.0);
  BOOST_TEST(prog.gradient(s).data[0] == 10.0);
  std::size_t adjoint_nodes = 0;
  for (auto& n : prog.executor().nodes()) adjoint_nodes += n.adjoint;
  BOOST_TEST(adjoint_nodes >= 1u);
  BOOST_TEST(prog.dot().find("dashed") != std::string::npos);
}

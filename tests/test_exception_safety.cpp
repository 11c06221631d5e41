#define BOOST_TEST_MODULE exception_safety
// A run that throws leaves its program unchanged: the next run is bitwise equal to a fresh
// program's, at every thread count (docs/reliability.md, "Exception safety").
#include <boost/test/unit_test.hpp>

#include <typegrad/typegrad.hpp>

#include <atomic>
#include <cmath>
#include <limits>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
constexpr var<"w1", 2> w1;
constexpr var<"w2", 2> w2;
constexpr var<"labels", 1> labels;

// An identity op whose kernel throws while `fail_on` is set: a user op that fails mid-run.
std::atomic<bool> fail_on{false};
struct failing_identity_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = "failing_identity";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    if (fail_on) throw std::runtime_error("failing_identity: asked to fail");
    std::memcpy(out.data, in[0].data, out.size() * sizeof(T));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X) {
    return g;
  }
};
template <Expression X>
constexpr auto failing_identity(X) {
  return node<failing_identity_op, X>{};
}

// Two parallel branches, each a product followed by a nonlinearity; the second passes through
// the failing op. Labels are bound data (checked before the run) in `loss_bound` and computed
// (checked by the kernel inside the parallel run) in `loss_computed`. The products are 64 x 128
// x 256, as in test_output_ready: big enough for their kernels to split, too small to fill two
// threads alone, so at 2 and 4 threads the branches run concurrently in the executor's flow
// graph (runtime/executor.cpp, worth_concurrent_nodes) and a failure stops a graph in flight.
constexpr auto logits = tanh(matmul(x, w1)) + failing_identity(sigmoid(matmul(x, w2)));
constexpr auto loss_bound = softmax_cross_entropy(logits, labels);
constexpr auto loss_computed = softmax_cross_entropy(logits, relu(labels));

constexpr std::size_t batch = 64, features = 128, classes = 256;
struct data {
  tensor<double, 2> xv = test_support::random_uniform<2>({batch, features}, 1);
  tensor<double, 2> w1v = test_support::random_uniform<2>({features, classes}, 2, -0.05, 0.05);
  tensor<double, 2> w2v = test_support::random_uniform<2>({features, classes}, 3, -0.05, 0.05);
  tensor<double, 1> good{{batch}};
  tensor<double, 1> bad{{batch}};
  data() {
    for (std::size_t i = 0; i < batch; ++i) good[i] = bad[i] = double(i * 7 % classes);
    bad[11] = classes;  // out of range
  }
};

template <class Program>
std::vector<std::vector<double>> results(const Program& p, auto loss) {
  return {test_support::values(p.value(loss)), test_support::values(p.gradient(x)),
          test_support::values(p.gradient(w1)), test_support::values(p.gradient(w2))};
}

// The fresh program's results, then a program that first fails `failures` times (by `fail`),
// then runs `good_runs` times with good input: each good run must equal the fresh one bitwise.
template <class Loss, class Fail>
void check_recovers(Loss loss, int threads, Fail fail, const std::string& expected_message) {
  data d;
  auto fresh = compile<double>(loss, wrt(x, w1, w2));
  fresh.set_threads(threads).bind(x, d.xv).bind(w1, d.w1v).bind(w2, d.w2v).bind(labels, d.good).run();
  const auto expected = results(fresh, loss);

  auto p = compile<double>(loss, wrt(x, w1, w2));
  p.set_threads(threads).bind(x, d.xv).bind(w1, d.w1v).bind(w2, d.w2v).bind(labels, d.good);
  for (int round = 0; round < 3; ++round) {
    p.run();  // a good run before each failure: the failure interrupts a planned program
    for (int failure = 0; failure < 3; ++failure) {
      try {
        fail(p, d);
        BOOST_FAIL("the run was expected to throw");
      } catch (const std::exception& e) {
        BOOST_TEST(std::string(e.what()).find(expected_message) != std::string::npos, e.what());
      }
      fail_on = false;
      p.bind(labels, d.good);
    }
    for (int run = 0; run < 20; ++run) {
      p.run();
      BOOST_TEST_REQUIRE((results(p, loss) == expected), "threads " << threads << ", round " << round << ", run "
                                                                     << run << ": differs from a fresh program");
    }
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(bad_bound_label_is_reported_before_the_run_and_leaves_the_program_intact) {
  for (int threads : {1, 2, 4})
    check_recovers(
        loss_bound, threads, [](auto& p, data& d) { p.bind(labels, d.bad).run(); },
        "softmax_cross_entropy: labels[11] = 256 is not a class index");
}

BOOST_AUTO_TEST_CASE(bad_computed_label_thrown_inside_the_parallel_run_leaves_the_program_intact) {
  for (int threads : {1, 2, 4})
    check_recovers(
        loss_computed, threads, [](auto& p, data& d) { p.bind(labels, d.bad).run(); },
        // softmax_cross_entropy's kernel or its gradient's one_hot, whichever runs first
        "labels[11] = 256 is not a class index");
}

BOOST_AUTO_TEST_CASE(user_op_throwing_in_one_of_two_parallel_branches_leaves_the_program_intact) {
  for (int threads : {1, 2, 4})
    check_recovers(
        loss_bound, threads,
        [](auto& p, data&) {
          fail_on = true;
          p.run();
        },
        "failing_identity: asked to fail");
}

BOOST_AUTO_TEST_CASE(shape_error_then_good_runs_match_a_fresh_program) {
  for (int threads : {1, 2, 4}) {
    tensor<double, 2> wrong = test_support::random_uniform<2>({features - 1, classes}, 4);
    check_recovers(
        loss_bound, threads,
        [&](auto& p, data& d) {
          p.bind(w1, wrong);
          try {
            p.run();
          } catch (...) {
            p.bind(w1, d.w1v);
            throw;
          }
        },
        "matmul");
  }
}

// set_check_finite(true): the first node whose output holds NaN or inf is named, forward or
// adjoint, with its printed expression; a leaf holding one is named as the leaf. Off, a run
// returns the non-finite values silently, as before.
BOOST_AUTO_TEST_CASE(check_finite_names_the_first_non_finite_node) {
  constexpr var<"v", 1> v;
  tensor<double, 1> vv({3}, {1.0, 0.0, 2.0});
  auto f = sum(log(v) * v);  // log(0) = -inf (forward); the gradient 1/v = inf (adjoint)
  auto p = compile<double>(f, wrt(v));
  p.bind(v, vv).run();  // off: no error
  for (int threads : {1, 2}) {
    p.set_threads(threads).set_check_finite(true);
    try {
      p.run();
      BOOST_ERROR("no exception");
    } catch (const value_error& e) {
      const std::string what = e.what();
      BOOST_TEST(what.find("-inf at flat index 1") != std::string::npos, what);
      BOOST_TEST(what.find("a forward node: log(v)") != std::string::npos, what);
    }
  }
  // A finite forward, a non-finite adjoint: sqrt'(0) = inf.
  auto g = sum(sqrt(v));
  auto q = compile<double>(g, wrt(v));
  q.set_check_finite(true).bind(v, vv);
  try {
    q.run();
    BOOST_ERROR("no exception");
  } catch (const value_error& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("an adjoint node") != std::string::npos, what);
  }
  // A leaf holding NaN is named as the leaf.
  tensor<double, 1> nan_v({3}, {1.0, std::numeric_limits<double>::quiet_NaN(), 2.0});
  q.bind(v, nan_v);
  try {
    q.run();
    BOOST_ERROR("no exception");
  } catch (const value_error& e) {
    BOOST_TEST(std::string(e.what()).find("leaf 'v' (3) holds NaN at flat index 1") != std::string::npos, e.what());
  }
  // Off again: the run succeeds and returns the NaN.
  q.set_check_finite(false).run();
  BOOST_TEST(std::isnan(q.scalar(g)));
}

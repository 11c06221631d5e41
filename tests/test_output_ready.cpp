#define BOOST_TEST_MODULE output_ready
// The executor's output-ready hook (program.on_output_ready): called once per output in every
// run, after that output's values are final (a copy taken in the callback equals the result),
// while the run is still going (before later kernels), at 1 and 2 threads, in check_finite mode,
// and after a run that threw. typegrad::distributed starts its all-reduces from this hook. Also
// the profiler (program.set_profiling), which runs the nodes one at a time as check_finite does.
#include <boost/test/unit_test.hpp>

#include <typegrad/typegrad.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

using namespace typegrad;

namespace {
constexpr var<"x", 2> x;
constexpr var<"w1", 2> w1;
constexpr var<"w2", 2> w2;
constexpr var<"s", 2> s;

// An identity whose kernel counts its runs (and throws while `fail` is set): it shows how far
// a run has got when a callback fires.
std::atomic<int> counted_runs{0};
std::atomic<bool> fail{false};
struct counting_identity_op : elementwise_tag, shape_preserving {
  static constexpr std::string_view name = "counting_identity";
  template <class T>
  static void forward(view<T> out, inputs<T> in) {
    if (fail) throw std::runtime_error("counting_identity: asked to fail");
    ++counted_runs;
    std::memcpy(out.data, in[0].data, out.size() * sizeof(T));
  }
  template <std::size_t I, class G, class Y, class X>
  static auto vjp(G g, Y, X) {
    return node<counting_identity_op, G>{};
  }
};
template <Expression X>
constexpr auto counting_identity(X) {
  return node<counting_identity_op, X>{};
}

// Two branches that run concurrently at 2 threads (64 x 128 x 256 products: big enough for their
// kernels to split, too small to fill both threads alone; runtime/executor.cpp). w1's
// gradient reads the counting op's forward value only; w2's passes through its vjp, so at one
// thread the counting op has run exactly once (forward) when w1's gradient is final. s's
// gradient is tanh(x w1) itself, a forward node; x is an output that no kernel writes.
constexpr auto h = tanh(matmul(x, w1));
constexpr auto loss = sum(h * counting_identity(sigmoid(matmul(x, w2)))) + sum(h * s);

struct fixture {
  tensor<double, 2> xv = test_support::random_uniform<2>({64, 128}, 1);
  tensor<double, 2> w1v = test_support::random_uniform<2>({128, 256}, 2, -0.05, 0.05);
  tensor<double, 2> w2v = test_support::random_uniform<2>({128, 256}, 3, -0.05, 0.05);
  tensor<double, 2> sv = test_support::random_uniform<2>({64, 256}, 4);
  // p with these values bound, on `threads` threads.
  template <class Program>
  Program& bind(Program& p, int threads) const {
    p.set_threads(threads).bind(x, xv).bind(w1, w1v).bind(w2, w2v).bind(s, sv);
    return p;
  }
};

// What a callback saw, per output: how often it fired, a copy of the values, and the counting
// op's run count at that moment.
struct record {
  std::vector<std::atomic<int>> calls;
  std::vector<std::vector<double>> copies;
  std::vector<int> counted_at;
  explicit record(std::size_t outputs) : calls(outputs), copies(outputs), counted_at(outputs, -1) {}
  void reset() {
    for (auto& c : calls) c = 0;
    for (auto& c : copies) c.clear();
    counted_at.assign(counted_at.size(), -1);
  }
};

template <class Program>
void hook(Program& p, record& r) {
  p.on_output_ready([&p, &r](std::size_t i) {
    const auto v = p.executor().output(i);  // each output is written by its one callback
    r.copies[i].assign(v.data, v.data + v.size());
    r.counted_at[i] = counted_runs.load();
    ++r.calls[i];
  });
}

template <class Program>
void check_final(const Program& p, const record& r, std::size_t outputs) {
  for (std::size_t i = 0; i < outputs; ++i) {
    BOOST_TEST_CONTEXT("output " << i) {
      BOOST_TEST(r.calls[i].load() == 1);
      const auto final_values = test_support::values(p.executor().output(i));
      BOOST_TEST((r.copies[i] == final_values));  // bitwise: the values were final when it fired
    }
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(fires_once_per_output_when_final) {
  fixture d;
  for (int threads : {1, 2}) {
    BOOST_TEST_CONTEXT("threads " << threads) {
      auto p = compile<double>(loss, x, wrt(w1, w2, s));
      constexpr std::size_t outputs = 5;  // loss, x, then the gradients of w1, w2, s
      d.bind(p, threads);
      record r(outputs);
      hook(p, r);
      for (int run = 0; run < 3; ++run) {
        r.reset();
        counted_runs = 0;
        p.run();
        check_final(p, r, outputs);
        BOOST_TEST(counted_runs.load() == 2);  // forward and vjp
        // x is bound data: final before any kernel runs.
        BOOST_TEST(r.counted_at[1] == 0);
        // Serially (the order is the node list's), w1's gradient is final before the counting
        // op's vjp runs: the hook fires mid-run, not when run() returns.
        if (threads == 1) BOOST_TEST(r.counted_at[2] == 1);
      }
      // The results are those of a program without the hook.
      auto plain = compile<double>(loss, x, wrt(w1, w2, s));
      d.bind(plain, threads).run();
      for (std::size_t i = 0; i < outputs; ++i)
        BOOST_TEST((test_support::values(plain.executor().output(i)) == test_support::values(p.executor().output(i))));
    }
  }
}

BOOST_AUTO_TEST_CASE(fires_in_check_finite_mode) {
  fixture d;
  auto p = compile<double>(loss, x, wrt(w1, w2, s));
  d.bind(p.set_check_finite(true), 0);  // (0: all cores, the default)
  record r(5);
  hook(p, r);
  counted_runs = 0;
  p.run();
  check_final(p, r, 5);
  BOOST_TEST(r.counted_at[2] == 1);
}

BOOST_AUTO_TEST_CASE(after_a_failed_run_fires_once_again) {
  fixture d;
  for (int threads : {1, 2}) {
    BOOST_TEST_CONTEXT("threads " << threads) {
      auto p = compile<double>(loss, x, wrt(w1, w2, s));
      d.bind(p, threads);
      record r(5);
      hook(p, r);
      fail = true;
      BOOST_CHECK_THROW(p.run(), std::runtime_error);
      fail = false;
      r.reset();
      p.run();
      check_final(p, r, 5);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_throwing_callback_fails_the_run_and_removing_it_restores_plain_runs) {
  fixture d;
  for (int threads : {1, 2}) {
    BOOST_TEST_CONTEXT("threads " << threads) {
      auto p = compile<double>(loss, x, wrt(w1, w2, s));
      d.bind(p, threads).run();
      const auto expected = test_support::values(p.gradient(w2));
      p.on_output_ready([](std::size_t i) {
        if (i == 3) throw std::runtime_error("callback: output 3");
      });
      BOOST_CHECK_THROW(p.run(), std::runtime_error);
      p.on_output_ready({});
      p.run();
      BOOST_TEST((test_support::values(p.gradient(w2)) == expected));
    }
  }
}

// The profiler (program.set_profiling): every kernel that runs gets one line, slowest first, with
// its time per run and share (also by node index, profile_ms()); the results are bitwise those of
// a plain run, the hook still fires, and reset_profile() starts the count again.
BOOST_AUTO_TEST_CASE(profiling_times_every_kernel_without_changing_results) {
  fixture d;
  for (int threads : {1, 2}) {
    BOOST_TEST_CONTEXT("threads " << threads) {
      auto plain = compile<double>(loss, x, wrt(w1, w2, s));
      d.bind(plain, threads).run();
      auto p = compile<double>(loss, x, wrt(w1, w2, s));
      d.bind(p, threads);
      BOOST_TEST(p.profile().find("profile of 0 runs") != std::string::npos);
      record r(5);
      hook(p, r);
      p.set_profiling();
      for (int run = 0; run < 3; ++run) {
        r.reset();
        p.run();
        check_final(p, r, 5);
      }
      for (std::size_t i = 0; i < 5; ++i)
        BOOST_TEST((test_support::values(plain.executor().output(i)) == test_support::values(p.executor().output(i))));
      const std::string table = p.profile();
      BOOST_TEST_MESSAGE(table);
      BOOST_TEST(table.find("profile of 3 runs") != std::string::npos);
      // One line per kernel that ran: the listing's op nodes that are computed, not views and not
      // values an elementwise region stores.
      auto count_lines = [](const std::string& text, auto&& counts) {
        std::istringstream in(text);
        std::size_t n = 0;
        for (std::string line; std::getline(in, line);) n += counts(line) ? 1 : 0;
        return n;
      };
      const auto has = [](const std::string& line, const char* what) { return line.find(what) != std::string::npos; };
      const std::size_t kernels = count_lines(p.listing(), [&](const std::string& line) {
        return !has(line, "= leaf") && !has(line, "= literal") && !has(line, "[not computed]") && !has(line, "[view of") &&
               !has(line, "'s region]");
      });
      BOOST_TEST(kernels > 10u);
      BOOST_TEST(count_lines(table, [](const std::string& line) { return line.rfind('#', 0) != 0; }) == kernels);
      // profile_ms(): the same times by node index, one per kernel, 0 for the rest (leaves, views).
      const auto ms = p.profile_ms();
      BOOST_TEST(ms.size() == p.executor().nodes().size());
      BOOST_TEST(std::size_t(std::count_if(ms.begin(), ms.end(), [](double t) { return t > 0; })) == kernels);
      for (std::size_t i = 0; i < ms.size(); ++i)
        if (p.executor().nodes()[i].kind != runtime::node_kind::op) BOOST_TEST(ms[i] == 0.0);
      // Slowest first: the 64 x 128 x 256 products before the counting identity's copies.
      BOOST_TEST(table.find("matmul") < table.find("counting_identity"));
      BOOST_TEST(table.find("leaf") == std::string::npos);
      p.reset_profile();
      BOOST_TEST(p.profile().find("profile of 0 runs") != std::string::npos);
      const auto cleared = p.profile_ms();
      BOOST_TEST(std::all_of(cleared.begin(), cleared.end(), [](double t) { return t == 0.0; }));
      p.set_profiling(false).run();
      BOOST_TEST(p.profile().find("profile of 0 runs") != std::string::npos);
    }
  }
}

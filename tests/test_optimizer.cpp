#define BOOST_TEST_MODULE optimizer
#include <boost/test/unit_test.hpp>

#include <typegrad/train/optimizer.hpp>
#include <typegrad/train/parameters.hpp>
#include <typegrad/train/schedule.hpp>
#include <typegrad/typegrad.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <random>
#include <tuple>
#include <vector>

#include <sys/resource.h>

#include <tbb/task_arena.h>

#include "reference/optimizer.hpp"

// Every operator new in this executable is counted, so a test can check that a step allocates nothing.
namespace {
std::atomic<std::size_t> allocations{0};
}
void* operator new(std::size_t n) {
  ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  ++allocations;
  const std::size_t al = std::size_t(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace typegrad;
using namespace typegrad::train;
namespace tt = boost::test_tools;

namespace {
constexpr var<"x", 2> x;
constexpr var<"y", 2> y;
constexpr var<"labels", 1> labels;
constexpr var<"w", 2> w;
constexpr var<"b", 1> b;

// One scalar parameter p (shape (1, 1)) stepped with the given gradients; returns p after each step.
template <class Opt>
std::vector<double> scalar_run(Opt make, double p0, const std::vector<double>& grads) {
  auto params = make_parameters<double>(param(w, {1, 1}));
  params[w][0] = p0;
  auto opt = make(params);
  tensor<double, 2> g({1, 1});
  std::vector<double> out;
  for (double gi : grads) {
    g[0] = gi;
    const std::array<view<const double>, 1> gs{std::as_const(g).as_view()};
    opt.step(params.entries(), gs);
    out.push_back(params[w][0]);
  }
  return out;
}
}  // namespace

BOOST_AUTO_TEST_CASE(sgd_by_hand) {
  auto plain = scalar_run([](auto& p) { return sgd(p, {.lr = 0.1}); }, 1.0, {0.5, 0.5});
  BOOST_TEST(plain[0] == 0.95, tt::tolerance(1e-15));
  BOOST_TEST(plain[1] == 0.90, tt::tolerance(1e-15));
  // momentum 0.9: b = 1, 1.9, 2.71; p = 1 - 0.1 b cumulatively.
  auto mom = scalar_run([](auto& p) { return sgd(p, {.lr = 0.1, .momentum = 0.9}); }, 1.0, {1, 1, 1});
  BOOST_TEST(mom[0] == 0.9, tt::tolerance(1e-15));
  BOOST_TEST(mom[1] == 0.71, tt::tolerance(1e-15));
  BOOST_TEST(mom[2] == 0.439, tt::tolerance(1e-14));
  // nesterov: b = 1 then 1.9; steps g + 0.9 b = 1.9 then 2.71.
  auto nest = scalar_run([](auto& p) { return sgd(p, {.lr = 0.1, .momentum = 0.9, .nesterov = true}); }, 1.0, {1, 1});
  BOOST_TEST(nest[0] == 0.81, tt::tolerance(1e-15));
  BOOST_TEST(nest[1] == 0.539, tt::tolerance(1e-14));
  // weight decay alone shrinks p by lr * wd per step.
  auto wd = scalar_run([](auto& p) { return sgd(p, {.lr = 0.1, .weight_decay = 0.1}); }, 1.0, {0, 0});
  BOOST_TEST(wd[0] == 0.99, tt::tolerance(1e-15));
  BOOST_TEST(wd[1] == 0.9801, tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(adam_and_adamw_by_hand) {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8; gradients 2, -1, 0.5 (values from the formulas by hand).
  auto a = scalar_run([](auto& p) { return adam(p, {.lr = 0.1}); }, 1.0, {2, -1, 0.5});
  BOOST_TEST(a[0] == 0.9000000005, tt::tolerance(1e-13));  // first step: lr * g / (|g| + eps)
  BOOST_TEST(a[1] == 0.8733662967024315, tt::tolerance(1e-13));
  BOOST_TEST(a[2] == 0.8393233821389426, tt::tolerance(1e-13));
  // AdamW: p *= 1 - lr * wd before the moment step: 1 * 0.95 - 0.1.
  auto aw = scalar_run([](auto& p) { return adamw(p, {.lr = 0.1, .weight_decay = 0.5}); }, 1.0, {2});
  BOOST_TEST(aw[0] == 0.85, tt::tolerance(1e-8));
  // Adam's L2 weight decay goes into the gradient instead: g = 0 + 0.5 * 1, first step -lr * sign.
  auto l2 = scalar_run([](auto& p) { return adam(p, {.lr = 0.1, .weight_decay = 0.5}); }, 1.0, {0});
  BOOST_TEST(l2[0] == 0.9, tt::tolerance(1e-7));
}

namespace {
// Random parameters and gradients; the library's optimizer against the reference, step by step.
template <class T, class Opt, class Ref>
void against_reference(Opt& opt, auto& params, Ref ref, int steps, double tol) {
  std::mt19937 rng(5);
  std::normal_distribution<double> nd;
  std::vector<double> pw(params[w].size()), pb(params[b].size());
  for (std::size_t i = 0; i < pw.size(); ++i) pw[i] = params[w][i] = T(nd(rng));
  for (std::size_t i = 0; i < pb.size(); ++i) pb[i] = params[b][i] = T(nd(rng));
  Ref rw = ref, rb = ref;
  tensor<T, 2> gw(params[w].extents());
  tensor<T, 1> gb(params[b].extents());
  for (int s = 0; s < steps; ++s) {
    std::vector<double> dw(gw.size()), db(gb.size());
    for (std::size_t i = 0; i < dw.size(); ++i) dw[i] = gw[i] = T(nd(rng));
    for (std::size_t i = 0; i < db.size(); ++i) db[i] = gb[i] = T(nd(rng));
    const std::array<view<const T>, 2> gs{std::as_const(gw).as_view(), std::as_const(gb).as_view()};
    opt.step(params.entries(), gs);
    rw.step(pw, dw);
    rb.step(pb, db);
    for (std::size_t i = 0; i < pw.size(); ++i) BOOST_TEST(double(params[w][i]) == pw[i], tt::tolerance(tol));
    for (std::size_t i = 0; i < pb.size(); ++i) BOOST_TEST(double(params[b][i]) == pb[i], tt::tolerance(tol));
  }
}
}  // namespace

using scalar_types = std::tuple<float, double>;
BOOST_AUTO_TEST_CASE_TEMPLATE(matches_the_reference, T, scalar_types) {
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  auto params = make_parameters<T>(param(w, {7, 5}), param(b, {5}));
  {
    sgd<T> opt(params, {.lr = 0.05, .momentum = 0.8, .weight_decay = 0.01, .nesterov = true});
    against_reference<T>(opt, params, reference::sgd_state{0.05, 0.8, 0.01, true, {}}, 4, tol);
  }
  {
    adam<T> opt(params, {.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 0.02});
    against_reference<T>(opt, params, reference::adam_state{0.01, 0.8, 0.99, 1e-6, 0.02, false, {}, {}}, 4, tol);
  }
  {
    auto opt = adamw(params, {.lr = 0.01, .weight_decay = 0.1});
    against_reference<T>(opt, params, reference::adam_state{0.01, 0.9, 0.999, 1e-8, 0.1, true, {}, {}}, 4, tol);
  }
}

BOOST_AUTO_TEST_CASE(steps_allocate_nothing_and_do_not_depend_on_threads) {
  // 2^20 values: parallel_chunks splits the update into tasks.
  auto make = [] {
    auto p = make_parameters<float>(param(w, {1024, 1024}, init::normal(1)), param(b, {3}, init::constant(1)));
    p.initialize(11);
    return p;
  };
  auto one = make(), two = make();
  tensor<float, 2> gw({1024, 1024});
  tensor<float, 1> gb({3});
  generator g(3);
  init::normal(1).fill(gw.as_view(), g);
  init::normal(1).fill(gb.as_view(), g);
  const std::array<view<const float>, 2> gs{std::as_const(gw).as_view(), std::as_const(gb).as_view()};
  adam<float> opt1(one, {.lr = 0.01}), opt2(two, {.lr = 0.01});
  const float* m_before = opt1.state()[0].value.data;
  BOOST_TEST(opt1.state().size() == 4u);  // m and v for w and b
  BOOST_TEST(opt1.state()[0].name == "adam.m.w");
  BOOST_TEST(opt1.state()[3].name == "adam.v.b");

  opt1.step(one.entries(), gs);  // warm TBB up
  tbb::task_arena serial(1), parallel(2);
  const std::size_t probe = allocations.load();
  tensor<float, 1> counted({16});  // the counter sees allocations (an explicit operator new call)
  BOOST_TEST(allocations.load() == probe + 1);
  const std::size_t before = allocations.load();
  serial.execute([&] {
    for (int s = 0; s < 3; ++s) opt1.step(one.entries(), gs);
  });
  const std::size_t after = allocations.load();
  BOOST_TEST(after - before == 0u);
  BOOST_TEST(opt1.state()[0].value.data == m_before);
  BOOST_TEST(one[w].data() != nullptr);

  opt2.step(two.entries(), gs);
  parallel.execute([&] {
    for (int s = 0; s < 3; ++s) opt2.step(two.entries(), gs);
  });
  BOOST_TEST(opt1.steps() == 4u);
  bool same = true;
  for (std::size_t i = 0; i < one[w].size(); ++i) same = same && one[w][i] == two[w][i];
  BOOST_TEST(same);

  // A gradient of the wrong shape is refused before anything is updated.
  tensor<float, 2> bad({1024, 1023});
  const std::array<view<const float>, 2> wrong{std::as_const(bad).as_view(), std::as_const(gb).as_view()};
  const float w0 = one[w][0];
  BOOST_CHECK_EXCEPTION(opt1.step(one.entries(), wrong), shape_error, [](const shape_error& e) {
    return std::string(e.what()).find("parameter w has shape (1024, 1024) and its gradient (1024, 1023)") !=
           std::string::npos;
  });
  BOOST_TEST(one[w][0] == w0);
  BOOST_TEST(opt1.steps() == 4u);
}

BOOST_AUTO_TEST_CASE(schedules) {
  constant_schedule c{.lr = 0.3};
  BOOST_TEST(c(0) == 0.3);
  BOOST_TEST(c(1000) == 0.3);
  step_schedule s{.lr = 1.0, .gamma = 0.5, .every = 3};
  BOOST_TEST(s(0) == 1.0);
  BOOST_TEST(s(2) == 1.0);
  BOOST_TEST(s(3) == 0.5);
  BOOST_TEST(s(7) == 0.25);
  cosine_schedule cos{.lr = 1.0, .total = 12, .warmup = 2, .min_lr = 0.1};
  BOOST_TEST(cos(0) == 0.5);  // warm-up: lr (t + 1) / warmup
  BOOST_TEST(cos(1) == 1.0);
  BOOST_TEST(cos(2) == 1.0);                                     // the top of the cosine
  BOOST_TEST(cos(7) == 0.1 + 0.9 * 0.5, tt::tolerance(1e-15));  // halfway: (lr + min_lr) / 2
  BOOST_TEST(cos(12) == 0.1);
  BOOST_TEST(cos(100) == 0.1);
  cosine_schedule plain{.lr = 2.0, .total = 4};
  BOOST_TEST(plain(0) == 2.0);
  BOOST_TEST(plain(2) == 1.0, tt::tolerance(1e-15));
  // The optimizer's learning rate follows set_lr.
  auto params = make_parameters<double>(param(w, {1, 1}, init::constant(1)));
  sgd opt(params, {.lr = 0.1});
  opt.set_lr(s(3));
  BOOST_TEST(opt.lr() == 0.5);
}

BOOST_AUTO_TEST_CASE(least_squares_converges) {
  // y = x w* + b*, recovered by SGD with momentum through a compiled program.
  const std::size_t n = 64;
  tensor<float, 2> xv({n, 3}), yv({n, 1});
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  const float w_true[3] = {0.5f, -1.5f, 2.0f}, b_true = 0.25f;
  for (std::size_t i = 0; i < n; ++i) {
    yv[i] = b_true;
    for (std::size_t j = 0; j < 3; ++j) yv[i] += (xv(i, j) = nd(rng)) * w_true[j];
  }
  auto loss = mse(dense(x, w, b), y);
  auto program = compile<float>(loss, wrt(w, b));
  auto params = make_parameters<float>(param(w, {3, 1}, init::glorot_uniform), param(b, {1}));
  params.initialize(2);
  program.bind(x, xv).bind(y, yv);
  params.bind(program);
  sgd opt(params, {.lr = 0.1, .momentum = 0.9});
  for (int step = 0; step < 300; ++step) {
    program.run();
    opt.step(params, program);
  }
  program.run();
  BOOST_TEST(program.scalar(loss) < 1e-8);
  for (std::size_t j = 0; j < 3; ++j) BOOST_TEST(params[w][j] == w_true[j], tt::tolerance(1e-3f));
  BOOST_TEST(params[b][0] == b_true, tt::tolerance(1e-3f));
}

BOOST_AUTO_TEST_CASE(logistic_regression_converges) {
  // Two Gaussian blobs; softmax cross-entropy trained with Adam then AdamW.
  const std::size_t n = 200;
  tensor<double, 2> xv({n, 2});
  tensor<double, 1> yv({n});
  std::mt19937 rng(4);
  std::normal_distribution<double> noise(0, 0.5);
  for (std::size_t i = 0; i < n; ++i) {
    yv[i] = double(i % 2);
    xv(i, 0) = (i % 2 ? 1 : -1) + noise(rng);
    xv(i, 1) = (i % 2 ? 1 : -1) + noise(rng);
  }
  auto logits = dense(x, w, b);
  auto loss = softmax_cross_entropy(logits, labels);
  auto program = compile<double>(loss, logits, wrt(w, b));
  for (bool decoupled : {false, true}) {
    auto params = make_parameters<double>(param(w, {2, 2}, init::glorot_normal), param(b, {2}));
    params.initialize(9);
    program.bind(x, xv).bind(labels, yv);
    params.bind(program);
    adam opt(params, {.lr = 0.05, .weight_decay = decoupled ? 0.01 : 0.0, .decoupled_weight_decay = decoupled});
    program.run();
    const double first = program.scalar(loss);
    for (int step = 0; step < 200; ++step) {
      program.run();
      opt.step(params, program);
    }
    program.run();
    BOOST_TEST(program.scalar(loss) < 0.1 * first);
    const auto z = program.value(logits);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; ++i) correct += (z.data[2 * i + 1] > z.data[2 * i]) == (yv[i] == 1);
    BOOST_TEST(correct >= n * 98 / 100);
  }
}

// A whole training step of a small CNN (conv, fused bias + relu, max pool, dense, softmax
// cross-entropy, Adam) allocates nothing and faults no page in steady state, at 1 and 2 threads:
// the program's buffers, the kernels' scratch and the optimizer's state are all reused.
BOOST_AUTO_TEST_CASE(training_steps_allocate_nothing_and_fault_no_page) {
  constexpr var<"img", 4> img;
  constexpr var<"cw", 4> cw;
  constexpr var<"cb", 1> cb;
  constexpr var<"dw", 2> dw;
  auto logits = matmul(flatten(max_pool(relu(conv(img, cw) + cb), window<2>)), dw);
  auto loss = softmax_cross_entropy(logits, labels);
  auto params = make_parameters<float>(param(cw, {16, 3, 3, 1}, init::he_normal), param(cb, {16}),
                                       param(dw, {14 * 14 * 16, 10}, init::he_normal));
  params.initialize(5);
  auto program = compile<float>(loss, wrt(cw, cb, dw));
  params.bind(program);
  tensor<float, 4> images({32, 28, 28, 1});
  tensor<float, 1> classes({32});
  generator g(9);
  init::normal(1).fill(images.as_view(), g);
  for (std::size_t i = 0; i < 32; ++i) classes[i] = float(i % 10);
  program.bind(img, images).bind(labels, classes);
  adam<float> opt(params, {.lr = 1e-3});
  auto minor_faults = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
  };
  for (int threads : {1, 2}) {
    program.set_threads(threads);
    for (int s = 0; s < 3; ++s) {  // warm: plan, scratch, TBB's threads
      program.bind(img, images).run();
      opt.step(params, program);
    }
    const std::size_t before = allocations.load();
    const long faults_before = minor_faults();
    for (int s = 0; s < 5; ++s) {
      program.bind(img, images).run();
      opt.step(params, program);
    }
    BOOST_TEST(allocations.load() - before == 0u, "threads " << threads);
    BOOST_TEST(minor_faults() - faults_before == 0, "threads " << threads);
  }
  BOOST_TEST(program.plan_count() == 1u);
}

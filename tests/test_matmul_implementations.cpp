#define BOOST_TEST_MODULE matmul_implementations
// Every implementation of matmul (kernels/gemm.hpp's list), run by name on every shape of a fixed
// set, against the library's reference implementation within a few eps per term summed; 1 and 2
// threads bitwise; that each implementation applies to some shape of the set (so none goes
// untested); which one the default dispatch picks; and the errors for a name that matmul does not
// know. Kernels are called directly: no programs, no graphs. ctest runs this file again with
// TYPEGRAD_ISA=avx2 and portable (the blocked GEMM's kernels are compiled per instruction set).
#include <boost/test/unit_test.hpp>

#include <typegrad/core/errors.hpp>
#include <typegrad/kernels/gemm.hpp>
#include <typegrad/tensor.hpp>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <tbb/task_arena.h>

#include "support.hpp"

using namespace typegrad;
using kernels::matmul_form;
using test_support::error_message;
using test_support::max_error;
using test_support::same_bits;

namespace {

struct shape_case {
  shape a, b, out;
  matmul_form form;
  std::size_t terms;  // of each element's sum: k, times the batch with sum_batch
};

// op(a) (m x k) times op(b) (k x n) in `form`, a and b with the given batch dims (empty: 2-d).
shape_case product(const std::vector<std::size_t>& batch_a, const std::vector<std::size_t>& batch_b, std::size_t m,
                   std::size_t k, std::size_t n, matmul_form form) {
  auto stored = [](const std::vector<std::size_t>& batch, std::size_t rows, std::size_t cols, bool transposed) {
    shape s;
    for (auto e : batch) s.push_back(e);
    s.push_back(transposed ? cols : rows);
    s.push_back(transposed ? rows : cols);
    return s;
  };
  const auto& batch = batch_a.size() >= batch_b.size() ? batch_a : batch_b;
  std::size_t items = 1;
  for (auto e : batch) items *= e;
  shape out = stored(form.sum_batch ? std::vector<std::size_t>{} : batch, m, n, false);
  return {stored(batch_a, m, k, form.trans_a), stored(batch_b, k, n, form.trans_b), out, form,
          form.sum_batch ? k * items : k};
}

// The shape classes the blocked GEMM handles differently (see src/kernels/gemm.cpp): every form
// (both transposes, sum_batch) with odd extents and a single row, column or term; identical batch
// dims, a shared a, a shared b (folded into one GEMM when a is not transposed), batch 1, and sums
// over the batch (one GEMM for a^T b, per-item accumulation otherwise); empty extents and an empty
// batch; products large enough to be cut into several tiles, row blocks, column blocks and passes
// over k; and narrow untransposed B with aligned rows of 256 or 512 bytes, which the GEMM reads in
// place instead of packing.
std::vector<shape_case> shape_cases() {
  struct dims {
    std::size_t m, k, n;
  };
  const std::vector<std::size_t> none{}, b1{1}, b3{3}, b23{2, 3}, b0{0};
  std::vector<shape_case> cases;
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const matmul_form plain{ta, tb, false}, summed{ta, tb, true};
      for (const dims d : {dims{1, 1, 1}, {7, 65, 33}, {65, 1, 7}, {33, 17, 130}}) {
        cases.push_back(product(none, none, d.m, d.k, d.n, plain));
        cases.push_back(product(b23, b23, d.m, d.k, d.n, plain));
        cases.push_back(product(b3, none, d.m, d.k, d.n, plain));
        cases.push_back(product(none, b3, d.m, d.k, d.n, plain));
        cases.push_back(product(b1, b1, d.m, d.k, d.n, plain));
        cases.push_back(product(b23, b23, d.m, d.k, d.n, summed));
        cases.push_back(product(b1, b1, d.m, d.k, d.n, summed));
      }
      for (const dims d : {dims{0, 5, 3}, {4, 5, 0}, {4, 0, 3}}) {
        cases.push_back(product(none, none, d.m, d.k, d.n, plain));
        cases.push_back(product(b3, b3, d.m, d.k, d.n, summed));
      }
      cases.push_back(product(b0, none, 4, 5, 3, plain));
      cases.push_back(product(b0, b0, 4, 5, 3, summed));
      // several tiles (with ragged edges), row blocks, column blocks and passes over k
      cases.push_back(product(none, none, 300, 200, 260, plain));
      cases.push_back(product(none, none, 3, 7, 2100, plain));
      cases.push_back(product(none, none, 40, 520, 50, plain));
      cases.push_back(product(b3, none, 96, 100, 150, plain));
      cases.push_back(product(b3, b3, 130, 60, 150, summed));
    }
  // B read in place: untransposed, at most 128 rows of A, n a multiple of every tile width
  cases.push_back(product(none, none, 16, 40, 64, {}));
  cases.push_back(product(b3, none, 20, 300, 128, {}));
  cases.push_back(product(b23, b23, 5, 33, 64, {true, false, false}));
  return cases;
}

std::string to_string(const shape_case& c) {
  return fmt::format("a {}{}, b {}{}{}", c.a, c.form.trans_a ? "^T" : "", c.b, c.form.trans_b ? "^T" : "",
                     c.form.sum_batch ? ", summed over the batch" : "");
}

// One case's operands, in tensors (64-byte aligned, as programs give them to the kernels: the
// GEMM reads aligned B in place).
template <class T>
struct problem {
  const shape_case& c;
  tensor<T, 1> a, b;

  problem(const shape_case& sc, unsigned seed)
      : c(sc), a(random_values(sc.a, seed)), b(random_values(sc.b, seed + 1)) {}

  static tensor<T, 1> random_values(const shape& s, unsigned seed) {
    tensor<T, 1> t({s.numel()});
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(-1, 1);
    for (auto& v : t) v = T(u(rng));
    return t;
  }

  // matmul by implementation `name` (empty: the kernel without a name, which runs the first that
  // applies) on `threads` threads, into an output that holds garbage (to be overwritten).
  std::vector<T> run(std::string_view name, int threads) const {
    std::vector<T> out(c.out.numel(), T(7));
    const view<T> o{out.data(), c.out};
    const view<const T> av{a.data(), c.a}, bv{b.data(), c.b};
    tbb::task_arena(threads).execute([&] {
      if (name.empty()) kernels::matmul<T>(o, av, bv, c.form);
      else kernels::matmul_with<T>(name, o, av, bv, c.form);
    });
    return out;
  }

  // 4 eps per term summed (plus one), every term of magnitude at most 1.
  double tolerance() const { return 4 * std::numeric_limits<T>::epsilon() * double(c.terms + 1); }
};

template <class T>
void check_every_implementation() {
  const auto cases = shape_cases();
  std::map<std::string_view, int> applied;  // cases per implementation
  unsigned seed = 1;
  for (const auto& c : cases) {
    const problem<T> pr(c, seed += 2);
    const std::string what = to_string(c);
    const std::string_view chosen = kernels::matmul_chosen(c.a, c.b, c.form);
    const auto want = pr.run("reference", 1);
    for (const std::string_view name : kernels::matmul_implementations()) {
      if (!kernels::matmul_applies(name, c.a, c.b, c.form)) continue;
      ++applied[name];
      if (name == "reference") continue;
      const std::string label = fmt::format("matmul {}: {}", name, what);
      const auto one = pr.run(name, 1);
      BOOST_TEST(max_error(one, want) <= pr.tolerance(), label);
      BOOST_TEST(same_bits(one, pr.run(name, 2)), label << ": 1 and 2 threads differ");
      if (name == chosen)
        BOOST_TEST(same_bits(one, pr.run({}, 2)), label << ": the kernel without a name differs from its choice");
    }
  }
  for (const std::string_view name : kernels::matmul_implementations()) {
    const int n = applied[name];
    BOOST_TEST_MESSAGE("matmul " << name << ": " << n << " shapes");
    BOOST_TEST(n > 0, "matmul " << name << " applies to no shape of the set");
    if (name == "reference") BOOST_TEST(n == int(cases.size()), "the reference applies to every shape");
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(list_ends_with_the_reference) {
  BOOST_TEST((kernels::matmul_implementations() == std::vector<std::string_view>{"blocked", "reference"}));
}

BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_float) { check_every_implementation<float>(); }
BOOST_AUTO_TEST_CASE(every_implementation_matches_the_reference_double) { check_every_implementation<double>(); }

// The default dispatch on the example CNN's dense layers (forward, weight and input gradient),
// bench_matmul's square product and an empty one. (check_every_implementation checks that the
// kernel without a name runs what matmul_chosen names.)
BOOST_AUTO_TEST_CASE(default_dispatch_picks_the_blocked_gemm) {
  for (const auto& c : {product({}, {}, 64, 3136, 128, {}), product({}, {}, 3136, 64, 128, {true, false, false}),
                        product({}, {}, 64, 128, 3136, {false, true, false}), product({}, {}, 512, 512, 512, {}),
                        product({}, {}, 4, 0, 3, {})})
    BOOST_TEST(kernels::matmul_chosen(c.a, c.b, c.form) == "blocked", to_string(c));
}

BOOST_AUTO_TEST_CASE(errors_name_the_kernel_and_the_implementations) {
  const shape as{2, 3}, bs{3, 4}, os{2, 4};
  std::vector<float> a(as.numel()), b(bs.numel()), out(os.numel());
  const std::string message = error_message(
      [&] { kernels::matmul_with<float>("packed", {out.data(), os}, {a.data(), as}, {b.data(), bs}, {}); });
  BOOST_TEST(message == "matmul: no implementation \"packed\" (there are: blocked, reference)", message);
  BOOST_CHECK_THROW((void)kernels::matmul_applies("packed", as, bs, {}), error);
  // (Both implementations apply to every shape, so none can refuse one.)
  BOOST_TEST(kernels::matmul_applies("blocked", as, bs, {}));
}

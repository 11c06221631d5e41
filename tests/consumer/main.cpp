// A user's program against the installed package: a softmax classifier built as an expression,
// its symbolic gradient printed, compiled, run, and checked against plain loops. Uses matmul, so
// it also runs the package's GEMM kernels (chosen for this CPU at run time). Exits non-zero on a
// wrong result.
#include <cmath>
#include <cstddef>
#include <cstdio>

#include <fmt/format.h>
#include <typegrad/typegrad.hpp>

using namespace typegrad;

int main() {
  constexpr var<"x", 2> x;            // (batch, features)
  constexpr var<"labels", 1> labels;  // (batch) class indices
  constexpr var<"w", 2> w;            // (features, classes)
  constexpr var<"b", 1> b;            // (classes)
  auto loss = softmax_cross_entropy(dense(x, w, b), labels);
  fmt::print("loss     = {}\ndloss/db = {}\n", loss, std::get<1>(grad(loss, w, b)));

  auto program = compile<double>(loss, wrt(w, b));
  const std::size_t n = 2, f = 3, c = 2;
  tensor<double, 2> xv({n, f}, {1, -2, 0.5, 0, 1, 2});
  tensor<double, 1> yv({n}, {1, 0});
  tensor<double, 2> wv({f, c}, {0.1, -0.2, 0.3, 0.4, -0.5, 0.6});
  tensor<double, 1> bv({c}, {0.05, -0.05});
  program.bind(x, xv).bind(labels, yv).bind(w, wv).bind(b, bv).run();
  const tensor<double, 2> dw(program.gradient(w));
  const tensor<double, 1> db(program.gradient(b));
  fmt::print("loss = {:.6f}\ndloss/dw = {}\ndloss/db = {}\n", program.scalar(loss), dw, db);

  // The same by hand: p = softmax(x w + b) per row, loss = mean -log p[label],
  // dlogits = (p - onehot) / n, dw = x^T dlogits, db = column sums of dlogits.
  double expect_loss = 0, expect_dw[3][2] = {}, expect_db[2] = {};
  for (std::size_t i = 0; i < n; ++i) {
    double z[2], total = 0;
    for (std::size_t k = 0; k < c; ++k) {
      z[k] = bv[k];
      for (std::size_t j = 0; j < f; ++j) z[k] += xv(i, j) * wv(j, k);
      total += std::exp(z[k]);
    }
    const auto label = static_cast<std::size_t>(yv[i]);
    expect_loss += (std::log(total) - z[label]) / n;
    for (std::size_t k = 0; k < c; ++k) {
      const double d = (std::exp(z[k]) / total - (k == label ? 1.0 : 0.0)) / n;
      expect_db[k] += d;
      for (std::size_t j = 0; j < f; ++j) expect_dw[j][k] += xv(i, j) * d;
    }
  }
  bool ok = std::abs(program.scalar(loss) - expect_loss) < 1e-10;
  for (std::size_t k = 0; k < c; ++k) {
    ok = ok && std::abs(db[k] - expect_db[k]) < 1e-10;
    for (std::size_t j = 0; j < f; ++j) ok = ok && std::abs(dw(j, k) - expect_dw[j][k]) < 1e-10;
  }
  if (!ok) std::fputs("typegrad_consumer: the program disagrees with the hand computation\n", stderr);
  return ok ? 0 : 1;
}

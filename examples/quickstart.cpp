// typegrad in one page: a softmax classifier written as an expression, its symbolic gradient
// printed, compiled once, and trained by plain gradient descent on a synthetic two-class problem.
#include <cstddef>
#include <random>

#include <fmt/format.h>
#include <typegrad/typegrad.hpp>

using namespace typegrad;

int main() {
  constexpr var<"x", 2> x;            // (batch, features): a leaf has a name and a rank
  constexpr var<"labels", 1> labels;  // (batch) class indices, stored as float
  constexpr var<"w", 2> w;            // (features, classes)
  constexpr var<"b", 1> b;            // (classes)
  auto loss = softmax_cross_entropy(dense(x, w, b), labels);

  // The gradient is an expression too: print it (or differentiate it again).
  fmt::print("loss     = {}\ndloss/db = {}\n\n", loss, std::get<1>(grad(loss, w, b)));

  // Two Gaussian blobs in 2-d, class 0 around (-1, -1) and class 1 around (1, 1).
  const std::size_t n = 256;
  tensor<float, 2> xv({n, 2});
  tensor<float, 1> yv({n});
  std::mt19937 rng(42);
  std::normal_distribution<float> noise(0.0f, 0.7f);
  for (std::size_t i = 0; i < n; ++i) {
    yv[i] = float(i % 2);
    const float center = i % 2 ? 1.0f : -1.0f;
    xv(i, 0) = center + noise(rng);
    xv(i, 1) = center + noise(rng);
  }
  tensor<float, 2> wv({2, 2});
  tensor<float, 1> bv({2});

  // Compile once: forward + both gradients, buffers planned on the first run and reused.
  auto program = compile<float>(loss, wrt(w, b));
  program.bind(x, xv).bind(labels, yv).bind(w, wv).bind(b, bv);  // by reference: update in place
  const float learning_rate = 0.5f;
  for (int step = 0; step <= 50; ++step) {
    program.run();
    if (step % 10 == 0) fmt::print("step {:2}  loss {:.4f}\n", step, program.scalar(loss));
    const auto dw = program.gradient(w), db = program.gradient(b);
    for (std::size_t i = 0; i < wv.size(); ++i) wv[i] -= learning_rate * dw.data[i];
    for (std::size_t i = 0; i < bv.size(); ++i) bv[i] -= learning_rate * db.data[i];
  }
  fmt::print("\nw = {}\nb = {}\n{} nodes, planned {} time(s), {} bytes of intermediates\n", wv, bv,
             program.node_count(), program.plan_count(), program.arena_bytes());
}

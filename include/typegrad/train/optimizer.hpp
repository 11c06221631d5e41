#pragma once
// Optimizers: update a parameter_set in place from a program's gradients.
//
//   auto program = compile<float>(loss, wrt(w1, b1, w2, b2));   // every parameter in wrt(...)
//   train::adam opt(params, {.lr = 1e-3});                        // state allocated here, once
//   params.bind(program);
//   ... program.run(); opt.step(params, program); ...            // reads program.gradient(w) per w
//
// Update rules (g the gradient, p the parameter, t the step count after increment, lr the current
// learning rate; these are PyTorch's torch.optim rules, so hyperparameters carry over):
//   sgd:    g += weight_decay * p
//           with momentum m: b = m * b + g (b starts at 0), then g = nesterov ? g + m * b : b
//           p -= lr * g
//   adam:   g += weight_decay * p                       (L2 penalty, when not decoupled)
//           p -= lr * weight_decay * p                  (AdamW: decoupled, before the moments)
//           m = beta1 * m + (1 - beta1) * g,  v = beta2 * v + (1 - beta2) * g^2
//           p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
// adamw(params, options) is adam with decoupled weight decay (default 0.01).
//
// step() allocates nothing: the state (one buffer per parameter and slot, shaped like the
// parameter) is allocated by the constructor. Each parameter's update runs through
// parallel_chunks; every element is updated by one task, so the result does not depend on the
// thread count. Call step() outside program.run() (it uses TBB's default arena, or the caller's).
//
// State for checkpoints: state() lists (name, view) with names "<optimizer>.<slot>.<parameter>",
// e.g. "adam.m.w1", "sgd.momentum.w1"; steps() is the step count (set_steps() restores it).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "typegrad/tensor.hpp"
#include "typegrad/train/parameters.hpp"

namespace typegrad::train {

struct sgd_options {
  double lr = 0.01;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

struct adam_options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled_weight_decay = false;  // AdamW
};

// A named state tensor of an optimizer.
template <Scalar T>
struct state_entry {
  std::string name;
  view<T> value;
};

// What every optimizer shares: the parameters' names and shapes, the state buffers, the learning
// rate and the step count. The update rule is the derived class's.
template <Scalar T>
class optimizer {
 public:
  virtual ~optimizer() = default;
  optimizer(const optimizer&) = delete;
  optimizer& operator=(const optimizer&) = delete;

  // Updates every parameter of params from program.gradient(parameter).
  template <class Params, class Program>
  void step(Params& params, const Program& program) {
    const auto p = params.entries();
    const auto g = Params::gradients(program);
    step(std::span<const param_entry<T>>(p), std::span<const view<const T>>(g));
  }
  // The same with the parameters and gradients given as views (in construction order).
  void step(std::span<const param_entry<T>> params, std::span<const view<const T>> gradients);

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  std::uint64_t steps() const { return steps_; }
  void set_steps(std::uint64_t n) { steps_ = n; }
  std::string_view kind() const { return kind_; }
  std::span<const state_entry<T>> state() const { return state_; }
  std::span<const std::string> parameter_names() const { return names_; }

 protected:
  // kind: "sgd", "adam"; slots: the state buffers per parameter ({"momentum"}, {"m", "v"}).
  optimizer(std::string kind, std::span<const std::string_view> slots, std::span<const param_entry<const T>> params,
            double lr);
  // Updates parameter i (its state is state_[slot * parameter count + i]).
  virtual void update(std::size_t i, view<T> p, view<const T> g) = 0;
  T* state_data(std::size_t slot, std::size_t i) { return state_[slot * names_.size() + i].value.data; }

 private:
  std::string kind_;
  std::vector<std::string> names_;
  std::vector<shape> shapes_;
  std::vector<typegrad::detail::aligned_array<T>> buffers_;
  std::vector<state_entry<T>> state_;
  double lr_;
  std::uint64_t steps_ = 0;
};

template <Scalar T>
class sgd final : public optimizer<T> {
 public:
  template <Variable... Vs>
  sgd(const parameter_set<T, Vs...>& params, sgd_options options = {})
      : sgd(std::span<const param_entry<const T>>(params.entries()), options) {}
  sgd(std::span<const param_entry<const T>> params, sgd_options options);
  const sgd_options& options() const { return options_; }

 private:
  void update(std::size_t i, view<T> p, view<const T> g) override;
  sgd_options options_;
};
template <Scalar T, Variable... Vs>
sgd(const parameter_set<T, Vs...>&, sgd_options = {}) -> sgd<T>;

template <Scalar T>
class adam final : public optimizer<T> {
 public:
  template <Variable... Vs>
  adam(const parameter_set<T, Vs...>& params, adam_options options = {})
      : adam(std::span<const param_entry<const T>>(params.entries()), options) {}
  adam(std::span<const param_entry<const T>> params, adam_options options);
  const adam_options& options() const { return options_; }

 private:
  void update(std::size_t i, view<T> p, view<const T> g) override;
  adam_options options_;
};
template <Scalar T, Variable... Vs>
adam(const parameter_set<T, Vs...>&, adam_options = {}) -> adam<T>;

// AdamW (Loshchilov & Hutter): adam with decoupled weight decay, 0.01 unless given.
struct adamw_options {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};
template <Scalar T, Variable... Vs>
adam<T> adamw(const parameter_set<T, Vs...>& params, adamw_options o = {}) {
  return adam<T>(params, adam_options{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, true});
}

extern template class optimizer<float>;
extern template class optimizer<double>;
extern template class sgd<float>;
extern template class sgd<double>;
extern template class adam<float>;
extern template class adam<double>;

}  // namespace typegrad::train

// Optimizer state and update rules (see include/typegrad/train/optimizer.hpp). Each update is an
// elementwise loop over one parameter, split by parallel_chunks: deterministic for any thread count.
#include "typegrad/train/optimizer.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "../parallel/parallel_chunks.hpp"

namespace typegrad::train {

namespace {
// Work per element, in element operations (for parallel_chunks' grain).
constexpr std::size_t sgd_cost = 4;
constexpr std::size_t adam_cost = 16;
}  // namespace

template <Scalar T>
optimizer<T>::optimizer(std::string kind, std::span<const std::string_view> slots,
                        std::span<const param_entry<const T>> params, double lr)
    : kind_(std::move(kind)), lr_(lr) {
  for (const auto& p : params) {
    names_.emplace_back(p.name);
    shapes_.push_back(p.value.shape);
  }
  for (auto slot : slots)
    for (std::size_t i = 0; i < params.size(); ++i) {
      const std::size_t n = shapes_[i].numel();
      buffers_.push_back(typegrad::detail::allocate_aligned<T>(n));
      std::fill_n(buffers_.back().get(), n, T(0));
      state_.push_back({fmt::format("{}.{}.{}", kind_, slot, names_[i]), view<T>{buffers_.back().get(), shapes_[i]}});
    }
}

template <Scalar T>
void optimizer<T>::step(std::span<const param_entry<T>> params, std::span<const view<const T>> gradients) {
  if (params.size() != names_.size() || gradients.size() != names_.size())
    throw binding_error(fmt::format("{} optimizer step: {} parameters and {} gradients given, it was built for {}",
                                    kind_, params.size(), gradients.size(), names_.size()));
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (params[i].name != names_[i])
      throw binding_error(fmt::format("{} optimizer step: parameter {} is {}, it was built with {}", kind_, i,
                                      params[i].name, names_[i]));
    if (!(params[i].value.shape == shapes_[i]) || !(gradients[i].shape == shapes_[i]))
      throw shape_error(fmt::format("{} optimizer step: parameter {} has shape {} and its gradient {}; the state has {}",
                                    kind_, names_[i], params[i].value.shape, gradients[i].shape, shapes_[i]));
  }
  ++steps_;
  for (std::size_t i = 0; i < names_.size(); ++i) update(i, params[i].value, gradients[i]);
}

// ---- SGD ------------------------------------------------------------------------------------------
namespace {
constexpr std::string_view sgd_slots[] = {"momentum"};
}

template <Scalar T>
sgd<T>::sgd(std::span<const param_entry<const T>> params, sgd_options options)
    : optimizer<T>("sgd", std::span<const std::string_view>(sgd_slots, options.momentum != 0 ? 1 : 0), params,
                   options.lr),
      options_(options) {}

template <Scalar T>
void sgd<T>::update(std::size_t i, view<T> pv, view<const T> gv) {
  const T lr = T(this->lr()), wd = T(options_.weight_decay), mu = T(options_.momentum);
  const bool nesterov = options_.nesterov;
  T* __restrict p = pv.data;
  const T* __restrict g = gv.data;
  T* __restrict b = mu != 0 ? this->state_data(0, i) : nullptr;
  parallel_chunks(pv.size(), sgd_cost, [=](std::size_t lo, std::size_t hi) {
    if (!b) {
      for (std::size_t k = lo; k < hi; ++k) p[k] -= lr * (g[k] + wd * p[k]);
    } else if (nesterov) {
      for (std::size_t k = lo; k < hi; ++k) {
        const T d = g[k] + wd * p[k];
        b[k] = mu * b[k] + d;
        p[k] -= lr * (d + mu * b[k]);
      }
    } else {
      for (std::size_t k = lo; k < hi; ++k) {
        b[k] = mu * b[k] + (g[k] + wd * p[k]);
        p[k] -= lr * b[k];
      }
    }
  });
}

// ---- Adam / AdamW -----------------------------------------------------------------------------------
namespace {
constexpr std::string_view adam_slots[] = {"m", "v"};
}

template <Scalar T>
adam<T>::adam(std::span<const param_entry<const T>> params, adam_options options)
    : optimizer<T>(options.decoupled_weight_decay ? "adamw" : "adam", adam_slots, params, options.lr),
      options_(options) {}

template <Scalar T>
void adam<T>::update(std::size_t i, view<T> pv, view<const T> gv) {
  const double t = double(this->steps());
  const double lr = this->lr();
  const T b1 = T(options_.beta1), b2 = T(options_.beta2), eps = T(options_.eps);
  // p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps), with the bias corrections c1, c2.
  const T step_size = T(lr / (1 - std::pow(options_.beta1, t)));
  const T inv_sqrt_c2 = T(1 / std::sqrt(1 - std::pow(options_.beta2, t)));
  const T l2 = options_.decoupled_weight_decay ? T(0) : T(options_.weight_decay);
  const T shrink = options_.decoupled_weight_decay ? T(1 - lr * options_.weight_decay) : T(1);
  T* __restrict p = pv.data;
  const T* __restrict g = gv.data;
  T* __restrict m = this->state_data(0, i);
  T* __restrict v = this->state_data(1, i);
  parallel_chunks(pv.size(), adam_cost, [=](std::size_t lo, std::size_t hi) {
    for (std::size_t k = lo; k < hi; ++k) {
      const T d = g[k] + l2 * p[k];
      const T pk = p[k] * shrink;
      m[k] = b1 * m[k] + (1 - b1) * d;
      v[k] = b2 * v[k] + (1 - b2) * d * d;
      p[k] = pk - step_size * m[k] / (std::sqrt(v[k]) * inv_sqrt_c2 + eps);
    }
  });
}

template class optimizer<float>;
template class optimizer<double>;
template class sgd<float>;
template class sgd<double>;
template class adam<float>;
template class adam<double>;

}  // namespace typegrad::train

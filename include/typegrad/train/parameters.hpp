#pragma once
// A typed set of parameters: one tensor<T, rank> per leaf, named and ranked by the leaves' types.
//
//   constexpr var<"w1", 2> w1;  constexpr var<"b1", 1> b1;  ...
//   auto params = train::make_parameters<float>(param(w1, {784, 128}, init::he_normal),
//                                                param(b1, {128}),              // zeros
//                                                ...);
//   params.initialize(seed);          // draws every parameter from one generator, in the order given
//   params.bind(program);             // program.bind(w1, params[w1]) ... for every parameter
//   params[w1](0, 0) = 1.0f;          // typed access; params.get<"w1">() by name
//   for (auto& e : params.entries())  // (name, view) in the order given: optimizers, checkpoints
//
// The shapes are fixed at construction (the tensors are never reallocated, so a program bound to
// them stays bound, and optimizers keep state of the same shapes). Reproducibility: initialize(seed)
// uses generator(seed) and fills the parameters in the order they were given, each in row-major
// order (train/init.hpp says how many draws each value takes).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <tuple>
#include <utility>

#include "typegrad/core/expression.hpp"
#include "typegrad/core/graph.hpp"
#include "typegrad/tensor.hpp"
#include "typegrad/train/init.hpp"

namespace typegrad::train {

// A parameter's leaf, its extents and how it is initialised.
template <Variable V>
struct param_spec {
  std::array<std::size_t, V::rank> extents;
  initializer init = init::zeros;
};
template <fixed_string N, std::size_t R>
constexpr param_spec<var<N, R>> param(var<N, R>, const std::array<std::size_t, R>& extents,
                                      initializer init = init::zeros) {
  return {extents, init};
}

// A parameter as the type-erased parts (optimizers, checkpoints) see it; T may be const.
template <class T>
struct param_entry {
  std::string_view name;
  view<T> value;
};

namespace detail {
template <class... Vs>
constexpr bool distinct_names() {
  constexpr std::array<std::string_view, sizeof...(Vs)> names{Vs::name...};
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t j = i + 1; j < names.size(); ++j)
      if (names[i] == names[j]) return false;
  return true;
}
}  // namespace detail

template <Scalar T, Variable... Vs>
class parameter_set {
  static_assert(sizeof...(Vs) > 0, "make_parameters<T>(param(...)...): give at least one parameter");
  static_assert(detail::distinct_names<Vs...>(), "make_parameters<T>(param(...)...): every parameter's name must be distinct");
  using vars = graph::type_list<Vs...>;

 public:
  using value_type = T;
  using hana_tag = hana_sequence_tag;  // with core/hana.hpp: hana::for_each(params, f) and the rest
  static constexpr std::size_t size = sizeof...(Vs);
  static constexpr std::array<std::string_view, size> names{Vs::name...};

  explicit parameter_set(const param_spec<Vs>&... specs)
      : values_(tensor<T, Vs::rank>(specs.extents)...), inits_{specs.init...} {}

  // Redraws every parameter from generator(seed) (or from g), in the order given.
  void initialize(std::uint64_t seed) {
    generator g(seed);
    initialize(g);
  }
  void initialize(generator& g) {
    auto all = entries();
    for (std::size_t i = 0; i < size; ++i) inits_[i].fill(all[i].value, g);
  }

  // f(valued<V, tensor&>{...}...) over the parameters in the order given (Hana's unpack).
  template <class F>
  decltype(auto) unpack(F&& f) {
    return static_cast<F&&>(f)(valued<Vs, tensor<T, Vs::rank>&>{{}, (*this)[Vs{}]}...);
  }
  template <class F>
  decltype(auto) unpack(F&& f) const {
    return static_cast<F&&>(f)(valued<Vs, const tensor<T, Vs::rank>&>{{}, (*this)[Vs{}]}...);
  }

  template <Variable V>
  tensor<T, V::rank>& operator[](V) {
    return std::get<index<V>()>(values_);
  }
  template <Variable V>
  const tensor<T, V::rank>& operator[](V) const {
    return std::get<index<V>()>(values_);
  }
  // By name: params.get<"w1">().
  template <fixed_string N>
  auto& get() {
    return std::get<index_of_name<N>()>(values_);
  }
  template <fixed_string N>
  const auto& get() const {
    return std::get<index_of_name<N>()>(values_);
  }

  // Binds every parameter to the program by its leaf (each must be a leaf of the program).
  template <class Program>
  void bind(Program& program) const {
    std::apply([&](const auto&... t) { (program.bind(Vs{}, t), ...); }, values_);
  }

  // (name, view) for every parameter, in the order given; no allocation.
  std::array<param_entry<T>, size> entries() {
    return std::apply([](auto&... t) { return std::array<param_entry<T>, size>{param_entry<T>{Vs::name, t.as_view()}...}; },
                      values_);
  }
  std::array<param_entry<const T>, size> entries() const {
    return std::apply(
        [](const auto&... t) { return std::array<param_entry<const T>, size>{param_entry<const T>{Vs::name, t.as_view()}...}; },
        values_);
  }
  // The program's gradient for every parameter, in the same order (each must be in its wrt(...)).
  template <class Program>
  static std::array<view<const T>, size> gradients(const Program& program) {
    return {program.gradient(Vs{})...};
  }
  // Total number of values.
  std::size_t count() const {
    return std::apply([](const auto&... t) { return (std::size_t{0} + ... + t.size()); }, values_);
  }

 private:
  template <class V>
  static constexpr std::size_t index() {
    constexpr std::size_t i = graph::index_of_v<vars, V>;
    static_assert(i < size, "params[x]: x is not a parameter of this parameter_set");
    return i;
  }
  template <fixed_string N>
  static constexpr std::size_t index_of_name() {
    constexpr std::size_t i = [] {
      for (std::size_t k = 0; k < size; ++k)
        if (names[k] == N.view()) return k;
      return size;
    }();
    static_assert(i < size, "params.get<name>(): no parameter has this name");
    return i;
  }

  std::tuple<tensor<T, Vs::rank>...> values_;
  std::array<initializer, size> inits_;
};

// make_parameters<T>(param(w, extents, init)...): the parameter set of those leaves, zero-filled
// until initialize(seed) draws them.
template <Scalar T, Variable... Vs>
parameter_set<T, Vs...> make_parameters(const param_spec<Vs>&... specs) {
  return parameter_set<T, Vs...>(specs...);
}

}  // namespace typegrad::train

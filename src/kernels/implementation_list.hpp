#pragma once
// Internal to src/kernels: an op family's ordered list of named implementations per kernel (conv.cpp,
// pool.cpp). Each entry has a name, an applicability test on the call's shapes and a run function; a
// call runs the first entry that applies, and tests and benchmarks run any entry by name where it
// applies. The last entry is the naive reference, which applies to everything.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "typegrad/core/errors.hpp"

namespace typegrad::kernels {

template <class Applies, class Run>
struct implementation {
  std::string_view name;
  Applies applies;
  Run run;
};

template <class Implementation, std::size_t N>
std::vector<std::string_view> implementation_names(const Implementation (&list)[N]) {
  std::vector<std::string_view> names;
  for (const auto& i : list) names.push_back(i.name);
  return names;
}

template <class Implementation, std::size_t N, class... Shapes>
const Implementation& first_applying(const Implementation (&list)[N], const Shapes&... shapes) {
  for (const auto& i : list)
    if (i.applies(shapes...)) return i;
  return list[N - 1];  // (the reference, which applies to everything)
}

// The list's implementation `name`; `kernel` names the list in the error if it has none.
template <class Implementation, std::size_t N>
const Implementation& named(const Implementation (&list)[N], std::string_view kernel, std::string_view name) {
  for (const auto& i : list)
    if (i.name == name) return i;
  throw error(fmt::format("{}: no implementation \"{}\" (there are: {})", kernel, name,
                          fmt::join(implementation_names(list), ", ")));
}

// The list's implementation `name`, which must apply to the shapes; describe() names them in the
// error if it does not.
template <class Implementation, std::size_t N, class Describe, class... Shapes>
const Implementation& applying(const Implementation (&list)[N], std::string_view kernel, std::string_view name,
                               Describe describe, const Shapes&... shapes) {
  const auto& i = named(list, kernel, name);
  if (!i.applies(shapes...))
    throw error(fmt::format("{}: implementation \"{}\" does not apply to {}", kernel, name, describe()));
  return i;
}

}  // namespace typegrad::kernels

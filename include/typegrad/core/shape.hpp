#pragma once
// Runtime extents. Ranks are compile-time in expressions; extents are bound at run time.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <ostream>
#include <span>

#include <fmt/format.h>

#include "typegrad/core/errors.hpp"

namespace typegrad {

inline constexpr std::size_t max_rank = 8;
// A static_assert's message cannot be computed (before C++26), so the two that name this limit
// (tensor<T, Rank>, var<name, rank>) spell it "max_rank (8)"; this check fails first if it changes.
static_assert(max_rank == 8, "max_rank changed: update the static_assert messages that spell \"max_rank (8)\"");
// At most max_rank - 2 ordered dims: the layout is (batch, ordered dims..., channels).
inline constexpr std::size_t max_spatial_dims = max_rank - 2;

// Sizes that come from outside (file headers, user extents, element counts times element sizes)
// are multiplied through these before anything is allocated: an overflow is nullopt, never a
// silently wrapped, small size.
constexpr std::optional<std::size_t> checked_mul(std::size_t a, std::size_t b) {
  if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b) return std::nullopt;
  return a * b;
}
constexpr std::optional<std::size_t> checked_product(std::span<const std::size_t> extents) {
  std::size_t n = 1;
  for (auto e : extents) {
    auto next = checked_mul(n, e);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

// A small, fixed-capacity shape with a runtime rank (used where ops of any rank meet: the runtime).
class shape {
 public:
  constexpr shape() = default;
  constexpr shape(std::initializer_list<std::size_t> dims) {
    if (dims.size() > max_rank) too_many_dims();
    for (auto d : dims) dims_[rank_++] = d;
  }
  constexpr explicit shape(std::span<const std::size_t> dims) {
    if (dims.size() > max_rank) too_many_dims();
    for (auto d : dims) dims_[rank_++] = d;
  }
  static constexpr shape of_rank(std::size_t r, std::size_t fill = 1) {
    shape s;
    s.rank_ = r;
    for (std::size_t i = 0; i < r; ++i) s.dims_[i] = fill;
    return s;
  }
  constexpr std::size_t rank() const { return rank_; }
  constexpr std::size_t operator[](std::size_t i) const { return dims_[i]; }
  constexpr std::size_t& operator[](std::size_t i) { return dims_[i]; }
  constexpr std::size_t numel() const {
    std::size_t n = 1;
    for (std::size_t i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  constexpr std::span<const std::size_t> dims() const { return {dims_.data(), rank_}; }
  constexpr void push_back(std::size_t d) {
    if (rank_ == max_rank) too_many_dims();
    dims_[rank_++] = d;
  }
  // Row-major strides in elements.
  constexpr std::array<std::size_t, max_rank> strides() const {
    std::array<std::size_t, max_rank> s{};
    std::size_t acc = 1;
    for (std::size_t i = rank_; i-- > 0;) {
      s[i] = acc;
      acc *= dims_[i];
    }
    return s;
  }
  friend constexpr bool operator==(const shape& a, const shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }

 private:
  [[noreturn]] static void too_many_dims() {
    throw shape_rule_violation(fmt::format("shape: rank above typegrad::max_rank ({})", max_rank));
  }
  std::array<std::size_t, max_rank> dims_{};
  std::size_t rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const shape& s) {
  os << '(';
  for (std::size_t i = 0; i < s.rank(); ++i) os << (i ? ", " : "") << s[i];
  return os << ')';
}

// A non-owning view of dense row-major data, as kernels see it.
template <class T>
struct view {
  T* data = nullptr;
  typegrad::shape shape;
  std::size_t size() const { return shape.numel(); }
};

// What a kernel (an op's forward) receives: its arguments' views, and what a shape rule receives.
template <class T>
using inputs = std::span<const view<const T>>;
using input_shapes = std::span<const shape>;

}  // namespace typegrad

template <>
struct fmt::formatter<typegrad::shape> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const typegrad::shape& s, Ctx& ctx) const {
    auto out = fmt::format_to(ctx.out(), "(");
    for (std::size_t i = 0; i < s.rank(); ++i) out = fmt::format_to(out, fmt::runtime(i ? ", {}" : "{}"), s[i]);
    return fmt::format_to(out, ")");
  }
};

namespace typegrad {

// The NumPy broadcast shape of a and b (the elementwise ops' shape rule); throws
// shape_rule_violation when they do not broadcast.
constexpr shape broadcast_shapes(const shape& a, const shape& b) {
  const std::size_t r = a.rank() > b.rank() ? a.rank() : b.rank();
  shape out = shape::of_rank(r);
  for (std::size_t d = 0; d < r; ++d) {
    const std::size_t ea = d + a.rank() >= r ? a[d + a.rank() - r] : 1;
    const std::size_t eb = d + b.rank() >= r ? b[d + b.rank() - r] : 1;
    if (ea != eb && ea != 1 && eb != 1)
      throw shape_rule_violation(
          fmt::format("shapes {} and {} do not broadcast (dimension {} of the result: {} vs {})", a, b, d, ea, eb));
    out[d] = ea == 1 ? eb : ea;
  }
  return out;
}

}  // namespace typegrad

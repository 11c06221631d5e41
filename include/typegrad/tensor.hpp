#pragma once
// A dense, row-major, 64-byte aligned tensor of float or double whose rank is part of its type
// (so binding a tensor of the wrong rank to a leaf fails at compile time).
#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <span>
#include <string>

#include <fmt/format.h>

#include "typegrad/core/shape.hpp"

namespace typegrad {

template <class T>
concept Scalar = std::same_as<T, float> || std::same_as<T, double>;

namespace detail {
inline constexpr std::size_t tensor_alignment = 64;
struct aligned_free {
  void operator()(void* p) const { ::operator delete[](p, std::align_val_t{tensor_alignment}); }
};
template <class T>
using aligned_array = std::unique_ptr<T[], aligned_free>;
template <class T>
aligned_array<T> allocate_aligned(std::size_t n) {
  if (n == 0) return {};
  const auto bytes = checked_mul(n, sizeof(T));
  if (!bytes) throw std::bad_array_new_length();  // n * sizeof(T) would wrap
  return aligned_array<T>(static_cast<T*>(::operator new[](*bytes, std::align_val_t{tensor_alignment})));
}
}  // namespace detail

template <Scalar T, std::size_t Rank>
class tensor {
 public:
  using value_type = T;
  static constexpr std::size_t rank = Rank;
  static_assert(Rank <= max_rank, "tensor<T, Rank>: Rank must not exceed typegrad::max_rank (8)");

  tensor() requires(Rank == 0) : tensor(std::array<std::size_t, 0>{}) {}
  tensor() requires(Rank > 0) = default;
  // A zero-filled tensor of the given extents.
  // Throws shape_error when the extents' product overflows (e.g. extents read from a corrupt file).
  explicit tensor(const std::array<std::size_t, Rank>& extents) : extents_(extents) {
    if (!checked_product(extents_))
      throw shape_error(fmt::format("tensor: extents {} hold more elements than memory can address",
                                    typegrad::shape(std::span<const std::size_t>(extents_))));
    data_ = detail::allocate_aligned<T>(size());
    std::fill_n(data_.get(), size(), T(0));
  }
  // Extents and row-major values; the count must match.
  tensor(const std::array<std::size_t, Rank>& extents, std::initializer_list<T> values) : tensor(extents) {
    if (values.size() != size())
      throw shape_error(fmt::format("tensor: {} values given for shape {} ({} elements)", values.size(),
                                    shape_of(), size()));
    std::copy(values.begin(), values.end(), data_.get());
  }
  tensor(const std::array<std::size_t, Rank>& extents, std::span<const T> values) : tensor(extents) {
    if (values.size() != size())
      throw shape_error(fmt::format("tensor: {} values given for shape {} ({} elements)", values.size(),
                                    shape_of(), size()));
    std::copy(values.begin(), values.end(), data_.get());
  }
  // A scalar.
  explicit tensor(T value) requires(Rank == 0) : tensor() { data_[0] = value; }
  // A copy of a runtime-ranked view (for example a program's output).
  explicit tensor(view<const T> v) : tensor(to_extents(v.shape)) {
    std::copy_n(v.data, size(), data_.get());
  }

  tensor(const tensor& other) : tensor(other.extents_) { std::copy_n(other.data(), size(), data_.get()); }
  tensor& operator=(const tensor& other) {
    if (this != &other) *this = tensor(other);
    return *this;
  }
  tensor(tensor&&) noexcept = default;
  tensor& operator=(tensor&&) noexcept = default;

  const std::array<std::size_t, Rank>& extents() const { return extents_; }
  std::size_t extent(std::size_t i) const { return extents_[i]; }
  typegrad::shape shape_of() const { return typegrad::shape(std::span<const std::size_t>(extents_)); }
  std::size_t size() const {
    std::size_t n = 1;
    for (auto e : extents_) n *= e;
    return n;
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  std::span<T> values() { return {data(), size()}; }
  std::span<const T> values() const { return {data(), size()}; }
  T* begin() { return data(); }
  T* end() { return data() + size(); }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size(); }

  template <std::integral... I>
    requires(sizeof...(I) == Rank)
  T& operator()(I... idx) { return data_[offset(idx...)]; }
  template <std::integral... I>
    requires(sizeof...(I) == Rank)
  const T& operator()(I... idx) const { return data_[offset(idx...)]; }
  T& operator[](std::size_t flat) { return data_[flat]; }
  const T& operator[](std::size_t flat) const { return data_[flat]; }

  void fill(T v) { std::fill_n(data(), size(), v); }
  view<T> as_view() { return {data(), shape_of()}; }
  view<const T> as_view() const { return {data(), shape_of()}; }

 private:
  static std::array<std::size_t, Rank> to_extents(const typegrad::shape& s) {
    if (s.rank() != Rank)
      throw shape_error(fmt::format("tensor<{}>: cannot copy a view of shape {} (rank {})", Rank, s, s.rank()));
    std::array<std::size_t, Rank> e{};
    for (std::size_t i = 0; i < Rank; ++i) e[i] = s[i];
    return e;
  }
  template <class... I>
  std::size_t offset(I... idx) const {
    std::array<std::size_t, Rank> i{static_cast<std::size_t>(idx)...};
    std::size_t off = 0;
    for (std::size_t d = 0; d < Rank; ++d) off = off * extents_[d] + i[d];
    return off;
  }

  std::array<std::size_t, Rank> extents_{};
  detail::aligned_array<T> data_;
};

// Prints shape and values; only the first and last few entries of each dimension when large.
template <class T>
std::string format_values(view<const T> v, std::size_t edge_items = 3) {
  fmt::memory_buffer out;
  const auto& s = v.shape;
  auto strides = s.strides();
  auto rec = [&](auto&& self, std::size_t dim, std::size_t offset) -> void {
    if (dim == s.rank()) {
      fmt::format_to(std::back_inserter(out), "{:.6g}", v.data[offset]);
      return;
    }
    out.push_back('[');
    std::size_t n = s[dim];
    for (std::size_t i = 0; i < n; ++i) {
      if (n > 2 * edge_items && i == edge_items) {
        fmt::format_to(std::back_inserter(out), "..., ");
        i = n - edge_items;
      }
      self(self, dim + 1, offset + i * strides[dim]);
      if (i + 1 < n) fmt::format_to(std::back_inserter(out), ", ");
    }
    out.push_back(']');
  };
  rec(rec, 0, 0);
  return fmt::to_string(out);
}

}  // namespace typegrad

template <typegrad::Scalar T, std::size_t R>
struct fmt::formatter<typegrad::tensor<T, R>> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const typegrad::tensor<T, R>& t, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "tensor<{}>{} {}", std::is_same_v<T, float> ? "float" : "double",
                          t.shape_of(), typegrad::format_values<T>(t.as_view()));
  }
};

#pragma once
// Blocks of elementwise regions. A program runs a connected group of elementwise nodes of one
// shape (a batch norm's arithmetic, an activation's backward) as one pass (runtime/executor.hpp,
// "Elementwise regions"): block after block of rows x cols elements of the region's output, cols
// its last extent, each op computing its block from its operands' blocks while they are in
// cache, so that the values between the ops are never stored. An op joins a region through a
// block function (ops/op_base.hpp) built on the loops here, with the arithmetic of its own
// kernel: results are bitwise those of running the ops one by one.
#include <algorithm>
#include <cstddef>

namespace typegrad::kernels {

// How an operand covers a block: its own rows x cols values (full), one row of cols values
// repeated (column: a per-channel vector), or one value (scalar).
enum class operand_kind : unsigned char { full, column, scalar };

template <class T>
struct block_operand {
  const T* data = nullptr;  // full: the block's first element; column: cols values; scalar: one
  operand_kind kind = operand_kind::full;
  std::size_t broadcast = 1;  // elements of the region per element of the operand's tensor
};

// out (rows x cols, contiguous) = f(a) per element.
template <class T, class F>
void map_block(T* out, block_operand<T> a, std::size_t rows, std::size_t cols, F f) {
  if (a.kind == operand_kind::full) {
    for (std::size_t i = 0; i < rows * cols; ++i) out[i] = f(a.data[i]);
    return;
  }
  // One row (the same value per column, or everywhere), then copies of it.
  for (std::size_t c = 0; c < cols; ++c) out[c] = f(a.data[a.kind == operand_kind::column ? c : 0]);
  for (std::size_t r = 1; r < rows; ++r) std::copy_n(out, cols, out + r * cols);
}

// out (rows x cols, contiguous) = f(a, b) per element.
template <class T, class F>
void zip_block(T* out, block_operand<T> a, block_operand<T> b, std::size_t rows, std::size_t cols, F f) {
  using enum operand_kind;
  const std::size_t n = rows * cols;
  if (a.kind == full && b.kind == full) {
    for (std::size_t i = 0; i < n; ++i) out[i] = f(a.data[i], b.data[i]);
  } else if (a.kind == full && b.kind == scalar) {
    const T bv = b.data[0];
    for (std::size_t i = 0; i < n; ++i) out[i] = f(a.data[i], bv);
  } else if (a.kind == scalar && b.kind == full) {
    const T av = a.data[0];
    for (std::size_t i = 0; i < n; ++i) out[i] = f(av, b.data[i]);
  } else if (a.kind == full) {  // b a column
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) out[r * cols + c] = f(a.data[r * cols + c], b.data[c]);
  } else if (b.kind == full) {  // a a column
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) out[r * cols + c] = f(a.data[c], b.data[r * cols + c]);
  } else {  // neither full: one row, then copies of it
    for (std::size_t c = 0; c < cols; ++c)
      out[c] = f(a.data[a.kind == column ? c : 0], b.data[b.kind == column ? c : 0]);
    for (std::size_t r = 1; r < rows; ++r) std::copy_n(out, cols, out + r * cols);
  }
}

}  // namespace typegrad::kernels

#pragma once
// Kernels compiled once in src/kernels/ (float and double), called by the ops' forward rules.
// Each is parallel over TBB and deterministic: the result does not depend on the thread count.
#include <cstddef>

#include "typegrad/core/shape.hpp"
#include "typegrad/kernels/block.hpp"

namespace typegrad::kernels {

// mul_step: a * step(b), i.e. a * (b > 0 ? 1 : 0): relu's gradient g * step(x) in one pass.
// add_relu: relu(a + b): a bias and its activation in one pass.
enum class binary_kind { add, sub, mul, div, maximum, minimum, greater, equal, mul_step, add_relu };

// out = a (op) b with NumPy broadcasting; out.shape must be the broadcast shape.
template <class T>
void binary(binary_kind kind, view<T> out, view<const T> a, view<const T> b);

// The same arithmetic on a block of an elementwise region (kernels/block.hpp), serial.
template <class T>
void binary_block(binary_kind kind, T* out, block_operand<T> a, block_operand<T> b, std::size_t rows,
                  std::size_t cols);

// out = sum of in over the dimensions where out is 1 (or absent on the left) and in is not,
// broadcast along the dimensions where in is 1 (or absent) and out is not.
// This one kernel is sum-over-axes, unbroadcast (reverse of broadcasting) and expand.
template <class T>
void sum_to(view<T> out, view<const T> in);

// What sum_to does when it reduces every row of a contiguous (rows, cols) input to one row of
// cols (a bias's gradient): the rows are cut into reduction_parts(rows * cols) parts (0 or 1:
// one), fixed by the size; each part's rows are added in order to a row starting at 0, and the
// parts' rows then added in order. add_rows is that addition of `count` rows to o; elementwise
// regions that end in such a sum (runtime/executor.hpp) run these to get bitwise its result.
std::size_t reduction_parts(std::size_t elements);
template <class T>
void add_rows(T* o, const T* rows, std::size_t count, std::size_t cols);

// out = max of in over the dimensions where out is 1 and in is not (shapes of equal rank).
template <class T>
void max_to(view<T> out, view<const T> in);

// out (a scalar) = sum over i of a[i] * b[i] (a and b of one size), in a fixed order.
template <class T>
void dot(view<T> out, view<const T> a, view<const T> b);

// Fills out with value.
template <class T>
void fill(view<T> out, T value);

// Copies in to out (same number of elements).
template <class T>
void copy(view<T> out, view<const T> in);

}  // namespace typegrad::kernels

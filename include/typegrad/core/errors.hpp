#pragma once
// The exceptions typegrad throws. Every message names the op, the leaf and the shapes involved.
#include <stdexcept>
#include <string>

namespace typegrad {

// Base of all typegrad errors.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Tensors bound to a program do not fit the graph: an op's shape rule rejected its inputs.
struct shape_error : error {
  using error::error;
};

// A leaf of a program has no tensor bound when the program runs, or a binding is unusable.
struct binding_error : error {
  using error::error;
};

// A tensor's values are invalid for an op (e.g. a class label that is not an integer in [0, C)).
// Thrown while a program runs; the message names the op, the offending index and the value.
struct value_error : error {
  using error::error;
};

// A file could not be opened, read or written (missing, permission, disk full). The message names
// the file and the operation.
struct io_error : error {
  using error::error;
};

// A file's content is malformed or does not fit what it is loaded into (bad magic, truncated,
// corrupt header, count/dtype/shape mismatch). The message names the file and, where there is
// one, the tensor or field.
struct data_error : error {
  using error::error;
};

// Data-parallel training (typegrad::distributed) cannot go on consistently: the ranks' parameter
// sets or programs differ, or another rank's step failed. Thrown on every rank alike, so that no
// rank is left waiting for the others; the message names the ranks and what differs.
struct distributed_error : error {
  using error::error;
};

// Thrown by an op's shape rule with the bare reason; the runtime rethrows it as shape_error
// with the op, its arguments (leaf names) and their shapes.
struct shape_rule_violation : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

}  // namespace typegrad

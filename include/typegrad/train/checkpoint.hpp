#pragma once
// Checkpoints in the safetensors format, which PyTorch (safetensors.torch.load_file), NumPy (a few
// lines of json + numpy.frombuffer) and other tools read:
//
//   8 bytes        N, the header's length, unsigned little-endian
//   N bytes        JSON: {"__metadata__": {"key": "value", ...},
//                         "w1": {"dtype": "F32", "shape": [784, 128], "data_offsets": [begin, end]}, ...}
//                  padded with spaces to a multiple of 8 bytes (as the reference implementation does)
//   the rest       the tensors' bytes, little-endian, row-major; offsets relative to this part,
//                  contiguous and in the header's order
//
//   train::save_checkpoint("mlp.safetensors", params);              // parameters only
//   train::save_checkpoint("mlp.safetensors", params, opt);         // + "adam.m.w1", ... and the step count
//   train::load_checkpoint("mlp.safetensors", params);              // or (path, params, opt)
//   train::save_checkpoint("net.safetensors", params, stats, opt);  // + a set no optimizer updates
//   train::load_checkpoint("net.safetensors", params, stats);       // (e.g. running statistics)
//
// Saving is atomic: the file is written to a temporary file in the same directory, flushed to
// disk (fsync), renamed over the destination, and the directory is synced; a crash leaves the old
// checkpoint or the new one, never a mix. Metadata written: "format": "pt" (what PyTorch's tools
// expect), "typegrad.optimizer", "typegrad.steps" and "typegrad.lr" when an optimizer is saved,
// and the caller's own entries.
//
// Loading validates the whole file before any parameter is written: the header length lies
// within the file, the header is well-formed JSON of the layout above, every tensor's dtype is
// known and its byte range matches its shape, the ranges are contiguous and cover the data
// exactly, and every expected tensor is there with the parameter set's dtype (F32 for float, F64
// for double) and shape; names in the file that are not expected are an error too (unless
// load_options says otherwise). Any failure throws data_error (or io_error when the file cannot
// be read) naming the file and the tensor, and leaves the parameters (and optimizer) untouched.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "typegrad/core/errors.hpp"
#include "typegrad/core/shape.hpp"
#include "typegrad/train/optimizer.hpp"
#include "typegrad/train/parameters.hpp"

namespace typegrad::train {

using checkpoint_metadata = std::map<std::string, std::string>;

enum class dtype { f32, f64 };
template <Scalar T>
inline constexpr dtype dtype_of = std::is_same_v<T, float> ? dtype::f32 : dtype::f64;

// A tensor to write, and a tensor to fill, as the type-erased checkpoint code sees them.
struct saved_tensor {
  std::string name;
  train::dtype dtype;
  shape dims;
  const void* data;
};
struct loaded_tensor {
  std::string name;
  train::dtype dtype;
  shape dims;
  void* data;
};

struct load_options {
  bool allow_missing = false;  // expected tensors absent from the file keep their values
  bool allow_extra = false;    // tensors in the file that nothing expects are ignored
};

// Writes the tensors (in the given order) and the metadata atomically. Throws io_error.
void write_safetensors(const std::filesystem::path& path, std::span<const saved_tensor> tensors,
                       const checkpoint_metadata& metadata);
// Validates the file against the expected tensors (and, if given, its metadata with
// check_metadata, which throws to refuse it), then fills them; returns the metadata.
// Throws data_error / io_error and writes nothing when anything is wrong.
checkpoint_metadata read_safetensors(const std::filesystem::path& path, std::span<const loaded_tensor> expected,
                                     load_options options = {},
                                     const std::function<void(const checkpoint_metadata&)>& check_metadata = {});
// Only validates and lists the file: names, dtypes (as in the file, e.g. "F32") and shapes.
struct tensor_info {
  std::string name, dtype;
  std::vector<std::size_t> shape;
};
std::vector<tensor_info> list_safetensors(const std::filesystem::path& path, checkpoint_metadata* metadata = nullptr);

namespace detail {
template <Scalar T, Variable... Vs>
void add_parameters(std::vector<saved_tensor>& out, const parameter_set<T, Vs...>& params) {
  for (const auto& e : params.entries()) out.push_back({std::string(e.name), dtype_of<T>, e.value.shape, e.value.data});
}
template <Scalar T, Variable... Vs>
void add_parameters(std::vector<loaded_tensor>& out, parameter_set<T, Vs...>& params) {
  for (const auto& e : params.entries()) out.push_back({std::string(e.name), dtype_of<T>, e.value.shape, e.value.data});
}
template <Scalar T>
void add_state(std::vector<saved_tensor>& out, checkpoint_metadata& metadata, const optimizer<T>& opt);
// Checks the optimizer's metadata, adds its state tensors to `expected`; apply() sets the step
// count and learning rate once the file has been read.
template <Scalar T>
struct optimizer_restore {
  optimizer<T>& opt;
  void expect(std::vector<loaded_tensor>& expected) const;
  void apply(const std::filesystem::path& path, const checkpoint_metadata& metadata) const;
  // Validates the metadata (kind, steps, lr) without changing anything.
  void check(const std::filesystem::path& path, const checkpoint_metadata& metadata) const;
};
}  // namespace detail

template <Scalar T, Variable... Vs>
void save_checkpoint(const std::filesystem::path& path, const parameter_set<T, Vs...>& params,
                     checkpoint_metadata metadata = {}) {
  std::vector<saved_tensor> tensors;
  detail::add_parameters(tensors, params);
  metadata.emplace("format", "pt");
  write_safetensors(path, tensors, metadata);
}
template <Scalar T, Variable... Vs>
void save_checkpoint(const std::filesystem::path& path, const parameter_set<T, Vs...>& params,
                     const optimizer<T>& opt, checkpoint_metadata metadata = {}) {
  std::vector<saved_tensor> tensors;
  detail::add_parameters(tensors, params);
  detail::add_state(tensors, metadata, opt);
  metadata.emplace("format", "pt");
  write_safetensors(path, tensors, metadata);
}

// Parameters, tensors that no optimizer updates (e.g. batch norm's running statistics) and the
// optimizer's state, in one file; names must be distinct across the two sets.
template <Scalar T, Variable... Vs, Variable... Ws>
  requires(sizeof...(Ws) > 0)
void save_checkpoint(const std::filesystem::path& path, const parameter_set<T, Vs...>& params,
                     const parameter_set<T, Ws...>& extra, const optimizer<T>& opt, checkpoint_metadata metadata = {}) {
  std::vector<saved_tensor> tensors;
  detail::add_parameters(tensors, params);
  detail::add_parameters(tensors, extra);
  detail::add_state(tensors, metadata, opt);
  metadata.emplace("format", "pt");
  write_safetensors(path, tensors, metadata);
}

template <Scalar T, Variable... Vs>
checkpoint_metadata load_checkpoint(const std::filesystem::path& path, parameter_set<T, Vs...>& params,
                                    load_options options = {}) {
  std::vector<loaded_tensor> expected;
  detail::add_parameters(expected, params);
  return read_safetensors(path, expected, options);
}
// Two parameter sets (as saved above); load_options{.allow_extra = true} skips an optimizer's state.
template <Scalar T, Variable... Vs, Variable... Ws>
  requires(sizeof...(Ws) > 0)
checkpoint_metadata load_checkpoint(const std::filesystem::path& path, parameter_set<T, Vs...>& params,
                                    parameter_set<T, Ws...>& extra, load_options options = {}) {
  std::vector<loaded_tensor> expected;
  detail::add_parameters(expected, params);
  detail::add_parameters(expected, extra);
  return read_safetensors(path, expected, options);
}
// Parameters and optimizer state; the file must have been saved with an optimizer of the same kind.
template <Scalar T, Variable... Vs>
checkpoint_metadata load_checkpoint(const std::filesystem::path& path, parameter_set<T, Vs...>& params,
                                    optimizer<T>& opt, load_options options = {}) {
  std::vector<loaded_tensor> expected;
  detail::add_parameters(expected, params);
  const detail::optimizer_restore<T> restore{opt};
  restore.expect(expected);
  auto metadata = read_safetensors(path, expected, options, [&](const checkpoint_metadata& m) { restore.check(path, m); });
  restore.apply(path, metadata);
  return metadata;
}

}  // namespace typegrad::train

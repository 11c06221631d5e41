#pragma once
// IDX files (the MNIST / Fashion-MNIST format) and labelled image data sets read from them.
//
//   auto train = data::load_labelled_images("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
//   auto test  = data::load_fashion_mnist("/usr/share/datasets/fashion-mnist", data::split::test);
//
// An IDX file is a big-endian header, magic = 0x00 0x00 <type> <number of dims>, then one 32-bit
// big-endian extent per dim, then the values row-major. Only unsigned bytes (type 0x08) are
// supported: images have magic 0x00000803 (count, rows, columns), labels 0x00000801 (count).
// A file that starts with the gzip magic (1f 8b) is decompressed (zlib) while it is read; any
// other file is read raw.
//
// Errors: io_error for a file that cannot be opened or read; data_error for malformed content
// (bad magic, a type other than u8, a zero or absurd extent, fewer or more bytes than the dims
// say, a corrupt gzip stream, images and labels whose counts differ, a label beyond the class
// count). Every message starts with the file's path.
//
// The data set keeps the pixels as bytes (a quarter of the memory of floats: 47 MB instead of
// 188 MB for Fashion-MNIST's training set) and normalises them when a batch is filled
// (data/batches.hpp) or when a float tensor of all of them is asked for (images<T, R>()).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "typegrad/core/errors.hpp"
#include "typegrad/tensor.hpp"

namespace typegrad::data {

// The contents of one IDX file of unsigned bytes.
struct idx_array {
  std::filesystem::path path;        // where it was read from (for messages)
  std::vector<std::size_t> dims;     // extents, the first one is the number of items
  std::vector<std::uint8_t> values;  // row-major, product(dims) bytes
};

// Reads an IDX file of unsigned bytes, gzip-compressed or raw (detected by the gzip magic).
// expected_rank (0: any) checks the number of dims, e.g. 3 for images and 1 for labels.
idx_array read_idx(const std::filesystem::path& path, std::size_t expected_rank = 0);

// Writes values as an IDX file of unsigned bytes (raw, or gzip-compressed when gzip is true).
// For tests and for tools that produce small data sets.
void write_idx(const std::filesystem::path& path, std::span<const std::size_t> dims,
               std::span<const std::uint8_t> values, bool gzip = false);

// How a pixel byte p becomes a value: (p * scale - mean) / stddev. The default maps [0, 255] to
// [0, 1]; set mean/stddev to standardise (e.g. fashion_mnist_mean / fashion_mnist_stddev).
struct normalization {
  double scale = 1.0 / 255.0;
  double mean = 0.0;
  double stddev = 1.0;
};
// Fashion-MNIST's training-set pixel mean and standard deviation after scaling to [0, 1].
inline constexpr double fashion_mnist_mean = 0.2860;
inline constexpr double fashion_mnist_stddev = 0.3530;

// Images with one class label each. Pixels are bytes; sample_shape() is the channel-last shape of
// one image, (rows, columns, 1) for IDX images of dims (count, rows, columns).
struct labelled_images {
  idx_array images;                  // (count, rows, columns)
  std::vector<std::uint8_t> labels;  // one class index per image, below classes
  std::size_t classes = 0;           // 1 + the largest label
  data::normalization normalization;

  std::size_t size() const { return labels.size(); }
  // The values of one image, its pixels in row-major order.
  std::size_t sample_size() const { return size() ? images.values.size() / size() : 0; }
  // (rows, columns, channels = 1): the ordered dims then the channels, as conv ops expect.
  std::array<std::size_t, 3> sample_shape() const { return {images.dims[1], images.dims[2], 1}; }

  // All images normalised, as (count, rows * columns) for R = 2 or (count, rows, columns, 1) for
  // R = 4; allocates the whole tensor (for mini-batches use data::batcher instead).
  template <Scalar T, std::size_t R>
  tensor<T, R> images_as() const;
  // All labels as the program's scalar type, shape (count): what softmax_cross_entropy takes.
  template <Scalar T>
  tensor<T, 1> labels_as() const;
};

// Reads an image file (magic 0x00000803) and a label file (0x00000801) and checks that they fit:
// the same count, and (when classes > 0) every label below classes.
labelled_images load_labelled_images(const std::filesystem::path& images, const std::filesystem::path& labels,
                                     normalization norm = {}, std::size_t classes = 0);

enum class split { train, test };
// Fashion-MNIST (or MNIST) from a directory holding the four files under their usual names,
// train-images-idx3-ubyte[.gz] ... t10k-labels-idx1-ubyte[.gz], 10 classes. The Debian package
// dataset-fashion-mnist installs them in default_fashion_mnist_dir.
inline constexpr const char* default_fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";
labelled_images load_fashion_mnist(const std::filesystem::path& dir, split which, normalization norm = {});

// ---- implementation of the templates -------------------------------------------------------------
namespace detail {
// Writes the normalised values of rows [first, first + count) of `order` (or of the identity when
// order is empty) into out, count * sample_size values. Compiled for float and double.
template <Scalar T>
void normalise_rows(T* out, const labelled_images& ds, std::span<const std::size_t> order, std::size_t first,
                    std::size_t count);
}  // namespace detail

template <Scalar T, std::size_t R>
tensor<T, R> labelled_images::images_as() const {
  static_assert(R == 2 || R == 4,
                "labelled_images::images_as<T, R>(): R must be 2 (count, pixels) or 4 (count, rows, columns, 1)");
  std::array<std::size_t, R> extents{};
  extents[0] = size();
  if constexpr (R == 2) {
    extents[1] = sample_size();
  } else {
    const auto s = sample_shape();
    std::copy(s.begin(), s.end(), extents.begin() + 1);
  }
  tensor<T, R> out(extents);
  detail::normalise_rows<T>(out.data(), *this, {}, 0, size());
  return out;
}

template <Scalar T>
tensor<T, 1> labelled_images::labels_as() const {
  tensor<T, 1> out({size()});
  for (std::size_t i = 0; i < size(); ++i) out[i] = T(labels[i]);
  return out;
}

}  // namespace typegrad::data

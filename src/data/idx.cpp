// IDX reading (raw or gzip through zlib), labelled image data sets, batch filling and epoch orders.
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <fmt/format.h>
#include <fmt/std.h>
#include <zlib.h>

#include "../parallel/parallel_chunks.hpp"
#include "typegrad/data/batches.hpp"
#include "typegrad/data/idx.hpp"
#include "typegrad/train/random.hpp"

namespace typegrad::data {

namespace {
constexpr std::uint8_t idx_u8 = 0x08;
// A corrupt header must not make us allocate terabytes: extents and their product are bounded.
constexpr std::uint64_t max_idx_bytes = std::uint64_t(1) << 36;

std::string where(const std::filesystem::path& p) { return fmt::format("{}", p.string()); }

// Reads a file, gunzipping it when it starts with the gzip magic (else passing it through). Uses
// zlib's inflate rather than gzread, which silently ignores anything after the last gzip member:
// here further members are read on (concatenated gzip is valid) and any other trailing bytes are
// a data_error.
class gz_reader {
 public:
  explicit gz_reader(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw io_error(fmt::format("{}: no such file", where(path)));
    if (!std::filesystem::is_regular_file(path, ec))
      throw io_error(fmt::format("{}: is not a regular file (a directory, FIFO or device)", where(path)));
    file_.open(path, std::ios::binary);
    if (!file_) throw io_error(fmt::format("{}: cannot open ({})", where(path), std::strerror(errno)));
    fill();
    gzip_ = in_avail_ >= 2 && in_[in_pos_] == 0x1f && in_[in_pos_ + 1] == 0x8b;
    if (gzip_) {
      if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw io_error(fmt::format("{}: zlib init failed", where(path)));
      z_ready_ = true;
    }
  }
  ~gz_reader() {
    if (z_ready_) inflateEnd(&z_);
  }
  gz_reader(const gz_reader&) = delete;
  gz_reader& operator=(const gz_reader&) = delete;

  bool compressed() const { return gzip_; }
  // Reads up to n bytes; fewer only at the end of the data. Corrupt or truncated gzip data, or
  // bytes after the last gzip member that are not another member, are a data_error.
  std::size_t read(void* out, std::size_t n) {
    auto* dst = static_cast<unsigned char*>(out);
    std::size_t done = 0;
    while (done < n) {
      if (in_avail_ == 0 && !fill()) {
        if (gzip_ && !at_member_end_)
          throw data_error(fmt::format("{}: truncated gzip data (the stream ends early)", where(path_)));
        break;
      }
      if (!gzip_) {
        const std::size_t k = std::min(n - done, in_avail_);
        std::memcpy(dst + done, in_.data() + in_pos_, k);
        consume(k);
        done += k;
        continue;
      }
      if (at_member_end_) {  // another member, or trailing garbage
        if (!(in_avail_ >= 2 || fill_more()) || in_[in_pos_] != 0x1f || in_[in_pos_ + 1] != 0x8b)
          throw data_error(fmt::format("{}: unexpected data after the end of the gzip stream", where(path_)));
        inflateReset(&z_);
        at_member_end_ = false;
      }
      z_.next_in = in_.data() + in_pos_;
      z_.avail_in = unsigned(std::min<std::size_t>(in_avail_, 1u << 30));
      z_.next_out = dst + done;
      z_.avail_out = unsigned(std::min<std::size_t>(n - done, 1u << 30));
      const unsigned before_in = z_.avail_in, before_out = z_.avail_out;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        throw data_error(fmt::format("{}: corrupt gzip data ({})", where(path_), z_.msg ? z_.msg : "inflate failed"));
      consume(before_in - z_.avail_in);
      done += before_out - z_.avail_out;
      if (rc == Z_STREAM_END) at_member_end_ = true;
    }
    return done;
  }

 private:
  // Refills the input buffer when it is empty; false at the end of the file.
  bool fill() {
    in_pos_ = 0;
    file_.read(reinterpret_cast<char*>(in_.data()), std::streamsize(in_.size()));
    in_avail_ = std::size_t(file_.gcount());
    if (in_avail_ == 0 && file_.bad()) throw io_error(fmt::format("{}: read failed ({})", where(path_), std::strerror(errno)));
    return in_avail_ > 0;
  }
  // Makes at least 2 bytes available when the file has them (a member header split by a refill).
  bool fill_more() {
    if (in_avail_ == 1) {
      in_[0] = in_[in_pos_];
      in_pos_ = 0;
      file_.read(reinterpret_cast<char*>(in_.data() + 1), std::streamsize(in_.size() - 1));
      in_avail_ = 1 + std::size_t(file_.gcount());
    }
    return in_avail_ >= 2;
  }
  void consume(std::size_t k) {
    in_pos_ += k;
    in_avail_ -= k;
  }

  std::filesystem::path path_;
  std::ifstream file_;
  std::vector<unsigned char> in_ = std::vector<unsigned char>(1 << 17);
  std::size_t in_pos_ = 0, in_avail_ = 0;
  bool gzip_ = false, z_ready_ = false, at_member_end_ = false;
  z_stream z_{};
};

std::uint32_t big_endian32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

std::string dims_text(const std::vector<std::size_t>& dims) {
  return fmt::format("({})", fmt::join(dims, ", "));
}

std::filesystem::path existing_variant(const std::filesystem::path& dir, const std::string& stem) {
  const auto gz = dir / (stem + ".gz");
  if (std::filesystem::exists(gz)) return gz;
  if (std::filesystem::exists(dir / stem)) return dir / stem;
  throw io_error(fmt::format("{}: no such file (nor {}); on Debian, apt-get install dataset-fashion-mnist",
                             where(gz), where(dir / stem)));
}
}  // namespace

idx_array read_idx(const std::filesystem::path& path, std::size_t expected_rank) {
  gz_reader in(path);
  const char* kind = in.compressed() ? "gzip IDX file" : "IDX file";
  std::array<std::uint8_t, 4> magic{};
  if (in.read(magic.data(), 4) < 4)
    throw data_error(fmt::format("{}: truncated {}: fewer than the 4 bytes of the magic number", where(path), kind));
  if (magic[0] != 0 || magic[1] != 0)
    throw data_error(fmt::format("{}: bad magic number {:02x}{:02x}{:02x}{:02x} (an IDX file starts with 00 00)",
                                 where(path), magic[0], magic[1], magic[2], magic[3]));
  if (magic[2] != idx_u8)
    throw data_error(fmt::format("{}: element type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                                 where(path), magic[2]));
  const std::size_t rank = magic[3];
  if (rank == 0) throw data_error(fmt::format("{}: bad magic number: 0 dims", where(path)));
  if (expected_rank && rank != expected_rank)
    throw data_error(fmt::format("{}: magic number 0x{:08x} says {} dims, expected {} (magic 0x{:08x})", where(path),
                                 big_endian32(magic.data()), rank, expected_rank, 0x800u | expected_rank));

  std::vector<std::uint8_t> header(4 * rank);
  if (in.read(header.data(), header.size()) < header.size())
    throw data_error(fmt::format("{}: truncated {}: the header of {} dims ends early", where(path), kind, rank));
  idx_array out;
  out.path = path;
  std::size_t total = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    const std::uint32_t e = big_endian32(header.data() + 4 * d);
    out.dims.push_back(e);
    const auto next = checked_mul(total, e);
    total = next ? *next : max_idx_bytes + 1;
    if (total > max_idx_bytes)
      throw data_error(fmt::format("{}: dims {} ... describe more than 2^36 bytes", where(path), dims_text(out.dims)));
  }
  for (std::size_t d = 1; d < rank; ++d)
    if (out.dims[d] == 0) throw data_error(fmt::format("{}: dims {} have an empty item dim", where(path), dims_text(out.dims)));

  // Grow as data arrives, so a header that lies about a huge size cannot make us allocate it.
  std::size_t have = 0;
  while (have < total) {
    const std::size_t want = std::min<std::size_t>(total - have, std::size_t(64) << 20);
    out.values.resize(have + want);
    const std::size_t got = in.read(out.values.data() + have, want);
    have += got;
    if (got < want)
      throw data_error(fmt::format("{}: truncated {}: dims {} need {} bytes of data, found {}", where(path), kind,
                                   dims_text(out.dims), total, have));
  }
  std::uint8_t extra = 0;
  if (in.read(&extra, 1) != 0)
    throw data_error(fmt::format("{}: {} has more data than its dims {} say ({} bytes)", where(path), kind,
                                 dims_text(out.dims), total));
  return out;
}

void write_idx(const std::filesystem::path& path, std::span<const std::size_t> dims,
               std::span<const std::uint8_t> values, bool gzip) {
  std::vector<std::uint8_t> bytes{0, 0, idx_u8, std::uint8_t(dims.size())};
  std::size_t total = 1;
  for (auto d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(std::uint8_t(std::uint32_t(d) >> shift));
    total *= d;
  }
  if (total != values.size())
    throw std::invalid_argument(fmt::format("write_idx: {} values for dims of {} elements", values.size(), total));
  bytes.insert(bytes.end(), values.begin(), values.end());
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) throw io_error(fmt::format("{}: cannot create ({})", where(path), std::strerror(errno)));
    const int wrote = gzwrite(f, bytes.data(), unsigned(bytes.size()));
    const int closed = gzclose_w(f);
    if (wrote != int(bytes.size()) || closed != Z_OK) throw io_error(fmt::format("{}: write failed", where(path)));
    return;
  }
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  if (!f) throw io_error(fmt::format("{}: write failed", where(path)));
}

labelled_images load_labelled_images(const std::filesystem::path& images, const std::filesystem::path& labels,
                                     normalization norm, std::size_t classes) {
  labelled_images ds;
  ds.images = read_idx(images, 3);
  auto l = read_idx(labels, 1);
  if (ds.images.dims[0] != l.dims[0])
    throw data_error(fmt::format("{} holds {} images but {} holds {} labels", where(images), ds.images.dims[0],
                                 where(labels), l.dims[0]));
  ds.labels = std::move(l.values);
  const std::uint8_t top = ds.labels.empty() ? 0 : *std::max_element(ds.labels.begin(), ds.labels.end());
  if (classes) {
    for (std::size_t i = 0; i < ds.labels.size(); ++i)
      if (ds.labels[i] >= classes)
        throw data_error(fmt::format("{}: label {} at index {} is not below the {} classes", where(labels),
                                     ds.labels[i], i, classes));
    ds.classes = classes;
  } else {
    ds.classes = ds.labels.empty() ? 0 : std::size_t(top) + 1;
  }
  if (!(norm.stddev > 0)) throw std::invalid_argument("normalization: stddev must be positive");
  ds.normalization = norm;
  return ds;
}

labelled_images load_fashion_mnist(const std::filesystem::path& dir, split which, normalization norm) {
  const std::string prefix = which == split::train ? "train" : "t10k";
  const auto images = existing_variant(dir, prefix + "-images-idx3-ubyte");
  const auto labels = existing_variant(dir, prefix + "-labels-idx1-ubyte");
  return load_labelled_images(images, labels, norm, 10);
}

namespace detail {
template <Scalar T>
void normalise_rows(T* out, const labelled_images& ds, std::span<const std::size_t> order, std::size_t first,
                    std::size_t count) {
  const std::size_t n = ds.sample_size();
  const T a = T(ds.normalization.scale / ds.normalization.stddev);
  const T b = T(-ds.normalization.mean / ds.normalization.stddev);
  const std::uint8_t* pixels = ds.images.values.data();
  parallel_chunks(count, n, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t r = lo; r < hi; ++r) {
      const std::size_t item = order.empty() ? first + r : order[first + r];
      const std::uint8_t* src = pixels + item * n;
      T* dst = out + r * n;
      for (std::size_t k = 0; k < n; ++k) dst[k] = T(src[k]) * a + b;
    }
  });
}
template void normalise_rows<float>(float*, const labelled_images&, std::span<const std::size_t>, std::size_t,
                                    std::size_t);
template void normalise_rows<double>(double*, const labelled_images&, std::span<const std::size_t>, std::size_t,
                                     std::size_t);
}  // namespace detail

void epoch_order(std::vector<std::size_t>& order, bool shuffle, std::uint64_t seed, std::uint64_t epoch) {
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  if (!shuffle || order.size() < 2) return;
  auto g = train::make_generator({seed, epoch});
  for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[train::below(g, i + 1)]);
}

}  // namespace typegrad::data

// safetensors reading and writing (see include/typegrad/train/checkpoint.hpp).
#include "typegrad/train/checkpoint.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace typegrad::train {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this code copies it as is");

namespace {
using json = nlohmann::ordered_json;

// The reference implementation refuses headers above 100 MB.
constexpr std::uint64_t max_header_bytes = 100'000'000;

std::string_view dtype_name(dtype t) { return t == dtype::f32 ? "F32" : "F64"; }

// Bytes per element of the dtypes safetensors defines (0: unknown).
std::size_t dtype_size(std::string_view d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

std::string shape_text(const std::vector<std::size_t>& s) { return fmt::format("({})", fmt::join(s, ", ")); }

// ---- atomic write ---------------------------------------------------------------------------------
class temp_file {
 public:
  // The temporary name is fixed per target (".<name>.tmp" beside it), so a save that was killed
  // leaves at most one such file, and the next save to the same target reuses and replaces it.
  // It is created with mode 0666 less the umask, like any new file.
  explicit temp_file(const std::filesystem::path& target) : target_(target) {
    const auto dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
    path_ = (dir / fmt::format(".{}.tmp", target.filename().string())).string();
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd_ < 0) {
      path_.clear();
      fail("cannot create a temporary file in its directory");
    }
  }
  ~temp_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());  // still there only when something failed
  }
  void write(const void* data, std::size_t n) {
    auto p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail("write failed");
      p += w;
      n -= std::size_t(w);
    }
  }
  // fsync, close, rename over the target, fsync the directory.
  void commit() {
    if (::fsync(fd_) != 0) fail("fsync failed");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("close failed");
    if (::rename(path_.c_str(), target_.c_str()) != 0) fail("rename over the destination failed");
    path_.clear();
    const auto dir = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      ::fsync(dfd);  // best effort: makes the rename itself durable
      ::close(dfd);
    }
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw io_error(fmt::format("{}: {} ({})", target_.string(), what, std::strerror(errno)));
  }
  std::filesystem::path target_;
  std::string path_;
  int fd_ = -1;
};

// ---- parsing and validation ----------------------------------------------------------------------
struct entry {
  std::string name, dtype;
  std::vector<std::size_t> shape;
  std::uint64_t begin = 0, end = 0;
};

struct parsed_file {
  std::vector<char> bytes;  // the whole file
  std::size_t data_start = 0;
  std::vector<entry> entries;  // in header order
  checkpoint_metadata metadata;
};

[[noreturn]] void corrupt(const std::filesystem::path& path, std::string_view what) {
  throw data_error(fmt::format("{}: {}", path.string(), what));
}

std::vector<char> read_all(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw io_error(fmt::format("{}: no such file", path.string()));
  if (!std::filesystem::is_regular_file(path, ec))
    throw io_error(fmt::format("{}: is not a regular file (a directory, FIFO or device)", path.string()));
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw io_error(fmt::format("{}: cannot open ({})", path.string(), std::strerror(errno)));
  const auto size = f.tellg();
  if (size < 0) throw io_error(fmt::format("{}: cannot tell its size", path.string()));
  std::vector<char> bytes(static_cast<std::size_t>(size));
  f.seekg(0);
  if (!f.read(bytes.data(), size)) throw io_error(fmt::format("{}: read failed", path.string()));
  return bytes;
}

std::uint64_t as_offset(const std::filesystem::path& path, const std::string& name, const json& v) {
  if (!v.is_number_unsigned()) corrupt(path, fmt::format("tensor {}: data_offsets must be non-negative integers", name));
  return v.get<std::uint64_t>();
}

parsed_file parse(const std::filesystem::path& path) {
  parsed_file f;
  f.bytes = read_all(path);
  const std::size_t size = f.bytes.size();
  if (size < 8) corrupt(path, fmt::format("truncated: {} bytes, fewer than the 8 of the header length", size));
  std::uint64_t n = 0;
  std::memcpy(&n, f.bytes.data(), 8);
  if (n > max_header_bytes) corrupt(path, fmt::format("header length {} is above the 100 MB limit", n));
  if (n > size - 8)
    corrupt(path, fmt::format("truncated: the header length is {} bytes but only {} follow", n, size - 8));
  f.data_start = 8 + std::size_t(n);
  const std::string_view text(f.bytes.data() + 8, std::size_t(n));
  // The format allows only spaces after the JSON object (padding to 8 bytes); nlohmann would stop
  // at a NUL and ignore what follows it.
  const std::size_t object_end = text.find_last_of('}');
  if (text.find('\0') != std::string_view::npos ||
      (object_end != std::string_view::npos && text.find_first_not_of(' ', object_end + 1) != std::string_view::npos))
    corrupt(path, "the header has bytes other than space padding after its JSON object, or a NUL byte");
  const json header = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) corrupt(path, "the header is not well-formed JSON");
  if (!header.is_object()) corrupt(path, "the header is not a JSON object");

  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) corrupt(path, "__metadata__ must be an object of strings");
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string()) corrupt(path, fmt::format("__metadata__ entry {} is not a string", k));
        f.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) corrupt(path, fmt::format("tensor {}: its header entry is not an object", name));
    entry e;
    e.name = name;
    if (!v.contains("dtype") || !v["dtype"].is_string()) corrupt(path, fmt::format("tensor {}: no dtype string", name));
    e.dtype = v["dtype"].get<std::string>();
    const std::size_t elem = dtype_size(e.dtype);
    if (!elem) corrupt(path, fmt::format("tensor {}: unknown dtype {}", name, e.dtype));
    if (!v.contains("shape") || !v["shape"].is_array()) corrupt(path, fmt::format("tensor {}: no shape array", name));
    std::size_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) corrupt(path, fmt::format("tensor {}: shape entries must be non-negative integers", name));
      e.shape.push_back(d.get<std::size_t>());
      const auto next = checked_mul(numel, e.shape.back());
      if (!next) corrupt(path, fmt::format("tensor {}: shape {} overflows", name, shape_text(e.shape)));
      numel = *next;
    }
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      corrupt(path, fmt::format("tensor {}: data_offsets must be [begin, end]", name));
    e.begin = as_offset(path, name, v["data_offsets"][0]);
    e.end = as_offset(path, name, v["data_offsets"][1]);
    if (e.end < e.begin) corrupt(path, fmt::format("tensor {}: data_offsets [{}, {}] end before they begin", name, e.begin, e.end));
    const auto bytes = checked_mul(numel, elem);
    if (!bytes || e.end - e.begin != *bytes)
      corrupt(path, fmt::format("tensor {}: {} {} needs {} bytes but data_offsets [{}, {}] hold {}", name, e.dtype,
                                shape_text(e.shape), numel * elem, e.begin, e.end, e.end - e.begin));
    f.entries.push_back(std::move(e));
  }

  // The byte ranges must tile the data exactly: sorted, each begins where the previous ended.
  std::vector<const entry*> order;
  for (const auto& e : f.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](auto a, auto b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  std::uint64_t at = 0;
  for (const entry* e : order) {
    if (e->begin != at)
      corrupt(path, fmt::format("tensor {}: data_offsets [{}, {}] are not contiguous with the previous tensor (which ends at {})",
                                e->name, e->begin, e->end, at));
    at = e->end;
  }
  const std::uint64_t data_size = size - f.data_start;
  if (at > data_size)
    corrupt(path, fmt::format("truncated: the tensors need {} bytes of data but the file has {}", at, data_size));
  if (at < data_size)
    corrupt(path, fmt::format("{} bytes of data after the last tensor (the tensors cover {} of {})", data_size - at, at,
                              data_size));
  return f;
}
}  // namespace

void write_safetensors(const std::filesystem::path& path, std::span<const saved_tensor> tensors,
                       const checkpoint_metadata& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::uint64_t at = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || header.contains(t.name))
      throw std::invalid_argument(fmt::format("write_safetensors: tensor name {} is reserved or repeated", t.name));
    const std::uint64_t bytes = t.dims.numel() * (t.dtype == dtype::f32 ? 4 : 8);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", std::vector<std::size_t>(t.dims.dims().begin(), t.dims.dims().end())},
                      {"data_offsets", {at, at + bytes}}};
    at += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the reference implementation pads to 8 bytes
  const std::uint64_t n = text.size();

  temp_file out(path);
  out.write(&n, 8);
  out.write(text.data(), text.size());
  for (const auto& t : tensors) out.write(t.data, t.dims.numel() * (t.dtype == dtype::f32 ? 4 : 8));
  out.commit();
}

std::vector<tensor_info> list_safetensors(const std::filesystem::path& path, checkpoint_metadata* metadata) {
  auto f = parse(path);
  std::vector<tensor_info> out;
  for (auto& e : f.entries) out.push_back({e.name, e.dtype, e.shape});
  if (metadata) *metadata = std::move(f.metadata);
  return out;
}

checkpoint_metadata read_safetensors(const std::filesystem::path& path, std::span<const loaded_tensor> expected,
                                     load_options options,
                                     const std::function<void(const checkpoint_metadata&)>& check_metadata) {
  auto f = parse(path);
  // Phase 1: match every expected tensor (nothing is written yet).
  std::vector<const entry*> source(expected.size(), nullptr);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& want = expected[i];
    auto it = std::find_if(f.entries.begin(), f.entries.end(), [&](const entry& e) { return e.name == want.name; });
    if (it == f.entries.end()) {
      if (options.allow_missing) continue;
      corrupt(path, fmt::format("tensor {} is missing", want.name));
    }
    if (it->dtype != dtype_name(want.dtype))
      corrupt(path, fmt::format("tensor {} has dtype {}, expected {}", want.name, it->dtype, dtype_name(want.dtype)));
    const std::vector<std::size_t> want_shape(want.dims.dims().begin(), want.dims.dims().end());
    if (it->shape != want_shape)
      corrupt(path, fmt::format("tensor {} has shape {}, expected {}", want.name, shape_text(it->shape), shape_text(want_shape)));
    source[i] = &*it;
  }
  if (!options.allow_extra)
    for (const auto& e : f.entries)
      if (std::none_of(expected.begin(), expected.end(), [&](const loaded_tensor& t) { return t.name == e.name; }))
        corrupt(path, fmt::format("tensor {} is in the file but not expected (load_options.allow_extra ignores it)", e.name));
  if (check_metadata) check_metadata(f.metadata);
  // Phase 2: everything fits; copy.
  for (std::size_t i = 0; i < expected.size(); ++i)
    if (source[i])
      std::memcpy(expected[i].data, f.bytes.data() + f.data_start + source[i]->begin, source[i]->end - source[i]->begin);
  return f.metadata;
}

// ---- optimizer state ----------------------------------------------------------------------------------
namespace detail {
namespace {
bool parse_u64(const std::string& s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
bool parse_double(const std::string& s, double& out) {
  try {
    std::size_t used = 0;
    out = std::stod(s, &used);
    return used == s.size();
  } catch (const std::exception&) {
    return false;
  }
}
}  // namespace

template <Scalar T>
void add_state(std::vector<saved_tensor>& out, checkpoint_metadata& metadata, const optimizer<T>& opt) {
  for (const auto& s : opt.state()) out.push_back({s.name, dtype_of<T>, s.value.shape, s.value.data});
  metadata["typegrad.optimizer"] = std::string(opt.kind());
  metadata["typegrad.steps"] = std::to_string(opt.steps());
  metadata["typegrad.lr"] = fmt::format("{:.17g}", opt.lr());
}

template <Scalar T>
void optimizer_restore<T>::expect(std::vector<loaded_tensor>& expected) const {
  for (const auto& s : opt.state()) expected.push_back({s.name, dtype_of<T>, s.value.shape, s.value.data});
}

template <Scalar T>
void optimizer_restore<T>::check(const std::filesystem::path& path, const checkpoint_metadata& m) const {
  auto kind = m.find("typegrad.optimizer");
  if (kind == m.end()) corrupt(path, "no optimizer state (metadata typegrad.optimizer is missing)");
  if (kind->second != opt.kind())
    corrupt(path, fmt::format("optimizer state is {}'s, not {}'s", kind->second, opt.kind()));
  std::uint64_t steps = 0;
  double lr = 0;
  auto s = m.find("typegrad.steps");
  if (s == m.end() || !parse_u64(s->second, steps)) corrupt(path, "metadata typegrad.steps is missing or not an integer");
  auto l = m.find("typegrad.lr");
  if (l == m.end() || !parse_double(l->second, lr)) corrupt(path, "metadata typegrad.lr is missing or not a number");
}

template <Scalar T>
void optimizer_restore<T>::apply(const std::filesystem::path& path, const checkpoint_metadata& m) const {
  check(path, m);
  std::uint64_t steps = 0;
  double lr = 0;
  parse_u64(m.at("typegrad.steps"), steps);
  parse_double(m.at("typegrad.lr"), lr);
  opt.set_steps(steps);
  opt.set_lr(lr);
}

template void add_state<float>(std::vector<saved_tensor>&, checkpoint_metadata&, const optimizer<float>&);
template void add_state<double>(std::vector<saved_tensor>&, checkpoint_metadata&, const optimizer<double>&);
template struct optimizer_restore<float>;
template struct optimizer_restore<double>;
}  // namespace detail

}  // namespace typegrad::train

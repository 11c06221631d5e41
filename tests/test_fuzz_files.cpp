#define BOOST_TEST_MODULE fuzz_files
// A mutation fuzzer over the file readers: valid IDX files (raw and gzip) and safetensors
// checkpoints are truncated, have bytes flipped or overwritten, and have their size fields
// inflated; every read must either succeed or throw one of typegrad's errors (io_error,
// data_error, ...): never another exception, a crash, a hang or an absurd allocation. The CI
// build runs it under AddressSanitizer and UndefinedBehaviorSanitizer (.ci/run, docs/reliability.md).
//   TYPEGRAD_FUZZ_FILES=N   mutations per file kind (default 300); the count run is printed.
#include <boost/test/unit_test.hpp>

#include <typegrad/data/idx.hpp>
#include <typegrad/train/checkpoint.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

using namespace typegrad;
namespace fs = std::filesystem;

namespace {
constexpr var<"w", 2> w;
constexpr var<"b", 1> b;

std::size_t mutation_count() {
  const char* n = std::getenv("TYPEGRAD_FUZZ_FILES");
  return n ? std::size_t(std::strtoull(n, nullptr, 10)) : 300;
}

std::vector<std::uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// One random mutation of a valid file: truncation, flipped bits, overwritten bytes, a size field
// (one of the first `header` bytes) set to a huge or random value, or appended junk.
std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> bytes, std::size_t header, std::mt19937& rng) {
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  switch (pick(5)) {
    case 0: bytes.resize(pick(bytes.size())); break;
    case 1:
      for (std::size_t k = 0, n = 1 + pick(8); k < n; ++k) bytes[pick(bytes.size())] ^= std::uint8_t(1u << pick(8));
      break;
    case 2:
      for (std::size_t k = 0, n = 1 + pick(4); k < n; ++k) bytes[pick(bytes.size())] = std::uint8_t(rng());
      break;
    case 3: {
      const std::size_t at = pick(std::min(header, bytes.size()));
      const std::uint8_t fill = pick(2) ? 0xff : std::uint8_t(rng());
      for (std::size_t k = at; k < std::min(at + 4, bytes.size()); ++k) bytes[k] = fill;
      break;
    }
    default:
      for (std::size_t k = 0, n = 1 + pick(64); k < n; ++k) bytes.push_back(std::uint8_t(rng()));
  }
  return bytes;
}

struct outcome {
  std::size_t ok = 0, typed_errors = 0;
};

// Runs read(path) on `count` mutations of `valid`; any exception that is not a typegrad::error
// fails the test with the mutation's seed.
template <class Read>
outcome fuzz(const fs::path& path, const std::vector<std::uint8_t>& valid, std::size_t header, unsigned seed,
             Read read) {
  outcome out;
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < mutation_count(); ++i) {
    write_bytes(path, mutate(valid, header, rng));
    try {
      read(path);
      ++out.ok;
    } catch (const typegrad::error&) {
      ++out.typed_errors;
    } catch (const std::exception& e) {
      BOOST_ERROR("mutation " << i << " (seed " << seed << ") of " << path.filename().string()
                              << " threw a non-typegrad exception: " << e.what());
    }
  }
  BOOST_TEST_MESSAGE(path.filename().string() << ": " << mutation_count() << " mutations, " << out.ok << " read, "
                                              << out.typed_errors << " typed errors");
  return out;
}

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("typegrad_fuzz_" + std::to_string(::getpid()));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
};
}  // namespace

BOOST_AUTO_TEST_CASE(idx_readers_only_throw_typed_errors) {
  temp_dir dir;
  const std::vector<std::size_t> dims{6, 5, 4};
  std::vector<std::uint8_t> values(6 * 5 * 4);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::uint8_t(i * 7);
  for (bool gzip : {false, true}) {
    const fs::path valid = dir.path / (gzip ? "valid.gz" : "valid");
    data::write_idx(valid, dims, values, gzip);
    const auto bytes = read_bytes(valid);
    const auto out = fuzz(dir.path / (gzip ? "mutant.gz" : "mutant"), bytes, gzip ? 32 : 16, gzip ? 2 : 1,
                          [](const fs::path& p) { (void)data::read_idx(p); });
    BOOST_TEST(out.typed_errors > 0u);  // the mutations do reach the checks
  }
}

BOOST_AUTO_TEST_CASE(checkpoint_reader_only_throws_typed_errors) {
  temp_dir dir;
  auto params = train::make_parameters<float>(train::param(w, {3, 4}), train::param(b, {4}));
  for (std::size_t i = 0; i < 12; ++i) params[w][i] = float(i);
  const fs::path valid = dir.path / "valid.safetensors";
  train::save_checkpoint(valid, params);
  const auto bytes = read_bytes(valid);
  std::uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  auto target = train::make_parameters<float>(train::param(w, {3, 4}), train::param(b, {4}));
  const auto out = fuzz(dir.path / "mutant.safetensors", bytes, 8 + std::size_t(header), 3,
                        [&](const fs::path& p) { train::load_checkpoint(p, target); });
  BOOST_TEST(out.typed_errors > 0u);
  (void)fuzz(dir.path / "listed.safetensors", bytes, 8 + std::size_t(header), 4,
             [](const fs::path& p) { (void)train::list_safetensors(p); });
}

#define BOOST_TEST_MODULE checkpoint
#include <boost/test/unit_test.hpp>

#include <typegrad/train/checkpoint.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace typegrad;
using namespace typegrad::train;
namespace fs = std::filesystem;
namespace tt = boost::test_tools;

namespace {
constexpr var<"w", 2> w;
constexpr var<"b", 1> b;
constexpr var<"s", 0> s;

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() / ("typegrad_ckpt_" + std::to_string(::getpid()) + "_" +
                                        boost::unit_test::framework::current_test_case().p_name.get());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::vector<char> file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void put_bytes(const fs::path& p, const std::vector<char>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}
// A safetensors file from a header text and raw data, the way the format is specified.
void put_file(const fs::path& p, const std::string& header, const std::vector<char>& data) {
  const std::uint64_t n = (header.size() + 7) / 8 * 8;  // padded with spaces to 8 bytes
  std::vector<char> bytes(8 + n + data.size(), ' ');
  std::memcpy(bytes.data(), &n, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(bytes.data() + 8 + n, data.data(), data.size());
  put_bytes(p, bytes);
}
template <class T>
std::vector<char> raw(std::initializer_list<T> values) {
  std::vector<char> out(values.size() * sizeof(T));
  std::memcpy(out.data(), std::data(values), out.size());
  return out;
}

auto make_set() {
  auto p = make_parameters<float>(param(w, {2, 3}), param(b, {3}), param(s, {}));
  for (std::size_t i = 0; i < 6; ++i) p[w][i] = float(i) * 0.5f - 1.0f;
  for (std::size_t i = 0; i < 3; ++i) p[b][i] = 0.25f * float(i);
  p[s][0] = 42.0f;
  return p;
}
// Sentinel values, to check that a failed load left them alone.
template <class P>
void fill_sentinel(P& p) {
  p[w].fill(-7.0f);
  p[b].fill(-7.0f);
  p[s].fill(-7.0f);
}
template <class P>
bool untouched(const P& p) {
  bool ok = true;
  for (auto v : p[w]) ok = ok && v == -7.0f;
  for (auto v : p[b]) ok = ok && v == -7.0f;
  return ok && p[s][0] == -7.0f;
}

template <class F>
void expect_data_error(F f, std::initializer_list<std::string> fragments) {
  try {
    f();
    BOOST_ERROR("no exception thrown");
  } catch (const data_error& e) {
    const std::string what = e.what();
    for (const auto& frag : fragments) BOOST_TEST(what.find(frag) != std::string::npos, "'" << frag << "' in: " << what);
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(the_file_layout_is_safetensors) {
  temp_dir dir;
  auto params = make_set();
  const auto path = dir.path / "p.safetensors";
  save_checkpoint(path, params, {{"epoch", "3"}});
  const auto bytes = file_bytes(path);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  BOOST_TEST(n % 8 == 0u);  // padded as the reference implementation does
  const std::string text(bytes.data() + 8, n);
  BOOST_TEST(text[0] == '{');
  const auto header = nlohmann::json::parse(text);
  BOOST_TEST(header["__metadata__"]["epoch"] == "3");
  BOOST_TEST(header["__metadata__"]["format"] == "pt");
  BOOST_TEST(header["w"]["dtype"] == "F32");
  BOOST_TEST((header["w"]["shape"] == nlohmann::json::array({2, 3})));
  BOOST_TEST((header["w"]["data_offsets"] == nlohmann::json::array({0, 24})));
  BOOST_TEST((header["b"]["data_offsets"] == nlohmann::json::array({24, 36})));
  BOOST_TEST((header["s"]["shape"] == nlohmann::json::array()));
  BOOST_TEST((header["s"]["data_offsets"] == nlohmann::json::array({36, 40})));
  BOOST_TEST(bytes.size() == 8 + n + 40);
  float v = 0;
  std::memcpy(&v, bytes.data() + 8 + n + 4 * 5, 4);  // w[1][2], little-endian
  BOOST_TEST(v == 1.5f);
  // No temporary file is left behind.
  std::size_t files = 0;
  for (auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  BOOST_TEST(files == 1u);
}

BOOST_AUTO_TEST_CASE(round_trip_and_a_hand_written_file) {
  temp_dir dir;
  auto params = make_set();
  save_checkpoint(dir.path / "a.safetensors", params);
  auto other = make_set();
  fill_sentinel(other);
  const auto metadata = load_checkpoint(dir.path / "a.safetensors", other);
  BOOST_TEST(metadata.at("format") == "pt");
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(other[w][i] == params[w][i]);
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(other[b][i] == params[b][i]);
  BOOST_TEST(other[s][0] == 42.0f);

  // Written by hand (tensors in a different order from the parameter set's, data in offset order).
  auto data = raw<float>({9, 8, 7});
  auto wdata = raw<float>({1, 2, 3, 4, 5, 6});
  data.insert(data.end(), wdata.begin(), wdata.end());
  auto sdata = raw<float>({-1});
  data.insert(data.end(), sdata.begin(), sdata.end());
  put_file(dir.path / "hand.safetensors",
           R"({"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
           R"("s":{"dtype":"F32","shape":[],"data_offsets":[36,40]},)"
           R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[12,36]}})",
           data);
  load_checkpoint(dir.path / "hand.safetensors", other);
  BOOST_TEST(other[w](1, 0) == 4.0f);
  BOOST_TEST(other[b][0] == 9.0f);
  BOOST_TEST(other[s][0] == -1.0f);

  // Saving over an existing checkpoint replaces it.
  params[b][0] = 100;
  save_checkpoint(dir.path / "a.safetensors", params);
  load_checkpoint(dir.path / "a.safetensors", other);
  BOOST_TEST(other[b][0] == 100.0f);
  // A destination that cannot be written is an io_error and creates nothing.
  BOOST_CHECK_THROW(save_checkpoint(dir.path / "no" / "such" / "dir.safetensors", params), io_error);
}

BOOST_AUTO_TEST_CASE(corrupt_or_mismatched_files_are_refused_before_any_write) {
  temp_dir dir;
  auto params = make_set();
  const auto good = dir.path / "good.safetensors";
  save_checkpoint(good, params);
  const auto bytes = file_bytes(good);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  auto target = make_set();
  fill_sentinel(target);
  auto load = [&](const fs::path& p) { load_checkpoint(p, target); };
  const auto bad = dir.path / "bad.safetensors";

  BOOST_CHECK_THROW(load(dir.path / "missing.safetensors"), io_error);
  BOOST_CHECK_THROW(load(dir.path), io_error);  // a directory
  const auto fifo = dir.path / "fifo";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  BOOST_CHECK_THROW(load(fifo), io_error);  // not opened: opening a FIFO would block
  // A NUL and garbage inside the header, after its JSON object: not the format's space padding.
  {
    const std::string header(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(n));
    const std::string object = header.substr(0, header.find_last_of('}') + 1);
    put_file(bad, object + std::string("\0junk", 5), std::vector<char>(bytes.begin() + 8 + std::ptrdiff_t(n), bytes.end()));
    expect_data_error([&] { load(bad); }, {"other than space padding"});
  }
  put_bytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + 5));
  expect_data_error([&] { load(bad); }, {bad.string(), "fewer than the 8"});
  put_bytes(bad, std::vector<char>(bytes.begin(), bytes.end() - 3));  // data cut short
  expect_data_error([&] { load(bad); }, {"truncated", "need 40 bytes", "has 37"});
  put_bytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + 8 + n / 2));  // header cut short
  expect_data_error([&] { load(bad); }, {"header length"});
  auto longer = bytes;
  longer.push_back(0);
  put_bytes(bad, longer);
  expect_data_error([&] { load(bad); }, {"1 bytes of data after the last tensor"});
  auto broken = bytes;
  broken[8 + 3] = '?';  // inside the first key's quotes: JSON still, but that name is unknown
  broken[8] = '[';      // not an object any more: not well-formed
  put_bytes(bad, broken);
  expect_data_error([&] { load(bad); }, {"not well-formed JSON"});
  std::uint64_t huge = 1ull << 40;
  auto lying = bytes;
  std::memcpy(lying.data(), &huge, 8);
  put_bytes(bad, lying);
  expect_data_error([&] { load(bad); }, {"100 MB"});

  const std::string b_entry = R"("b":{"dtype":"F32","shape":[3],"data_offsets":[24,36]},)";
  const std::string s_entry = R"("s":{"dtype":"F32","shape":[],"data_offsets":[36,40]})";
  const std::vector<char> data(40, 0);
  put_file(bad, R"({"w":{"dtype":"F64","shape":[2,3],"data_offsets":[0,24]},)" + b_entry + s_entry + "}", data);
  expect_data_error([&] { load(bad); }, {"tensor w", "F64 (2, 3) needs 48 bytes"});
  put_file(bad, R"({"w":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]},)" + b_entry + s_entry + "}", data);
  expect_data_error([&] { load(bad); }, {"tensor w has shape (3, 2), expected (2, 3)"});
  put_file(bad, R"({"w":{"dtype":"I32","shape":[2,3],"data_offsets":[0,24]},)" + b_entry + s_entry + "}", data);
  expect_data_error([&] { load(bad); }, {"tensor w has dtype I32, expected F32"});
  put_file(bad, R"({"w":{"dtype":"Q7","shape":[2,3],"data_offsets":[0,24]},)" + b_entry + s_entry + "}", data);
  expect_data_error([&] { load(bad); }, {"tensor w: unknown dtype Q7"});
  put_file(bad, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]},)" + b_entry + s_entry + "}", data);
  expect_data_error([&] { load(bad); }, {"not contiguous"});
  put_file(bad, R"({"w":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]},)" + b_entry + s_entry + "}", data);
  expect_data_error([&] { load(bad); }, {"tensor w: shape entries"});
  put_file(bad, R"({"w":{"dtype":"F32","shape":[2,3]},)" + b_entry + s_entry + "}", data);
  expect_data_error([&] { load(bad); }, {"tensor w: data_offsets must be"});
  put_file(bad, R"({"__metadata__":{"epoch":3},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)" + b_entry +
                    s_entry + "}",
           data);
  expect_data_error([&] { load(bad); }, {"__metadata__ entry epoch is not a string"});
  // Missing and extra tensors.
  put_file(bad, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)" + b_entry.substr(0, b_entry.size() - 1) + "}",
           std::vector<char>(36, 0));
  expect_data_error([&] { load(bad); }, {"tensor s is missing"});
  put_file(bad, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)" + b_entry + s_entry +
                    R"(,"extra":{"dtype":"U8","shape":[2],"data_offsets":[40,42]}})",
           std::vector<char>(42, 0));
  expect_data_error([&] { load(bad); }, {"tensor extra is in the file but not expected"});
  // A double checkpoint into float parameters.
  auto doubles = make_parameters<double>(param(w, {2, 3}), param(b, {3}), param(s, {}));
  save_checkpoint(bad, doubles);
  expect_data_error([&] { load(bad); }, {"tensor w has dtype F64, expected F32"});
  BOOST_TEST(untouched(target));

  // What load_options allows.
  put_file(bad, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)" + b_entry + s_entry +
                    R"(,"extra":{"dtype":"U8","shape":[2],"data_offsets":[40,42]}})",
           std::vector<char>(42, 0));
  load_checkpoint(bad, target, {.allow_extra = true});
  BOOST_TEST(target[w][0] == 0.0f);
  fill_sentinel(target);
  put_file(bad, R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})", std::vector<char>(24, 0));
  load_checkpoint(bad, target, {.allow_missing = true});
  BOOST_TEST(target[w][0] == 0.0f);
  BOOST_TEST(target[b][0] == -7.0f);  // absent: kept
  const auto listed = list_safetensors(good);
  BOOST_TEST(listed.size() == 3u);
  BOOST_TEST(listed[0].name == "w");
  BOOST_TEST(listed[0].dtype == "F32");
}

BOOST_AUTO_TEST_CASE(optimizer_state_round_trip) {
  temp_dir dir;
  auto params = make_set();
  adam opt(params, {.lr = 0.01});
  tensor<float, 2> gw({2, 3}, {1, -2, 3, -4, 5, -6});
  tensor<float, 1> gb({3}, {0.5f, 0.25f, -1});
  tensor<float, 0> gs(2.0f);
  const std::array<view<const float>, 3> grads{std::as_const(gw).as_view(), std::as_const(gb).as_view(),
                                               std::as_const(gs).as_view()};
  for (int i = 0; i < 3; ++i) opt.step(params.entries(), grads);
  opt.set_lr(0.005);
  const auto path = dir.path / "opt.safetensors";
  save_checkpoint(path, params, opt);
  const auto names = list_safetensors(path);
  BOOST_TEST(names.size() == 9u);  // 3 parameters + m and v for each
  BOOST_TEST(names[3].name == "adam.m.w");
  BOOST_TEST(names[8].name == "adam.v.s");

  auto resumed = make_set();
  adam opt2(resumed, {.lr = 1});
  const auto metadata = load_checkpoint(path, resumed, opt2);
  BOOST_TEST(metadata.at("typegrad.optimizer") == "adam");
  BOOST_TEST(opt2.steps() == 3u);
  BOOST_TEST(opt2.lr() == 0.005);
  // One more step from either gives the same parameters.
  opt.step(params.entries(), grads);
  opt2.step(resumed.entries(), grads);
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(resumed[w][i] == params[w][i]);
  for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(resumed[b][i] == params[b][i]);

  // State of another optimizer, or no state at all, is refused without touching anything.
  auto target = make_set();
  fill_sentinel(target);
  sgd other(target, {.lr = 0.1, .momentum = 0.9});
  expect_data_error([&] { load_checkpoint(path, target, other); }, {"tensor sgd.momentum.w is missing"});
  BOOST_TEST(untouched(target));
  sgd plain(target, {.lr = 0.1});  // no state tensors: only the metadata can tell
  expect_data_error([&] { load_checkpoint(path, target, plain, {.allow_extra = true}); }, {"optimizer state is adam's, not sgd's"});
  BOOST_TEST(untouched(target));
  save_checkpoint(dir.path / "params_only.safetensors", params);
  adam fresh(target);
  expect_data_error([&] { load_checkpoint(dir.path / "params_only.safetensors", target, fresh, {.allow_missing = true}); },
                    {"no optimizer state"});
  BOOST_TEST(untouched(target));
  BOOST_TEST(fresh.steps() == 0u);
}

// A second parameter set that no optimizer updates (e.g. batch norm's running statistics) goes in
// the same file as the parameters and the optimizer state, and comes back without the latter.
BOOST_AUTO_TEST_CASE(a_second_parameter_set_round_trip) {
  constexpr var<"running_mean", 1> running_mean;
  temp_dir dir;
  auto params = make_set();
  auto stats = make_parameters<float>(param(running_mean, {2}));
  stats[running_mean][0] = 0.5f;
  stats[running_mean][1] = -3.0f;
  adam opt(params);
  const auto path = dir.path / "two.safetensors";
  save_checkpoint(path, params, stats, opt, {{"model", "two sets"}});
  const auto names = list_safetensors(path);
  BOOST_REQUIRE_EQUAL(names.size(), 10u);  // 3 parameters, the statistic, m and v for each parameter
  BOOST_TEST(names[3].name == "running_mean");
  BOOST_TEST(names[4].name == "adam.m.w");

  auto params2 = make_set();
  fill_sentinel(params2);
  auto stats2 = make_parameters<float>(param(running_mean, {2}));
  // Without allow_extra the optimizer state is unexpected, and nothing is written.
  expect_data_error([&] { load_checkpoint(path, params2, stats2); }, {"tensor adam.m.w is in the file but not expected"});
  BOOST_TEST(untouched(params2));
  const auto metadata = load_checkpoint(path, params2, stats2, {.allow_extra = true});
  BOOST_TEST(metadata.at("model") == "two sets");
  for (std::size_t i = 0; i < 6; ++i) BOOST_TEST(params2[w][i] == params[w][i]);
  BOOST_TEST(params2[s][0] == 42.0f);
  BOOST_TEST(stats2[running_mean][0] == 0.5f);
  BOOST_TEST(stats2[running_mean][1] == -3.0f);
  // A file without the second set is refused.
  save_checkpoint(dir.path / "one.safetensors", params);
  fill_sentinel(params2);
  expect_data_error([&] { load_checkpoint(dir.path / "one.safetensors", params2, stats2); }, {"tensor running_mean is missing"});
  BOOST_TEST(untouched(params2));
}

// New checkpoints get the usual mode from the umask (not always 0600), and a save leaves no
// temporary file behind.
BOOST_AUTO_TEST_CASE(saved_files_get_the_mode_of_the_umask) {
  temp_dir dir;
  auto params = make_set();
  const auto path = dir.path / "m.safetensors";
  for (mode_t mask : {mode_t(022), mode_t(077), mode_t(002)}) {
    const mode_t old = ::umask(mask);
    fs::remove(path);
    save_checkpoint(path, params);
    ::umask(old);
    struct stat st {};
    BOOST_REQUIRE(::stat(path.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == (0666 & ~mask));
  }
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path)) ++entries;
  BOOST_TEST(entries == 1u);
}

#define BOOST_TEST_MODULE data
#include <boost/test/unit_test.hpp>

#include <typegrad/data/batches.hpp>
#include <typegrad/data/idx.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

using namespace typegrad;
namespace fs = std::filesystem;
namespace tt = boost::test_tools;

namespace {
// A fresh directory per test case, removed at its end.
struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() /
           ("typegrad_data_" + std::to_string(::getpid()) + "_" +
            boost::unit_test::framework::current_test_case().p_name.get());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
};

std::vector<std::uint8_t> file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void put_bytes(const fs::path& p, const std::vector<std::uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// n images of 2 x 3 pixels, pixel k of image i = 10 i + k; labels i % classes.
void write_set(const fs::path& dir, std::size_t n, std::size_t classes, bool gzip) {
  std::vector<std::uint8_t> px, lb;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 6; ++k) px.push_back(std::uint8_t(10 * i + k));
    lb.push_back(std::uint8_t(i % classes));
  }
  const std::vector<std::size_t> idims{n, 2, 3}, ldims{n};
  data::write_idx(dir / "images", idims, px, gzip);
  data::write_idx(dir / "labels", ldims, lb, gzip);
}

// Runs f, expects an exception of type E whose message contains every given fragment.
template <class E, class F>
void expect_error(F f, std::initializer_list<std::string> fragments) {
  try {
    f();
    BOOST_ERROR("no exception thrown");
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& frag : fragments) BOOST_TEST(what.find(frag) != std::string::npos, "'" << frag << "' in: " << what);
  }
}
}  // namespace

BOOST_AUTO_TEST_CASE(idx_round_trip_raw_and_gzip) {
  temp_dir dir;
  const std::vector<std::size_t> dims{2, 3, 4};
  std::vector<std::uint8_t> v(24);
  std::iota(v.begin(), v.end(), 200);  // wraps past 255: every byte value kind
  for (bool gz : {false, true}) {
    const auto p = dir.path / (gz ? "a.gz" : "a");
    data::write_idx(p, dims, v, gz);
    const auto bytes = file_bytes(p);
    if (gz) {
      BOOST_TEST((bytes[0] == 0x1f && bytes[1] == 0x8b));
    } else {  // the layout by hand: magic 00 00 08 03, big-endian dims, values
      const std::vector<std::uint8_t> head{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
      BOOST_TEST(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 16) == head, tt::per_element());
      BOOST_TEST(bytes.size() == 16u + 24u);
    }
    const auto a = data::read_idx(p, 3);
    BOOST_TEST(a.dims == dims, tt::per_element());
    BOOST_TEST(a.values == v, tt::per_element());
  }
}

BOOST_AUTO_TEST_CASE(idx_errors_name_the_file_and_the_problem) {
  temp_dir dir;
  const auto missing = dir.path / "nope-idx3-ubyte";
  expect_error<io_error>([&] { data::read_idx(missing); }, {missing.string(), "no such file"});

  write_set(dir.path, 4, 3, false);
  auto bytes = file_bytes(dir.path / "images");
  // Truncated: the dims say 4 x 2 x 3 = 24 bytes of data.
  put_bytes(dir.path / "short", std::vector<std::uint8_t>(bytes.begin(), bytes.end() - 5));
  expect_error<data_error>([&] { data::read_idx(dir.path / "short"); },
                           {(dir.path / "short").string(), "truncated", "need 24 bytes", "found 19"});
  // Header cut inside the dims.
  put_bytes(dir.path / "head", std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 9));
  expect_error<data_error>([&] { data::read_idx(dir.path / "head"); }, {"truncated", "header"});
  // Extra bytes after the data.
  auto longer = bytes;
  longer.push_back(7);
  put_bytes(dir.path / "long", longer);
  expect_error<data_error>([&] { data::read_idx(dir.path / "long"); }, {"more data than its dims"});
  // Bad magic and unsupported element type.
  auto bad = bytes;
  bad[0] = 0x12;
  put_bytes(dir.path / "bad", bad);
  expect_error<data_error>([&] { data::read_idx(dir.path / "bad"); }, {(dir.path / "bad").string(), "bad magic"});
  bad = bytes;
  bad[2] = 0x0d;  // float32
  put_bytes(dir.path / "float", bad);
  expect_error<data_error>([&] { data::read_idx(dir.path / "float"); }, {"element type 0x0d"});
  // Wrong dims: a label file where images are expected.
  expect_error<data_error>([&] { data::read_idx(dir.path / "labels", 3); }, {"1 dims, expected 3"});
  // A gzip stream cut short.
  write_set(dir.path, 50, 3, true);
  auto gz = file_bytes(dir.path / "images");
  put_bytes(dir.path / "cut.gz", std::vector<std::uint8_t>(gz.begin(), gz.begin() + gz.size() / 2));
  expect_error<data_error>([&] { data::read_idx(dir.path / "cut.gz"); }, {(dir.path / "cut.gz").string()});
  // Junk after the gzip stream is an error; a second gzip member (concatenated gzip) is data.
  auto junk = gz;
  junk.insert(junk.end(), {'j', 'u', 'n', 'k'});
  put_bytes(dir.path / "junk.gz", junk);
  expect_error<data_error>([&] { data::read_idx(dir.path / "junk.gz"); }, {"after the end of the gzip stream"});
  // Dims whose product overflows 64 bits, with no data: an error before any allocation.
  const std::vector<std::uint8_t> huge{0, 0, 0x08, 3, 0, 0, 0, 4, 0x80, 0, 0, 0, 0x80, 0, 0, 0};
  put_bytes(dir.path / "huge", huge);
  expect_error<data_error>([&] { data::read_idx(dir.path / "huge"); }, {"more than 2^36 bytes"});
  // A directory or a FIFO where a file is expected.
  expect_error<io_error>([&] { data::read_idx(dir.path); }, {"not a regular file"});
  // Count mismatch and labels beyond the classes.
  write_set(dir.path, 5, 3, false);
  const std::vector<std::size_t> four{4};
  const std::vector<std::uint8_t> lb{0, 1, 2, 7};
  data::write_idx(dir.path / "labels4", four, lb);
  expect_error<data_error>([&] { data::load_labelled_images(dir.path / "images", dir.path / "labels4"); },
                           {"5 images", "4 labels", (dir.path / "labels4").string()});
  const std::vector<std::size_t> five{5};
  const std::vector<std::uint8_t> lb5{0, 1, 2, 7, 1};
  data::write_idx(dir.path / "labels5", five, lb5);
  expect_error<data_error>([&] { data::load_labelled_images(dir.path / "images", dir.path / "labels5", {}, 5); },
                           {"label 7 at index 3", "5 classes"});
  expect_error<io_error>([&] { data::load_fashion_mnist(dir.path, data::split::test); },
                         {"t10k-images-idx3-ubyte.gz", "no such file"});
}

BOOST_AUTO_TEST_CASE(normalisation_and_whole_tensors) {
  temp_dir dir;
  write_set(dir.path, 3, 2, true);
  auto ds = data::load_labelled_images(dir.path / "images", dir.path / "labels", {.scale = 1.0 / 255, .mean = 0.5, .stddev = 0.25});
  BOOST_TEST(ds.size() == 3u);
  BOOST_TEST(ds.classes == 2u);
  BOOST_TEST(ds.sample_size() == 6u);
  const auto flat = ds.images_as<double, 2>();
  BOOST_TEST(flat.extent(0) == 3u);
  BOOST_TEST(flat.extent(1) == 6u);
  BOOST_TEST(flat(2, 4) == (24 / 255.0 - 0.5) / 0.25, tt::tolerance(1e-12));
  const auto img = ds.images_as<float, 4>();
  BOOST_TEST((img.extents() == std::array<std::size_t, 4>{3, 2, 3, 1}));
  BOOST_TEST(img(1, 1, 2, 0) == float((15 / 255.0 - 0.5) / 0.25), tt::tolerance(1e-6f));
  const auto labels = ds.labels_as<float>();
  BOOST_TEST(labels[0] == 0.0f);
  BOOST_TEST(labels[1] == 1.0f);
  BOOST_TEST(labels[2] == 0.0f);
}

BOOST_AUTO_TEST_CASE(batches_keep_drop_and_reuse_their_tensors) {
  temp_dir dir;
  write_set(dir.path, 10, 3, false);
  auto ds = data::load_labelled_images(dir.path / "images", dir.path / "labels");
  data::batcher<float, 4> keep(ds, 4, {.shuffle = false});
  BOOST_TEST(keep.batches() == 3u);
  BOOST_TEST(keep.samples() == 10u);
  std::vector<std::size_t> sizes;
  const float* full_data = nullptr;
  for (const auto& b : keep.epoch(0)) {
    sizes.push_back(b.size());
    BOOST_TEST(b.images.extent(0) == b.size());
    BOOST_TEST(b.images.extent(1) == 2u);
    BOOST_TEST(b.images.extent(3) == 1u);
    for (std::size_t k = 0; k < b.size(); ++k) {
      const std::size_t item = 4 * b.index + k;  // unshuffled
      BOOST_TEST(b.labels[k] == float(item % 3));
      BOOST_TEST(b.images(k, 1, 0, 0) == float(10 * item + 3) / 255.0f, tt::tolerance(1e-6f));
    }
    if (b.size() == 4) {
      if (full_data) BOOST_TEST(full_data == b.images.data());  // the same tensor, refilled
      full_data = b.images.data();
    }
  }
  BOOST_TEST(sizes == (std::vector<std::size_t>{4, 4, 2}), tt::per_element());

  data::batcher<double, 2> drop(ds, 4, {.shuffle = false, .last = data::last_batch::drop});
  BOOST_TEST(drop.batches() == 2u);
  BOOST_TEST(drop.samples() == 8u);
  auto b = drop.fill(1);
  BOOST_TEST(b.images.extent(1) == 6u);
  BOOST_TEST(b.images(0, 5) == 45 / 255.0, tt::tolerance(1e-12));  // item 4, pixel 5
  BOOST_CHECK_THROW(drop.fill(2), std::out_of_range);

  data::batcher<float, 2> whole(ds, 64, {.shuffle = false});  // batch larger than the data set
  BOOST_TEST(whole.batches() == 1u);
  BOOST_TEST(whole.fill(0).size() == 10u);
}

BOOST_AUTO_TEST_CASE(shuffling_is_seeded_per_epoch) {
  std::vector<std::size_t> a(100), b(100), c(100), d(100);
  data::epoch_order(a, true, 7, 0);
  data::epoch_order(b, true, 7, 0);
  data::epoch_order(c, true, 7, 1);
  data::epoch_order(d, true, 8, 0);
  BOOST_TEST(a == b, tt::per_element());
  BOOST_TEST((a != c && a != d && c != d));
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::size_t> ids(100);
  std::iota(ids.begin(), ids.end(), 0);
  BOOST_TEST(sorted == ids, tt::per_element());  // a permutation
  data::epoch_order(a, false, 7, 3);
  BOOST_TEST(a == ids, tt::per_element());

  // The batcher follows epoch_order: every sample once per epoch, with its own label.
  temp_dir dir;
  write_set(dir.path, 9, 4, false);
  auto ds = data::load_labelled_images(dir.path / "images", dir.path / "labels");
  data::batcher<float, 2> batches(ds, 4, {.seed = 3});
  std::multiset<int> seen;
  for (const auto& bt : batches.epoch(5))
    for (std::size_t k = 0; k < bt.size(); ++k) {
      const int item = int(std::lround(bt.images(k, 0) * 255.0f)) / 10;
      BOOST_TEST(bt.labels[k] == float(item % 4));
      seen.insert(item);
    }
  BOOST_TEST(seen == (std::multiset<int>{0, 1, 2, 3, 4, 5, 6, 7, 8}), tt::per_element());
  std::vector<std::size_t> expected(9);
  data::epoch_order(expected, true, 3, 5);
  BOOST_TEST(batches.order() == expected, tt::per_element());
}

namespace {
bool have_fashion_mnist() {
  const bool ok = fs::exists(fs::path(data::default_fashion_mnist_dir) / "t10k-images-idx3-ubyte.gz");
  if (!ok) BOOST_TEST_MESSAGE("skipped: no Fashion-MNIST in /usr/share/datasets (apt-get install dataset-fashion-mnist)");
  return ok;
}
}  // namespace

BOOST_AUTO_TEST_CASE(real_fashion_mnist, *boost::unit_test::precondition([](auto) { return have_fashion_mnist(); })) {
  for (auto which : {data::split::train, data::split::test}) {
    auto ds = data::load_fashion_mnist(data::default_fashion_mnist_dir, which);
    const std::size_t n = which == data::split::train ? 60000 : 10000;
    BOOST_TEST(ds.size() == n);
    BOOST_TEST((ds.sample_shape() == std::array<std::size_t, 3>{28, 28, 1}));
    BOOST_TEST(ds.classes == 10u);
    std::vector<std::size_t> per_class(10);
    for (auto l : ds.labels) ++per_class[l];
    for (auto c : per_class) BOOST_TEST(c == n / 10);  // Fashion-MNIST is balanced
    // Pixels span the byte range and the mean is Fashion-MNIST's known 0.286 (train) / 0.287 (test).
    double sum = 0;
    for (auto p : ds.images.values) sum += p;
    BOOST_TEST(sum / double(ds.images.values.size()) / 255.0 == data::fashion_mnist_mean, tt::tolerance(0.01));
  }
}

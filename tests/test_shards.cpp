#define BOOST_TEST_MODULE shards
// data::batcher with shards (batch_options::shard), as data-parallel training uses it: the P
// shards' batch i together are the single-process batch i of P * batch_size samples, in the same
// order, so an epoch over all shards visits every sample exactly once. (tests/distributed/ checks
// the same across real MPI ranks.)
#include <boost/test/unit_test.hpp>

#include <typegrad/data/batches.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

using namespace typegrad;

namespace {
// n images of 2x3 pixels; image i's pixels are (i + k) % 256, its label i % 5.
data::labelled_images make_set(std::size_t n) {
  data::labelled_images ds;
  ds.images.dims = {n, 2, 3};
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < 6; ++k) ds.images.values.push_back(std::uint8_t((i + k) % 256));
  for (std::size_t i = 0; i < n; ++i) ds.labels.push_back(std::uint8_t(i % 5));
  ds.classes = 5;
  return ds;
}
}  // namespace

BOOST_AUTO_TEST_CASE(shards_together_are_the_single_process_epoch) {
  for (std::size_t n : {1u, 10u, 23u, 60u})
    for (std::size_t shards : {1u, 2u, 3u, 4u})
      for (std::size_t batch : {1u, 3u, 4u})
        for (bool shuffle : {false, true}) {
          BOOST_TEST_CONTEXT("n " << n << ", shards " << shards << ", batch " << batch << ", shuffle " << shuffle) {
            const auto ds = make_set(n);
            data::batcher<double, 2> single(ds, batch * shards, {.shuffle = shuffle, .seed = 7});
            std::vector<data::batcher<double, 2>> parts;
            for (std::size_t r = 0; r < shards; ++r)
              parts.emplace_back(ds, batch, data::batch_options{.shuffle = shuffle, .seed = 7, .shard = {r, shards}});
            const std::size_t global = batch * shards, rest = n % global;
            const bool last_dropped = rest > 0 && rest < shards;
            for (std::uint64_t epoch : {0u, 3u}) {
              std::vector<int> seen(n, 0);
              single.set_epoch(epoch);
              const std::size_t expected_batches = single.batches() - (last_dropped ? 1 : 0);
              for (auto& p : parts) {
                p.set_epoch(epoch);
                BOOST_TEST(p.batches() == expected_batches);
                BOOST_TEST(p.global_batch_size() == global);
              }
              for (std::size_t i = 0; i < expected_batches; ++i) {
                const auto whole = single.fill(i);
                std::vector<std::size_t> joined;
                std::size_t smallest = SIZE_MAX, largest = 0;
                for (auto& p : parts) {
                  const auto b = p.fill(i);
                  BOOST_TEST(b.global_size == whole.size());
                  BOOST_TEST(b.samples.size() == b.size());
                  smallest = std::min(smallest, b.size());
                  largest = std::max(largest, b.size());
                  for (std::size_t k = 0; k < b.size(); ++k) {
                    const std::size_t item = b.samples[k];
                    joined.push_back(item);
                    ++seen[item];
                    BOOST_TEST(b.labels[k] == double(item % 5));                // the sample's own label
                    BOOST_TEST(b.images(k, 1) == double((item + 1) % 256) / 255.0,  // and pixels
                               boost::test_tools::tolerance(1e-12));
                  }
                }
                BOOST_TEST(smallest >= 1u);
                BOOST_TEST(largest - smallest <= 1u);  // an uneven last batch splits evenly
                BOOST_TEST(joined == std::vector<std::size_t>(whole.samples.begin(), whole.samples.end()),
                           boost::test_tools::per_element());
              }
              const std::size_t visited = last_dropped ? n - rest : n;
              std::size_t once = 0;
              for (int c : seen) once += c == 1;
              BOOST_TEST(once == visited);                   // each visited sample exactly once
              BOOST_TEST(parts[0].samples() == visited);
            }
          }
        }
}

BOOST_AUTO_TEST_CASE(a_shard_outside_the_count_is_refused) {
  const auto ds = make_set(10);
  BOOST_CHECK_THROW((data::batcher<float, 2>(ds, 2, {.shard = {2, 2}})), std::invalid_argument);
  BOOST_CHECK_THROW((data::batcher<float, 2>(ds, 2, {.shard = {0, 0}})), std::invalid_argument);
}

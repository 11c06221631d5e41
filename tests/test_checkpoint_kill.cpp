#define BOOST_TEST_MODULE checkpoint_kill
// Saves are atomic and leave no litter: a child process saving a large checkpoint over and over is
// killed (SIGKILL) at random points; after every kill the checkpoint on disk loads and is one
// whole save (every value the same), and at most one temporary file exists beside it, which the
// next save reuses. Its own executable: it forks, so no other test may have started threads.
#include <boost/test/unit_test.hpp>

#include <typegrad/train/checkpoint.hpp>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace typegrad;
using namespace typegrad::train;
namespace fs = std::filesystem;

namespace {
constexpr var<"w", 2> w;

std::size_t temporaries(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) ++n;
  return n;
}
}  // namespace

BOOST_AUTO_TEST_CASE(killed_saves_leave_the_old_checkpoint_and_at_most_one_temporary) {
  const fs::path dir = fs::temp_directory_path() / ("typegrad_kill_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path path = dir / "big.safetensors";
  auto params = make_parameters<float>(param(w, {1024, 4096}));  // 16 MiB: a save takes a while
  params[w].fill(0.0f);
  save_checkpoint(path, params);

  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_us(0, 60000);
  constexpr int kills = 25;
  for (int round = 0; round < kills; ++round) {
    const pid_t child = ::fork();
    BOOST_REQUIRE(child >= 0);
    if (child == 0) {
      for (float v = float(round + 1);; v += kills) {  // save whole sets of one value, forever
        params[w].fill(v);
        save_checkpoint(path, params);
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    BOOST_TEST(WIFSIGNALED(status));

    auto loaded = make_parameters<float>(param(w, {1024, 4096}));
    load_checkpoint(path, loaded);
    const float first = loaded[w][0];
    bool whole = true;
    for (float v : loaded[w]) whole = whole && v == first;
    BOOST_TEST(whole, "round " << round << ": the checkpoint mixes two saves");
    BOOST_TEST(temporaries(dir) <= 1u, "round " << round);
  }
  // A save after the kills replaces the leftover temporary.
  save_checkpoint(path, params);
  BOOST_TEST(temporaries(dir) == 0u);
  fs::remove_all(dir);
}

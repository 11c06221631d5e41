#define BOOST_TEST_MODULE progress_and_metrics
#include <boost/test/unit_test.hpp>

#include <typegrad/data/batches.hpp>
#include <typegrad/train/metrics.hpp>
#include <typegrad/train/parameters.hpp>
#include <typegrad/train/progress.hpp>
#include <typegrad/typegrad.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

using namespace typegrad;
using namespace typegrad::train;
namespace tt = boost::test_tools;

namespace {
// Everything written to a temporary stream.
struct captured {
  std::FILE* f = std::tmpfile();
  ~captured() { std::fclose(f); }
  std::string text() const {
    std::fflush(f);
    std::string out;
    std::rewind(f);
    for (int c; (c = std::fgetc(f)) != EOF;) out.push_back(char(c));
    return out;
  }
};
}  // namespace

BOOST_AUTO_TEST_CASE(durations) {
  BOOST_TEST(format_duration(0) == "0:00");
  BOOST_TEST(format_duration(17.4) == "0:17");
  BOOST_TEST(format_duration(65) == "1:05");
  BOOST_TEST(format_duration(3723) == "1:02:03");
  BOOST_TEST(format_duration(-1) == "--:--");
  BOOST_TEST(format_duration(std::nan("")) == "--:--");
}

BOOST_AUTO_TEST_CASE(progress_line) {
  progress_state s{.epoch = 2, .epochs = 5, .step = 412, .steps = 938, .loss = 0.43121, .samples_per_second = 1850.4,
                   .elapsed_seconds = 13.0};
  // ETA: 13 s for 412 steps, 526 to go: 16.6 s.
  BOOST_TEST(format_progress(s, 10) == "epoch 2/5 [====>     ] 412/938 loss 0.4312  1850 samples/s  ETA 0:17");
  BOOST_TEST(format_progress(s, 0) == "epoch 2/5 412/938 loss 0.4312  1850 samples/s  ETA 0:17");
  s.step = 0;
  s.loss = 0;
  s.samples_per_second = 0;
  BOOST_TEST(format_progress(s, 4) == "epoch 2/5 [    ]   0/938 loss 0.0000  0 samples/s  ETA --:--");
  s.step = s.steps;
  BOOST_TEST(format_progress(s, 4) == "epoch 2/5 [====] 938/938 loss 0.0000  0 samples/s  ETA 0:00");
}

BOOST_AUTO_TEST_CASE(modes) {
  {
    captured out;
    progress p(progress_mode::quiet, 2, 3, out.f);
    p.start_epoch(0);
    for (int i = 0; i < 3; ++i) p.update(1.0, 4);
    p.end_epoch("test accuracy 0.5");
    BOOST_TEST(out.text().empty());
    BOOST_TEST(p.mean_loss() == 1.0);
  }
  {
    captured out;  // not a terminal: automatic means plain lines (none within 10 s), then the summary
    progress p(progress_mode::automatic, 2, 3, out.f);
    BOOST_TEST((p.mode() == progress_mode::lines));
    p.start_epoch(1);
    p.update(2.0, 1);
    p.update(1.0, 3);  // the running mean is sample-weighted: (2 + 3) / 4
    BOOST_TEST(p.mean_loss() == 1.25);
    BOOST_TEST(p.state().epoch == 2u);
    BOOST_TEST(p.state().step == 2u);
    p.end_epoch("test accuracy 0.5");
    const auto text = out.text();
    BOOST_TEST(text.rfind("epoch 2/2  loss 1.2500  test accuracy 0.5  (", 0) == 0u, text);
    BOOST_TEST(text.find('\r') == std::string::npos);
    BOOST_TEST(text.back() == '\n');
  }
  {
    captured out;  // a bar redraws in place and ends the epoch on its own line
    progress p(progress_mode::bar, 1, 2, out.f);
    p.start_epoch(0);
    p.update(0.5, 8);
    p.update(0.5, 8);  // the last step is always drawn
    p.end_epoch();
    const auto text = out.text();
    BOOST_TEST(text.rfind("\repoch 1/1 [", 0) == 0u, text);
    BOOST_TEST(text.find("2/2 loss 0.5000") != std::string::npos, text);
    BOOST_TEST(text.find("\repoch 1/1  loss 0.5000  (") != std::string::npos, text);
    BOOST_TEST(text.back() == '\n');
  }
  {
    captured out;  // clear() blanks the bar's line and returns to its start
    progress p(progress_mode::bar, 1, 2, out.f);
    p.start_epoch(0);
    p.clear();
    const auto text = out.text();
    const auto first = text.substr(0, text.find('\r', 1));
    BOOST_TEST(text == first + "\r" + std::string(first.size() - 1, ' ') + "\r");
  }
}

BOOST_AUTO_TEST_CASE(accuracy_and_means) {
  // Rows: argmax 2 (label 2: right), argmax 0 (label 1: wrong), a tie between 0 and 1 goes to 0 (right).
  tensor<float, 2> logits({3, 3}, {0.1f, 0.2f, 0.9f, 5, -1, 2, 3, 3, 1});
  tensor<float, 1> labels({3}, {2, 1, 0});
  BOOST_TEST(correct_predictions<float>(std::as_const(logits).as_view(), std::as_const(labels).as_view()) == 2u);
  accuracy_meter acc;
  acc.add<float>(std::as_const(logits).as_view(), std::as_const(labels).as_view());
  acc.add<float>(std::as_const(logits).as_view(), std::as_const(labels).as_view());
  BOOST_TEST(acc.value() == 4.0 / 6.0);
  BOOST_TEST(acc.total() == 6u);
  // (N, T, C) logits with (N, T) labels: every position counts.
  tensor<double, 3> seq({1, 2, 2}, {1, 0, 0, 1});
  tensor<double, 2> seq_labels({1, 2}, {0, 0});
  BOOST_TEST(correct_predictions<double>(std::as_const(seq).as_view(), std::as_const(seq_labels).as_view()) == 1u);
  // Many rows: the parallel count equals a serial one.
  tensor<double, 2> big({20000, 10});
  tensor<double, 1> big_labels({20000});
  std::size_t expected = 0;
  for (std::size_t r = 0; r < 20000; ++r) {
    big(r, (r * 7) % 10) = 1;
    big_labels[r] = double(r % 10);
    expected += (r * 7) % 10 == r % 10;
  }
  BOOST_TEST(correct_predictions<double>(std::as_const(big).as_view(), std::as_const(big_labels).as_view()) == expected);

  tensor<float, 1> bad({3}, {2, 1, 3});
  BOOST_CHECK_THROW(correct_predictions<float>(std::as_const(logits).as_view(), std::as_const(bad).as_view()), value_error);
  tensor<float, 1> two({2}, {0, 1});
  BOOST_CHECK_THROW(correct_predictions<float>(std::as_const(logits).as_view(), std::as_const(two).as_view()), shape_error);

  mean_meter m;
  m.add(1.0, 3);
  m.add(3.0, 1);
  BOOST_TEST(m.value() == 1.5);
  m.reset();
  BOOST_TEST(m.value() == 0.0);
}

BOOST_AUTO_TEST_CASE(evaluate_over_batches) {
  // 5 images of 1 x 2 pixels; a fixed linear classifier; batches of 2 (the last one partial).
  namespace fs = std::filesystem;
  const auto dir = fs::temp_directory_path() / ("typegrad_eval_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<std::size_t> idims{5, 1, 2}, ldims{5};
  const std::vector<std::uint8_t> px{255, 0, 0, 255, 255, 0, 0, 255, 255, 0}, lb{0, 1, 1, 1, 0};
  data::write_idx(dir / "i", idims, px);
  data::write_idx(dir / "l", ldims, lb);
  auto ds = data::load_labelled_images(dir / "i", dir / "l");
  fs::remove_all(dir);

  constexpr var<"x", 2> x;
  constexpr var<"labels", 1> labels;
  constexpr var<"w", 2> w;
  auto logits = dense(x, w);
  auto loss = softmax_cross_entropy(logits, labels);
  auto program = compile<double>(loss, logits);
  auto params = make_parameters<double>(param(w, {2, 2}));
  params[w](0, 0) = params[w](1, 1) = 1;  // logits = pixels: class = the bright pixel
  params.bind(program);
  data::batcher<double, 2> batches(ds, 2, {.shuffle = false});
  const auto result = evaluate(program, batches, x, labels, loss, logits);
  BOOST_TEST(result.samples == 5u);
  BOOST_TEST(result.accuracy == 4.0 / 5.0);  // image 2 (bright left pixel, label 1) is the one wrong
  // Per-image loss: log(1 + e^-1) when right, log(1 + e) when wrong.
  const double right = std::log1p(std::exp(-1.0)), wrong = std::log1p(std::exp(1.0));
  BOOST_TEST(result.loss == (4 * right + 1 * wrong) / 5, tt::tolerance(1e-12));
}

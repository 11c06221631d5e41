// The type-erased half of the gradient checker: probing, tolerances, kinks, the report table.
#include "typegrad/tools/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

namespace typegrad {

namespace {
constexpr double eps = std::numeric_limits<double>::epsilon();
constexpr std::size_t max_kink_warnings = 5;  // per variable

// f evaluated at the probe's point moved by +t and by -t (along an element or a direction),
// with the steps actually taken (x + t - x is not t in floating point).
struct shifted {
  double fp, fm, hp, hm;
};
using shift_fn = std::function<shifted(std::size_t, double)>;

// One probe: an element (every_element) or a direction (random_directions).
struct probe {
  double analytic = 0, numeric = 0;
  double plus = 0, minus = 0;  // one-sided differences
  double noise = 0;            // the central difference's rounding floor (~ eps |f| / h)
  double spread = 0;           // the size of the terms summed into analytic (directions), else 0
  double step = 0;
};

probe make_probe(double analytic, double spread, double f0, const shifted& s, double step) {
  probe p;
  p.analytic = analytic;
  p.spread = spread;
  p.step = step;
  p.numeric = (s.fp - s.fm) / (s.hp + s.hm);
  p.plus = (s.fp - f0) / s.hp;
  p.minus = (f0 - s.fm) / s.hm;
  p.noise = 8 * eps * std::max({std::abs(f0), std::abs(s.fp), std::abs(s.fm)}) / (s.hp + s.hm);
  return p;
}

std::string index_text(const shape& s, std::size_t flat) {
  if (s.rank() == 0) return "()";
  auto strides = s.strides();
  std::string out = "(";
  for (std::size_t d = 0; d < s.rank(); ++d) {
    out += fmt::format("{}{}", d ? ", " : "", flat / strides[d]);
    flat %= strides[d];
  }
  return out + ")";
}

double auto_step(double x) { return std::cbrt(eps) * std::max(1.0, std::abs(x)); }

std::string probe_name(const detail::checked_variable& v, check_mode mode, std::size_t i) {
  if (mode == check_mode::random_directions) return fmt::format("direction {}", i);
  return index_text(v.shape, i);
}

// How a probe is judged: passes within tolerance, straddles a kink, or fails.
enum class verdict { pass, kink, fail };

struct judge_context {
  const check_options& o;
  double scale;  // the variable's largest |numeric|, 1 when all are 0
  double f0;
  const shift_fn& shift;
};

double tolerance(const judge_context& c, const probe& p) {
  return c.o.atol * c.scale + c.o.rtol * std::max({std::abs(p.analytic), std::abs(p.numeric), p.spread}) + p.noise;
}
bool within(const judge_context& c, const probe& p) {
  return std::isfinite(p.analytic) && std::isfinite(p.numeric) && std::abs(p.analytic - p.numeric) <= tolerance(c, p);
}
double gap(const probe& p) { return std::abs(p.plus - p.minus); }
// Above the rounding noise of the one-sided differences (each ~ 2 * p.noise).
bool significant_gap(const probe& p) { return gap(p) > 100 * p.noise; }

// For smooth f the gap between the one-sided differences is f'' h (+ O(h^3)): it halves with the
// step. Across a kink it is the jump in slope, whatever the step. So a gap that does not shrink
// when the step is halved means a non-differentiable point within the probe's interval.
// A probe that fails is retried with halved steps (up to 4 times): it passes if a smaller step
// agrees (a kink or strong curvature just beyond the smaller interval), is a kink if the gap
// persists and the analytic value lies between the one-sided differences (a subgradient), and
// fails otherwise. A passing probe with a large gap is also tested, so that kinks which happen to
// pass (abs at 0: central difference 0) are reported too.
verdict judge_probe(const judge_context& c, std::size_t i, probe& p) {
  const bool ok = within(c, p);
  if (!std::isfinite(p.analytic) || !std::isfinite(p.numeric)) return verdict::fail;
  if (ok) {
    if (!significant_gap(p) || gap(p) <= 1e-2 * std::max({std::abs(p.plus), std::abs(p.minus), c.scale}))
      return verdict::pass;
    const probe half = make_probe(p.analytic, p.spread, c.f0, c.shift(i, p.step / 2), p.step / 2);
    return gap(half) > 0.75 * gap(p) ? verdict::kink : verdict::pass;
  }
  probe prev = p;
  for (int k = 0; k < 4; ++k) {
    const double h = prev.step / 2;
    probe q = make_probe(p.analytic, p.spread, c.f0, c.shift(i, h), h);
    if (within(c, q)) {
      p = q;  // report the refined numeric value
      return verdict::pass;
    }
    const double tol = tolerance(c, q);
    const double lo = std::min(q.plus, q.minus), hi = std::max(q.plus, q.minus);
    if (significant_gap(q) && gap(q) > 0.75 * gap(prev) && gap(q) > 10 * tol && q.analytic >= lo - tol &&
        q.analytic <= hi + tol) {
      p = q;
      return verdict::kink;
    }
    if (!std::isfinite(q.numeric)) break;
    prev = q;
  }
  return verdict::fail;
}

variable_report judge(const detail::checked_variable& v, std::vector<probe>& probes, const check_options& o,
                      double f0, const shift_fn& shift, std::vector<std::string>& warnings) {
  variable_report r;
  r.name = v.name;
  r.shape = v.shape;
  r.checked = probes.size();
  r.worst_index_text.assign(1, '-');  // (not = "-": a g++ 12 -Wrestrict false positive)
  double scale = 0;
  for (const auto& p : probes)
    if (std::isfinite(p.numeric)) scale = std::max(scale, std::abs(p.numeric));
  if (scale == 0) scale = 1;
  const judge_context c{o, scale, f0, shift};
  double worst_ratio = -1;
  for (std::size_t i = 0; i < probes.size(); ++i) {
    auto& p = probes[i];
    // After many confirmed failures, skip the retries: the gradient is wrong.
    const verdict vd = r.failed > 20 ? (within(c, p) ? verdict::pass : verdict::fail) : judge_probe(c, i, p);
    if (vd == verdict::kink) {
      if (r.kinks++ < max_kink_warnings)
        warnings.push_back(fmt::format(
            "kink: {} at {}: f is not differentiable there (one-sided differences {:.6g} and {:.6g}; analytic "
            "{:.6g}); probe excluded",
            v.name, probe_name(v, o.mode, i), p.minus, p.plus, p.analytic));
      continue;
    }
    if (vd == verdict::fail) ++r.failed;
    const bool finite = std::isfinite(p.analytic) && std::isfinite(p.numeric);
    const double err = std::abs(p.analytic - p.numeric);
    const double rel = err / std::max({std::abs(p.analytic), std::abs(p.numeric), std::numeric_limits<double>::min()});
    const double ratio = finite ? err / tolerance(c, p) : std::numeric_limits<double>::infinity();
    if (finite) {
      r.max_abs_error = std::max(r.max_abs_error, err);
      r.max_rel_error = std::max(r.max_rel_error, rel);
    } else {
      r.max_abs_error = r.max_rel_error = std::numeric_limits<double>::quiet_NaN();
    }
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      r.worst_index = i;
      r.worst_index_text = probe_name(v, o.mode, i);
      r.analytic = p.analytic;
      r.numeric = p.numeric;
    }
  }
  if (r.kinks > max_kink_warnings)
    warnings.push_back(fmt::format("kink: {}: {} more probes straddle non-differentiable points (excluded)", v.name,
                                   r.kinks - max_kink_warnings));
  r.passed = r.failed == 0;
  return r;
}

variable_report check_elements(detail::checked_variable& v, const std::function<double()>& eval, double f0,
                               const check_options& o, std::vector<std::string>& warnings) {
  const shift_fn shift = [&](std::size_t i, double t) {
    const double x = v.point[i];
    const double xp = x + t, xm = x - t;
    v.point[i] = xp;
    const double fp = eval();
    v.point[i] = xm;
    const double fm = eval();
    v.point[i] = x;
    return shifted{fp, fm, xp - x, x - xm};
  };
  std::vector<probe> probes(v.point.size());
  for (std::size_t i = 0; i < v.point.size(); ++i) {
    const double h = o.step > 0 ? o.step : auto_step(v.point[i]);
    probes[i] = make_probe(v.analytic[i], 0, f0, shift(i, h), h);
  }
  return judge(v, probes, o, f0, shift, warnings);
}

variable_report check_directions(detail::checked_variable& v, const std::function<double()>& eval, double f0,
                                 const check_options& o, std::uint64_t seed, std::vector<std::string>& warnings) {
  const std::size_t n = v.point.size();
  const std::size_t count = n == 0 ? 0 : static_cast<std::size_t>(std::max(o.directions, 0));
  const std::vector<double> x0(v.point.begin(), v.point.end());
  double largest = 0;
  for (double x : x0) largest = std::max(largest, std::abs(x));
  const double h = o.step > 0 ? o.step : auto_step(largest);
  // Seeded unit directions, kept for the retries with smaller steps.
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> dirs(count * n);
  for (std::size_t d = 0; d < count; ++d) {
    double norm2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      dirs[d * n + i] = normal(rng);
      norm2 += dirs[d * n + i] * dirs[d * n + i];
    }
    const double inv = 1 / std::sqrt(norm2);
    for (std::size_t i = 0; i < n; ++i) dirs[d * n + i] *= inv;
  }
  const shift_fn shift = [&](std::size_t d, double t) {
    const double* dir = dirs.data() + d * n;
    for (std::size_t i = 0; i < n; ++i) v.point[i] = x0[i] + t * dir[i];
    const double fp = eval();
    for (std::size_t i = 0; i < n; ++i) v.point[i] = x0[i] - t * dir[i];
    const double fm = eval();
    std::copy(x0.begin(), x0.end(), v.point.begin());
    return shifted{fp, fm, t, t};
  };
  std::vector<probe> probes(count);
  for (std::size_t d = 0; d < count; ++d) {
    const double* dir = dirs.data() + d * n;
    double analytic = 0, spread2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      analytic += dir[i] * v.analytic[i];
      spread2 += (dir[i] * v.analytic[i]) * (dir[i] * v.analytic[i]);
    }
    probes[d] = make_probe(analytic, std::sqrt(spread2), f0, shift(d, h), h);
  }
  return judge(v, probes, o, f0, shift, warnings);
}

std::string shorten(std::string_view s, std::size_t n) {
  if (s.size() <= n) return std::string(s);
  return std::string(s.substr(0, n - 3)) + "...";
}
}  // namespace

const variable_report& gradient_report::operator[](std::string_view name) const {
  for (const auto& v : variables)
    if (v.name == name) return v;
  throw std::out_of_range(fmt::format("gradient_report: no variable named '{}'", name));
}

namespace detail {
gradient_report run_gradient_check(std::vector<checked_variable>& vars, const std::function<double()>& eval,
                                   const check_setup& setup) {
  gradient_report report;
  report.function = setup.function;
  report.precision = setup.precision;
  report.mode = setup.options.mode;
  report.rtol = setup.options.rtol;
  report.atol = setup.options.atol;
  const double f0 = eval();
  if (!std::isfinite(f0))
    report.warnings.push_back(fmt::format("f is not finite at the given point (f = {})", f0));
  for (std::size_t k = 0; k < vars.size(); ++k) {
    auto& v = vars[k];
    if (v.analytic.size() != v.point.size())
      throw std::logic_error(fmt::format("check_gradients: the gradient of {} has {} elements for {} values", v.name,
                                         v.analytic.size(), v.point.size()));
    auto r = setup.options.mode == check_mode::every_element
                 ? check_elements(v, eval, f0, setup.options, report.warnings)
                 : check_directions(v, eval, f0, setup.options, setup.options.seed * 0x9E3779B97F4A7C15ull + k,
                                    report.warnings);
    if (!std::isfinite(f0)) r.passed = false;
    report.variables.push_back(std::move(r));
  }
  return report;
}

void fill_random(std::span<double> out, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  std::bernoulli_distribution sign;
  for (auto& v : out) v = sign(rng) ? u(rng) : -u(rng);
}
}  // namespace detail

std::string to_string(const gradient_report& report) {
  fmt::memory_buffer out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "gradient check {}: f = {}\n", report.ok() ? "passed" : "FAILED", shorten(report.function, 160));
  fmt::format_to(it, "  analytic in {}, central differences in double, {}; rtol {:g}, atol {:g}\n", report.precision,
                 report.mode == check_mode::every_element ? "every element" : "random directions", report.rtol,
                 report.atol);
  const bool directions = report.mode == check_mode::random_directions;
  std::size_t name_w = 8, shape_w = 5, at_w = 8;
  std::vector<std::string> shapes;
  for (const auto& v : report.variables) {
    shapes.push_back(fmt::format("{}", v.shape));
    name_w = std::max(name_w, v.name.size());
    shape_w = std::max(shape_w, shapes.back().size());
    at_w = std::max(at_w, v.worst_index_text.size());
  }
  fmt::format_to(it, "  {:<{}}  {:<{}}  {:>7}  {:>5}  {:>6}  {:>11}  {:>11}  {:<{}}  {:>13}  {:>13}  {}\n", "variable",
                 name_w, "shape", shape_w, directions ? "dirs" : "checked", "kinks", "failed", "max abs err",
                 "max rel err", "worst at", at_w, "analytic", "numeric", "result");
  for (std::size_t i = 0; i < report.variables.size(); ++i) {
    const auto& v = report.variables[i];
    fmt::format_to(it, "  {:<{}}  {:<{}}  {:>7}  {:>5}  {:>6}  {:>11.3g}  {:>11.3g}  {:<{}}  {:>13.6g}  {:>13.6g}  {}\n",
                   v.name, name_w, shapes[i], shape_w, v.checked, v.kinks, v.failed, v.max_abs_error, v.max_rel_error,
                   v.worst_index_text, at_w, v.analytic, v.numeric, v.passed ? "ok" : "FAILED");
  }
  if (report.first_failing_node) fmt::format_to(it, "  first failing node: {}\n", shorten(*report.first_failing_node, 200));
  for (const auto& w : report.warnings) fmt::format_to(it, "  warning: {}\n", w);
  std::string s = fmt::to_string(out);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::ostream& operator<<(std::ostream& os, const gradient_report& report) { return os << to_string(report); }

}  // namespace typegrad

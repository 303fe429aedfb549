// The progress bar: redrawn in place on a terminal, plain lines in a log.
#include <xgrad/train/progress.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/core.h>
#include <unistd.h>
#include <xgrad/core/error.hpp>

namespace xgrad::train {

namespace {

ProgressOptions::Mode resolve(const ProgressOptions& options) {
  if (const char* env = std::getenv("XGRAD_PROGRESS")) {
    if (std::strcmp(env, "bar") == 0) return ProgressOptions::Mode::bar;
    if (std::strcmp(env, "lines") == 0) return ProgressOptions::Mode::lines;
    if (std::strcmp(env, "quiet") == 0) return ProgressOptions::Mode::quiet;
  }
  if (options.mode() != ProgressOptions::Mode::automatic) return options.mode();
  return ::isatty(::fileno(options.out())) ? ProgressOptions::Mode::bar : ProgressOptions::Mode::lines;
}

// Metric values with four significant decimals, small ones in scientific notation.
std::string number(double v) { return (v != 0 && std::abs(v) < 1e-3) ? fmt::format("{:.3e}", v) : fmt::format("{:.4f}", v); }

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto s = static_cast<long long>(std::llround(seconds));
  if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
}

ProgressBar::ProgressBar(std::string label, std::int64_t total_batches, ProgressOptions options)
    : label_(std::move(label)), total_(total_batches), options_(options), mode_(resolve(options)),
      start_(std::chrono::steady_clock::now()), last_line_(start_), last_update_(start_) {
  if (total_batches < 0) throw Error("ProgressBar: negative batch count " + std::to_string(total_batches));
}

void ProgressBar::update(std::int64_t samples, const Metrics& metrics) {
  if (finished_) throw Error("ProgressBar::update: '" + label_ + "' is already finished");
  ++done_;
  samples_ += samples;
  for (const auto& metric : metrics) {
    auto it = std::find_if(sums_.begin(), sums_.end(), [&](const auto& s) { return s.first == metric.first; });
    if (it == sums_.end()) it = sums_.insert(sums_.end(), {metric.first, 0.0});
    it->second += metric.second * static_cast<double>(samples);
  }
  const auto now = std::chrono::steady_clock::now();
  last_update_ = now;
  const double since = std::chrono::duration<double>(now - last_line_).count();
  if (mode_ == ProgressOptions::Mode::bar && (since >= 0.1 || done_ == total_)) {  // ≤ 10 redraws a second
    last_line_ = now;
    draw();
  } else if (mode_ == ProgressOptions::Mode::lines &&
             since >= options_.line_interval() && done_ < total_) {
    last_line_ = now;
    draw();
  }
}

double ProgressBar::mean(const std::string& name) const {
  for (const auto& [n, sum] : sums_)
    if (n == name) return samples_ > 0 ? sum / static_cast<double>(samples_) : 0.0;
  throw Error("ProgressBar::mean: no metric '" + name + "' was given to update()");
}

double ProgressBar::training_seconds() const {
  return std::chrono::duration<double>(last_update_ - start_).count();
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::means_text() const {
  std::string out;
  for (const auto& [name, sum] : sums_) out += fmt::format("  {} {}", name, number(mean(name)));
  return out;
}

void ProgressBar::draw() {
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0;
  std::string line;
  if (mode_ == ProgressOptions::Mode::bar) {
    const int width = std::max(options_.width(), 1);
    // In 128 bits: width × done overflows an int64 for a total near 2^63.
    const int filled = total_ > 0 ? static_cast<int>(static_cast<__int128>(width) * std::min<std::int64_t>(done_, total_) / total_) : width;
    const double eta = done_ > 0 ? elapsed * static_cast<double>(total_ - done_) / static_cast<double>(done_) : NAN;
    line = fmt::format("\r{} [{}{}] {}/{}  ETA {}{}  {:.0f} samples/s\x1b[K", label_, std::string(filled, '='),
                       std::string(width - filled, ' '), done_, total_, format_duration(eta), means_text(), rate);
  } else {
    line = fmt::format("{}  {}/{}  {}{}  {:.0f} samples/s\n", label_, done_, total_, format_duration(elapsed), means_text(), rate);
  }
  std::fputs(line.c_str(), options_.out());
  std::fflush(options_.out());
}

Metrics ProgressBar::finish(const Metrics& extra) {
  if (finished_) throw Error("ProgressBar::finish: '" + label_ + "' is already finished");
  Metrics result;
  for (const auto& [name, sum] : sums_) result.emplace_back(name, mean(name));
  result.insert(result.end(), extra.begin(), extra.end());  // epoch-end metrics, shown as given
  std::string text;
  for (const auto& [name, value] : result) text += fmt::format("  {} {}", name, number(value));
  // Time and rate up to the last batch: what finish() is given (validation) is not training.
  const double elapsed = training_seconds();
  const double rate = elapsed > 0 ? static_cast<double>(samples_) / elapsed : 0.0;
  const char* clear = mode_ == ProgressOptions::Mode::bar ? "\r\x1b[K" : "";
  std::fputs(fmt::format("{}{}  {}/{}  {}{}  {:.0f} samples/s\n", clear, label_, done_, total_, format_duration(elapsed),
                         text, rate)
                 .c_str(),
             options_.out());
  std::fflush(options_.out());
  finished_ = true;
  return result;
}

}  // namespace xgrad::train

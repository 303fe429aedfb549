#pragma once
/// \file
/// The examples' harness, not part of xgrad: a clock for a training script's time, and its
/// summary — the numbers it reports (its `--json` file) and the checks that it beat its
/// baselines (what examples/smoke_test.cmake reads). Built as the `xgrad_example_common`
/// library; include it as "common/run_summary.hpp".
#include <chrono>
#include <concepts>
#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <xgrad/optim/plateau.hpp>

namespace xgrad::examples {

/// Wall-clock and CPU seconds (this process's) of the laps between start() and stop(),
/// added up: a training loop's time without its validation.
/// Example:
///     examples::Stopwatch clock;                  // running
///     for (...) { train_epoch(); clock.stop(); validate(); clock.start(); }
///     fmt::print("trained in {}\n", train::format_duration(clock.seconds()));
class Stopwatch {
 public:
  /// Starts running unless `running` is false.
  explicit Stopwatch(bool running = true);
  /// Starts a lap; throws when it already runs.
  void start();
  /// Ends the current lap; throws when it does not run.
  void stop();
  bool running() const { return running_; }
  /// Seconds of every lap so far, the current one included.
  double seconds() const;
  double cpu_seconds() const;
  /// Adds time counted elsewhere (a resumed run's earlier part).
  void add(double seconds, double cpu_seconds = 0.0);

 private:
  bool running_ = false;
  double seconds_ = 0.0, cpu_seconds_ = 0.0;
  std::chrono::steady_clock::time_point lap_start_;
  std::clock_t lap_cpu_start_ = 0;
};

/// Which way a metric improves: optim::Mode's min (lower is better) or max (higher).
using optim::Mode;

/// A run's results by name, in the order they were set, written as one JSON object; and its
/// checks against baselines, kept under "checks" (what examples/smoke_test.cmake reads).
/// Example:
///     examples::RunSummary summary;
///     summary.set("loss_first", history.epochs.front().at("loss")).set("test_rmse", rmse);
///     summary.check("test_rmse", rmse, "persistence_rmse", persistence, optim::Mode::min, 0.10);
///     if (!json_path.empty()) summary.write(json_path);
///     return summary.passed() ? 0 : 1;
class RunSummary {
 public:
  RunSummary();
  ~RunSummary();
  RunSummary(const RunSummary& other);
  RunSummary& operator=(const RunSummary& other);
  RunSummary(RunSummary&&) noexcept;
  RunSummary& operator=(RunSummary&&) noexcept;

  /// Sets `key` (replacing an earlier value, keeping its place). NaN and infinities are
  /// written as null. Strings may hold any bytes: invalid UTF-8 is written as U+FFFD.
  RunSummary& set(const std::string& key, double value);
  /// Any integer type (counts, seeds, sizes).
  template <std::integral T>
  RunSummary& set(const std::string& key, T value) {
    if constexpr (std::is_signed_v<T>) return set_signed(key, static_cast<std::int64_t>(value));
    else return set_unsigned(key, static_cast<std::uint64_t>(value));
  }
  RunSummary& set(const std::string& key, bool value);
  RunSummary& set(const std::string& key, const std::string& value);
  RunSummary& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
  RunSummary& set(const std::string& key, const std::vector<double>& values);
  RunSummary& set(const std::string& key, const std::vector<std::int64_t>& values);
  RunSummary& set(const std::string& key, const std::vector<std::string>& values);
  /// An object of number arrays by name, e.g. {"lstm": [1, 1], "gru": [1, 0.98]}.
  RunSummary& set(const std::string& key, const std::map<std::string, std::vector<double>>& arrays);
  /// A nested object.
  RunSummary& set(const std::string& key, const RunSummary& object);
  /// Appends `object` to the array `key` (made on first use); throws if `key` holds something else.
  RunSummary& append(const std::string& key, const RunSummary& object);

  /// Records that `metric` (= value) must beat `baseline` (= baseline_value) by `margin`, a
  /// fraction of the baseline: lower is better → value ≤ (1 − margin)·baseline; higher →
  /// value ≥ (1 + margin)·baseline. The margin is ≥ 0 (and < 1 when lower is better). NaN
  /// never passes. Returns whether it passed.
  /// Example: `summary.check("test_acc", acc, "majority_acc", 0.5, optim::Mode::max, 0.2)` needs acc ≥ 0.6.
  bool check(const std::string& metric, double value, const std::string& baseline, double baseline_value,
             Mode better, double margin = 0.0);
  /// Whether every check passed (true when there is none).
  bool passed() const;
  /// One line per check, e.g. "test_rmse 0.0250 ≤ 0.0345 (persistence_rmse 0.0383 − 10 %): passed".
  std::vector<std::string> check_lines() const;

  bool contains(const std::string& key) const;
  /// The number at `key`; throws naming the key when it is absent or not a number.
  double number(const std::string& key) const;
  /// The JSON text (indented by 2, ending with a newline).
  std::string json() const;
  /// Writes json() to `path` atomically.
  void write(const std::string& path) const;

 private:
  RunSummary& set_signed(const std::string& key, std::int64_t value);
  RunSummary& set_unsigned(const std::string& key, std::uint64_t value);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace xgrad::examples

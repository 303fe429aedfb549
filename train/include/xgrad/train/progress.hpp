#pragma once
/// \file
/// Progress of a training epoch: a live bar on a terminal, plain lines in a log.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/core/options.hpp>

namespace xgrad::train {

/// Metric names and values, in display order: {{"loss", 0.25}, {"acc", 0.91}}.
using Metrics = std::vector<std::pair<std::string, double>>;

/// How a ProgressBar shows itself.
struct ProgressOptions {
  /// The display: a bar, plain lines, or the summary alone.
  enum class Mode {
    automatic,  ///< a bar when `out` is a terminal, plain lines otherwise
    bar,        ///< a bar redrawn in place
    lines,      ///< a plain line every `line_interval` seconds
    quiet,      ///< only the summary line
  };
  /// The display (XGRAD_PROGRESS overrides `automatic`).
  XGRAD_ARG(Mode, mode) = Mode::automatic;
  /// Where the bar or the lines go.
  XGRAD_ARG(std::FILE*, out) = stdout;
  /// Seconds between two plain lines (Mode::lines).
  XGRAD_ARG(double, line_interval) = 10.0;
  /// Columns of the bar.
  XGRAD_ARG(int, width) = 24;
};

/// One epoch's progress: batch i/n, elapsed time and ETA, running (sample-weighted) means of
/// the metrics given per batch, and samples/s. `finish` prints one summary line (training
/// time and samples/s up to the last batch), with any epoch-end metrics (validation)
/// appended, and returns the epoch's means.
/// The environment variable XGRAD_PROGRESS=bar|lines|quiet overrides `automatic`.
/// Example:
///
///     train::ProgressBar bar(fmt::format("epoch {}/{}", e, epochs), batches.num_batches());
///     for (...) { ...; bar.update(batch_size, {{"loss", loss.item()}}); }
///     bar.finish({{"val_acc", acc}});   // "epoch 3/10  120/120  4.1 s  loss 0.4123  val_acc 0.8650  7512 samples/s"
class ProgressBar {
 public:
  /// A bar for `total_batches` batches, each line starting with `label`; the clock starts now.
  ProgressBar(std::string label, std::int64_t total_batches, ProgressOptions options = {});
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// One batch of `samples` samples is done; `metrics` are that batch's values.
  void update(std::int64_t samples, const Metrics& metrics = {});
  /// Ends the epoch: prints the summary line and returns the running means followed by `extra`.
  Metrics finish(const Metrics& extra = {});

  /// The sample-weighted mean of `name` so far; throws if it was never given.
  double mean(const std::string& name) const;
  /// Seconds since construction.
  double elapsed_seconds() const;
  /// Seconds from construction to the last update(): the epoch's training time, without
  /// what ran after it (validation). The summary line's time and samples/s use it.
  double training_seconds() const;
  /// The samples counted by update() so far.
  std::int64_t samples() const { return samples_; }

 private:
  void draw();
  std::string means_text() const;

  std::string label_;
  std::int64_t total_, done_ = 0, samples_ = 0;
  ProgressOptions options_;
  ProgressOptions::Mode mode_;
  std::vector<std::pair<std::string, double>> sums_;  // sample-weighted sums, in first-seen order
  std::chrono::steady_clock::time_point start_, last_line_, last_update_;
  bool finished_ = false;
};

/// "1:02:03", "4:05" or "7.2 s": a duration for people.
std::string format_duration(double seconds);

}  // namespace xgrad::train

#pragma once
/// \file
/// Metrics to a CSV file, one row per epoch, safe against interruption.
#include <string>
#include <vector>

#include <xgrad/train/progress.hpp>

namespace xgrad::train {

/// A CSV file of metrics with a fixed header. Every `log` rewrites the file atomically, so it
/// always holds every row logged so far and never a torn one. With `resume`, the rows already
/// in the file are kept (its header must match) so a resumed run continues the same file.
/// Example:
///
///     train::CsvLogger log("out/metrics.csv", {"epoch", "loss", "val_acc"});
///     log.log({epoch, loss, acc});
class CsvLogger {
 public:
  /// A log at `path` with a header of `columns`; the file is (re)written with each row. With
  /// `resume`, the rows already in the file are kept.
  CsvLogger(std::string path, std::vector<std::string> columns, bool resume = false);

  /// Appends a row; `values` has one number per column.
  void log(const std::vector<double>& values);
  /// Appends a row from named metrics (what ProgressBar::finish returns); every column must
  /// be named once. Example: `log.log_metrics({{"epoch", e}, {"loss", l}});`
  void log_metrics(const Metrics& metrics);
  /// Keeps the first `rows` rows (a resumed run drops rows past its checkpoint).
  void truncate(std::size_t rows);

  /// The number of rows logged (the header excluded).
  std::size_t rows() const { return lines_.size(); }
  /// The file it writes.
  const std::string& path() const { return path_; }

 private:
  void write() const;

  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::string> lines_;
};

}  // namespace xgrad::train

#pragma once
/// \file PNG plots of CSV files through gnuplot (Debian's gnuplot-nox), when it is installed.
#include <string>
#include <utility>
#include <vector>

namespace xgrad::train {

/// Whether `gnuplot` is on PATH.
bool have_gnuplot();

/// Runs `script` through gnuplot; returns false when gnuplot is missing or fails.
bool run_gnuplot(const std::string& script);

/// A line plot of columns of a CSV file with a header row (1-based column numbers).
struct PlotOptions {
  std::string title_, xlabel_, ylabel_;
  int x_column_ = 1;
  std::vector<int> y_columns_ = {2};
  bool log_y_ = false, points_ = false;
  int width_ = 900, height_ = 500;

  PlotOptions& title(std::string t) { title_ = std::move(t); return *this; }
  PlotOptions& xlabel(std::string t) { xlabel_ = std::move(t); return *this; }
  PlotOptions& ylabel(std::string t) { ylabel_ = std::move(t); return *this; }
  PlotOptions& x_column(int c) { x_column_ = c; return *this; }
  PlotOptions& y_columns(std::vector<int> c) { y_columns_ = std::move(c); return *this; }
  PlotOptions& log_y(bool on) { log_y_ = on; return *this; }
  PlotOptions& points(bool on) { points_ = on; return *this; }
  PlotOptions& size(int w, int h) { width_ = w; height_ = h; return *this; }
};

/// Plots `csv` into `png` (each y column a line, titled by its header); returns whether the
/// PNG was written. Without gnuplot it returns false and the CSV is the result.
/// Example: `train::plot_csv("out/loss.csv", "out/loss.png", train::PlotOptions().y_columns({2, 3}).log_y(true));`
bool plot_csv(const std::string& csv, const std::string& png, const PlotOptions& options = {});

/// The one-line notice to print when plots were skipped.
inline const char* gnuplot_notice() { return "gnuplot not found: wrote CSV only (apt-get install gnuplot-nox for PNG plots)"; }

}  // namespace xgrad::train

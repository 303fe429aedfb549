#pragma once
/// \file
/// PNG plots of CSV files through gnuplot (Debian's gnuplot-nox), when it is installed.
#include <string>
#include <utility>
#include <vector>

#include <xgrad/core/options.hpp>

namespace xgrad::train {

/// Whether `gnuplot` is on PATH.
bool have_gnuplot();

/// Runs `script` through gnuplot; returns false when gnuplot is missing or fails.
bool run_gnuplot(const std::string& script);

/// A line plot of columns of a CSV file with a header row (1-based column numbers).
/// Example: `train::PlotOptions().title("loss").y_columns({2, 3}).log_y(true).size(1200, 600)`
struct PlotOptions {
  /// The title above the plot (none when empty).
  XGRAD_ARG(std::string, title);
  /// The x axis's label (none when empty).
  XGRAD_ARG(std::string, xlabel);
  /// The y axis's label (none when empty).
  XGRAD_ARG(std::string, ylabel);
  /// The column on the x axis, 1-based.
  XGRAD_ARG(int, x_column) = 1;
  /// The columns drawn as lines, 1-based, each named by its header in the legend.
  XGRAD_ARG(std::vector<int>, y_columns) = {2};
  /// A logarithmic y axis.
  XGRAD_ARG(bool, log_y) = false;
  /// Mark every data point on the lines.
  XGRAD_ARG(bool, points) = false;
  /// The PNG's size in pixels.
  XGRAD_ARG(int, width) = 900;
  /// The PNG's height in pixels.
  XGRAD_ARG(int, height) = 500;

 public:
  /// Sets width and height at once. Example: `train::PlotOptions().size(1200, 600)`
  PlotOptions& size(int w, int h) { return width(w).height(h); }
};

/// Plots `csv` into `png` (each y column a line, titled by its header); returns whether the
/// PNG was written. Without gnuplot it returns false and the CSV is the result.
/// Example: `train::plot_csv("out/loss.csv", "out/loss.png", train::PlotOptions().y_columns({2, 3}).log_y(true));`
bool plot_csv(const std::string& csv, const std::string& png, const PlotOptions& options = {});

/// The one-line notice to print when plots were skipped.
inline const char* gnuplot_notice() { return "gnuplot not found: wrote CSV only (apt-get install gnuplot-nox for PNG plots)"; }

}  // namespace xgrad::train

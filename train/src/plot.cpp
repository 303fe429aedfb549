// PNG plots through gnuplot, when it is installed.
#include <xgrad/train/plot.hpp>

#include <cstdio>
#include <cstdlib>

#include <fmt/core.h>

namespace xgrad::train {

namespace {

// Single-quoted gnuplot string: a quote inside is doubled.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

bool run_gnuplot(const std::string& script) {
  if (!have_gnuplot()) return false;
  FILE* pipe = ::popen("gnuplot 2>/dev/null", "w");
  if (pipe == nullptr) return false;
  const bool written = std::fputs(script.c_str(), pipe) >= 0;
  return ::pclose(pipe) == 0 && written;
}

bool plot_csv(const std::string& csv, const std::string& png, const PlotOptions& o) {
  // Written to a temporary name and renamed, like every other output: no half-written PNG.
  // noenhanced: titles and column names such as "train_loss" print as written, "_" is no subscript.
  const std::string tmp = png + ".tmp.png";
  std::string script = fmt::format(
      "set terminal pngcairo noenhanced size {},{}\nset output {}\nset datafile separator ','\nset key autotitle columnhead\n"
      "set grid\nset title {}\nset xlabel {}\nset ylabel {}\n{}",
      o.width(), o.height(), quoted(tmp), quoted(o.title()), quoted(o.xlabel()), quoted(o.ylabel()), o.log_y() ? "set logscale y\n" : "");
  std::string plot;
  for (int y : o.y_columns())
    plot += fmt::format("{}{} using {}:{} with {}", plot.empty() ? "plot " : ", ", quoted(csv), o.x_column(), y,
                        o.points() ? "linespoints" : "lines");
  script += plot + "\nset output\n";
  if (!run_gnuplot(script)) {
    std::remove(tmp.c_str());
    return false;
  }
  return std::rename(tmp.c_str(), png.c_str()) == 0;
}

}  // namespace xgrad::train

// Metrics to CSV: the whole file is rewritten atomically on every row. The CSV writer here is
// train's only one (csv.hpp): fit's metrics.csv uses it too.
#include <xgrad/train/logger.hpp>

#include <algorithm>

#include <fmt/core.h>
#include <xgrad/core/error.hpp>
#include <xgrad/core/io.hpp>
#include <xgrad/train/data.hpp>

#include "checked.hpp"
#include "csv.hpp"

namespace xgrad::train {

std::string detail::csv_number(double value) { return fmt::format("{}", value); }

std::string detail::csv_line(const std::vector<std::string>& cells) {
  std::string out;
  for (const auto& c : cells) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out;
}

void detail::write_csv(const std::string& path, const std::vector<std::string>& columns,
                       const std::vector<std::string>& rows) {
  std::string text = csv_line(columns) + "\n";
  for (const auto& row : rows) text += row + "\n";
  write_file_atomic(path, text);
}

namespace {

std::string header_of(const std::vector<std::string>& columns) { return detail::csv_line(columns); }

}  // namespace

CsvLogger::CsvLogger(std::string path, std::vector<std::string> columns, bool resume)
    : path_(std::move(path)), columns_(std::move(columns)) {
  if (columns_.empty()) throw Error("CsvLogger: '" + path_ + "': no columns");
  for (const auto& c : columns_)
    if (c.empty() || c.find_first_of(",\"\n\r") != std::string::npos)
      throw Error("CsvLogger: '" + path_ + "': column name '" + c + "' is empty or holds a comma, quote or newline");
  if (resume && detail::exists(path_, "CsvLogger")) {
    const Table old = read_csv(path_);
    if (old.columns != columns_)
      throw Error("CsvLogger: cannot resume '" + path_ + "': its header is '" + header_of(old.columns) + "', not '" +
                  header_of(columns_) + "'");
    for (const auto& row : old.rows) lines_.push_back(detail::csv_line(row));
  }
  write();
}

void CsvLogger::log(const std::vector<double>& values) {
  if (values.size() != columns_.size())
    throw Error("CsvLogger::log: '" + path_ + "': " + std::to_string(values.size()) + " values for " +
                std::to_string(columns_.size()) + " columns (" + header_of(columns_) + ")");
  std::vector<std::string> cells;
  for (double v : values) cells.push_back(detail::csv_number(v));
  lines_.push_back(detail::csv_line(cells));
  write();
}

void CsvLogger::log_metrics(const Metrics& metrics) {
  std::vector<double> values(columns_.size());
  std::vector<bool> seen(columns_.size(), false);
  for (const auto& [name, value] : metrics) {
    const auto it = std::find(columns_.begin(), columns_.end(), name);
    if (it == columns_.end())
      throw Error("CsvLogger::log_metrics: '" + path_ + "' has no column '" + name + "' (columns: " + header_of(columns_) + ")");
    const auto i = static_cast<std::size_t>(it - columns_.begin());
    if (seen[i]) throw Error("CsvLogger::log_metrics: '" + path_ + "': column '" + name + "' given twice");
    seen[i] = true;
    values[i] = value;
  }
  for (std::size_t i = 0; i < columns_.size(); ++i)
    if (!seen[i]) throw Error("CsvLogger::log_metrics: '" + path_ + "': no value for column '" + columns_[i] + "'");
  log(values);
}

void CsvLogger::truncate(std::size_t rows) {
  if (rows < lines_.size()) {
    lines_.resize(rows);
    write();
  }
}

void CsvLogger::write() const { detail::write_csv(path_, columns_, lines_); }

}  // namespace xgrad::train

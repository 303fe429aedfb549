// Metrics to CSV: the whole file is rewritten atomically on every row.
#include <xgrad/train/logger.hpp>

#include <algorithm>

#include <fmt/core.h>
#include <xgrad/core/error.hpp>
#include <xgrad/core/io.hpp>
#include <xgrad/train/data.hpp>

#include "checked.hpp"

namespace xgrad::train {

namespace {

std::string header_of(const std::vector<std::string>& columns) {
  std::string out;
  for (const auto& c : columns) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out;
}

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
    for (const auto& row : old.rows) lines_.push_back(header_of(row));
  }
  write();
}

void CsvLogger::log(const std::vector<double>& values) {
  if (values.size() != columns_.size())
    throw Error("CsvLogger::log: '" + path_ + "': " + std::to_string(values.size()) + " values for " +
                std::to_string(columns_.size()) + " columns (" + header_of(columns_) + ")");
  std::string line;
  for (double v : values) {
    if (!line.empty()) line += ',';
    line += fmt::format("{}", v);  // the shortest text that reads back exactly
  }
  lines_.push_back(std::move(line));
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

void CsvLogger::write() const {
  std::string text = header_of(columns_) + "\n";
  for (const auto& line : lines_) text += line + "\n";
  write_file_atomic(path_, text);
}

}  // namespace xgrad::train

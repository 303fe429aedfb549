// train's one CSV writer (logger.cpp): CsvLogger, and through it the CsvLog callback, and
// fit's metrics.csv write their files with it, so numbers and rows are spelt alike.
#pragma once
#include <string>
#include <vector>

namespace xgrad::train::detail {

// A number as a cell: the shortest text that reads back exactly ("0.25", "3", "nan").
std::string csv_number(double value);
// The cells of one line joined by commas (no cell holds a comma, quote or newline).
std::string csv_line(const std::vector<std::string>& cells);
// The header (`columns`) and `rows` (lines made by csv_line), each ending in a newline,
// written to `path` atomically.
void write_csv(const std::string& path, const std::vector<std::string>& columns, const std::vector<std::string>& rows);

}  // namespace xgrad::train::detail

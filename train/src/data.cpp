// Datasets from CSV and JSON files; splits, sliding windows and shuffled mini-batches.
#include <xgrad/train/data.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>
#include <xgrad/core/error.hpp>

#include "checked.hpp"

namespace xgrad::train {

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out;
}

// Part sizes for chronological_split and random_split.
std::vector<std::int64_t> part_sizes(std::int64_t n, const std::vector<double>& fractions, const char* op) {
  if (n < 0) throw Error(std::string(op) + ": negative item count " + std::to_string(n));
  if (fractions.empty()) throw Error(std::string(op) + ": no fractions given");
  double total = 0;
  for (double f : fractions) {
    if (!(f >= 0)) throw Error(std::string(op) + ": fraction " + std::to_string(f) + " is negative");
    total += f;
  }
  if (total > 1 + 1e-9) throw Error(std::string(op) + ": fractions sum to " + std::to_string(total) + ", above 1");
  std::vector<std::int64_t> sizes;
  std::int64_t used = 0;
  for (double f : fractions) {
    sizes.push_back(static_cast<std::int64_t>(std::floor(f * static_cast<double>(n) + 1e-9)));
    used += sizes.back();
  }
  if (std::abs(total - 1) <= 1e-9) sizes.back() += n - used;  // the last part takes the remainder
  return sizes;
}

}  // namespace

std::size_t Table::column_index(const std::string& column) const {
  const auto it = std::find(columns.begin(), columns.end(), column);
  if (it == columns.end()) throw Error("table '" + source + "': no column '" + column + "' (columns: " + join(columns) + ")");
  return static_cast<std::size_t>(it - columns.begin());
}

std::vector<std::string> Table::strings(const std::string& column) const {
  const std::size_t c = column_index(column);
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(row[c]);
  return out;
}

std::vector<double> Table::numbers(const std::string& column) const {
  const std::size_t c = column_index(column);
  std::vector<double> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::string& cell = rows[r][c];
    double v = 0;
    const char* end = cell.data() + cell.size();
    const auto [ptr, ec] = std::from_chars(cell.data(), end, v);
    if (cell.empty() || ec != std::errc() || ptr != end)
      throw Error("table '" + source + "': row " + std::to_string(r + 1) + ", column '" + column + "': '" + cell +
                  "' is not a number");
    out.push_back(v);
  }
  return out;
}

Table read_csv(const std::string& path, char separator) {
  const std::string text = read_text(path);
  Table table{path, {}, {}};
  std::vector<std::string> row;
  std::string cell;
  std::size_t line = 1, row_line = 1;
  bool quoted = false, cell_was_quoted = false;
  auto end_row = [&] {
    row.push_back(std::move(cell));
    cell.clear();
    cell_was_quoted = false;
    if (row.size() == 1 && row[0].empty()) {  // a blank line
      row.clear();
      return;
    }
    if (table.columns.empty()) {
      table.columns = std::move(row);
    } else {
      if (row.size() != table.columns.size())
        throw Error("read_csv: '" + path + "' line " + std::to_string(row_line) + " has " + std::to_string(row.size()) +
                    " cells, the header has " + std::to_string(table.columns.size()));
      table.rows.push_back(std::move(row));
    }
    row.clear();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        if (ch == '\n') ++line;
        cell += ch;
      }
    } else if (ch == '"' && cell.empty() && !cell_was_quoted) {
      quoted = cell_was_quoted = true;
    } else if (ch == separator) {
      row.push_back(std::move(cell));
      cell.clear();
      cell_was_quoted = false;
    } else if (ch == '\n' || ch == '\r') {
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_row();
      row_line = ++line;
    } else {
      cell += ch;
    }
  }
  if (quoted) throw Error("read_csv: '" + path + "' line " + std::to_string(row_line) + ": a quoted cell is never closed");
  if (!cell.empty() || !row.empty() || cell_was_quoted) end_row();
  if (table.columns.empty()) throw Error("read_csv: '" + path + "' is empty (no header line)");
  return table;
}

Table read_json_records(const std::string& path, const std::vector<std::string>& fields) {
  // The nesting depth is bounded while parsing: records are flat, and a file of 100 000
  // nested arrays would otherwise take the recursive teardown of the value past the stack.
  constexpr int kMaxDepth = 64;
  const auto bound_depth = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth > kMaxDepth)
      throw Error("read_json_records: '" + path + "' nests deeper than " + std::to_string(kMaxDepth) + " levels");
    return true;
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_text(path), bound_depth);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    throw Error("read_json_records: '" + path + "' is not valid JSON: " + e.what());
  }
  if (!doc.is_array()) throw Error("read_json_records: '" + path + "' does not hold a JSON array of records");
  Table table{path, fields, {}};
  table.rows.reserve(doc.size());
  for (std::size_t r = 0; r < doc.size(); ++r) {
    const auto& record = doc[r];
    if (!record.is_object()) throw Error("read_json_records: '" + path + "' record " + std::to_string(r) + " is not an object");
    std::vector<std::string> row;
    for (const auto& field : fields) {
      const auto it = record.find(field);
      if (it == record.end())
        throw Error("read_json_records: '" + path + "' record " + std::to_string(r) + " has no field '" + field + "'");
      if (it->is_string()) row.push_back(it->get<std::string>());
      else if (it->is_null()) row.emplace_back();
      else if (it->is_primitive()) row.push_back(it->dump());
      else throw Error("read_json_records: '" + path + "' record " + std::to_string(r) + " field '" + field + "' is not a single value");
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

std::string read_text(const std::string& path) {
  // Only regular files: a directory or a device (/dev/zero) has no end to read up to.
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!ec && status.type() != std::filesystem::file_type::regular)
    throw Error("read_text: '" + path + "' is not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("read_text: cannot open '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error("read_text: cannot read '" + path + "'");
  return std::move(text).str();
}

std::vector<Range> chronological_split(std::int64_t n, const std::vector<double>& fractions) {
  std::vector<Range> parts;
  std::int64_t begin = 0;
  for (std::int64_t size : part_sizes(n, fractions, "chronological_split")) {
    parts.push_back({begin, begin + size});
    begin += size;
  }
  return parts;
}

std::vector<std::vector<std::int64_t>> random_split(std::int64_t n, const std::vector<double>& fractions,
                                                    std::uint64_t seed) {
  const auto sizes = part_sizes(n, fractions, "random_split");
  auto order = detail::allocating("random_split", n, "indices", [&] { return std::vector<std::int64_t>(static_cast<std::size_t>(n)); });
  std::iota(order.begin(), order.end(), 0);
  shuffle(order, seed);
  std::vector<std::vector<std::int64_t>> parts;
  auto it = order.begin();
  for (std::int64_t size : sizes) {
    parts.emplace_back(it, it + size);
    std::sort(parts.back().begin(), parts.back().end());
    it += size;
  }
  return parts;
}

std::vector<std::int64_t> sliding_windows(Range range, std::int64_t window, std::int64_t horizon, std::int64_t stride) {
  if (window < 1 || horizon < 0 || stride < 1)
    throw Error("sliding_windows: window " + std::to_string(window) + ", horizon " + std::to_string(horizon) +
                " and stride " + std::to_string(stride) + " must be >= 1, >= 0 and >= 1");
  // Counted before anything is stored: the first window's last step, the bound every last step
  // stays below (so that `horizon` steps follow it), and the stride between them; unsigned
  // differences, since the range's ends may be any int64s.
  std::int64_t first = 0, stop = 0;
  if (__builtin_add_overflow(range.begin, window - 1, &first) || __builtin_sub_overflow(range.end, horizon, &stop) ||
      first >= stop)
    return {};
  const std::uint64_t span = static_cast<std::uint64_t>(stop) - 1 - static_cast<std::uint64_t>(first);
  const std::uint64_t windows = span / static_cast<std::uint64_t>(stride) + 1;
  if (windows > static_cast<std::uint64_t>(INT64_MAX))
    throw Error("sliding_windows: the range [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
                ") holds more windows than an int64 can count");
  const auto count = static_cast<std::int64_t>(windows);
  auto last = detail::allocating("sliding_windows", count, "windows", [&] {
    std::vector<std::int64_t> v;
    v.reserve(static_cast<std::size_t>(count));
    return v;
  });
  for (std::uint64_t i = 0; i < windows; ++i)
    last.push_back(static_cast<std::int64_t>(static_cast<std::uint64_t>(first) + i * static_cast<std::uint64_t>(stride)));
  return last;
}

void shuffle(std::vector<std::int64_t>& items, std::uint64_t seed) {
  // Fisher–Yates with an unbiased bounded draw (rejection), independent of the standard library.
  std::mt19937_64 rng(seed);
  for (std::size_t i = items.size(); i > 1; --i) {
    const std::uint64_t bound = i, limit = UINT64_MAX - UINT64_MAX % bound;
    std::uint64_t x;
    do x = rng(); while (x >= limit);
    std::swap(items[i - 1], items[x % bound]);
  }
}

BatchSampler::BatchSampler(std::vector<std::int64_t> indices, std::int64_t batch_size, bool shuffle, std::uint64_t seed,
                           bool drop_last)
    : indices_(std::move(indices)), batch_size_(batch_size), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
  if (batch_size < 1) throw Error("BatchSampler: batch_size " + std::to_string(batch_size) + " must be at least 1");
}

BatchSampler::BatchSampler(std::int64_t n, std::int64_t batch_size, bool shuffle, std::uint64_t seed, bool drop_last)
    : BatchSampler(std::vector<std::int64_t>(), batch_size, shuffle, seed, drop_last) {
  if (n < 0) throw Error("BatchSampler: negative sample count " + std::to_string(n));
  indices_ = detail::allocating("BatchSampler", n, "sample indices", [&] { return std::vector<std::int64_t>(static_cast<std::size_t>(n)); });
  std::iota(indices_.begin(), indices_.end(), 0);
}

std::int64_t BatchSampler::num_batches() const {
  const auto n = static_cast<std::int64_t>(indices_.size());
  return n / batch_size_ + (!drop_last_ && n % batch_size_ != 0);  // n + batch_size_ - 1 may overflow
}

std::int64_t BatchSampler::num_samples() const {
  return drop_last_ ? num_batches() * batch_size_ : static_cast<std::int64_t>(indices_.size());
}

std::vector<std::vector<std::int64_t>> BatchSampler::epoch(std::int64_t epoch) const {
  std::vector<std::int64_t> order = indices_;
  // splitmix-style mixing keeps (seed, epoch) pairs apart: seed 1 epoch 0 ≠ seed 0 epoch 1.
  if (shuffle_) train::shuffle(order, seed_ * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch) * 0xBF58476D1CE4E5B9ull + 1);
  std::vector<std::vector<std::int64_t>> batches;
  for (std::int64_t b = 0; b < num_batches(); ++b) {
    const std::int64_t begin = b * batch_size_;  // <= the sample count; (b + 1) * batch_size_ may overflow
    const std::int64_t size = std::min<std::int64_t>(batch_size_, static_cast<std::int64_t>(order.size()) - begin);
    batches.emplace_back(order.begin() + begin, order.begin() + begin + size);
  }
  return batches;
}

}  // namespace xgrad::train

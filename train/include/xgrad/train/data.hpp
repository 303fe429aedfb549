#pragma once
/// \file
/// Reading datasets and cutting them into splits, windows and batches: what every
/// training script needs before its first step.
#include <cstdint>
#include <string>
#include <vector>

namespace xgrad::train {

/// A table of text cells with named columns, as read from a CSV file or a JSON array of
/// records. Errors name `source` (the file), the row and the column.
struct Table {
  std::string source;                          ///< the file it was read from, for errors
  std::vector<std::string> columns;            ///< the column names, in file order
  std::vector<std::vector<std::string>> rows;  ///< every row has columns.size() cells

  /// The number of rows (the header excluded).
  std::size_t size() const { return rows.size(); }
  /// Position of `column`; throws naming the table's columns when it is absent.
  std::size_t column_index(const std::string& column) const;
  /// One column's cells as text.
  std::vector<std::string> strings(const std::string& column) const;
  /// One column's cells as numbers; throws naming the file, row and cell that is not a number.
  std::vector<double> numbers(const std::string& column) const;
};

/// Reads a CSV file whose first line is the header (RFC 4180: quoted cells may hold the
/// separator, `""` and newlines). A row with the wrong number of cells throws naming its line.
/// Example: `auto t = train::read_csv("data.csv"); auto temp = t.numbers("temperature");`
Table read_csv(const std::string& path, char separator = ',');

/// Reads a JSON file holding an array of objects and keeps the fields named in `fields`, in
/// that order: strings as they are, numbers and booleans as text, null as "". An object
/// without one of the fields throws naming the record.
/// Example: `auto t = train::read_json_records("imdb.json", {"text", "class"});`
Table read_json_records(const std::string& path, const std::vector<std::string>& fields);

/// The whole file as bytes.
std::string read_text(const std::string& path);

/// Indices [begin, end) of a contiguous part of a dataset.
struct Range {
  std::int64_t begin = 0;  ///< the first index
  std::int64_t end = 0;    ///< one past the last index
  /// end - begin.
  std::int64_t size() const { return end - begin; }
};

/// Splits n items in order into consecutive parts of the given fractions (which must sum to
/// at most 1; the last part takes any rounding remainder when they sum to 1). For time
/// series, where the test part must come after the training part.
/// Example: `auto [train, val, test] = ...; auto parts = train::chronological_split(n, {0.7, 0.15, 0.15});`
std::vector<Range> chronological_split(std::int64_t n, const std::vector<double>& fractions);

/// Shuffles 0..n-1 with `seed`, then cuts the permutation into parts of the given fractions
/// (as chronological_split). Each part is sorted, so a split is a set, not an order.
std::vector<std::vector<std::int64_t>> random_split(std::int64_t n, const std::vector<double>& fractions,
                                                    std::uint64_t seed);

/// Sliding windows over the readings [range.begin, range.end): the index t of each window's
/// last reading, for every t such that the window [t - window + 1, t] and its target
/// t + horizon lie inside the range, stepping by `stride`.
/// Example: `for (auto t : train::sliding_windows({0, 100}, 30, 12)) x = series[t-29 .. t], y = series[t+12];`
std::vector<std::int64_t> sliding_windows(Range range, std::int64_t window, std::int64_t horizon,
                                          std::int64_t stride = 1);

/// Shuffles `items` in place with a generator seeded by `seed`: the same seed gives the same
/// order on every platform (unlike std::shuffle, whose result depends on the standard library).
void shuffle(std::vector<std::int64_t>& items, std::uint64_t seed);

/// What decides the batches of an epoch: the interface `DataLoader` and `fit` draw from, so a
/// distributed sampler can give each process its own shard without changing either.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// The batches (lists of sample indices) of epoch `epoch`.
  virtual std::vector<std::vector<std::int64_t>> epoch(std::int64_t epoch) const = 0;
  /// Batches per epoch.
  virtual std::int64_t num_batches() const = 0;
  /// Samples per epoch.
  virtual std::int64_t num_samples() const = 0;
};

/// Cuts a dataset's indices into mini-batches, reshuffled each epoch. The order of epoch e
/// depends only on (seed, e), so a run resumed at epoch e sees exactly the batches the
/// uninterrupted run would have seen.
/// Example:
///
///     train::BatchSampler batches(train_indices, 64, /*shuffle=*/true, seed);
///     for (const auto& idx : batches.epoch(e)) { ... index_select(x, 0, from_vector(idx)) ... }
class BatchSampler : public Sampler {
 public:
  /// Batches of `batch_size` over `indices` (the last one smaller unless `drop_last` drops it),
  /// reshuffled each epoch when `shuffle`.
  BatchSampler(std::vector<std::int64_t> indices, std::int64_t batch_size, bool shuffle = false,
               std::uint64_t seed = 0, bool drop_last = false);
  /// Batches over 0..n-1.
  BatchSampler(std::int64_t n, std::int64_t batch_size, bool shuffle = false, std::uint64_t seed = 0,
               bool drop_last = false);

  /// The batches of epoch `epoch` (any integer; shuffled by seed and epoch when shuffling).
  std::vector<std::vector<std::int64_t>> epoch(std::int64_t epoch) const override;
  std::int64_t num_batches() const override;
  std::int64_t num_samples() const override;  ///< per epoch (fewer than the indices with drop_last)

 private:
  std::vector<std::int64_t> indices_;
  std::int64_t batch_size_;
  bool shuffle_, drop_last_;
  std::uint64_t seed_;
};

}  // namespace xgrad::train

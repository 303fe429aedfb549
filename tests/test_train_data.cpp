// The train module's data side: CSV and JSON tables, splits, sliding windows, reproducible
// shuffled batches, the word tokeniser and the vocabulary.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

using namespace xgrad;
using xgrad_test::TempDir;

namespace {

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.file(name), std::ios::binary) << text;
  return dir.file(name);
}

std::vector<std::int64_t> flatten(const std::vector<std::vector<std::int64_t>>& parts) {
  std::vector<std::int64_t> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

}  // namespace

TEST_CASE("read_csv: header, quoted cells with separators, quotes and newlines, CRLF, blank lines") {
  TempDir dir;
  const auto path = write(dir, "t.csv", "name,value\r\n\"a, b\",1.5\r\n\"say \"\"hi\"\"\",-2\n\n\"two\nlines\",3e2\n");
  const train::Table t = train::read_csv(path);
  CHECK(t.columns == std::vector<std::string>{"name", "value"});
  REQUIRE(t.size() == 3);
  CHECK(t.strings("name") == std::vector<std::string>{"a, b", "say \"hi\"", "two\nlines"});
  CHECK(t.numbers("value") == std::vector<double>{1.5, -2, 300});
}

TEST_CASE("read_csv and Table: bad input names the file, line, row and column") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(train::read_csv(dir.file("missing.csv")), doctest::Contains("cannot open"), Error);
  CHECK_THROWS_WITH_AS(train::read_csv(write(dir, "empty.csv", "")), doctest::Contains("empty"), Error);
  CHECK_THROWS_WITH_AS(train::read_csv(write(dir, "ragged.csv", "a,b\n1,2\n3\n")),
                       doctest::Contains("line 3 has 1 cells, the header has 2"), Error);
  CHECK_THROWS_WITH_AS(train::read_csv(write(dir, "open.csv", "a\n\"never closed\n")), doctest::Contains("never closed"), Error);
  const train::Table t = train::read_csv(write(dir, "t.csv", "a,b\n1,x\n"));
  CHECK_THROWS_WITH_AS(t.numbers("b"), doctest::Contains("row 1, column 'b': 'x' is not a number"), Error);
  CHECK_THROWS_WITH_AS(t.numbers("c"), doctest::Contains("no column 'c' (columns: 'a', 'b')"), Error);
}

TEST_CASE("read_json_records keeps the named fields: strings as they are, numbers as text, null as empty") {
  TempDir dir;
  const auto path = write(dir, "r.json", R"([{"text":"Good.","class":1,"x":true},{"text":"","class":null}])");
  const train::Table t = train::read_json_records(path, {"text", "class"});
  CHECK(t.columns == std::vector<std::string>{"text", "class"});
  CHECK(t.rows == std::vector<std::vector<std::string>>{{"Good.", "1"}, {"", ""}});
  CHECK_THROWS_WITH_AS(train::read_json_records(path, {"label"}), doctest::Contains("record 0 has no field 'label'"), Error);
  CHECK_THROWS_WITH_AS(train::read_json_records(write(dir, "o.json", R"({"a":1})"), {"a"}), doctest::Contains("array"), Error);
  CHECK_THROWS_WITH_AS(train::read_json_records(write(dir, "bad.json", "[{"), {"a"}), doctest::Contains("not valid JSON"), Error);
  CHECK_THROWS_WITH_AS(train::read_json_records(write(dir, "nest.json", R"([{"a":[1]}])"), {"a"}),
                       doctest::Contains("not a single value"), Error);
}

TEST_CASE("chronological_split: consecutive parts, the last takes the remainder") {
  const auto parts = train::chronological_split(101, {0.7, 0.15, 0.15});
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].begin == 0);
  CHECK(parts[0].end == 70);
  CHECK(parts[1].begin == 70);
  CHECK(parts[1].end == 85);
  CHECK(parts[2].begin == 85);
  CHECK(parts[2].end == 101);
  CHECK(train::chronological_split(10, {0.5}).back().end == 5);  // fractions may leave a rest
  CHECK_THROWS_WITH_AS(train::chronological_split(10, {0.7, 0.5}), doctest::Contains("above 1"), Error);
  CHECK_THROWS_AS(train::chronological_split(10, {-0.1}), Error);
}

TEST_CASE("random_split: disjoint sorted parts covering every item, the same for the same seed") {
  const auto parts = train::random_split(50, {0.6, 0.2, 0.2}, 7);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].size() == 30);
  CHECK(parts[1].size() == 10);
  CHECK(parts[2].size() == 10);
  for (const auto& p : parts) CHECK(std::is_sorted(p.begin(), p.end()));
  std::vector<std::int64_t> all = flatten(parts);
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(50);
  std::iota(expected.begin(), expected.end(), 0);
  CHECK(all == expected);
  CHECK(train::random_split(50, {0.6, 0.2, 0.2}, 7) == parts);
  CHECK(train::random_split(50, {0.6, 0.2, 0.2}, 8) != parts);
  CHECK(parts[0] != std::vector<std::int64_t>(expected.begin(), expected.begin() + 30));  // actually shuffled
}

TEST_CASE("sliding_windows: every window and its target inside the range") {
  CHECK(train::sliding_windows({10, 20}, 3, 2) == std::vector<std::int64_t>{12, 13, 14, 15, 16, 17});
  CHECK(train::sliding_windows({10, 20}, 3, 2, 4) == std::vector<std::int64_t>{12, 16});
  CHECK(train::sliding_windows({0, 4}, 5, 0).empty());
  CHECK(train::sliding_windows({0, 5}, 5, 0) == std::vector<std::int64_t>{4});
  CHECK_THROWS_WITH_AS(train::sliding_windows({0, 5}, 0, 1), doctest::Contains("sliding_windows: window 0"), Error);
}

TEST_CASE("shuffle is a seeded permutation, independent of the standard library") {
  std::vector<std::int64_t> a(20);
  std::iota(a.begin(), a.end(), 0);
  auto b = a;
  train::shuffle(a, 3);
  train::shuffle(b, 3);
  CHECK(a == b);
  // Pinned: these values come from mt19937_64 (standardised) and our own bounded draw.
  CHECK(std::set<std::int64_t>(a.begin(), a.end()).size() == 20);
  std::vector<std::int64_t> c(20);
  std::iota(c.begin(), c.end(), 0);
  train::shuffle(c, 4);
  CHECK(c != a);
}

TEST_CASE("BatchSampler: batches cover the epoch; each epoch's order depends only on seed and epoch") {
  train::BatchSampler sampler(10, 4, /*shuffle=*/true, /*seed=*/1);
  CHECK(sampler.num_batches() == 3);
  CHECK(sampler.num_samples() == 10);
  const auto e0 = sampler.epoch(0), e1 = sampler.epoch(1);
  REQUIRE(e0.size() == 3);
  CHECK(e0[0].size() == 4);
  CHECK(e0[2].size() == 2);
  auto all = flatten(e0);
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(e0 != e1);
  CHECK(train::BatchSampler(10, 4, true, 1).epoch(1) == e1);  // a resumed run sees the same batches
  CHECK(train::BatchSampler(10, 4, true, 2).epoch(0) != e0);

  train::BatchSampler ordered({5, 6, 7, 8, 9}, 2, false, 0, /*drop_last=*/true);
  CHECK(ordered.num_batches() == 2);
  CHECK(ordered.num_samples() == 4);
  CHECK(ordered.epoch(3) == std::vector<std::vector<std::int64_t>>{{5, 6}, {7, 8}});
  CHECK_THROWS_WITH_AS(train::BatchSampler(10, 0), doctest::Contains("batch_size 0"), Error);
}

TEST_CASE("tokenize_words lower-cases and splits on punctuation, keeping apostrophes inside words") {
  CHECK(train::tokenize_words("Don't waste your MONEY!!  It's 2 bad.") ==
        std::vector<std::string>{"don't", "waste", "your", "money", "it's", "2", "bad"});
  CHECK(train::tokenize_words("'quoted' -- end'") == std::vector<std::string>{"quoted", "end"});
  CHECK(train::tokenize_words("caf\xc3\xa9 ok") == std::vector<std::string>{"caf\xc3\xa9", "ok"});
  CHECK(train::tokenize_words("  ...  ").empty());
  CHECK(train::tokenize_chars("a\nb") == std::vector<std::string>{"a", "\n", "b"});
}

TEST_CASE("Vocabulary: frequent tokens first, min_count and max_size, unknowns map to <unk>") {
  const auto v = train::Vocabulary::build({{"b", "a", "b", "c"}, {"a", "b", "d"}}, /*min_count=*/2);
  CHECK(v.tokens() == std::vector<std::string>{"<pad>", "<unk>", "b", "a"});
  CHECK(v.encode({"a", "b", "zzz", "c"}) == std::vector<std::int64_t>{3, 2, train::Vocabulary::unk, train::Vocabulary::unk});
  CHECK(v.token(2) == "b");
  CHECK_THROWS_WITH_AS(v.token(4), doctest::Contains("id 4 is outside [0, 4)"), Error);
  const auto capped = train::Vocabulary::build({{"x", "y", "y", "z", "z", "z"}}, 1, 3);
  CHECK(capped.tokens() == std::vector<std::string>{"<pad>", "<unk>", "z"});
  CHECK(train::Vocabulary().size() == 2);
  CHECK_THROWS_WITH_AS(train::Vocabulary::from_tokens({"<pad>", "<unk>", "a", "a"}), doctest::Contains("'a' appears twice"), Error);
  CHECK_THROWS_AS(train::Vocabulary::from_tokens({"a"}), Error);
}

TEST_CASE("Vocabulary save/load round-trips character vocabularies (newline, backslash, control bytes)") {
  TempDir dir;
  const auto v = train::Vocabulary::build({train::tokenize_chars("ab\n\\\t\r\x01 z\xc3")});
  v.save(dir.file("vocab.txt"));
  const auto back = train::Vocabulary::load(dir.file("vocab.txt"));
  CHECK(back.tokens() == v.tokens());
  CHECK_THROWS_WITH_AS(train::Vocabulary::load(write(dir, "bad.txt", "<pad>\n<unk>\n\\q\n")),
                       doctest::Contains("line 3: bad escape"), Error);
  CHECK_THROWS_WITH_AS(train::Vocabulary::load(write(dir, "short.txt", "\\x4\n")), doctest::Contains("bad escape"), Error);
  CHECK_THROWS_WITH_AS(train::Vocabulary::load(write(dir, "nopad.txt", "a\nb\n")), doctest::Contains("<pad>"), Error);
}

TEST_CASE("read_json_records turns every JSON error into an xgrad::Error naming the file") {
  TempDir dir;
  const std::string p = dir.file("big.json");
  std::ofstream(p) << R"([{"a": 1e999}])";
  CHECK_THROWS_WITH_AS(train::read_json_records(p, {"a"}), doctest::Contains("big.json' is not valid JSON"), Error);
}

TEST_CASE("read_json_records bounds the nesting depth; the text readers refuse directories and devices") {
  TempDir dir;
  const std::string deep = dir.file("deep.json");
  std::ofstream(deep) << std::string(100000, '[') << std::string(100000, ']');
  CHECK_THROWS_WITH_AS(train::read_json_records(deep, {"a"}), doctest::Contains("nests deeper than 64 levels"), Error);
  const std::string ok = dir.file("ok.json");
  std::ofstream(ok) << R"([{"a": 1, "b": [[[[1]]]]}])";
  CHECK(train::read_json_records(ok, {"a"}).rows.at(0).at(0) == "1");
  for (const std::string& path : {dir.path.string(), std::string("/dev/zero")}) {
    CHECK_THROWS_WITH_AS(train::read_text(path), doctest::Contains("is not a regular file"), Error);
    CHECK_THROWS_WITH_AS(train::read_csv(path), doctest::Contains("is not a regular file"), Error);
    CHECK_THROWS_WITH_AS(train::Vocabulary::load(path), doctest::Contains("is not a regular file"), Error);
  }
}

TEST_CASE("BatchSampler and sliding_windows: counts near the int64 limit neither overflow nor wrap") {
  constexpr std::int64_t kMax = INT64_MAX;
  const train::BatchSampler one(5, kMax);  // (5 + batch_size - 1) / batch_size overflowed
  CHECK(one.num_batches() == 1);
  CHECK(one.num_samples() == 5);
  CHECK(one.epoch(0) == std::vector<std::vector<std::int64_t>>{{0, 1, 2, 3, 4}});
  CHECK(train::BatchSampler(5, kMax, false, 0, true).num_batches() == 0);
  CHECK_THROWS_WITH_AS(train::BatchSampler(std::int64_t{1} << 62, 8),
                       "BatchSampler: cannot allocate 4611686018427387904 sample indices (not enough memory)", Error);
  // begin + window - 1, t + horizon and t + stride each overflowed (and the loop ran on).
  CHECK(train::sliding_windows({5, 10}, kMax, 0).empty());
  CHECK(train::sliding_windows({1, 10}, 1, kMax).empty());
  CHECK(train::sliding_windows({0, 10}, 1, 5, kMax) == std::vector<std::int64_t>{0});
  CHECK(train::sliding_windows({kMax - 3, kMax}, 2, 1) == std::vector<std::int64_t>{kMax - 2});
  CHECK(train::sliding_windows({INT64_MIN, INT64_MIN + 4}, 2, 1, 2) == std::vector<std::int64_t>{INT64_MIN + 1});
}

// The datasets shipped in examples/data/, read with the train module's loaders: the row
// counts, labels and contents their README promises.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using namespace xgrad;

namespace {
const std::string kData = XGRAD_EXAMPLES_DATA_DIR "/";
}  // namespace

TEST_CASE("suthaharan sensor data: 18 914 readings from 4 motes; mote 1's anomalies are labelled") {
  const train::Table t = train::read_csv(kData + "suthaharan_sensor.csv");
  CHECK(t.columns == std::vector<std::string>{"reading", "mote_id", "indoor", "humidity", "temperature", "label"});
  CHECK(t.size() == 18914);
  const auto motes = t.numbers("mote_id"), temperature = t.numbers("temperature"), label = t.numbers("label");
  CHECK(std::count(motes.begin(), motes.end(), 1.0) == 4417);
  CHECK(std::count(motes.begin(), motes.end(), 2.0) == 4417);
  CHECK(std::count(motes.begin(), motes.end(), 3.0) == 5039);
  CHECK(std::count(motes.begin(), motes.end(), 4.0) == 5041);
  // Unlabelled readings are in a room's range (22.7–37.3 °C); the 56.56 °C spike is labelled.
  std::size_t anomalies = 0, out_of_range = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (label[i] != 0) ++anomalies;
    else if (!(temperature[i] > 22 && temperature[i] < 38)) ++out_of_range;
  }
  CHECK(anomalies == 149);
  CHECK(out_of_range == 0);
}

TEST_CASE("sentiment sentences: 1 000 labelled per file, 500 positive and 500 negative, none empty") {
  for (const char* name : {"imdb", "yelp", "amazon"}) {
    CAPTURE(name);
    const train::Table t = train::read_json_records(kData + "sentiment/" + name + ".json", {"text", "class"});
    REQUIRE(t.size() == 1001);
    CHECK(t.rows.back() == std::vector<std::string>{"", ""});  // the trailing {"text": "", "class": null}
    std::int64_t positive = 0, negative = 0;
    for (std::size_t r = 0; r + 1 < t.size(); ++r) {
      const std::string& text = t.rows[r][0];
      const std::string& label = t.rows[r][1];
      CHECK((label == "0" || label == "1"));
      (label == "1" ? positive : negative) += 1;
      CHECK(text.find_first_not_of(" \t\n") != std::string::npos);
      CHECK_FALSE(train::tokenize_words(text).empty());
    }
    CHECK(positive == 500);
    CHECK(negative == 500);
  }
}

TEST_CASE("moby dick: 1 204 997 bytes of UTF-8 text, chapters 1 to 135; its character vocabulary round-trips") {
  const std::string text = train::read_text(kData + "moby_dick.txt");
  CHECK(text.size() == 1204997);
  CHECK(text.rfind("CHAPTER 1. Loomings.\n\nCall me Ishmael. Some years ago", 0) == 0);
  CHECK(text.find("CHAPTER 135. The Chase.\u2014Third Day.\n") != std::string::npos);
  const std::string last = "and the great\nshroud of the sea rolled on as it rolled five thousand years ago.\n";
  CHECK(text.compare(text.size() - last.size(), last.size(), last) == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 21424);
  CHECK(text.find('\r') == std::string::npos);
  // 1 190 317 UTF-8 characters: every byte but the continuation bytes 10xxxxxx starts one.
  CHECK(std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }) ==
        1190317);

  // char_lm's vocabulary: the bytes of the first 90 %, which holds all 85 of the text's.
  const auto parts = train::chronological_split(static_cast<std::int64_t>(text.size()), {0.9, 0.05, 0.05});
  const auto vocab = train::Vocabulary::build({train::tokenize_chars(std::string_view(text).substr(0, parts[0].end))});
  CHECK(vocab.size() == 2 + 85);  // with <pad> and <unk>
  CHECK(vocab.token(2) == " ");   // the most frequent byte
  const auto ids = vocab.encode(train::tokenize_chars(text));
  CHECK(std::count(ids.begin(), ids.end(), train::Vocabulary::unk) == 0);

  // Saved and loaded, "\n" and the bytes of '\u2014' (E2 80 94) come back as the same ids.
  xgrad_test::TempDir dir;
  vocab.save(dir.file("vocab.txt"));
  const auto loaded = train::Vocabulary::load(dir.file("vocab.txt"));
  CHECK(loaded.tokens() == vocab.tokens());
  CHECK(loaded.id("\n") == vocab.id("\n"));
  CHECK(loaded.id("\xE2") == vocab.id("\xE2"));
  CHECK(loaded.encode(train::tokenize_chars(text.substr(0, 20000))) == std::vector<std::int64_t>(ids.begin(), ids.begin() + 20000));
}

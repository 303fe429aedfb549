/// Fuzz target: `read_json_records` with the fields the sentiment example reads, then the
/// columns as text and numbers.
#include <fstream>

#include <xgrad/train/data.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = xgrad::fuzz::write_input(data, size);
  xgrad::fuzz::expect_xgrad_errors_only("read_json_records", [&] {
    const xgrad::train::Table table = xgrad::train::read_json_records(path, {"text", "class"});
    if (table.strings("text").size() != table.size()) std::abort();
    xgrad::fuzz::expect_xgrad_errors_only("Table::numbers", [&] { (void)table.numbers("class"); });
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  std::ofstream(dir + "/reviews.json", std::ios::binary)
      << R"([{"text": "a fine film", "class": 1}, {"text": "dull\n\u00e9", "class": 0.0, "extra": [1, {"x": null}]},)"
      << R"( {"text": "", "class": true}, {"text": null, "class": "1"}])";
}

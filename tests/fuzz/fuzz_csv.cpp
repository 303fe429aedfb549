/// Fuzz target: `read_csv` (comma and semicolon), then every column read as text and as
/// numbers.
#include <fstream>

#include <xgrad/train/data.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = xgrad::fuzz::write_input(data, size);
  for (char separator : {',', ';'}) {
    xgrad::fuzz::expect_xgrad_errors_only("read_csv", [&] {
      const xgrad::train::Table table = xgrad::train::read_csv(path, separator);
      for (const std::string& column : table.columns) {
        if (table.strings(column).size() != table.size()) std::abort();
        xgrad::fuzz::expect_xgrad_errors_only("Table::numbers", [&] { (void)table.numbers(column); });
      }
    });
  }
  return 0;
}

void write_seeds(const std::string& dir) {
  auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir + "/" + name, std::ios::binary) << text;
  };
  write("plain.csv", "date,temperature,pressure\n2020-01-01,3.5,1012\n2020-01-02,-1e-3,1009.25\n");
  write("quoted.csv", "name,note\n\"a, b\",\"say \"\"hi\"\"\"\n\"multi\nline\",x\r\n");
  write("semicolon.csv", "a;b\n1;2\n;4\n");
}

#pragma once
// What the PyTorch-parity tests share: a fixture file whose metadata holds the options as
// strings, the dtype and tolerance of the run, and the worst difference seen (printed when
// XGRAD_PARITY_REPORT is set). Each test derives its own Fixture and its own compare(),
// because what a fixture stores differs (per-dtype files for nn, f64 references for seq).
#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace parity_test {

/// The items of `s` split at `sep`, empty items dropped: `split_list("a,b,", ',')` is {a, b}.
inline std::vector<std::string> split_list(const std::string& s, char sep = ',') {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, sep);)
    if (!item.empty()) out.push_back(item);
  return out;
}

/// The .safetensors files of `dir`, sorted by name.
inline std::vector<std::filesystem::path> fixture_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

/// One fixture file run in one dtype: its name (the file's stem), contents and metadata.
struct ParityFixture {
  std::string name;
  xgrad::SafetensorsFile file;
  xgrad::DType dtype;
  double tolerance;
  double worst = 0.0;
  std::string worst_what;

  ParityFixture(const std::filesystem::path& path, xgrad::DType dtype, double tolerance)
      : name(path.stem().string()), file(xgrad::load_safetensors(path.string())), dtype(dtype),
        tolerance(tolerance) {}

  const std::string& meta(const std::string& key) const { return file.metadata.at(key); }
  bool has(const std::string& key) const { return file.metadata.count(key) > 0; }
  bool flag(const std::string& key) const { return has(key) && meta(key) == "true"; }

  /// Remembers `diff` of the tensor `key` when it is the worst so far.
  void note(double diff, const std::string& key) {
    if (diff > worst || worst_what.empty()) {
      worst = std::max(worst, diff);
      worst_what = key;
    }
  }
};

}  // namespace parity_test

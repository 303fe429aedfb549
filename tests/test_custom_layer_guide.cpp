// docs/custom_layer.md ("Write your own layer") quotes examples/custom_cell.cpp, which the
// build compiles: this test keeps the two identical, so the guide's code cannot rot.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot read ", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `text` without the indentation its lines share, and without trailing newlines.
std::string dedent(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::size_t indent = std::string::npos;
  for (const auto& l : lines)
    if (l.find_first_not_of(' ') != std::string::npos) indent = std::min(indent, l.find_first_not_of(' '));
  std::string out;
  for (const auto& l : lines) out += (l.size() >= indent ? l.substr(indent) : std::string()) + "\n";
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TEST_CASE("the custom-layer guide quotes examples/custom_cell.cpp verbatim, every marked block") {
  const std::string root = XGRAD_FIXTURES_DIR "/../..";
  const std::string example = read_text(root + "/examples/custom_cell.cpp");
  const std::string guide = read_text(root + "/docs/custom_layer.md");

  // Blocks of the example between `// [name]` marker lines.
  std::vector<std::string> blocks;
  std::stringstream in(example);
  std::string current, open;
  for (std::string line; std::getline(in, line);) {
    const std::size_t first = line.find_first_not_of(' ');
    const bool marker = first != std::string::npos && line.compare(first, 4, "// [") == 0 && line.back() == ']';
    if (marker && open.empty()) {
      open = line.substr(first);
      current.clear();
    } else if (marker && line.substr(first) == open) {
      blocks.push_back(dedent(current));
      open.clear();
    } else if (!open.empty()) {
      current += line + "\n";
    }
  }
  REQUIRE(blocks.size() == 6);

  // ```cpp blocks of the guide.
  std::vector<std::string> quoted;
  for (std::size_t at = guide.find("```cpp\n"); at != std::string::npos; at = guide.find("```cpp\n", at)) {
    const std::size_t begin = at + 7, end = guide.find("\n```", begin);
    REQUIRE(end != std::string::npos);
    quoted.push_back(guide.substr(begin, end - begin));
    at = end + 4;
  }
  REQUIRE(quoted.size() == blocks.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    CAPTURE(i);
    CHECK(quoted[i] == blocks[i]);
  }
}

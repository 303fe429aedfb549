#pragma once
// Runs exported models in ONNX Runtime (onnxruntime-node, installed by scripts/install-ort.sh)
// through tests/onnx/run_ort.js. Without node or the package, the ORT tests print why and
// return; CTest then reports them as skipped (SKIP_REGULAR_EXPRESSION in CMakeLists.txt).
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "../temp_dir.hpp"

namespace xgrad_test {

struct Ort {
  std::string dir;
  std::string why_not;  // empty when available
};

inline Ort find_ort() {
  Ort ort;
  const char* env = std::getenv("XGRAD_ORT_DIR");
  const char* home = std::getenv("HOME");
  ort.dir = env && *env ? env : std::string(home ? home : "/root") + "/.cache/xgrad/ort";
  if (std::system("node --version > /dev/null 2>&1") != 0)
    ort.why_not = "node is not installed";
  else if (!std::filesystem::exists(ort.dir + "/node_modules/onnxruntime-node/package.json"))
    ort.why_not = "onnxruntime-node is not in " + ort.dir + " (run scripts/install-ort.sh)";
  return ort;
}

// Returns from the test case, saying why, when ONNX Runtime is missing.
#define XGRAD_REQUIRE_ORT(ort)                                                                   \
  const ::xgrad_test::Ort ort = ::xgrad_test::find_ort();                                        \
  if (!ort.why_not.empty()) {                                                                    \
    std::cout << "ONNX Runtime not available, test skipped: " << ort.why_not << std::endl;      \
    return;                                                                                      \
  }

// The model's outputs for `inputs` (name → tensor), computed by ONNX Runtime.
inline std::map<std::string, xgrad::Tensor> run_ort(const Ort& ort, const std::string& model,
                                                     const std::vector<std::pair<std::string, xgrad::Tensor>>& inputs,
                                                     const std::vector<std::string>& outputs) {
  TempDir dir;
  for (const auto& [name, t] : inputs) xgrad::save_npy(dir.file(name + ".npy"), t);
  const std::string cmd = "node '" XGRAD_ONNX_RUNNER "' '" + ort.dir + "' '" + model + "' '" + dir.path.string() + "'";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "ONNX Runtime failed: " << cmd);
  std::map<std::string, xgrad::Tensor> out;
  for (const std::string& name : outputs) out[name] = xgrad::load_npy(dir.file("out_" + name + ".npy"));
  return out;
}

}  // namespace xgrad_test

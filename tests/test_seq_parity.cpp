// PyTorch parity of the sequence layers beyond recurrence: each fixture under fixtures/seq/
// (written in float64 by fixtures/gen_seq_fixtures.py with PyTorch 1.13) holds the weights by
// their state-dict names, the inputs, PyTorch's outputs and the gradients of a fixed scalar
// loss. Every fixture runs twice: in f64 to 1e-10 and, inputs and weights rounded to f32, in
// f32 to 1e-5. Set XGRAD_PARITY_REPORT=1 to print the worst difference of every fixture.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

using namespace xgrad;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(XGRAD_FIXTURES_DIR) / "seq";

struct Fixture {
  std::string name;
  SafetensorsFile file;
  DType dtype;
  double tolerance;
  double worst = 0.0;
  std::string worst_what;

  const std::string& meta(const std::string& key) const { return file.metadata.at(key); }
  bool has(const std::string& key) const { return file.metadata.count(key) > 0; }
  bool flag(const std::string& key) const { return has(key) && meta(key) == "true"; }
  std::int64_t integer(const std::string& key, std::int64_t fallback) const {
    return has(key) ? std::stoll(meta(key)) : fallback;
  }
  // A floating-point tensor of the fixture in the run's dtype (masks and lengths as stored).
  Tensor at(const std::string& key) const {
    const Tensor& t = file.at(key);
    return is_floating(t.dtype()) ? t.to(dtype) : t;
  }
  // A fresh leaf for an input whose gradient is compared.
  Tensor leaf(const std::string& key) const { return at(key).clone().requires_grad_(); }
  nn::Lengths lengths() const {
    if (!file.contains("lengths")) return {};
    return nn::Lengths(file.at("lengths"), meta("padding") == "pre" ? nn::Side::pre : nn::Side::post);
  }

  // Checks that `ours` matches the fixture's tensor `key` (finite everywhere) to the tolerance.
  void compare(const Tensor& ours, const std::string& key) {
    CAPTURE(name);
    CAPTURE(key);
    REQUIRE(ours.defined());
    const Tensor& ref = file.at(key);
    REQUIRE(shape_str(ours.shape()) == shape_str(ref.shape()));
    CHECK(ours.dtype() == dtype);
    CHECK_FALSE(has_nonfinite(ours));
    const double diff = ours.numel() == 0 ? 0.0 : max(abs(ours.to(DType::f64) - ref)).item();
    CHECK(diff <= tolerance);
    if (diff > worst || worst_what.empty()) {
      worst = std::max(worst, diff);
      worst_what = key;
    }
  }
};

// The module a fixture describes (nullptr for the functional kinds).
std::unique_ptr<nn::Module> make_module(const Fixture& f) {
  const std::string& kind = f.meta("kind");
  if (kind == "conv1d") {
    const std::string pad = f.has("padding") ? f.meta("padding") : "0";
    nn::ConvPadding padding = pad == "same" || pad == "valid" ? nn::ConvPadding(pad) : nn::ConvPadding(std::stoll(pad));
    return std::make_unique<nn::Conv1d>(
        nn::Conv1dOptions(f.integer("in_channels", 0), f.integer("out_channels", 0), f.integer("kernel_size", 0))
            .stride(f.integer("stride", 1))
            .padding(padding)
            .dilation(f.integer("dilation", 1))
            .groups(f.integer("groups", 1))
            .bias(!f.has("bias") || f.flag("bias")));
  }
  return nullptr;
}

nn::Pool1dOptions pool_options(const Fixture& f) {
  return nn::Pool1dOptions(f.integer("kernel_size", 0))
      .stride(f.integer("stride", 0))
      .padding(f.integer("padding", 0))
      .count_include_pad(!f.has("count_include_pad") || f.flag("count_include_pad"));
}

// Runs one fixture in f.dtype: forward, the loss sum(output * R), backward, and every comparison.
void check_fixture(Fixture& f) {
  std::unique_ptr<nn::Module> module = make_module(f);
  if (module) {
    module->to(f.dtype);
    NamedTensors weights;
    std::string names = f.meta("params");
    for (std::size_t start = 0; start < names.size();) {
      const std::size_t end = std::min(names.find(',', start), names.size());
      const std::string name = names.substr(start, end - start);
      weights.emplace_back(name, f.at(name));
      start = end + 1;
    }
    module->load_state_dict(weights);  // strict: PyTorch's names, all of them
  }
  const std::string& kind = f.meta("kind");
  std::map<std::string, Tensor> inputs{{"input", f.leaf("input")}};
  const Tensor& x = inputs["input"];
  Tensor output;
  if (kind == "conv1d") output = dynamic_cast<nn::Conv1d&>(*module)(x);
  else if (kind == "max_pool1d") output = nn::MaxPool1d(pool_options(f))(x);
  else if (kind == "avg_pool1d") output = nn::AvgPool1d(pool_options(f))(x);
  else if (kind == "global_max_pool1d") output = nn::GlobalMaxPool1d(f.integer("time_dim", -1))(x, f.lengths());
  else if (kind == "global_avg_pool1d") output = nn::GlobalAvgPool1d(f.integer("time_dim", -1))(x, f.lengths());
  else FAIL("unknown kind " << kind << " in " << f.name);

  f.compare(output, "output");
  sum(output * f.at("R")).backward();
  for (const auto& [name, t] : inputs) f.compare(t.grad(), "grad." + name);
  if (module)
    for (const auto& [name, p] : module->named_parameters()) f.compare(p.grad(), "grad." + name);
}

std::vector<fs::path> fixture_files() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kDir))
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs every fixture of the kinds `wanted` in f64 and f32; returns how many there were per kind.
std::map<std::string, int> check_kinds(const std::vector<std::string>& wanted) {
  const bool report = std::getenv("XGRAD_PARITY_REPORT") != nullptr;
  std::map<std::string, int> kinds;
  for (const auto& path : fixture_files()) {
    for (const auto& [dtype, tolerance] : {std::pair{DType::f64, 1e-10}, std::pair{DType::f32, 1e-5}}) {
      Fixture f{path.stem().string(), load_safetensors(path.string()), dtype, tolerance, 0.0, ""};
      const std::string& kind = f.meta("kind");
      if (std::find(wanted.begin(), wanted.end(), kind) == wanted.end()) break;
      if (dtype == DType::f64) ++kinds[kind];
      check_fixture(f);
      if (report)
        fmt::print("parity {:<32} {} worst {:.3g} ({})\n", f.name, dtype_name(dtype), f.worst, f.worst_what);
    }
  }
  return kinds;
}

}  // namespace

TEST_CASE("Conv1d matches PyTorch 1.13: stride, padding, \"same\", dilation, groups, no bias, unbatched") {
  auto kinds = check_kinds({"conv1d"});
  CHECK(kinds["conv1d"] == 9);
}

TEST_CASE("MaxPool1d and AvgPool1d match PyTorch 1.13") {
  auto kinds = check_kinds({"max_pool1d", "avg_pool1d"});
  CHECK(kinds["max_pool1d"] == 2);
  CHECK(kinds["avg_pool1d"] == 2);
}

TEST_CASE("global max and average pooling read only the valid steps (NaN and Inf in the padding, length 0)") {
  auto kinds = check_kinds({"global_max_pool1d", "global_avg_pool1d"});
  CHECK(kinds["global_max_pool1d"] == 2);
  CHECK(kinds["global_avg_pool1d"] == 2);
}

// PyTorch parity of Linear, Embedding, LayerNorm and every loss: each fixture under
// fixtures/nn/ (written by fixtures/gen_nn_fixtures.py with PyTorch 1.13) holds the weights
// by their state-dict names, the inputs, PyTorch's outputs and the gradients of a fixed
// scalar loss. The weights load by name into the xgrad module; outputs and gradients must
// match to 1e-5 in f32 and 1e-10 in f64. Set XGRAD_PARITY_REPORT=1 to print the worst
// difference of every fixture.
#include <doctest/doctest.h>

#include "parity_fixture.hpp"

#include <xgrad/xgrad.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

using namespace xgrad;
using parity_test::split_list;
namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(XGRAD_FIXTURES_DIR) / "nn";

bool is_f64(const fs::path& path) { return path.stem().string().ends_with("_f64"); }

// A file holds one dtype: f32 to 1e-5, or f64 to 1e-10 when its name ends in "_f64".
struct Fixture : parity_test::ParityFixture {
  explicit Fixture(const fs::path& path)
      : ParityFixture(path, is_f64(path) ? DType::f64 : DType::f32, is_f64(path) ? 1e-10 : 1e-5) {}

  // Checks that `ours` matches the fixture's tensor `key` in shape, dtype and values.
  void compare(const Tensor& ours, const std::string& key) {
    CAPTURE(name);
    CAPTURE(key);
    REQUIRE(ours.defined());
    const Tensor& ref = file.at(key);
    REQUIRE(shape_str(ours.shape()) == shape_str(ref.shape()));
    CHECK(ours.dtype() == ref.dtype());
    const double diff = ours.numel() == 0 ? 0.0 : max(abs(ours.to(DType::f64) - ref.to(DType::f64))).item();
    CHECK(diff <= tolerance);
    note(diff, key);
  }
};

std::unique_ptr<nn::UnaryModule> make_layer(const Fixture& f) {
  const std::string& kind = f.meta("kind");
  if (kind == "linear")
    return std::make_unique<nn::Linear>(std::stoll(f.meta("in_features")), std::stoll(f.meta("out_features")),
                                        f.flag("bias"));
  if (kind == "embedding") {
    auto opts = nn::EmbeddingOptions(std::stoll(f.meta("num_embeddings")), std::stoll(f.meta("embedding_dim")));
    if (f.has("padding_idx")) opts.padding_idx(std::stoll(f.meta("padding_idx")));
    return std::make_unique<nn::Embedding>(opts);
  }
  if (kind == "layernorm") {
    Shape shape;
    for (const auto& s : split_list(f.meta("normalized_shape"))) shape.push_back(std::stoll(s));
    return std::make_unique<nn::LayerNorm>(
        nn::LayerNormOptions(shape).eps(std::stod(f.meta("eps"))).elementwise_affine(f.flag("elementwise_affine")));
  }
  return nullptr;
}

// Loads the weights by name, runs forward, backpropagates sum(output * R) and compares.
void check_layer(Fixture& f) {
  std::unique_ptr<nn::UnaryModule> layer = make_layer(f);
  REQUIRE(layer);
  layer->to(f.dtype);
  NamedTensors weights;
  for (const auto& name : split_list(f.meta("params"))) weights.emplace_back(name, f.file.at(name));
  layer->load_state_dict(weights);  // strict: every parameter is in the fixture by name

  Tensor input = f.file.at("input").clone();
  if (is_floating(input.dtype())) input.requires_grad_();
  Tensor output = (*layer)(input);
  f.compare(output, "output");
  (output * f.file.at("R")).sum().backward();
  if (input.requires_grad()) f.compare(input.grad(), "grad.input");
  for (const auto& [name, p] : layer->named_parameters()) f.compare(p.grad(), "grad." + name);
}

nn::Reduction reduction_of(const Fixture& f) {
  const std::string& r = f.meta("reduction");
  return r == "none" ? nn::Reduction::none : r == "sum" ? nn::Reduction::sum : nn::Reduction::mean;
}

// Computes the loss from the fixture's arguments and options, then compares it and its gradients.
void check_loss(Fixture& f) {
  const std::string& kind = f.meta("kind");
  const nn::Reduction reduction = reduction_of(f);
  Tensor input = f.file.at("input").clone().requires_grad_();
  Tensor target = f.file.at("target").clone();
  const bool regression = kind == "mse_loss" || kind == "l1_loss";
  if (regression) target.requires_grad_();
  Tensor weight = f.file.contains("weight") ? f.file.at("weight") : Tensor();

  Tensor output;
  if (kind == "mse_loss") {
    output = nn::mse_loss(input, target, reduction);
  } else if (kind == "l1_loss") {
    output = nn::l1_loss(input, target, reduction);
  } else if (kind == "nll_loss") {
    auto opts = nn::NLLLossOptions().reduction(reduction).weight(weight);
    if (f.has("ignore_index")) opts.ignore_index(std::stoll(f.meta("ignore_index")));
    output = nn::nll_loss(input, target, opts);
  } else if (kind == "cross_entropy") {
    auto opts = nn::CrossEntropyOptions().reduction(reduction).weight(weight);
    if (f.has("ignore_index")) opts.ignore_index(std::stoll(f.meta("ignore_index")));
    if (f.has("label_smoothing")) opts.label_smoothing(std::stod(f.meta("label_smoothing")));
    output = nn::cross_entropy(input, target, opts);
  } else if (kind == "bce_with_logits") {
    auto opts = nn::BCEWithLogitsOptions().reduction(reduction).weight(weight);
    if (f.file.contains("pos_weight")) opts.pos_weight(f.file.at("pos_weight"));
    output = nn::binary_cross_entropy_with_logits(input, target, opts);
  } else {
    FAIL("unknown loss kind " << kind << " in " << f.name);
  }
  f.compare(output, "output");
  Tensor loss = reduction == nn::Reduction::none ? (output * f.file.at("R")).sum() : output;
  loss.backward();
  f.compare(input.grad(), "grad.input");
  if (regression) f.compare(target.grad(), "grad.target");
}

}  // namespace

TEST_CASE("Linear, Embedding, LayerNorm and every loss match PyTorch 1.13") {
  const std::vector<fs::path> files = parity_test::fixture_files(kDir);
  CHECK(files.size() >= 78);  // 9 layer and 30 loss configs, each in f32 and f64
  const bool report = std::getenv("XGRAD_PARITY_REPORT") != nullptr;
  std::map<std::string, int> kinds;
  for (const auto& path : files) {
    Fixture f(path);
    const std::string& kind = f.meta("kind");
    ++kinds[kind];
    if (kind == "linear" || kind == "embedding" || kind == "layernorm") check_layer(f);
    else check_loss(f);
    if (report) fmt::print("parity {:<36} worst {:.3g} ({})\n", f.name, f.worst, f.worst_what);
  }
  CHECK(kinds["linear"] == 6);
  CHECK(kinds["embedding"] == 6);
  CHECK(kinds["layernorm"] == 6);
  CHECK(kinds["cross_entropy"] == 30);
  CHECK(kinds["bce_with_logits"] == 12);
}

TEST_CASE("PyTorch weights load into a model by state-dict name") {
  // The linear_2d fixture's weights are PyTorch's: loaded into a Linear inside a model they
  // land under the "head." prefix, as a torch model's state dict would name them.
  struct Model : nn::Module {
    nn::Linear head{5, 3};
    Model() { register_module("head", head); }
  } model;
  SafetensorsFile file = load_safetensors((kDir / "linear_2d_f32.safetensors").string());
  model.load_state_dict({{"head.weight", file.at("weight")}, {"head.bias", file.at("bias")}});
  CHECK(max(abs(model.head(file.at("input")) - file.at("output"))).item() <= 1e-5);
}

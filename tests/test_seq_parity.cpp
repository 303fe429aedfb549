// PyTorch parity of the sequence layers beyond recurrence: each fixture under fixtures/seq/
// (written by fixtures/gen_seq_fixtures.py with PyTorch 1.13, whose docstring gives the packed
// layout) holds the weights by their state-dict names and the inputs, all f32-exact, and
// PyTorch's float64 outputs and gradients of a fixed scalar loss. Every fixture runs twice: in
// f64 to 1e-10 and in f32 to 1e-5. Set XGRAD_PARITY_REPORT=1 to print the worst difference of
// every fixture.
#include <doctest/doctest.h>

#include "parity_fixture.hpp"

#include <xgrad/nn/attention.hpp>
#include <xgrad/nn/transformer.hpp>
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

using parity_test::split_list;

// The tensors of "values" without a gradient; the others are the inputs and the parameters.
bool is_mask_or_loss_weight(const std::string& name) {
  return name == "attn_mask" || name == "key_padding_mask" || name == "R" || name == "R_weights";
}

// A tensor of "values" that is a parameter of the module, by its state-dict name.
bool is_parameter(const std::string& name) {
  return !is_mask_or_loss_weight(name) && name != "input" && name != "key" && name != "value";
}

// The names of the packed "values" ("name:2x4x9,...").
std::vector<std::string> value_names(const std::map<std::string, std::string>& metadata) {
  std::vector<std::string> names;
  for (const auto& item : split_list(metadata.at("values"), ',')) names.push_back(item.substr(0, item.find(':')));
  return names;
}

// Cuts `count` elements at `offset` of the 1-D `blob` into `shape`, refusing to read past its end.
Tensor cut(const Tensor& blob, std::int64_t& offset, const Shape& shape, const std::string& what) {
  std::int64_t count = 1;
  for (const std::int64_t d : shape) count *= d;
  if (offset + count > blob.numel())
    throw Error("seq fixture: " + what + " " + shape_str(shape) + " runs past the packed " +
                std::to_string(blob.numel()) + " elements");
  Tensor t = blob.narrow(0, offset, count).reshape(shape);
  offset += count;
  return t;
}

// The fixture's tensors by name, unpacked from its "values" and "reference" entries as
// gen_seq_fixtures.py lays them out; bool masks are stored as themselves.
std::map<std::string, Tensor> unpack(const SafetensorsFile& file) {
  std::map<std::string, Tensor> out;
  const Tensor& values = file.at("values");
  std::vector<std::string> differentiable;
  std::int64_t offset = 0;
  for (const auto& item : split_list(file.metadata.at("values"), ',')) {
    const std::size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    Shape shape;
    for (const auto& d : split_list(item.substr(colon + 1), 'x')) shape.push_back(std::stoll(d));
    out[name] = cut(values, offset, shape, name);
    if (!is_mask_or_loss_weight(name)) differentiable.push_back(name);
  }
  REQUIRE(offset == values.numel());

  const Tensor& reference = file.at("reference");
  offset = 0;
  out["output"] = cut(reference, offset, out.at("R").shape(), "output");
  if (out.count("R_weights")) out["weights"] = cut(reference, offset, out.at("R_weights").shape(), "weights");
  for (const auto& name : differentiable)
    out["grad." + name] = cut(reference, offset, out.at(name).shape(), "grad." + name);
  REQUIRE(offset == reference.numel());

  for (const auto& [name, t] : file.tensors)
    if (name != "values" && name != "reference") out[name] = t;
  return out;
}

// Every file runs in f64 to 1e-10 and in f32 to 1e-5 against its f64 references.
struct Fixture : parity_test::ParityFixture {
  using ParityFixture::ParityFixture;
  std::map<std::string, Tensor> tensors = unpack(file);
  std::int64_t integer(const std::string& key, std::int64_t fallback) const {
    return has(key) ? std::stoll(meta(key)) : fallback;
  }
  bool contains(const std::string& key) const { return tensors.count(key) > 0; }
  // The stored tensor `key`, naming the fixture and the key when it is absent.
  const Tensor& stored(const std::string& key) const {
    auto it = tensors.find(key);
    if (it == tensors.end()) throw Error("seq fixture " + name + ": no tensor \"" + key + "\"");
    return it->second;
  }
  // A floating-point tensor of the fixture in the run's dtype (bool masks as stored).
  Tensor at(const std::string& key) const {
    const Tensor& t = stored(key);
    return is_floating(t.dtype()) ? t.to(dtype) : t;
  }
  // A fresh leaf for an input whose gradient is compared.
  Tensor leaf(const std::string& key) const { return at(key).clone().requires_grad_(); }
  nn::Lengths lengths() const {
    if (!has("lengths")) return {};
    std::vector<std::int64_t> values;
    for (const auto& n : split_list(meta("lengths"), ',')) values.push_back(std::stoll(n));
    return nn::Lengths(values, meta("padding") == "pre" ? nn::Side::pre : nn::Side::post);
  }

  // Checks that `ours` matches the fixture's tensor `key` (finite everywhere) to the tolerance.
  void compare(const Tensor& ours, const std::string& key) {
    CAPTURE(name);
    CAPTURE(key);
    REQUIRE(ours.defined());
    const Tensor& ref = stored(key);
    REQUIRE(ref.dtype() == DType::f64);
    REQUIRE(shape_str(ours.shape()) == shape_str(ref.shape()));
    CHECK(ours.dtype() == dtype);
    CHECK_FALSE(has_nonfinite(ours));
    const double diff = ours.numel() == 0 ? 0.0 : max(abs(ours.to(DType::f64) - ref)).item();
    CHECK(diff <= tolerance);
    note(diff, key);
  }
};

// The module a fixture describes (nullptr for the functional kinds).
std::unique_ptr<nn::Module> make_module(const Fixture& f) {
  const std::string& kind = f.meta("kind");
  if (kind == "conv1d") {
    const std::string pad = f.has("padding") ? f.meta("padding") : "0";
    nn::ConvPadding padding = pad == "same" || pad == "valid" ? nn::ConvPadding(pad) : nn::ConvPadding(std::stoll(pad));
    const std::string mode = f.has("padding_mode") ? f.meta("padding_mode") : "zeros";
    const std::map<std::string, nn::PaddingMode> modes{{"zeros", nn::PaddingMode::zeros},
                                                       {"reflect", nn::PaddingMode::reflect},
                                                       {"replicate", nn::PaddingMode::replicate},
                                                       {"circular", nn::PaddingMode::circular}};
    if (!modes.count(mode)) throw Error("seq fixture " + f.name + ": unknown padding_mode \"" + mode + "\"");
    return std::make_unique<nn::Conv1d>(
        nn::Conv1dOptions(f.integer("in_channels", 0), f.integer("out_channels", 0), f.integer("kernel_size", 0))
            .stride(f.integer("stride", 1))
            .padding(padding)
            .dilation(f.integer("dilation", 1))
            .groups(f.integer("groups", 1))
            .bias(!f.has("bias") || f.flag("bias"))
            .padding_mode(modes.at(mode))
            .channels_last(f.flag("channels_last")));
  }
  const std::int64_t E = f.integer("embed_dim", 0);
  if (kind == "mha")
    return std::make_unique<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(E, f.integer("num_heads", 0))
                                                        .kdim(f.integer("kdim", 0))
                                                        .vdim(f.integer("vdim", 0))
                                                        .bias(!f.has("bias") || f.flag("bias"))
                                                        .batch_first(f.flag("batch_first")));
  if (kind == "encoder_layer" || kind == "encoder") {
    auto layer = nn::TransformerEncoderLayerOptions(E, f.integer("nhead", 0))
                     .dim_feedforward(f.integer("dim_feedforward", 0))
                     .dropout(0.0)
                     .activation(f.has("activation") && f.meta("activation") == "gelu" ? nn::TransformerActivation::gelu
                                                                                        : nn::TransformerActivation::relu)
                     .layer_norm_eps(f.has("eps") ? std::stod(f.meta("eps")) : 1e-5)
                     .norm_first(f.flag("norm_first"))
                     .batch_first(f.flag("batch_first"));
    if (kind == "encoder_layer") return std::make_unique<nn::TransformerEncoderLayer>(layer);
    return std::make_unique<nn::TransformerEncoder>(
        nn::TransformerEncoderOptions(layer, f.integer("num_layers", 1)).final_norm(f.flag("final_norm")));
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
    for (const auto& name : value_names(f.file.metadata))
      if (is_parameter(name)) weights.emplace_back(name, f.at(name));
    module->load_state_dict(weights);  // strict: PyTorch's names, all of them
  }
  const std::string& kind = f.meta("kind");
  std::map<std::string, Tensor> inputs{{"input", f.leaf("input")}};
  const Tensor& x = inputs["input"];
  Tensor output, weights;
  const Tensor attn_mask = f.contains("attn_mask") ? f.at("attn_mask") : Tensor();
  const Tensor key_padding_mask = f.contains("key_padding_mask") ? f.at("key_padding_mask") : Tensor();
  if (kind == "sdpa" || (kind == "mha" && f.contains("key"))) {
    inputs["key"] = f.leaf("key");
    inputs["value"] = f.leaf("value");
  }
  const Tensor& key = inputs.count("key") ? inputs["key"] : x;
  const Tensor& value = inputs.count("value") ? inputs["value"] : x;
  if (kind == "sdpa") {
    output = nn::scaled_dot_product_attention(x, key, value, attn_mask, 0.0, f.flag("is_causal"));
  } else if (kind == "mha") {
    auto args = nn::AttentionArgs()
                    .attn_mask(attn_mask)
                    .key_padding_mask(key_padding_mask)
                    .is_causal(f.flag("is_causal"))
                    .lengths(f.lengths())
                    .query_lengths(f.lengths())
                    .average_attn_weights(!f.has("average") || f.flag("average"));
    auto r = dynamic_cast<nn::MultiheadAttention&>(*module)(x, key, value, args);
    output = r.output;
    weights = r.weights;
  } else if (kind == "encoder_layer" || kind == "encoder") {
    auto args = nn::EncoderArgs().mask(attn_mask).src_key_padding_mask(key_padding_mask).is_causal(f.flag("is_causal"))
                    .lengths(f.lengths());
    if (kind == "encoder") output = dynamic_cast<nn::TransformerEncoder&>(*module)(x, args);
    else output = dynamic_cast<nn::TransformerEncoderLayer&>(*module)(x, args);
  } else if (kind == "conv1d") output = dynamic_cast<nn::Conv1d&>(*module)(x);
  else if (kind == "max_pool1d") output = nn::MaxPool1d(pool_options(f))(x);
  else if (kind == "avg_pool1d") output = nn::AvgPool1d(pool_options(f))(x);
  else if (kind == "global_max_pool1d") output = nn::GlobalMaxPool1d(f.integer("time_dim", -1))(x, f.lengths());
  else if (kind == "global_avg_pool1d") output = nn::GlobalAvgPool1d(f.integer("time_dim", -1))(x, f.lengths());
  else FAIL("unknown kind " << kind << " in " << f.name);

  f.compare(output, "output");
  Tensor loss = sum(output * f.at("R"));
  if (f.contains("weights")) {
    f.compare(weights, "weights");
    loss = loss + sum(weights * f.at("R_weights"));
  }
  loss.backward();
  for (const auto& [name, t] : inputs) f.compare(t.grad(), "grad." + name);
  if (module)
    for (const auto& [name, p] : module->named_parameters()) f.compare(p.grad(), "grad." + name);
}

// Runs every fixture of the kinds `wanted` in f64 and f32; returns how many there were per kind.
std::map<std::string, int> check_kinds(const std::vector<std::string>& wanted) {
  const bool report = std::getenv("XGRAD_PARITY_REPORT") != nullptr;
  std::map<std::string, int> kinds;
  for (const auto& path : parity_test::fixture_files(kDir)) {
    for (const auto& [dtype, tolerance] : {std::pair{DType::f64, 1e-10}, std::pair{DType::f32, 1e-5}}) {
      Fixture f(path, dtype, tolerance);
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

TEST_CASE("Conv1d matches PyTorch 1.13: stride, padding, \"same\", dilation, groups, no bias, unbatched, "
          "padding_mode reflect / replicate / circular, channels last") {
  auto kinds = check_kinds({"conv1d"});
  CHECK(kinds["conv1d"] == 14);
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

TEST_CASE("scaled_dot_product_attention matches PyTorch: masks, causal, a dead row and a NaN key nobody reads") {
  auto kinds = check_kinds({"sdpa"});
  CHECK(kinds["sdpa"] == 5);
}

TEST_CASE("MultiheadAttention matches PyTorch 1.13: heads 1/2/4, kdim != vdim, masks, causal, lengths") {
  auto kinds = check_kinds({"mha"});
  CHECK(kinds["mha"] == 11);
}

TEST_CASE("TransformerEncoderLayer and TransformerEncoder match PyTorch 1.13") {
  auto kinds = check_kinds({"encoder_layer", "encoder"});
  CHECK(kinds["encoder_layer"] == 5);
  CHECK(kinds["encoder"] == 1);
}

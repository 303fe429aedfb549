// onnx::load_weights: a model exported by PyTorch 1.13's torch.onnx.export
// (tests/fixtures/gen_onnx_fixtures.py) loads into the matching xgrad module and gives
// PyTorch's outputs; xgrad's own exports load back; hostile files get a clear xgrad::Error.
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>

#include <onnx/onnx_pb.h>

#include <xgrad/onnx.hpp>
#include <xgrad/xgrad.hpp>

#include "../tensor_approx.hpp"
#include "../temp_dir.hpp"
#include "tagger.hpp"

using xgrad::Error;
using xgrad::Tensor;
using xgrad_test::approx;
namespace nn = xgrad::nn;

namespace {

const std::string fixture = XGRAD_FIXTURES_DIR "/onnx/torch_tagger.onnx";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("weights exported by torch.onnx.export load into the matching module, outputs equal") {
  xgrad::manual_seed(99);  // the module's own initial weights differ from PyTorch's
  xgrad_test::TorchTagger model;
  model.eval();
  xgrad::onnx::load_weights(model, fixture);
  const Tensor ids = xgrad::load_npy(XGRAD_FIXTURES_DIR "/onnx/torch_tagger_ids.npy");
  const Tensor expected = xgrad::load_npy(XGRAD_FIXTURES_DIR "/onnx/torch_tagger_output.npy");
  xgrad::NoGradGuard no_grad;
  CHECK(model.forward(ids) == approx(expected, 1e-5, 1e-5));
}

TEST_CASE("an xgrad export loads back into a fresh module") {
  xgrad::manual_seed(1);
  xgrad_test::TorchTagger a;
  a.eval();
  const std::string bytes = xgrad::onnx::export_model_bytes(
      a, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{a.forward(in[0])}; },
      {xgrad::randint(0, 20, {3, 4})});
  xgrad::manual_seed(2);
  xgrad_test::TorchTagger b;
  xgrad::onnx::load_weights_bytes(b, bytes);
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    CHECK(pb[i].second == approx(pa[i].second, 0, 0));
  }
}

TEST_CASE("hostile files get a clear error, never a crash") {
  const std::string bytes = read_bytes(fixture);
  REQUIRE(bytes.size() > 1000);
  SUBCASE("truncated") {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{17}, bytes.size() / 3, bytes.size() / 2,
                          bytes.size() - 1}) {
      CAPTURE(n);
      xgrad_test::TorchTagger model;
      CHECK(error_of([&] { xgrad::onnx::load_weights_bytes(model, bytes.substr(0, n)); }).starts_with("onnx load_weights:"));
    }
  }
  SUBCASE("a module of other shapes") {
    nn::LSTM lstm(nn::LSTMOptions(5, 7).num_layers(2).bidirectional(true).batch_first(true));
    CHECK(error_of([&] { xgrad::onnx::load_weights_bytes(lstm, bytes); }).find("hidden_size 6") != std::string::npos);
    nn::Linear fc(4, 2);
    struct Holder : nn::Module {
      nn::Linear fc{4, 2};
      Holder() { register_module("fc", fc); }
    } holder;
    const std::string e = error_of([&] { xgrad::onnx::load_weights_bytes(holder, bytes); });
    CHECK(e.find("initializer 'fc.weight' has shape (2, 3) in the file, but parameter 'fc.weight' has shape (2, 4)") !=
          std::string::npos);
  }
  SUBCASE("a module of other kinds or directions") {
    struct Swapped : nn::Module {
      nn::GRU gru{nn::GRUOptions(5, 6).num_layers(2).bidirectional(true).batch_first(true)};
      Swapped() { register_module("gru", gru); }
    } swapped;
    CHECK(error_of([&] { xgrad::onnx::load_weights_bytes(swapped, bytes); }).find("which is a GRU") != std::string::npos);
    nn::LSTM one_way(nn::LSTMOptions(5, 6).num_layers(2));
    CHECK(error_of([&] { xgrad::onnx::load_weights_bytes(one_way, bytes); }).find("direction 'bidirectional'") !=
          std::string::npos);
  }
  SUBCASE("parameters the file does not give are listed") {
    struct Extra : xgrad_test::TorchTagger {
      nn::Linear extra{2, 2};
      Extra() { register_module("extra", extra); }
    } extra;
    const std::string e = error_of([&] { xgrad::onnx::load_weights_bytes(extra, bytes); });
    CHECK(e.find("no value for 2 parameter(s)") != std::string::npos);
    CHECK(e.find("extra.weight, extra.bias") != std::string::npos);
    nn::Linear only_fc(3, 2);
    CHECK(error_of([&] { xgrad::onnx::load_weights_bytes(only_fc, bytes); }).find("more recurrent nodes") !=
          std::string::npos);
  }
  SUBCASE("an unknown op, a wrong dtype, a short tensor") {
    ::onnx::ModelProto m;
    REQUIRE(m.ParseFromString(bytes));
    ::onnx::ModelProto unknown = m;
    unknown.mutable_graph()->mutable_node(0)->set_op_type("NoSuchOp");
    nn::Linear fc(3, 2);
    std::string s;
    unknown.SerializeToString(&s);
    CHECK(error_of([&] { xgrad::onnx::load_weights_bytes(fc, s); }).find("not valid ONNX") != std::string::npos);
    for (auto& init : *m.mutable_graph()->mutable_initializer())
      if (init.name() == "fc.weight") init.mutable_raw_data()->resize(5);
    m.SerializeToString(&s);
    struct Holder : nn::Module {
      nn::Linear fc{3, 2};
      Holder() { register_module("fc", fc); }
    } holder;
    CHECK(error_of([&] { xgrad::onnx::load_weights_bytes(holder, s); })
              .find("tensor 'fc.weight' of shape (2, 3) holds 5 bytes of raw data, expected 24") != std::string::npos);
  }
  CHECK(error_of([] {
          nn::Linear fc(3, 2);
          xgrad::onnx::load_weights(fc, "/nonexistent.onnx");
        }).find("cannot open") != std::string::npos);
}

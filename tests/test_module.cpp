// nn::Module: registration, names equal to PyTorch's state-dict keys, modes, dtype
// conversion, state dicts and checkpoints with errors that name the key, and the repr.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>

using namespace xgrad;
using xgrad_test::TempDir;
namespace fs = std::filesystem;

namespace {

// The shape of a user model: members registered by reference, plus an owned submodule.
struct Encoder : nn::Module {
  nn::Embedding embed{nn::EmbeddingOptions(10, 4).padding_idx(0)};
  nn::LayerNorm norm{nn::LayerNormOptions({4})};
  Encoder() {
    register_module("embed", embed);
    register_module("norm", norm);
  }
};

struct Classifier : nn::Module {
  Encoder encoder;
  nn::Linear head{4, 3};
  std::shared_ptr<nn::Sequential> mlp;
  Tensor scale, steps;
  Classifier() {
    register_module("encoder", encoder);
    register_module("head", head);
    mlp = register_module("mlp", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
                                     std::make_shared<nn::Linear>(3, 5), std::make_shared<nn::Tanh>(),
                                     std::make_shared<nn::Linear>(5, 2)}));
    scale = register_parameter("scale", ones({}));
    steps = register_buffer("steps", zeros({}, DType::i64));
  }
  Tensor forward(const Tensor& ids) {  // (B, T) → (B, 2)
    return (*mlp)(head(encoder.norm(encoder.embed(ids)).mean({1}))) * scale;
  }
};

std::vector<std::string> names_of(const NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& [name, t] : named) out.push_back(name);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

const Tensor& find(const NamedTensors& named, const std::string& key) {
  for (const auto& [name, t] : named)
    if (name == key) return t;
  throw Error("no key " + key);
}

}  // namespace

TEST_CASE("named_parameters are ordered by registration with PyTorch's dotted keys") {
  Classifier model;
  // PyTorch order: a module's own parameters first, then each child in registration order.
  const std::vector<std::string> expected{"scale",        "encoder.embed.weight", "encoder.norm.weight",
                                          "encoder.norm.bias", "head.weight",     "head.bias",
                                          "mlp.0.weight", "mlp.0.bias",           "mlp.2.weight",
                                          "mlp.2.bias"};
  CHECK(names_of(model.named_parameters()) == expected);
  CHECK(model.parameters().size() == expected.size());
  // The handles are the members themselves.
  CHECK(model.parameters()[4].impl() == model.head.weight.impl());
  CHECK(names_of(model.named_parameters(false)) == std::vector<std::string>{"scale"});
  CHECK(names_of(model.named_buffers()) == std::vector<std::string>{"steps"});
  CHECK(model.num_parameters() == 1 + 40 + 4 + 4 + 12 + 3 + 15 + 5 + 10 + 2);

  auto children = model.named_children();
  REQUIRE(children.size() == 3);
  CHECK(children[0].first == "encoder");
  CHECK(children[0].second == &model.encoder);
  CHECK(children[2].second == model.mlp.get());
  std::vector<std::string> module_names;
  for (auto& [name, m] : model.named_modules()) module_names.push_back(name);
  CHECK(module_names == std::vector<std::string>{"", "encoder", "encoder.embed", "encoder.norm", "head", "mlp",
                                                 "mlp.0", "mlp.1", "mlp.2"});
}

TEST_CASE("a tensor or module registered twice is listed once by parameters()") {
  struct Tied : nn::Module {
    std::shared_ptr<nn::Linear> fc = std::make_shared<nn::Linear>(3, 3);
    Tied() {
      register_module("a", fc);
      register_module("b", fc);
    }
  } tied;
  CHECK(names_of(tied.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
  CHECK(tied.num_parameters() == 12);
  // The state dict keeps both names, as PyTorch's does.
  CHECK(names_of(tied.state_dict()) == std::vector<std::string>{"a.weight", "a.bias", "b.weight", "b.bias"});
}

TEST_CASE("registration rejects duplicate, dotted and empty names and non-float parameters") {
  nn::Linear fc(2, 2);
  CHECK(error_of([&] { fc.register_parameter("weight", zeros({1})); }).find("'weight' is already registered") !=
        std::string::npos);
  CHECK(error_of([&] { fc.register_buffer("a.b", zeros({1})); }).find("must not contain '.'") != std::string::npos);
  CHECK(error_of([&] { fc.register_parameter("", zeros({1})); }).find("must not be empty") != std::string::npos);
  CHECK(error_of([&] { fc.register_parameter("ids", zeros({1}, DType::i64)); }).find("floating-point") !=
        std::string::npos);
  nn::Sequential outer, inner;
  outer.push_back("inner", std::shared_ptr<nn::Sequential>(&inner, [](nn::Sequential*) {}));
  CHECK(error_of([&] { inner.register_module("outer", outer); }).find("modules form a tree") != std::string::npos);
  CHECK(error_of([&] { outer.register_module("self", outer); }).find("modules form a tree") != std::string::npos);
}

TEST_CASE("register_parameter makes a leaf that requires grad, or not when asked") {
  nn::Module m;
  Tensor computed = randn({3}).requires_grad_() * 2.0;
  Tensor p = m.register_parameter("p", computed);
  CHECK(p.is_leaf());
  CHECK(p.requires_grad());
  Tensor frozen = m.register_parameter("frozen", ones({2}), false);
  CHECK_FALSE(frozen.requires_grad());
  CHECK(m.num_parameters() == 5);
  CHECK(m.num_parameters(true) == 3);
}

TEST_CASE("train and eval switch every descendant") {
  Classifier model;
  CHECK(model.is_training());
  model.eval();
  CHECK_FALSE(model.is_training());
  CHECK_FALSE(model.encoder.embed.is_training());
  CHECK_FALSE((*model.mlp)[1].is_training());
  model.train();
  CHECK(model.encoder.norm.is_training());
}

TEST_CASE("zero_grad clears every parameter's gradient") {
  Classifier model;
  model.forward(tensor({1, 2, 0, 4}, {2, 2}, DType::i64)).sum().backward();
  CHECK(model.head.weight.grad().defined());
  model.zero_grad(false);
  CHECK(model.head.weight.grad().defined());
  CHECK(model.head.weight.grad().abs().sum().item() == 0.0);
  model.zero_grad();
  for (auto& p : model.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("to(f64) converts parameters and float buffers in place, keeping member handles") {
  struct WithBuffers : nn::Module {
    nn::Linear fc{3, 2};
    Tensor running, count;
    WithBuffers() {
      register_module("fc", fc);
      running = register_buffer("running", ones({2}));
      count = register_buffer("count", zeros({}, DType::i64));
    }
  } m;
  Tensor weight_handle = m.fc.weight;
  const std::vector<float> before = m.fc.weight.to_vector<float>();
  m.to(DType::f64);
  CHECK(m.fc.weight.dtype() == DType::f64);
  CHECK(weight_handle.dtype() == DType::f64);  // every copy of the handle sees the new data
  CHECK(m.fc.weight.requires_grad());
  CHECK(m.running.dtype() == DType::f64);
  CHECK(m.count.dtype() == DType::i64);
  CHECK(m.fc.weight.to_vector<double>()[0] == static_cast<double>(before[0]));
  // The converted module runs in f64 and gradchecks.
  // (Passing m.fc.weight as a gradcheck input checked nothing: gradcheck differentiates
  // clones of its inputs, and the layer reads its own weight. nn::gradcheck checks it.)
  const Tensor x = randn({4, 3}, DType::f64);
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return tanh(m.fc(in[0])); }, {x.detach().requires_grad_()});
  CHECK_MESSAGE(r.ok, r.message());
  auto rp = nn::gradcheck(m.fc, [&] { return tanh(m.fc(x)); });
  CHECK_MESSAGE(rp.ok, rp.message());
  CHECK_THROWS_AS(m.to(DType::i64), Error);
}

TEST_CASE("state_dict holds parameters then buffers per module, sharing their data") {
  Classifier model;
  NamedTensors state = model.state_dict();
  CHECK(names_of(state) == std::vector<std::string>{"scale", "steps", "encoder.embed.weight", "encoder.norm.weight",
                                                    "encoder.norm.bias", "head.weight", "head.bias", "mlp.0.weight",
                                                    "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"});
  const Tensor& w = find(state, "head.weight");
  CHECK_FALSE(w.requires_grad());
  CHECK(w.to_vector<float>() == model.head.weight.to_vector<float>());

  nn::Module m;
  m.register_buffer("cache", zeros({2}), /*persistent=*/false);
  CHECK(m.state_dict().empty());
  CHECK(m.named_buffers().size() == 1);
}

TEST_CASE("load_state_dict copies by name into the members") {
  manual_seed(1);
  Classifier a;
  manual_seed(2);
  Classifier b;
  CHECK(a.head.weight.to_vector<float>() != b.head.weight.to_vector<float>());
  Tensor ids = tensor({1, 2, 3, 0, 5, 6}, {2, 3}, DType::i64);
  Tensor ya = a.forward(ids);
  auto result = b.load_state_dict(a.state_dict());
  CHECK(result.missing_keys.empty());
  CHECK(result.unexpected_keys.empty());
  CHECK(b.head.weight.to_vector<float>() == a.head.weight.to_vector<float>());
  CHECK(allclose(b.forward(ids), ya, 0.0, 0.0));
  // Values were copied, not aliased.
  {
    NoGradGuard g;
    a.head.weight.fill_(0.0);
  }
  CHECK(b.head.weight.abs().sum().item() > 0.0);
}

TEST_CASE("load_state_dict errors name the key and leave the module unchanged") {
  nn::Linear fc(4, 2);
  const std::vector<float> original = fc.weight.to_vector<float>();

  SUBCASE("missing key") {
    NamedTensors state{{"weight", zeros({2, 4})}};
    std::string msg = error_of([&] { fc.load_state_dict(state); });
    CHECK(msg.find("missing key(s) 'bias'") != std::string::npos);
    auto result = fc.load_state_dict(state, /*strict=*/false);
    CHECK(result.missing_keys == std::vector<std::string>{"bias"});
    CHECK(fc.weight.abs().sum().item() == 0.0);  // the non-strict load copied what matched
    return;
  }
  SUBCASE("unexpected key") {
    NamedTensors state{{"weight", zeros({2, 4})}, {"bias", zeros({2})}, {"running_mean", zeros({2})}};
    CHECK(error_of([&] { fc.load_state_dict(state); }).find("unexpected key(s) 'running_mean'") != std::string::npos);
    auto result = fc.load_state_dict(state, false);
    CHECK(result.unexpected_keys == std::vector<std::string>{"running_mean"});
    return;
  }
  SUBCASE("shape mismatch, even when not strict") {
    NamedTensors state{{"weight", zeros({2, 5})}, {"bias", zeros({2})}};
    std::string msg = error_of([&] { fc.load_state_dict(state, false); });
    CHECK(msg == "load_state_dict: shape mismatch for 'weight': the state dict has (2, 5), the module has (2, 4)");
  }
  SUBCASE("dtype mismatch") {
    NamedTensors state{{"weight", zeros({2, 4})}, {"bias", zeros({2}, DType::f64)}};
    CHECK(error_of([&] { fc.load_state_dict(state); }) ==
          "load_state_dict: dtype mismatch for 'bias': the state dict has float64, the module has float32");
  }
  SUBCASE("duplicate key") {
    NamedTensors state{{"weight", zeros({2, 4})}, {"weight", zeros({2, 4})}, {"bias", zeros({2})}};
    CHECK(error_of([&] { fc.load_state_dict(state); }).find("'weight' appears twice") != std::string::npos);
  }
  CHECK(fc.weight.to_vector<float>() == original);
}

TEST_CASE("save and load a module through a safetensors file") {
  TempDir dir;
  manual_seed(3);
  Classifier a;
  {
    NoGradGuard g;
    a.steps.fill_(42);
  }
  a.save(dir.file("model.safetensors"));
  // The file is an ordinary safetensors file keyed by the state-dict names.
  SafetensorsFile file = load_safetensors(dir.file("model.safetensors"));
  CHECK(names_of(file.tensors) == names_of(a.state_dict()));
  CHECK(file.at("steps").item() == 42.0);

  manual_seed(4);
  Classifier b;
  b.load(dir.file("model.safetensors"));
  CHECK(b.steps.item() == 42.0);
  CHECK(b.mlp->at<nn::Linear>(2).weight.to_vector<float>() == a.mlp->at<nn::Linear>(2).weight.to_vector<float>());

  // A checkpoint of a different architecture fails naming the first offending key.
  struct Wider : nn::Module {
    nn::Linear head{4, 7};
    Wider() { register_module("head", head); }
  } wider;
  wider.save(dir.file("wider.safetensors"));
  struct Narrow : nn::Module {
    nn::Linear head{4, 3};
    Narrow() { register_module("head", head); }
  } narrow;
  CHECK(error_of([&] { narrow.load(dir.file("wider.safetensors")); }) ==
        "load_state_dict: shape mismatch for 'head.weight': the state dict has (7, 4), the module has (3, 4)");
  CHECK(error_of([&] { narrow.load(dir.file("absent.safetensors")); }).find("absent.safetensors") !=
        std::string::npos);
}

TEST_CASE("repr nests children like PyTorch and prints with fmt and iostreams") {
  Classifier model;
  const std::string expected =
      "Classifier(\n"
      "  (encoder): Encoder(\n"
      "    (embed): Embedding(10, 4, padding_idx=0)\n"
      "    (norm): LayerNorm((4,), eps=1e-05, elementwise_affine=true)\n"
      "  )\n"
      "  (head): Linear(in_features=4, out_features=3, bias=true)\n"
      "  (mlp): Sequential(\n"
      "    (0): Linear(in_features=3, out_features=5, bias=true)\n"
      "    (1): Tanh()\n"
      "    (2): Linear(in_features=5, out_features=2, bias=true)\n"
      "  )\n"
      ")";
  CHECK(model.repr() == expected);
  CHECK(fmt::format("{}", model) == expected);
  CHECK(fmt::format("{}", model.head) == "Linear(in_features=4, out_features=3, bias=true)");
  std::ostringstream os;
  os << nn::Dropout(0.25);
  CHECK(os.str() == "Dropout(p=0.25)");
}

TEST_CASE("modules move when their submodules are owned; a member registered by reference refuses, naming it") {
  nn::Linear a(3, 2);
  const Tensor w = a.weight;
  nn::Linear b = std::move(a);
  CHECK(b.named_parameters().at(0).second.impl() == w.impl());  // the same parameter tensors
  CHECK(a.named_parameters().empty());
  nn::Sequential seq{std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::Tanh>()};
  nn::Sequential moved = std::move(seq);
  CHECK(moved.size() == 2);
  CHECK(moved(randn({2, 3})).shape() == Shape{2, 4});

  struct Holder : nn::Module {
    nn::Linear inner{2, 2};
    Holder() { register_module("inner", inner); }
  };
  Holder h;
  CHECK_THROWS_WITH_AS(Holder(std::move(h)), doctest::Contains("submodule 'inner' is a member registered by reference"),
                       Error);
  CHECK(h.named_parameters().size() == 2);  // a refused move leaves the module as it was
}

// load_weights: an ONNX model's weights into a matching xgrad module. Parameters are matched by
// name first; ONNX's RNN / LSTM / GRU nodes then fill the recurrent layers in order, their
// gate blocks put back in PyTorch's order. Every field read from the file is validated.
#include <xgrad/onnx/import.hpp>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <typeinfo>
#include <unordered_map>

#include <fmt/format.h>

#include <onnx/checker.h>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/rnn.hpp>

#include "graph.hpp"

namespace xgrad::onnx {

namespace {

constexpr const char* what = "onnx load_weights";

// An ONNX tensor (initializer or Constant value) as an xgrad tensor of `dtype`.
Tensor read_tensor(const ::onnx::TensorProto& p, DType dtype) {
  const std::string name = p.name().empty() ? std::string("(unnamed)") : p.name();
  if (p.data_location() == ::onnx::TensorProto_DataLocation_EXTERNAL)
    throw Error(fmt::format("{}: tensor '{}' keeps its data in an external file, which is not supported", what, name));
  Shape shape;
  std::int64_t n = 1;
  for (std::int64_t d : p.dims()) {
    if (d < 0) throw Error(fmt::format("{}: tensor '{}' has a negative dimension {}", what, name, d));
    n = checked_mul(n, d, fmt::format("{}: tensor '{}' elements", what, name));
    shape.push_back(d);
  }
  std::vector<double> values;
  const auto count = static_cast<std::size_t>(n);
  auto from_raw = [&]<class T>() {
    if (p.raw_data().size() != count * sizeof(T))
      throw Error(fmt::format("{}: tensor '{}' of shape {} holds {} bytes of raw data, expected {}", what, name,
                              shape_str(shape), p.raw_data().size(), count * sizeof(T)));
    std::vector<T> v(count);
    if (count) std::memcpy(v.data(), p.raw_data().data(), count * sizeof(T));
    values.assign(v.begin(), v.end());
  };
  switch (p.data_type()) {
    case ::onnx::TensorProto_DataType_FLOAT:
      if (p.has_raw_data()) from_raw.operator()<float>();
      else if (static_cast<std::size_t>(p.float_data_size()) == count) values.assign(p.float_data().begin(), p.float_data().end());
      else throw Error(fmt::format("{}: tensor '{}' of shape {} holds {} floats", what, name, shape_str(shape), p.float_data_size()));
      break;
    case ::onnx::TensorProto_DataType_DOUBLE:
      if (p.has_raw_data()) from_raw.operator()<double>();
      else if (static_cast<std::size_t>(p.double_data_size()) == count) values.assign(p.double_data().begin(), p.double_data().end());
      else throw Error(fmt::format("{}: tensor '{}' of shape {} holds {} doubles", what, name, shape_str(shape), p.double_data_size()));
      break;
    default:
      throw Error(fmt::format("{}: tensor '{}' has ONNX data type {}; weights must be float or double", what, name,
                              p.data_type()));
  }
  return from_vector(values, shape).to(dtype);
}

// Copies `value` into the parameter `p`, which must have its shape.
void assign(const Tensor& p, const Tensor& value, const std::string& target, const std::string& source) {
  if (p.shape() != value.shape())
    throw Error(fmt::format("{}: {} has shape {} in the file, but {} has shape {}", what, source,
                            shape_str(value.shape()), target, shape_str(p.shape())));
  NoGradGuard no_grad;
  Tensor(p).copy_(value);
}

struct Layer {
  std::string name;  // "lstm layer 1" for messages
  nn::Recurrent* module;
  std::int64_t layer;
};

std::string cell_kind(const nn::RecurrentCell& c) {
  if (typeid(c) == typeid(nn::LSTMCell)) return "LSTM";
  if (typeid(c) == typeid(nn::GRUCell)) return "GRU";
  if (typeid(c) == typeid(nn::RNNCell)) return "RNN";
  return c.type_name();
}

const ::onnx::AttributeProto* attribute(const ::onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

// Checks that the ONNX node computes what the layer does.
void check_node(const ::onnx::NodeProto& n, const Layer& L, const std::string& kind, std::int64_t H, std::int64_t D) {
  const std::string node = fmt::format("node '{}' ({})", n.name(), n.op_type());
  if (n.op_type() != kind)
    throw Error(fmt::format("{}: {} would fill {}, which is a {}", what, node, L.name, kind));
  const auto* hs = attribute(n, "hidden_size");
  if (hs && hs->i() != H)
    throw Error(fmt::format("{}: {} has hidden_size {}, {} has {}", what, node, hs->i(), L.name, H));
  const auto* dir = attribute(n, "direction");
  const std::string direction = dir ? dir->s() : "forward";
  if (direction != (D == 2 ? "bidirectional" : "forward"))
    throw Error(fmt::format("{}: {} has direction '{}', {} is {}", what, node, direction, L.name,
                            D == 2 ? "bidirectional" : "forward"));
  for (const char* unsupported : {"input_forget", "layout"})
    if (const auto* a = attribute(n, unsupported); a && a->i() != 0)
      throw Error(fmt::format("{}: {} sets {}={}, which xgrad's layers do not compute", what, node, unsupported, a->i()));
  if (attribute(n, "clip")) throw Error(fmt::format("{}: {} clips its cell state, which xgrad's layers do not", what, node));
  const nn::RecurrentCell& c = L.module->cell(L.layer);
  if (kind == "GRU") {
    const auto* lbr = attribute(n, "linear_before_reset");
    const bool before = lbr && lbr->i() != 0;
    const bool reset_after = static_cast<const nn::GRUCell&>(c).options().reset_after();
    if (before != reset_after)
      throw Error(fmt::format("{}: {} has linear_before_reset={}, {} has reset_after={}", what, node, before ? 1 : 0,
                              L.name, reset_after));
  }
  if (kind == "RNN") {
    const auto* acts = attribute(n, "activations");
    const std::string act = acts && acts->strings_size() > 0 ? acts->strings(0) : "Tanh";
    const bool relu = static_cast<const nn::RNNCell&>(c).options().nonlinearity() == nn::RNNNonlinearity::relu;
    if (act != (relu ? "Relu" : "Tanh"))
      throw Error(fmt::format("{}: {} uses {}, {} uses {}", what, node, act, L.name, relu ? "relu" : "tanh"));
  }
  if (kind == "LSTM" && n.input_size() > 7 && !n.input(7).empty())
    throw Error(fmt::format("{}: {} has peephole weights, which xgrad's LSTM does not", what, node));
}

bool has_nonzero(const Tensor& t) { return sum(abs(t)).item() != 0.0; }

// ONNX's gate blocks of `w` (G·H, ...) in PyTorch's order (the inverse of the exporter's).
Tensor pytorch_gates(const Tensor& w, const std::string& kind, std::int64_t H) {
  static const std::unordered_map<std::string, std::vector<std::int64_t>> onnx_block_of_gate = {
      {"LSTM", {0, 2, 3, 1}},  // i ← i, f ← f(2), g ← c(3), o ← o(1)
      {"GRU", {1, 0, 2}},      // r ← r(1), z ← z(0), n ← h(2)
      {"RNN", {0}}};
  const auto& order = onnx_block_of_gate.at(kind);
  if (order.size() == 1) return w;
  std::vector<Tensor> blocks;
  for (std::int64_t k : order) blocks.push_back(narrow(w, 0, k * H, H));
  return cat(blocks, 0);
}

using Constants = std::unordered_map<std::string, const ::onnx::TensorProto*>;

// The stored tensors of the graph by name: initializers and Constant nodes' values.
Constants constants_of(const ::onnx::GraphProto& g) {
  Constants constants;
  for (const auto& init : g.initializer()) constants[init.name()] = &init;
  for (const auto& n : g.node())
    if (n.op_type() == "Constant" && n.output_size() == 1)
      if (const auto* v = attribute(n, "value"); v && v->has_t()) constants[n.output(0)] = &v->t();
  return constants;
}

// The recurrent layers of `module`, one entry per layer of each, in order.
std::vector<Layer> recurrent_layers(nn::Module& module) {
  std::vector<Layer> layers;
  for (const auto& [name, m] : module.named_modules())
    if (auto* r = dynamic_cast<nn::Recurrent*>(m))
      for (std::int64_t l = 0; l < r->recurrent_options().num_layers(); ++l)
        layers.push_back({fmt::format("{} layer {}", name.empty() ? r->type_name() : "'" + name + "'", l), r, l});
  return layers;
}

// Direction d of the recurrent node `n` (W, R, B read) into layer L's cell, gate order undone.
void load_direction(const ::onnx::NodeProto& n, const Layer& L, const std::string& kind, std::int64_t H,
                    std::int64_t D, std::int64_t d, const Tensor& W, const Tensor& R, const Tensor& B,
                    std::set<const void*>& loaded) {
  nn::RecurrentCell& cell = L.module->cell(L.layer, d);
  const std::string suffix = fmt::format("_l{}{}", L.layer, d == 1 ? "_reverse" : "");
  auto set = [&](const char* local, const Tensor& value, const std::string& source) {
    for (const auto& [name, p] : cell.named_parameters())
      if (name == local) {
        assign(p, value, fmt::format("{}'s {}{}", L.name, local, suffix), source);
        loaded.insert(p.impl().get());
        return true;
      }
    return false;
  };
  const std::string node = "node '" + n.name() + "'";
  if (W.dim() != 3 || W.size(0) != D || R.dim() != 3 || R.size(0) != D)
    throw Error(fmt::format("{}: {} has W of shape {} and R of shape {}; expected ({}, G·H, I) and ({}, G·H, H)",
                            what, node, shape_str(W.shape()), shape_str(R.shape()), D, D));
  const std::int64_t GH = W.size(1);
  set("weight_ih", pytorch_gates(select(W, 0, d), kind, H), node + " W[" + std::to_string(d) + "]");
  set("weight_hh", pytorch_gates(select(R, 0, d), kind, H), node + " R[" + std::to_string(d) + "]");
  if (!B.defined()) return;
  if (B.dim() != 2 || B.size(0) != D || B.size(1) != 2 * GH)
    throw Error(fmt::format("{}: {} has B of shape {}; expected ({}, {})", what, node, shape_str(B.shape()), D, 2 * GH));
  const Tensor bd = select(B, 0, d);
  const Tensor wb = pytorch_gates(narrow(bd, 0, 0, GH), kind, H), rb = pytorch_gates(narrow(bd, 0, GH, GH), kind, H);
  const bool has_ih = set("bias_ih", wb, node + " B[" + std::to_string(d) + "] (Wb)");
  const bool has_hh = set("bias_hh", rb, node + " B[" + std::to_string(d) + "] (Rb)");
  if ((!has_ih && has_nonzero(wb)) || (!has_hh && has_nonzero(rb)))
    throw Error(fmt::format("{}: {} has a nonzero bias that {} has no parameter for", what, node, L.name));
}

// The recurrent node `n` into layer L, unless L's parameters were already loaded by name.
void load_recurrent_node(const ::onnx::NodeProto& n, const Layer& L, const Constants& constants,
                         std::set<const void*>& loaded) {
  const std::int64_t D = L.module->num_directions();
  const std::string kind = cell_kind(L.module->cell(L.layer));
  const std::int64_t H = L.module->cell(L.layer).output_size();
  check_node(n, L, kind, H, D);
  bool all_loaded = true;
  for (std::int64_t d = 0; d < D; ++d)
    for (const auto& [name, p] : L.module->cell(L.layer, d).named_parameters())
      all_loaded = all_loaded && loaded.contains(p.impl().get());
  if (all_loaded) return;  // an xgrad export: its parameters kept their names
  auto input = [&](int i, const char* role) -> const ::onnx::TensorProto* {
    if (n.input_size() <= i || n.input(i).empty()) return nullptr;
    auto it = constants.find(n.input(i));
    if (it == constants.end())
      throw Error(fmt::format("{}: input {} ({}) of node '{}' is computed in the graph, not stored: its weights "
                              "cannot be read",
                              what, i, role, n.name()));
    return it->second;
  };
  const DType dtype = L.module->cell(L.layer).parameters()[0].dtype();
  const Tensor W = read_tensor(*input(1, "W"), dtype), R = read_tensor(*input(2, "R"), dtype);
  const auto* b = input(3, "B");
  const Tensor B = b ? read_tensor(*b, dtype) : Tensor();
  for (std::int64_t d = 0; d < D; ++d) load_direction(n, L, kind, H, D, d, W, R, B, loaded);
}

}  // namespace

void load_weights_bytes(nn::Module& module, const std::string& bytes) {
  ::onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    throw Error(fmt::format("{}: not an ONNX model (the protobuf does not parse; truncated?)", what));
  try {
    ::onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: the model is not valid ONNX: {}", what, e.what()));
  }
  const ::onnx::GraphProto& g = model.graph();
  const Constants constants = constants_of(g);

  std::set<const void*> loaded;
  // 1. By name.
  for (const auto& [name, p] : module.named_parameters())
    if (auto it = constants.find(name); it != constants.end()) {
      assign(p, read_tensor(*it->second, p.dtype()), "parameter '" + name + "'", "initializer '" + name + "'");
      loaded.insert(p.impl().get());
    }

  // 2. Recurrent nodes, in order, into the recurrent layers, in order.
  const std::vector<Layer> layers = recurrent_layers(module);
  std::size_t next = 0;
  for (const auto& n : g.node()) {
    if (n.op_type() != "LSTM" && n.op_type() != "GRU" && n.op_type() != "RNN") continue;
    if (next >= layers.size())
      throw Error(fmt::format("{}: the model has more recurrent nodes than the module has recurrent layers ({}); node "
                              "'{}' ({}) has no layer to fill",
                              what, layers.size(), n.name(), n.op_type()));
    load_recurrent_node(n, layers[next++], constants, loaded);
  }
  std::vector<std::string> missing;
  for (const auto& [name, p] : module.named_parameters())
    if (!loaded.contains(p.impl().get())) missing.push_back(name);
  if (!missing.empty())
    throw Error(fmt::format("{}: the model gives no value for {} parameter(s) of {}: {}", what, missing.size(),
                            module.type_name(), fmt::join(missing, ", ")));
}

void load_weights(nn::Module& module, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open '{}'", what, path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  try {
    load_weights_bytes(module, bytes.str());
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (file '" + path + "')");
  }
}

}  // namespace xgrad::onnx

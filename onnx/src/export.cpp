// export_model: trace the forward once, lower every recorded event to ONNX nodes, keep what
// the outputs need, and check the model with ONNX's own checker and shape inference.
#include <xgrad/onnx/export.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/io.hpp>
#include <xgrad/core/trace.hpp>

#include "graph.hpp"

namespace xgrad::onnx {

namespace {

using detail::Dim;
using detail::Dims;
using detail::Value;

// ONNX 1.12 writes IR version 8.
constexpr std::int64_t ir_version = 8;

std::vector<detail::Symbol> make_symbols(const std::vector<Tensor>& inputs, const std::vector<std::string>& names,
                                         const std::vector<DynamicAxis>& axes) {
  std::vector<detail::Symbol> symbols;
  for (const DynamicAxis& a : axes) {
    if (a.input >= inputs.size())
      throw Error(fmt::format("onnx export: dynamic axis '{}' names input {}, but there are {} example inputs", a.name,
                              a.input, inputs.size()));
    const Tensor& t = inputs[a.input];
    if (a.axis < 0 || a.axis >= t.dim())
      throw Error(fmt::format("onnx export: dynamic axis '{}' is axis {} of input {} of shape {}", a.name, a.axis,
                              a.input, shape_str(t.shape())));
    if (a.name.empty()) throw Error("onnx export: a dynamic axis needs a name");
    const std::int64_t size = t.size(a.axis);
    if (size < 2)
      throw Error(fmt::format("onnx export: dynamic axis '{}' has example size {}; give it an example size of at "
                              "least 2, so that it can be told from the static dimensions of 1",
                              a.name, size));
    for (const detail::Symbol& s : symbols)
      if (s.name != a.name && s.example == size)
        throw Error(fmt::format("onnx export: dynamic axes '{}' and '{}' both have example size {}; give them "
                                "different sizes, so that the trace can tell them apart",
                                s.name, a.name, size));
    symbols.push_back({a.name, size, names[a.input], a.axis});
  }
  return symbols;
}

std::vector<std::string> names_or_default(const std::vector<std::string>& given, std::size_t n, const char* what) {
  if (given.empty()) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < n; ++i) names.push_back(fmt::format("{}{}", what, i));
    return names;
  }
  if (given.size() != n)
    throw Error(fmt::format("onnx export: {} {} names given for {} {}s", given.size(), what, n, what));
  std::set<std::string> unique(given.begin(), given.end());
  if (unique.size() != given.size()) throw Error(fmt::format("onnx export: the {} names repeat a name", what));
  return given;
}

void describe_value(const detail::Graph& g, ::onnx::ValueInfoProto& info, const std::string& name, const Dims& dims,
                    DType dtype) {
  info.set_name(name);
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(detail::onnx_type(dtype));
  auto* shape = tensor->mutable_shape();
  for (const Dim& d : dims) g.describe(d, *shape->add_dim());
}

// The values a node reads, its subgraphs' reads of the enclosing scope included (a loop body
// reads parameters by their outer names).
void add_inputs(const ::onnx::NodeProto& n, std::set<std::string>& needed) {
  for (const auto& in : n.input())
    if (!in.empty()) needed.insert(in);
  for (const auto& a : n.attribute())
    if (a.has_g())
      for (const auto& inner : a.g().node()) add_inputs(inner, needed);
}

// Drops the nodes and initializers no output depends on (core's ops run helper primitives on
// detached tensors, which the trace sees as well).
void prune(::onnx::GraphProto& graph) {
  std::set<std::string> needed;
  for (const auto& o : graph.output()) needed.insert(o.name());
  std::vector<bool> keep(static_cast<std::size_t>(graph.node_size()), false);
  for (int i = graph.node_size() - 1; i >= 0; --i) {
    const auto& n = graph.node(i);
    bool used = false;
    for (const auto& o : n.output()) used = used || needed.contains(o);
    if (!used) continue;
    keep[static_cast<std::size_t>(i)] = true;
    add_inputs(n, needed);
  }
  ::onnx::GraphProto kept;
  for (int i = 0; i < graph.node_size(); ++i)
    if (keep[static_cast<std::size_t>(i)]) *kept.add_node() = graph.node(i);
  for (const auto& init : graph.initializer())
    if (needed.contains(init.name())) *kept.add_initializer() = init;
  graph.clear_node();
  graph.clear_initializer();
  graph.mutable_node()->Swap(kept.mutable_node());
  graph.mutable_initializer()->Swap(kept.mutable_initializer());
}

void check(::onnx::ModelProto& model) {
  try {
    ::onnx::checker::check_model(model);
    // Full shape inference, as onnx.checker.check_model(m, full_check=True): type checks,
    // strict errors, data propagation through shape computations.
    ::onnx::ShapeInferenceOptions options(true, 1, true);
    ::onnx::shape_inference::InferShapes(model, ::onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    throw Error(std::string("onnx check: ") + e.what());
  }
}

::onnx::ModelProto build(const nn::Module& module, const ExportForward& forward,
                         const std::vector<Tensor>& example_inputs, const ExportOptions& options) {
  if (!forward) throw Error("onnx export: the forward function is empty");
  if (module.is_training())
    throw Error(fmt::format("onnx export: the module {} is in training mode; call eval() before exporting (dropout "
                            "exports as identity in eval mode only, as PyTorch's exporter expects)",
                            module.type_name()));
  for (std::size_t i = 0; i < example_inputs.size(); ++i)
    if (!example_inputs[i].defined()) throw Error(fmt::format("onnx export: example input {} is undefined", i));
  const std::vector<std::string> input_names = names_or_default(options.input_names(), example_inputs.size(), "input");

  ::onnx::ModelProto model;
  model.set_ir_version(ir_version);
  model.set_producer_name(options.producer_name());
  if (!options.doc_string().empty()) model.set_doc_string(options.doc_string());
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(opset_version);
  ::onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(module.type_name());

  detail::Graph g(graph, make_symbols(example_inputs, input_names, options.dynamic_axes()));
  detail::Lowering L(g);
  for (const auto& [name, p] : module.named_parameters()) L.add_parameter(name, p);
  for (const auto& [name, b] : module.named_buffers()) L.add_parameter(name, b);
  for (std::size_t i = 0; i < example_inputs.size(); ++i) {
    const Tensor& t = example_inputs[i];
    Dims dims = detail::static_dims(t.shape());
    for (std::size_t s = 0; s < g.symbols().size(); ++s)
      if (g.symbols()[s].input == input_names[i])
        dims[static_cast<std::size_t>(g.symbols()[s].axis)].syms = {static_cast<int>(s)};
    describe_value(g, *graph.add_input(), input_names[i], dims, t.dtype());
    L.add_input(t, Value{input_names[i], dims, t.dtype()});
  }

  // Run the forward once, under the tracer, with grad mode off (nothing is recorded for
  // backward; the tracer sees every primitive regardless).
  detail::Recorder recorder;
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    trace::TracerGuard guard(recorder);
    outputs = forward(example_inputs);
  }
  if (outputs.empty()) throw Error("onnx export: the forward returned no tensors");
  const std::vector<std::string> output_names = names_or_default(options.output_names(), outputs.size(), "output");
  for (const detail::Event& e : recorder.events) L.lower(e);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined()) throw Error(fmt::format("onnx export: output {} is undefined", i));
    if (!L.known(outputs[i]))
      throw Error(fmt::format("onnx export: output {} (shape {}) was not computed from the inputs or parameters by "
                              "traced ops; it would be a constant",
                              i, shape_str(outputs[i].shape())));
    const Value v = L.value_of(outputs[i]);
    g.node("Identity", {v.name}, {output_names[i]});
    describe_value(g, *graph.add_output(), output_names[i], v.dims, v.dtype);
  }
  prune(graph);
  check(model);
  return model;
}

}  // namespace

std::string export_model_bytes(const nn::Module& module, const ExportForward& forward,
                               const std::vector<Tensor>& example_inputs, const ExportOptions& options) {
  const ::onnx::ModelProto model = build(module, forward, example_inputs, options);
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("onnx export: the model could not be serialized");
  return bytes;
}

void export_model(const nn::Module& module, const ExportForward& forward, const std::vector<Tensor>& example_inputs,
                  const std::string& path, const ExportOptions& options) {
  write_file_atomic(path, export_model_bytes(module, forward, example_inputs, options));
}

bool is_exportable(const std::string& name) { return detail::has_mapping(name); }

void check_model_bytes(const std::string& bytes) {
  ::onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) throw Error("onnx check: not a valid ONNX model (the protobuf does not parse)");
  check(model);
}

void check_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("onnx check: cannot open '" + path + "'");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  try {
    check_model_bytes(bytes.str());
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (file '" + path + "')");
  }
}

}  // namespace xgrad::onnx

#pragma once
// The exporter's private pieces: the traced events (tracer.cpp), the graph being written with
// its symbolic shapes (graph.cpp), and the lowering of primitives (primitives.cpp) and of
// recurrent layers (recurrent.cpp) into ONNX nodes.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <onnx/onnx_pb.h>

#include <xgrad/core/dtype.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/core/trace.hpp>

namespace xgrad::onnx::detail {

// One thing the forward ran at the top level: a primitive, or a whole composite (the
// primitives inside a composite are not kept).
struct Event {
  std::string name;  // primitive name, or the composite's kind
  bool composite = false;
  bool in_place = false;  // an in-place write into inputs[0] by `name`
  std::vector<Tensor> inputs, outputs;
  trace::Attributes attributes;
  std::vector<Event> children;  // a composite's own events, in order
};

// Records the top-level events of one forward; holds every tensor it saw, so that no
// TensorImpl address is reused while the trace is lowered.
class Recorder : public trace::Tracer {
 public:
  void primitive(const std::string& name, std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                 const trace::Attributes& attributes) override;
  void in_place(const std::string& op, const Tensor& self) override;
  void begin_composite(const std::string& kind, std::span<const Tensor> inputs,
                       const trace::Attributes& attributes) override;
  void end_composite(const std::string& kind, std::span<const Tensor> outputs) override;
  std::vector<Event> events;

 private:
  std::vector<Event>& current();
  std::vector<Event*> open_;  // the composites not yet ended, outermost first
};

// A dynamic input axis: its name, example size and where it is read at run time.
struct Symbol {
  std::string name;
  std::int64_t example = 0;
  std::string input;  // graph input name
  std::int64_t axis = 0;
};

// A dimension of a traced value: its example size, and what it is in terms of the dynamic
// symbols — a coefficient times a product of symbols (`syms`, sorted, with repetition), or,
// when no such product describes it, `opaque`: read at run time from axis `source_axis` of
// the value `source`. Static when neither.
struct Dim {
  std::int64_t value = 0;
  std::vector<int> syms;
  std::string source;
  std::int64_t source_axis = -1;
  bool dynamic() const { return !syms.empty() || !source.empty(); }
};
using Dims = std::vector<Dim>;
Dims static_dims(const Shape& shape);

// A value of the ONNX graph: its name, symbolic shape and dtype.
struct Value {
  std::string name;
  Dims dims;
  DType dtype = DType::f32;
};

int onnx_type(DType dtype);

// The graph under construction.
class Graph {
 public:
  Graph(::onnx::GraphProto& proto, std::vector<Symbol> symbols) : proto_(proto), symbols_(std::move(symbols)) {}
  // A subgraph (a loop body): its names are drawn from `outer`'s, since ONNX forbids a name
  // that an enclosing graph defines.
  Graph(::onnx::GraphProto& proto, Graph& outer)
      : proto_(proto), symbols_(outer.symbols_), counters_(outer.counters_) {}

  // A new unique value name starting with `hint`.
  std::string fresh(const std::string& hint);
  // Appends a node; its outputs are fresh names from `hint` unless given.
  ::onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                          const std::vector<std::string>& outputs);
  // A one-output node; returns its output's name.
  std::string op(const std::string& op, const std::vector<std::string>& inputs, const std::string& hint = "");
  std::string op(const std::string& op, const std::vector<std::string>& inputs,
                 const std::function<void(::onnx::NodeProto&)>& attributes, const std::string& hint = "");

  // Initializers: a tensor's data under `name`, constants under fresh names.
  void initializer(const std::string& name, const Tensor& t);
  std::string constant(const Tensor& t, const std::string& hint = "const");
  std::string ints(const std::vector<std::int64_t>& values);   // 1-D int64
  std::string scalar(double value, DType dtype);               // 0-d

  // The 1-D int64 tensor holding `dims` at run time (constants for static dims, symbols read
  // from the inputs' shapes for dynamic ones).
  std::string shape_of(const Dims& dims);
  // The dim as written in a ValueInfo: dim_value, or dim_param ("batch", "2*batch*sequence").
  void describe(const Dim& d, ::onnx::TensorShapeProto_Dimension& out) const;
  std::int64_t coefficient(const Dim& d) const;
  const std::vector<Symbol>& symbols() const { return symbols_; }
  ::onnx::GraphProto& proto() { return proto_; }

 private:
  std::string symbol_value(int s);
  std::string dim_value(const Dim& d);
  ::onnx::GraphProto& proto_;
  std::vector<Symbol> symbols_;
  std::map<int, std::string> symbol_values_;
  std::shared_ptr<std::map<std::string, int>> counters_ = std::make_shared<std::map<std::string, int>>();
};

// Node attributes.
void set_attr(::onnx::NodeProto& n, const std::string& name, std::int64_t v);
void set_attr(::onnx::NodeProto& n, const std::string& name, double v);
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v);
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::string& v);
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::vector<std::string>& v);
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::vector<float>& v);

// The state of one export: the graph, and the value each traced tensor stands for.
class Lowering {
 public:
  explicit Lowering(Graph& graph, Lowering* parent = nullptr) : graph(graph), parent(parent) {}
  Graph& graph;
  // The enclosing graph's lowering, for a loop body: values it knows are read by name (ONNX
  // subgraphs see their outer scope).
  Lowering* parent;

  // A parameter or buffer: becomes an initializer named `name` when first used.
  void add_parameter(const std::string& name, const Tensor& t);
  // A graph input.
  void add_input(const Tensor& t, Value v);
  // `t` now stands for `v`.
  void bind(const Tensor& t, Value v);
  // The value `t` stands for: a traced value, an input, a parameter (its initializer added on
  // first use), a view sharing a known tensor's storage and geometry (detach), or else a
  // constant holding t's data.
  Value value_of(const Tensor& t);
  bool known(const Tensor& t) const;

  void lower(const Event& e);

 private:
  struct Parameter {
    std::string name;
    Tensor tensor;
    bool written = false;
  };
  std::unordered_map<const void*, Value> values_;
  std::unordered_map<const void*, Parameter> parameters_;
  std::vector<Tensor> seen_;  // every bound tensor and parameter, for finding aliases
};

// Lowering of one primitive event (primitives.cpp) and of one recurrent composite
// (recurrent.cpp); both return the values of the event's outputs, in order.
std::vector<Value> lower_primitive(Lowering& L, const Event& e);
std::vector<Value> lower_recurrent(Lowering& L, const Event& e);
// A recurrent layer of a user-written cell as ONNX Scan loops whose body is one traced step.
std::vector<Value> lower_scan(Lowering& L, const Event& e);
// nn's conv1d, max_pool1d, avg_pool1d composites as ONNX Conv, MaxPool, AveragePool, and its
// global_pool1d (global max / average pooling with lengths) as a mask and a reduction (conv.cpp).
std::vector<Value> lower_conv(Lowering& L, const Event& e);

// True when the primitive has an ONNX mapping (false for the ones refused with a reason and
// for names not in the table).
bool has_mapping(const std::string& primitive);

// Dims of numpy broadcasting between a and b.
Dims broadcast(const Dims& a, const Dims& b);

}  // namespace xgrad::onnx::detail

// The graph under construction: names, nodes, initializers, and shapes that stay dynamic
// (a dimension is a coefficient times a product of input axes, computed at run time).
#include "graph.hpp"

#include <algorithm>
#include <cstring>
#include <iostream>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>

namespace xgrad::onnx::detail {

// --- Recorder ------------------------------------------------------------------------------------

std::vector<Event>& Recorder::current() { return open_.empty() ? events : open_.back()->children; }

void Recorder::primitive(const std::string& name, std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                         const trace::Attributes& attributes) {
  current().push_back({.name = name, .inputs = {inputs.begin(), inputs.end()}, .outputs = {outputs.begin(), outputs.end()},
                       .attributes = attributes, .children = {}});
}

void Recorder::in_place(const std::string& op, const Tensor& self) {
  current().push_back({.name = op, .in_place = true, .inputs = {self}, .outputs = {}, .attributes = {}, .children = {}});
}

void Recorder::begin_composite(const std::string& kind, std::span<const Tensor> inputs,
                               const trace::Attributes& attributes) {
  // Nothing is appended to the enclosing list while this composite is open, so the pointer
  // to it stays valid until it ends.
  std::vector<Event>& list = current();
  list.push_back({.name = kind, .composite = true, .inputs = {inputs.begin(), inputs.end()}, .outputs = {},
                  .attributes = attributes, .children = {}});
  open_.push_back(&list.back());
}

void Recorder::end_composite(const std::string& kind, std::span<const Tensor> outputs) {
  if (open_.empty() || open_.back()->name != kind)
    throw Error("onnx export: composite '" + kind + "' ended out of order");
  Event* e = open_.back();
  open_.pop_back();
  if (outputs.empty()) {  // the composite threw: the error propagates, the event is void
    current().pop_back();
    return;
  }
  e->outputs.assign(outputs.begin(), outputs.end());
}

// --- shapes ------------------------------------------------------------------------------------------

Dims static_dims(const Shape& shape) {
  Dims d;
  for (std::int64_t v : shape) d.push_back(Dim{v, {}, {}, -1});
  return d;
}

int onnx_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return ::onnx::TensorProto_DataType_FLOAT;
    case DType::f64: return ::onnx::TensorProto_DataType_DOUBLE;
    case DType::i64: return ::onnx::TensorProto_DataType_INT64;
    case DType::b8: return ::onnx::TensorProto_DataType_BOOL;
  }
  throw Error("onnx export: unknown dtype");
}

Dims broadcast(const Dims& a, const Dims& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Dims out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const Dim* x = i < n - a.size() ? nullptr : &a[i - (n - a.size())];
    const Dim* y = i < n - b.size() ? nullptr : &b[i - (n - b.size())];
    if (!x) out[i] = *y;
    else if (!y) out[i] = *x;
    else if (x->value != 1 && y->value == 1) out[i] = *x;
    else if (y->value != 1 && x->value == 1) out[i] = *y;
    else out[i] = x->dynamic() || !y->dynamic() ? *x : *y;
  }
  return out;
}

// --- Graph -----------------------------------------------------------------------------------------

std::string Graph::fresh(const std::string& hint) {
  const std::string base = hint.empty() ? "v" : hint;
  return fmt::format("{}_{}", base, (*counters_)[base]++);
}

::onnx::NodeProto& Graph::node(const std::string& op, const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs) {
  ::onnx::NodeProto* n = proto_.add_node();
  n->set_op_type(op);
  n->set_name(fresh(op));
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return *n;
}

std::string Graph::op(const std::string& op, const std::vector<std::string>& inputs, const std::string& hint) {
  const std::string out = fresh(hint.empty() ? op : hint);
  node(op, inputs, {out});
  return out;
}

std::string Graph::op(const std::string& op, const std::vector<std::string>& inputs,
                      const std::function<void(::onnx::NodeProto&)>& attributes, const std::string& hint) {
  const std::string out = fresh(hint.empty() ? op : hint);
  attributes(node(op, inputs, {out}));
  return out;
}

namespace {

template <class T>
void put_raw(::onnx::TensorProto& p, const std::vector<T>& v) {
  std::string raw(v.size() * sizeof(T), '\0');
  if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());
  p.set_raw_data(std::move(raw));
}

}  // namespace

void Graph::initializer(const std::string& name, const Tensor& t) {
  ::onnx::TensorProto* p = proto_.add_initializer();
  p->set_name(name);
  p->set_data_type(onnx_type(t.dtype()));
  for (std::int64_t e : t.shape()) p->add_dims(e);
  switch (t.dtype()) {
    case DType::f32: put_raw(*p, t.to_vector<float>()); break;
    case DType::f64: put_raw(*p, t.to_vector<double>()); break;
    case DType::i64: put_raw(*p, t.to_vector<std::int64_t>()); break;
    case DType::b8: {
      std::vector<std::uint8_t> bytes;
      for (bool b : t.to_vector<bool>()) bytes.push_back(b ? 1 : 0);
      put_raw(*p, bytes);
      break;
    }
  }
}

std::string Graph::constant(const Tensor& t, const std::string& hint) {
  const std::string name = fresh(hint);
  initializer(name, t);
  return name;
}

std::string Graph::ints(const std::vector<std::int64_t>& values) {
  return constant(from_vector(values, {static_cast<std::int64_t>(values.size())}), "ints");
}

std::string Graph::scalar(double value, DType dtype) { return constant(full({}, value, dtype), "scalar"); }

std::int64_t Graph::coefficient(const Dim& d) const {
  std::int64_t product = 1;
  for (int s : d.syms) product *= symbols_[static_cast<std::size_t>(s)].example;
  return product == 0 ? 0 : d.value / product;
}

void Graph::describe(const Dim& d, ::onnx::TensorShapeProto_Dimension& out) const {
  if (!d.syms.empty()) {
    std::vector<std::string> parts;
    if (const std::int64_t c = coefficient(d); c != 1) parts.push_back(std::to_string(c));
    for (int s : d.syms) parts.push_back(symbols_[static_cast<std::size_t>(s)].name);
    out.set_dim_param(fmt::format("{}", fmt::join(parts, "*")));
  } else if (!d.source.empty()) {
    out.set_dim_param(fmt::format("{}_dim{}", d.source, d.source_axis));
  } else {
    out.set_dim_value(d.value);
  }
}

std::string Graph::symbol_value(int s) {
  if (auto it = symbol_values_.find(s); it != symbol_values_.end()) return it->second;
  const Symbol& sym = symbols_[static_cast<std::size_t>(s)];
  const std::string v = op("Shape", {sym.input}, [&](::onnx::NodeProto& n) {
    set_attr(n, "start", sym.axis);
    set_attr(n, "end", sym.axis + 1);
  }, sym.name);
  symbol_values_[s] = v;
  return v;
}

std::string Graph::dim_value(const Dim& d) {
  if (!d.syms.empty()) {
    std::string v = symbol_value(d.syms[0]);
    for (std::size_t i = 1; i < d.syms.size(); ++i) v = op("Mul", {v, symbol_value(d.syms[i])});
    if (const std::int64_t c = coefficient(d); c != 1) v = op("Mul", {v, ints({c})});
    return v;
  }
  if (!d.source.empty())
    return op("Shape", {d.source}, [&](::onnx::NodeProto& n) {
      set_attr(n, "start", d.source_axis);
      set_attr(n, "end", d.source_axis + 1);
    });
  return ints({d.value});
}

std::string Graph::shape_of(const Dims& dims) {
  bool any_dynamic = false;
  for (const Dim& d : dims) any_dynamic = any_dynamic || d.dynamic();
  if (!any_dynamic) {
    std::vector<std::int64_t> v;
    for (const Dim& d : dims) v.push_back(d.value);
    return ints(v);
  }
  std::vector<std::string> parts;
  for (const Dim& d : dims) parts.push_back(dim_value(d));
  return op("Concat", parts, [](::onnx::NodeProto& n) { set_attr(n, "axis", std::int64_t{0}); }, "shape");
}

// --- attributes -------------------------------------------------------------------------------------

void set_attr(::onnx::NodeProto& n, const std::string& name, std::int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto_AttributeType_INT);
  a->set_i(v);
}
void set_attr(::onnx::NodeProto& n, const std::string& name, double v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto_AttributeType_FLOAT);
  a->set_f(static_cast<float>(v));
}
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::vector<std::int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto_AttributeType_INTS);
  for (auto x : v) a->add_ints(x);
}
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto_AttributeType_STRING);
  a->set_s(v);
}
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::vector<std::string>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto_AttributeType_STRINGS);
  for (const auto& x : v) a->add_strings(x);
}
void set_attr(::onnx::NodeProto& n, const std::string& name, const std::vector<float>& v) {
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(::onnx::AttributeProto_AttributeType_FLOATS);
  for (auto x : v) a->add_floats(x);
}

// --- Lowering ---------------------------------------------------------------------------------------

void Lowering::add_parameter(const std::string& name, const Tensor& t) {
  if (parameters_.emplace(t.impl().get(), Parameter{name, t, false}).second) seen_.push_back(t);
}

void Lowering::add_input(const Tensor& t, Value v) { bind(t, std::move(v)); }

void Lowering::bind(const Tensor& t, Value v) {
  values_[t.impl().get()] = std::move(v);
  seen_.push_back(t);
}

bool Lowering::known(const Tensor& t) const {
  return values_.contains(t.impl().get()) || parameters_.contains(t.impl().get());
}

Value Lowering::value_of(const Tensor& t) {
  if (!t.defined()) throw Error("onnx export: internal error, an undefined tensor has no value");
  const void* key = t.impl().get();
  if (auto it = values_.find(key); it != values_.end()) return it->second;
  if (auto it = parameters_.find(key); it != parameters_.end()) {
    Parameter& p = it->second;
    if (!p.written) {
      graph.initializer(p.name, p.tensor);
      p.written = true;
    }
    Value v{p.name, static_dims(t.shape()), t.dtype()};
    values_[key] = v;
    return v;
  }
  // A detached alias of a known tensor (same storage, offset, shape, strides and dtype), as
  // the ones ops save for backward or a forward makes with detach(): that tensor's value.
  for (auto it = seen_.rbegin(); it != seen_.rend(); ++it)
    if (t.shares_storage(*it) && t.storage_offset() == it->storage_offset() && t.shape() == it->shape() &&
        t.strides() == it->strides() && t.dtype() == it->dtype())
      return value_of(*it);
  if (parent && parent->known(t)) return parent->value_of(t);
  // A tensor the forward made itself becomes a constant; one shaped like a dynamic axis was
  // probably made from the example's sizes (zeros({B, H})), and would not follow them.
  auto dynamic_looking = [&]() -> const Symbol* {
    for (const Symbol& sym : graph.symbols())
      for (std::int64_t e : t.shape())
        if (e == sym.example) return &sym;
    return nullptr;
  };
  if (const Symbol* sym = dynamic_looking())
    std::cerr << fmt::format("xgrad warning: onnx export: a tensor of shape {} made inside the forward is exported "
                             "as a constant, and its size {} is the example size of the dynamic axis '{}': if it "
                             "depends on that axis, the model will be wrong at other sizes; compute it from the "
                             "inputs or pass it as an input\n",
                             shape_str(t.shape()), sym->example, sym->name);
  Value v{graph.constant(t.contiguous(), "const"), static_dims(t.shape()), t.dtype()};
  values_[key] = v;
  return v;
}

void Lowering::lower(const Event& e) {
  if (e.in_place) {
    // A write into a tensor the graph has already read would change values the trace took
    // as they were; a tensor made in the forward and written before any use is a constant.
    const Tensor& self = e.inputs[0];
    for (const Tensor& t : seen_)
      if (t.shares_storage(self))
        throw Error(fmt::format("onnx export: the in-place op '{}' writes into a tensor of shape {} that the traced "
                                "model uses; write it out of place (y = x + z instead of x.add_(z))",
                                e.name, shape_str(self.shape())));
    return;
  }
  std::vector<Value> outs = !e.composite              ? lower_primitive(*this, e)
                            : e.name == "recurrent"     ? lower_recurrent(*this, e)
                                                        : lower_conv(*this, e);
  if (outs.size() != e.outputs.size())
    throw Error(fmt::format("onnx export: internal error, '{}' lowered to {} values for {} outputs", e.name,
                            outs.size(), e.outputs.size()));
  for (std::size_t i = 0; i < outs.size(); ++i) bind(e.outputs[i], std::move(outs[i]));
}

}  // namespace xgrad::onnx::detail

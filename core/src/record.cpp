// record_op: how every primitive, built-in or user-defined, enters the graph (record.hpp for
// core's forms, extension.hpp for the public one).
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/extension.hpp>
#include <xgrad/core/ops.hpp>

#include <cstdlib>
#include <string_view>
#include <unordered_set>

#include "checks.hpp"
#include "record.hpp"
#include "views.hpp"
#include "trace_hook.hpp"

namespace xgrad {

namespace {

// Core's own ops record only names from the primitive table (primitives.cpp, the one source
// the ops header, docs/tensors.md and the gradcheck coverage test follow): recording any other
// name is a bug, caught the first time the op runs under the test suite. The check runs in
// Debug builds and wherever XGRAD_CHECK_PRIMITIVES is set (the test suite sets it); elsewhere
// it would cost a hash lookup per recorded op.
bool primitive_check_enabled() {
#ifndef NDEBUG
  return true;
#else
  static const bool enabled = std::getenv("XGRAD_CHECK_PRIMITIVES") != nullptr;
  return enabled;
#endif
}

void require_primitive(const std::string& name) {
  if (!primitive_check_enabled()) return;
  static const std::unordered_set<std::string_view> names = [] {
    std::unordered_set<std::string_view> s;
    for (const PrimitiveInfo& p : primitives()) s.insert(p.name);
    return s;
  }();
  if (!names.contains(name))
    throw Error("internal error: a core op records '" + name + "', which is not in the primitive table");
}

// True when the op must be recorded; also runs the anomaly check on its outputs.
bool should_record(const std::string& name, TensorList inputs, const Tensor* outputs, std::size_t count) {
  if (is_anomaly_enabled())
    for (std::size_t i = 0; i < count; ++i)
      if (outputs[i].defined() && is_floating(outputs[i].dtype()) && has_nonfinite(outputs[i]))
        throw Error("anomaly: op '" + name + "' produced NaN or Inf in its output of shape " +
                    shape_str(outputs[i].shape()));
  if (!is_grad_enabled()) return false;
  for (const Tensor& in : inputs)
    if (in.requires_grad()) return true;
  return false;
}

// A node whose edges lead to the inputs that require grad.
std::shared_ptr<Node> make_node(std::string name, TensorList inputs) {
  auto node = make_pooled<Node>(std::move(name));
  node->next.resize(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.requires_grad()) continue;
    TensorImpl& im = impl_of(in);
    sync_grad_fn(im);  // a view whose base's history changed follows it
    Edge& e = node->next[i];
    if (im.grad_fn) {
      e.fn = im.grad_fn;
      e.output_nr = im.output_nr;
    } else {
      e.leaf = in.impl();
    }
  }
  return node;
}

// Which input (i >= 0) or output (-1 - i) the saved tensor `t` is, for error messages.
int saved_which(const Tensor& t, TensorList inputs, const Tensor* outputs, std::size_t count) {
  const TensorImpl& s = impl_of(t);
  auto same = [&](const Tensor& x) {
    if (!x.defined()) return false;
    const TensorImpl& o = impl_of(x);
    return o.storage == s.storage && o.offset == s.offset && o.shape == s.shape;
  };
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (same(inputs[i])) return static_cast<int>(i);
  for (std::size_t i = 0; i < count; ++i)
    if (same(outputs[i])) return -1 - static_cast<int>(i);
  return static_cast<int>(inputs.size());  // some other tensor the op read
}

void save_versions(Node& node, TensorList saved, TensorList inputs,
                   const Tensor* outputs, std::size_t count) {
  for (const Tensor& t : saved)
    if (t.defined())
      node.saved.push_back({t.impl(), impl_of(t).storage, impl_of(t).storage->version, saved_which(t, inputs, outputs, count)});
}

// Makes `out` output number `index` of `node`.
void attach_output(const std::shared_ptr<Node>& node, TensorList inputs, Tensor& out, std::size_t index) {
  require_floating(out, node->name.c_str());
  // An output must be a fresh tensor: never re-parent an input or a graph tensor.
  bool is_input = false;
  for (const Tensor& in : inputs) is_input = is_input || in.impl() == out.impl();
  if (is_input || impl_of(out).grad_fn || impl_of(out).requires_grad) out = out.detach();
  TensorImpl& im = impl_of(out);
  im.requires_grad = true;
  im.grad_fn = node;
  im.output_nr = static_cast<std::uint32_t>(index);
  OutputMeta meta;
  for (std::int64_t e : im.shape) meta.shape.push_back(e);
  meta.dtype = im.dtype;
  node->outputs.push_back(std::move(meta));
}

// Every input and output, for user-defined ops that did not say what they saved.
std::vector<Tensor> everything(TensorList inputs, const Tensor* outputs, std::size_t count) {
  std::vector<Tensor> all;
  for (const Tensor& in : inputs) all.push_back(in);
  all.insert(all.end(), outputs, outputs + count);
  return all;
}

std::vector<Tensor> record_many(std::string name, TensorList inputs, std::vector<Tensor> outputs,
                                BackwardFn backward, TensorList saved) {
  if (!should_record(name, inputs, outputs.data(), outputs.size())) {
    trace::report(name, inputs, outputs.data(), outputs.size());
    return outputs;
  }
  if (!backward) throw Error(name + ": record_op needs a backward function");
  auto node = make_node(std::move(name), inputs);
  save_versions(*node, saved, inputs, outputs.data(), outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) attach_output(node, inputs, outputs[i], i);
  node->backward_many = std::move(backward);
  trace::report(node->name, inputs, outputs.data(), outputs.size());
  return outputs;
}

template <class Fn>
Tensor record_one(std::string name, TensorList inputs, Tensor output, Fn backward, TensorList saved,
                  Fn Node::*slot) {
  if (!should_record(name, inputs, &output, 1)) {
    trace::report(name, inputs, &output, 1);
    return output;
  }
  if (!backward) throw Error(name + ": record_op needs a backward function");
  auto node = make_node(std::move(name), inputs);
  save_versions(*node, saved, inputs, &output, 1);
  attach_output(node, inputs, output, 0);
  (*node).*slot = std::move(backward);
  trace::report(node->name, inputs, &output, 1);
  return output;
}

}  // namespace

std::vector<Tensor> record_op(std::string name, const std::vector<Tensor>& inputs,
                              std::vector<Tensor> outputs, BackwardFn backward) {
  const std::vector<Tensor> all = everything(inputs, outputs.data(), outputs.size());
  return record_many(std::move(name), inputs, std::move(outputs), std::move(backward), all);
}

std::vector<Tensor> record_op(std::string name, const std::vector<Tensor>& inputs, std::vector<Tensor> outputs,
                              BackwardFn backward, const std::vector<Tensor>& saved) {
  return record_many(std::move(name), inputs, std::move(outputs), std::move(backward), saved);
}

std::vector<Tensor> record_op(std::string name, TensorList inputs, std::vector<Tensor> outputs,
                              BackwardFn backward, std::initializer_list<Tensor> saved) {
  if (is_grad_enabled()) require_primitive(name);
  return record_many(std::move(name), inputs, std::move(outputs), std::move(backward),
                     std::span<const Tensor>(saved.begin(), saved.size()));
}

Tensor record_op(std::string name, const std::vector<Tensor>& inputs, Tensor output,
                 std::function<std::vector<Tensor>(const Tensor& grad_output)> backward) {
  const std::vector<Tensor> all = everything(inputs, &output, 1);
  return record_one(std::move(name), inputs, std::move(output), UnaryBackwardFn(std::move(backward)), all,
                    &Node::backward_one);
}

Tensor record_op(std::string name, const std::vector<Tensor>& inputs, Tensor output,
                 std::function<std::vector<Tensor>(const Tensor& grad_output)> backward,
                 const std::vector<Tensor>& saved) {
  return record_one(std::move(name), inputs, std::move(output), UnaryBackwardFn(std::move(backward)), saved,
                    &Node::backward_one);
}

Tensor record_unary(std::string name, TensorList inputs, Tensor output, UnaryBackwardFn backward, TensorList saved) {
  if (is_grad_enabled()) require_primitive(name);
  return record_one(std::move(name), inputs, std::move(output), std::move(backward), saved, &Node::backward_one);
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (trace::tracing()) return true;  // a tracer sees every primitive, recorded or not (trace.cpp)
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->requires_grad()) return true;
  return false;
}

Tensor record_op_into(std::string name, TensorList inputs, Tensor output, SinkBackwardFn backward, TensorList saved) {
  if (is_grad_enabled()) require_primitive(name);
  return record_one(std::move(name), inputs, std::move(output), std::move(backward), saved, &Node::backward_into);
}

}  // namespace xgrad

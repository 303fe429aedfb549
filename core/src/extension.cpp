// record_op: how every primitive, built-in or user-defined, enters the graph.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/extension.hpp>
#include <xgrad/core/ops.hpp>

#include "impl.hpp"

namespace xgrad {

namespace {

// True when the op must be recorded; also runs the anomaly check on its outputs.
bool should_record(const std::string& name, const std::vector<Tensor>& inputs, const Tensor* outputs, std::size_t count) {
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
std::shared_ptr<Node> make_node(std::string name, const std::vector<Tensor>& inputs, std::size_t output_count) {
  std::vector<Edge> edges(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.requires_grad()) continue;
    if (impl_of(in).grad_fn) {
      edges[i].fn = impl_of(in).grad_fn;
      edges[i].output_nr = impl_of(in).output_nr;
    } else {
      edges[i].leaf = in.impl();
    }
  }
  auto node = std::make_shared<Node>(std::move(name), std::move(edges));
  node->versions.reserve(inputs.size() + output_count);
  for (const Tensor& in : inputs)
    if (in.defined()) node->versions.emplace_back(impl_of(in).storage, impl_of(in).storage->version);
  node->outputs.reserve(output_count);
  return node;
}

// Makes `out` output number `index` of `node`.
void attach_output(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs, Tensor& out, std::size_t index) {
  require_floating(out, node->name.c_str());
  // An output must be a fresh tensor: never re-parent an input or a graph tensor.
  bool is_input = false;
  for (const Tensor& in : inputs) is_input = is_input || in.impl() == out.impl();
  if (is_input || impl_of(out).grad_fn || impl_of(out).requires_grad) out = out.detach();
  TensorImpl& im = impl_of(out);
  im.requires_grad = true;
  im.grad_fn = node;
  im.output_nr = static_cast<std::uint32_t>(index);
  node->versions.emplace_back(im.storage, im.storage->version);
  node->outputs.push_back({im.shape, im.dtype});
}

}  // namespace

std::vector<Tensor> record_op(std::string name, const std::vector<Tensor>& inputs,
                              std::vector<Tensor> outputs, BackwardFn backward) {
  if (!should_record(name, inputs, outputs.data(), outputs.size())) return outputs;
  if (!backward) throw Error(name + ": record_op needs a backward function");
  auto node = make_node(std::move(name), inputs, outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) attach_output(node, inputs, outputs[i], i);
  node->backward_many = std::move(backward);
  return outputs;
}

Tensor record_op(std::string name, const std::vector<Tensor>& inputs, Tensor output,
                 std::function<std::vector<Tensor>(const Tensor& grad_output)> backward) {
  if (!should_record(name, inputs, &output, 1)) return output;
  if (!backward) throw Error(name + ": record_op needs a backward function");
  auto node = make_node(std::move(name), inputs, 1);
  attach_output(node, inputs, output, 0);
  node->backward_one = std::move(backward);
  return output;
}

Tensor record_op_into(std::string name, const std::vector<Tensor>& inputs, Tensor output, SinkBackwardFn backward) {
  if (!should_record(name, inputs, &output, 1)) return output;
  auto node = make_node(std::move(name), inputs, 1);
  attach_output(node, inputs, output, 0);
  node->backward_into = std::move(backward);
  return output;
}

}  // namespace xgrad

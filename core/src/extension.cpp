// record_op: how every primitive, built-in or user-defined, enters the graph.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/extension.hpp>
#include <xgrad/core/ops.hpp>

#include "impl.hpp"

namespace xgrad {

std::vector<Tensor> record_op(std::string name, const std::vector<Tensor>& inputs,
                              std::vector<Tensor> outputs, BackwardFn backward) {
  if (is_anomaly_enabled())
    for (const Tensor& out : outputs)
      if (out.defined() && is_floating(out.dtype()) && has_nonfinite(out))
        throw Error("anomaly: op '" + name + "' produced NaN or Inf in its output of shape " +
                    shape_str(out.shape()));
  if (!is_grad_enabled()) return outputs;
  bool needed = false;
  for (const Tensor& in : inputs) needed = needed || in.requires_grad();
  if (!needed) return outputs;
  if (!backward) throw Error(name + ": record_op needs a backward function");

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
  auto node = std::make_shared<Node>(std::move(name), std::move(edges), std::move(backward));
  node->versions.reserve(inputs.size() + outputs.size());
  for (const Tensor& in : inputs)
    if (in.defined()) node->versions.emplace_back(impl_of(in).storage, impl_of(in).storage->version);
  node->out_shapes.reserve(outputs.size());
  node->out_dtypes.reserve(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    Tensor& out = outputs[i];
    require_floating(out, node->name.c_str());
    // An output must be a fresh tensor: never re-parent an input or a graph tensor.
    bool is_input = false;
    for (const Tensor& in : inputs) is_input = is_input || in.impl() == out.impl();
    if (is_input || impl_of(out).grad_fn || impl_of(out).requires_grad) out = out.detach();
    TensorImpl& im = impl_of(out);
    im.requires_grad = true;
    im.grad_fn = node;
    im.output_nr = static_cast<std::uint32_t>(i);
    node->versions.emplace_back(im.storage, im.storage->version);
    node->out_shapes.push_back(im.shape);
    node->out_dtypes.push_back(im.dtype);
  }
  return outputs;
}

Tensor record_op(std::string name, const std::vector<Tensor>& inputs, Tensor output,
                 std::function<std::vector<Tensor>(const Tensor& grad_output)> backward) {
  if (!backward) return record_op(std::move(name), inputs, std::vector<Tensor>{std::move(output)}, nullptr)[0];
  return record_op(std::move(name), inputs, std::vector<Tensor>{std::move(output)},
                   [f = std::move(backward)](const std::vector<Tensor>& g) { return f(g[0]); })[0];
}

}  // namespace xgrad

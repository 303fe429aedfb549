#pragma once
/// \file
/// Defining new primitives outside core: compute the result, then record it with
/// its backward rule, exactly as the built-in ops do.
#include <functional>
#include <string>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// Receives the gradient of every output (zeros for outputs nobody used) and returns one
/// gradient per input, in input order; an undefined Tensor means "no gradient". A returned
/// gradient may have a broadcast shape: the engine sums it back to the input's shape.
/// It runs with grad mode off, so it may call any op.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

/// Records `output = name(inputs)` in the graph and returns the output, now carrying the
/// new node as its grad_fn. Nothing is recorded when grad mode is off or no input requires
/// grad. Compute `output` from detached inputs (or under NoGradGuard), and capture in
/// `backward` only detached tensors: a captured tensor that still belongs to the graph
/// would keep it alive.
///
/// Example (softsign, y = x / (1 + |x|), dy/dx = 1 / (1 + |x|)^2):
///
///     Tensor softsign(const Tensor& x) {
///       Tensor d = 1.0 + abs(x.detach());
///       return record_op("softsign", {x}, x.detach() / d,
///                        [d](const Tensor& g) { return std::vector<Tensor>{g / (d * d)}; });
///     }
Tensor record_op(std::string name, const std::vector<Tensor>& inputs, Tensor output,
                 std::function<std::vector<Tensor>(const Tensor& grad_output)> backward);

/// The multi-output form (as split or unbind): records one node with several outputs.
std::vector<Tensor> record_op(std::string name, const std::vector<Tensor>& inputs,
                              std::vector<Tensor> outputs, BackwardFn backward);

/// As above, naming the tensors `backward` reads (`saved`: the inputs or outputs its closure
/// captured, as PyTorch's `ctx.save_for_backward`). Backward throws when one of them was
/// modified in place after the op ran, since its gradient would be wrong. Without `saved`,
/// every input and output is checked, which is safe but refuses in-place writes PyTorch allows
/// (to an input the backward never reads, say).
/// Example: `record_op("softsign", {x}, y, backward, {x})`.
Tensor record_op(std::string name, const std::vector<Tensor>& inputs, Tensor output,
                 std::function<std::vector<Tensor>(const Tensor& grad_output)> backward,
                 const std::vector<Tensor>& saved);
/// The multi-output form with `saved`, checked as above.
std::vector<Tensor> record_op(std::string name, const std::vector<Tensor>& inputs,
                              std::vector<Tensor> outputs, BackwardFn backward,
                              const std::vector<Tensor>& saved);

}  // namespace xgrad

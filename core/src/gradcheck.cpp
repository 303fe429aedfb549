// gradcheck: autograd against central differences, element by element, in f64.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/gradcheck.hpp>
#include <xgrad/core/ops.hpp>

#include <cmath>

#include <fmt/format.h>

#include "checks.hpp"
#include "strided.hpp"
#include "tensor_impl.hpp"

namespace xgrad {

std::string GradcheckResult::message() const {
  if (zero_input >= 0)
    return fmt::format("gradcheck failed: input {} gets an all-zero gradient, analytic and numeric, so nothing was "
                       "checked (does the function use it?); allow_zero_gradient(true) if that is intended",
                       zero_input);
  if (input < 0) return ok ? "gradcheck passed (no elements)" : "gradcheck failed";
  return fmt::format("gradcheck {}: worst element is input {}, flat index {}: analytic {:.10g} vs numeric {:.10g} "
                     "(max abs error {:.3g})",
                     ok ? "passed" : "failed", input, element, analytic, numeric, max_abs_error);
}

namespace {

// Fixed weights in [0.5, 1.5) that reduce the output to a scalar, so every output element
// counts and none cancels another. A local generator leaves the user's seed untouched.
Tensor output_weights(const Tensor& out) {
  require_defined(out, "gradcheck");
  if (out.dtype() != DType::f64)
    throw Error("gradcheck: the function returned dtype " + std::string(dtype_name(out.dtype())) + ", expected float64");
  std::vector<double> w(static_cast<std::size_t>(out.numel()));
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  for (double& v : w) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = 0.5 + static_cast<double>(state >> 11) * 0x1.0p-53;
  }
  return from_vector(w, out.shape());
}

// Compares the analytic gradients of `leaves` (from one backward of the weighted output)
// with central differences: each element is moved by ±eps in place and `evaluate` rerun.
GradcheckResult compare(std::vector<Tensor>& leaves, const std::function<Tensor()>& evaluate,
                        const GradcheckOptions& options) {
  Tensor weights;
  {
    // One evaluation with the graph, differentiated (which frees it) for the analytic side.
    const Tensor out = evaluate();
    weights = output_weights(out);
    Tensor loss = sum(out * weights);
    if (loss.requires_grad()) loss.backward();
  }
  auto objective = [&] { return sum(evaluate() * weights).item(); };
  GradcheckResult result;
  double worst_ratio = -1.0;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    Tensor& x = leaves[i];
    if (!x.requires_grad()) continue;
    const std::vector<double> analytic =
        x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* p = x.mutable_data<double>();
    bool any_nonzero = x.numel() == 0;
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      const double saved = p[j];
      p[j] = saved + options.eps();
      const double plus = objective();
      p[j] = saved - options.eps();
      const double minus = objective();
      p[j] = saved;
      const double numeric = (plus - minus) / (2 * options.eps());
      any_nonzero = any_nonzero || analytic[j] != 0.0 || numeric != 0.0;
      const double err = std::abs(analytic[j] - numeric);
      const double ratio = err / (options.atol() + options.rtol() * std::abs(numeric));
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (!(ratio <= 1.0)) result.ok = false;
      if (ratio > worst_ratio || std::isnan(ratio)) {
        worst_ratio = std::isnan(ratio) ? INFINITY : ratio;
        result.input = static_cast<int>(i);
        result.element = j;
        result.analytic = analytic[j];
        result.numeric = numeric;
      }
    }
    if (!any_nonzero && !options.allow_zero_gradient() && result.zero_input < 0) {
      result.ok = false;
      result.zero_input = static_cast<int>(i);
    }
  }
  return result;
}

void require_f64(const Tensor& t, std::size_t i, const char* what) {
  require_defined(t, "gradcheck");
  if (t.dtype() != DType::f64 && t.requires_grad())
    throw Error("gradcheck: " + std::string(what) + " " + std::to_string(i) + " has dtype " +
                std::string(dtype_name(t.dtype())) + "; gradcheck needs float64");
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  std::vector<Tensor> leaves;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    require_f64(inputs[i], i, "input");
    Tensor leaf = inputs[i].detach().clone();
    if (inputs[i].requires_grad()) leaf.requires_grad_();
    leaves.push_back(leaf);
  }
  return compare(leaves, [&] { return fn(leaves); }, options);
}

GradcheckResult gradcheck_parameters(const std::function<Tensor()>& fn, const std::vector<Tensor>& params,
                                     const GradcheckOptions& options) {
  std::vector<Tensor> leaves = params;
  std::vector<Tensor> grads;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    require_f64(leaves[i], i, "parameter");
    if (!leaves[i].is_leaf())
      throw Error("gradcheck_parameters: parameter " + std::to_string(i) + " is not a leaf (it comes from '" +
                  leaves[i].grad_fn_name() + "')");
    grads.push_back(leaves[i].grad());
    leaves[i].zero_grad();
  }
  // The parameters' own gradients are the caller's: put them back however the check ends.
  struct Restore {
    std::vector<Tensor>& leaves;
    std::vector<Tensor>& grads;
    ~Restore() {
      for (std::size_t i = 0; i < leaves.size(); ++i) leaves[i].set_grad(grads[i]);
    }
  } restore{leaves, grads};
  return compare(leaves, fn, options);
}

}  // namespace xgrad

// gradcheck: autograd against central differences, element by element, in f64.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/gradcheck.hpp>
#include <xgrad/core/ops.hpp>

#include <cmath>

#include <fmt/format.h>

#include "impl.hpp"

namespace xgrad {

std::string GradcheckResult::message() const {
  if (input < 0) return ok ? "gradcheck passed (no elements)" : "gradcheck failed";
  return fmt::format("gradcheck {}: worst element is input {}, flat index {}: analytic {:.10g} vs numeric {:.10g} "
                     "(max abs error {:.3g})",
                     ok ? "passed" : "failed", input, element, analytic, numeric, max_abs_error);
}

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  std::vector<Tensor> leaves;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    require_defined(in, "gradcheck");
    if (in.dtype() != DType::f64 && in.requires_grad())
      throw Error("gradcheck: input " + std::to_string(i) + " has dtype " + std::string(dtype_name(in.dtype())) +
                  "; gradcheck needs float64 inputs");
    Tensor leaf = in.detach().clone();
    if (in.requires_grad()) leaf.requires_grad_();
    leaves.push_back(leaf);
  }

  // Reduce the output to a scalar with fixed weights in [0.5, 1.5), so every output element
  // counts and none cancels another. A local generator leaves the user's seed untouched.
  Tensor out = fn(leaves);
  require_defined(out, "gradcheck");
  if (out.dtype() != DType::f64)
    throw Error("gradcheck: the function returned dtype " + std::string(dtype_name(out.dtype())) + ", expected float64");
  std::vector<double> w(static_cast<std::size_t>(out.numel()));
  std::uint64_t state = 0x9E3779B97F4A7C15ull;
  for (double& v : w) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    v = 0.5 + static_cast<double>(state >> 11) * 0x1.0p-53;
  }
  const Tensor weights = from_vector(w, out.shape());
  auto objective = [&](const Tensor& o) { return sum(o * weights); };

  Tensor loss = objective(out);
  if (loss.requires_grad()) loss.backward();

  GradcheckResult result;
  double worst_ratio = -1.0;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    Tensor& x = leaves[i];
    if (!x.requires_grad()) continue;
    const std::vector<double> analytic =
        x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double* p = x.mutable_data<double>();
    for (std::int64_t j = 0; j < x.numel(); ++j) {
      const double saved = p[j];
      p[j] = saved + options.eps;
      const double plus = objective(fn(leaves)).item();
      p[j] = saved - options.eps;
      const double minus = objective(fn(leaves)).item();
      p[j] = saved;
      const double numeric = (plus - minus) / (2 * options.eps);
      const double err = std::abs(analytic[j] - numeric);
      const double ratio = err / (options.atol + options.rtol * std::abs(numeric));
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
  }
  return result;
}

}  // namespace xgrad

#pragma once
/// \file
/// Numerical gradient checking: compare autograd against central differences.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// Tolerances of gradcheck: an element passes when |analytic - numeric| <= atol + rtol·|numeric|.
/// Example: `gradcheck(f, inputs, GradcheckOptions().eps(1e-7).atol(1e-6))`
struct GradcheckOptions {
  /// Step of the central differences.
  XGRAD_ARG(double, eps) = 1e-6;
  /// Absolute tolerance of the comparison above.
  XGRAD_ARG(double, atol) = 1e-5;
  /// Relative tolerance, a fraction of |numeric|.
  XGRAD_ARG(double, rtol) = 1e-3;
  /// An input that requires grad but gets an all-zero gradient (analytic and numeric) makes
  /// the check fail, since nothing about it was checked; set this when that is intended.
  XGRAD_ARG(bool, allow_zero_gradient) = false;
};

/// Outcome of gradcheck; the worst element is the one with the largest error ratio.
struct GradcheckResult {
  bool ok = true;                ///< true when every element is within tolerance
  int input = -1;               ///< which input holds the worst element (-1: no elements)
  std::int64_t element = -1;    ///< its flat index
  double analytic = 0.0;        ///< d out / d element from backward
  double numeric = 0.0;         ///< from central differences
  double max_abs_error = 0.0;   ///< over all elements
  int zero_input = -1;          ///< an input whose gradient was all zero (and not allowed)
  /// "gradcheck passed" or the worst element with both values.
  std::string message() const;
};

/// Checks backward of `fn` at `inputs` against central differences, over every element of
/// every input that requires grad. Inputs must be f64. The output may have any shape: it is
/// reduced to a scalar with fixed random weights, so every output element is checked.
/// Example:
///
///     auto r = gradcheck([](auto& x) { return tanh(x[0]); }, {randn({3}, DType::f64).requires_grad_()});
///     CHECK_MESSAGE(r.ok, r.message());
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

/// The same check with respect to existing f64 leaves that `fn` reads directly (a module's
/// parameters, say): each element is moved in place and put back, and the leaves' gradients
/// are restored afterwards. nn::gradcheck(module, fn) calls it with module.parameters().
/// Example:
///
///     auto r = gradcheck_parameters([&] { return lstm(x).output; }, lstm.parameters());
GradcheckResult gradcheck_parameters(const std::function<Tensor()>& fn, const std::vector<Tensor>& params,
                                     const GradcheckOptions& options = {});

}  // namespace xgrad

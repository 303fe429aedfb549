#pragma once
/// \file Numerical gradient checking: compare autograd against central differences.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// Tolerances of gradcheck: an element passes when |analytic - numeric| <= atol + rtol·|numeric|.
struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  GradcheckOptions& set_eps(double v) { eps = v; return *this; }
  GradcheckOptions& set_atol(double v) { atol = v; return *this; }
  GradcheckOptions& set_rtol(double v) { rtol = v; return *this; }
};

/// Outcome of gradcheck; the worst element is the one with the largest error ratio.
struct GradcheckResult {
  bool ok = true;
  int input = -1;               ///< which input holds the worst element (-1: no elements)
  std::int64_t element = -1;    ///< its flat index
  double analytic = 0.0;        ///< d out / d element from backward
  double numeric = 0.0;         ///< from central differences
  double max_abs_error = 0.0;   ///< over all elements
  /// "gradcheck passed" or the worst element with both values.
  std::string message() const;
};

/// Checks backward of `fn` at `inputs` against central differences, over every element of
/// every input that requires grad. Inputs must be f64. The output may have any shape: it is
/// reduced to a scalar with fixed random weights, so every output element is checked.
/// Example:
///     auto r = gradcheck([](auto& x) { return tanh(x[0]); }, {randn({3}, DType::f64).requires_grad_()});
///     CHECK_MESSAGE(r.ok, r.message());
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace xgrad

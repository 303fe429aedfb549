#include <xgrad/nn/layernorm.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/extension.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/parallel.hpp>
#include <xgrad/core/trace.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

namespace {

// Rows split over xgrad's threads when they add up to this many elements (PyTorch's grain).
constexpr std::int64_t kRowGrain = 32768;
std::int64_t row_grain(std::int64_t D) { return std::max<std::int64_t>(1, kRowGrain / std::max<std::int64_t>(D, 1)); }

// The gradients of fused_layer_norm from the saved x̂ (rows, D) and 1/σ (rows).
std::vector<Tensor> layer_norm_backward(const Tensor& g_in, const Tensor& xhat, const Tensor& rstd, const Tensor& wd,
                                        bool has_bias, std::int64_t rows, std::int64_t D, const Shape& param_shape) {
  const Tensor g = g_in.contiguous();
  Tensor dx = empty(g.shape());
  std::vector<double> dw(static_cast<std::size_t>(D), 0.0), db(static_cast<std::size_t>(D), 0.0);
  const float *gs = g.data<float>(), *hs = xhat.data<float>(), *rs = rstd.data<float>();
  const float* w = wd.defined() ? wd.data<float>() : nullptr;
  float* dxs = dx.mutable_data<float>();
  // dx row by row; then dw and db column by column, each column summed over the rows in row
  // order by one thread: split either way, the sums are those of the serial loop.
  parallel_for(rows, row_grain(D), [&](std::int64_t first, std::int64_t last) {
    std::vector<float> gh(static_cast<std::size_t>(D));
    for (std::int64_t r = first; r < last; ++r) {
      const float *gr = gs + r * D, *hr = hs + r * D;
      double sum_gh = 0, sum_ghx = 0;
      for (std::int64_t i = 0; i < D; ++i) {
        gh[i] = gr[i] * (w ? w[i] : 1.0f);
        sum_gh += gh[i];
        sum_ghx += static_cast<double>(gh[i] * hr[i]);
      }
      const float m1 = static_cast<float>(sum_gh / static_cast<double>(D));
      const float m2 = static_cast<float>(sum_ghx / static_cast<double>(D));
      float* dr = dxs + r * D;
      for (std::int64_t i = 0; i < D; ++i) dr[i] = rs[r] * (gh[i] - m1 - hr[i] * m2);
    }
  });
  if (w || has_bias) {
    // A chunk of at least a cache line of columns; all the rows of it.
    const std::int64_t column_grain = std::max<std::int64_t>(16, kRowGrain / std::max<std::int64_t>(rows, 1));
    parallel_for(D, column_grain, [&](std::int64_t first, std::int64_t last) {
      for (std::int64_t r = 0; r < rows; ++r) {
        const float *gr = gs + r * D, *hr = hs + r * D;
        for (std::int64_t i = first; i < last; ++i) {
          dw[i] += static_cast<double>(gr[i] * hr[i]);
          db[i] += gr[i];
        }
      }
    });
  }
  std::vector<Tensor> grads{dx};
  auto to_tensor = [&](const std::vector<double>& v) {
    Tensor t = empty(param_shape);
    float* p = t.mutable_data<float>();
    for (std::int64_t i = 0; i < D; ++i) p[i] = static_cast<float>(v[static_cast<std::size_t>(i)]);
    return t;
  };
  if (w) grads.push_back(to_tensor(dw));
  if (has_bias) grads.push_back(to_tensor(db));
  return grads;
}

// layer_norm of f32 rows of D elements in two passes per row, with its backward in closed
// form: the composed form below broadcasts a (rows, 1) mean and variance over the rows in
// five strided elementwise ops forward and more backward, about ten times the time of these
// loops. Saves x̂ (rows, D) and 1/σ (rows) for backward.
//   dx = (1/σ) · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)),  ĝ = g · w;   dw = Σ_rows g · x̂;   db = Σ_rows g
Tensor fused_layer_norm(const Tensor& input, std::int64_t D, const Tensor& weight, const Tensor& bias, double eps) {
  const Tensor x = input.detach().contiguous();
  const std::int64_t rows = D == 0 ? 0 : x.numel() / D;
  Tensor y = empty(x.shape()), xhat = empty(x.shape()), rstd = empty({rows});
  const float* xs = x.data<float>();
  const float* w = weight.defined() ? weight.contiguous().data<float>() : nullptr;
  const float* b = bias.defined() ? bias.contiguous().data<float>() : nullptr;
  float *ys = y.mutable_data<float>(), *hs = xhat.mutable_data<float>(), *rs = rstd.mutable_data<float>();
  // Rows are independent, each computed whole by one thread: the result does not depend on the
  // number of threads.
  parallel_for(rows, row_grain(D), [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t r = first; r < last; ++r) {
      const float* xr = xs + r * D;
      double sum = 0;  // accumulated in double, as the mean of D values near each other
      for (std::int64_t i = 0; i < D; ++i) sum += xr[i];
      const float mean = static_cast<float>(sum / static_cast<double>(D));
      double sq = 0;
      for (std::int64_t i = 0; i < D; ++i) sq += static_cast<double>((xr[i] - mean) * (xr[i] - mean));
      const float inv = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(D) + eps));
      rs[r] = inv;
      float* hr = hs + r * D;
      float* yr = ys + r * D;
      for (std::int64_t i = 0; i < D; ++i) {
        hr[i] = (xr[i] - mean) * inv;
        yr[i] = hr[i] * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
      }
    }
  });
  std::vector<Tensor> inputs{input};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  const Tensor wd = weight.defined() ? weight.detach().contiguous() : Tensor();
  const bool has_bias = bias.defined();
  const Shape param_shape(x.shape().end() - (weight.defined() ? weight.dim() : bias.defined() ? bias.dim() : 0),
                          x.shape().end());
  return record_op("layer_norm", inputs, y, [xhat, rstd, wd, has_bias, rows, D, param_shape](const Tensor& g_in) {
    return layer_norm_backward(g_in, xhat, rstd, wd, has_bias, rows, D, param_shape);
  });
}

}  // namespace

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const auto k = static_cast<std::int64_t>(normalized_shape.size());
  bool ok = input.defined() && input.dim() >= k && k > 0;
  for (std::int64_t i = 0; ok && i < k; ++i) ok = input.size(input.dim() - k + i) == normalized_shape[i];
  if (!ok)
    throw Error("layer_norm: input of shape " + (input.defined() ? shape_str(input.shape()) : std::string("undefined")) +
                " does not end with normalized_shape " + shape_str(normalized_shape));
  // The fused kernel covers f32 with a weight and bias of normalized_shape (or none); the
  // composed form covers the rest, and tracing (ONNX export sees primitives).
  std::int64_t D = 1;
  for (std::int64_t n : normalized_shape) D *= n;
  const auto fits = [&](const Tensor& t) {
    return !t.defined() || (t.dtype() == DType::f32 && t.shape() == normalized_shape);
  };
  if (input.dtype() == DType::f32 && fits(weight) && fits(bias) && trace::active() == nullptr)
    return fused_layer_norm(input, D, weight, bias, eps);
  std::vector<std::int64_t> dims;
  for (std::int64_t i = 0; i < k; ++i) dims.push_back(input.dim() - k + i);
  Tensor centered = input - input.mean(dims, true);
  Tensor var = (centered * centered).mean(dims, true);  // biased, as PyTorch
  Tensor y = centered / sqrt(var + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

LayerNorm::LayerNorm(const LayerNormOptions& options) : options_(options) {
  if (options.normalized_shape().empty()) throw Error("LayerNorm: normalized_shape must not be empty");
  if (options.elementwise_affine()) {
    weight = register_parameter("weight", empty(options.normalized_shape()));
    bias = register_parameter("bias", empty(options.normalized_shape()));
  }
  reset_parameters();
}

void LayerNorm::reset_parameters() {
  if (weight.defined()) init::ones_(weight);
  if (bias.defined()) init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  return layer_norm(input, options_.normalized_shape(), weight, bias, options_.eps());
}

std::string LayerNorm::extra_repr() const {
  const Shape& s = options_.normalized_shape();
  std::string shape = "(";
  for (std::size_t i = 0; i < s.size(); ++i) shape += (i ? ", " : "") + std::to_string(s[i]);
  shape += s.size() == 1 ? ",)" : ")";
  return fmt::format("{}, eps={}, elementwise_affine={}", shape, options_.eps(),
                     options_.elementwise_affine() ? "true" : "false");
}

}  // namespace xgrad::nn

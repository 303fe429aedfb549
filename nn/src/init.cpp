#include <xgrad/nn/init.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

namespace xgrad::nn::init {

namespace {

void require_floating_tensor(const Tensor& t, const char* op) {
  if (!t.defined()) throw Error(std::string(op) + ": undefined tensor");
  if (!is_floating(t.dtype()))
    throw Error(std::string(op) + ": needs a floating-point tensor, got " + std::string(dtype_name(t.dtype())));
}

// Writes `values` (any dtype, same shape) into `tensor` without recording anything.
Tensor assign(Tensor& tensor, const Tensor& values) {
  NoGradGuard no_grad;
  tensor.copy_(values);
  return tensor;
}

std::int64_t fan(const Tensor& t, FanMode mode, const char* op) {
  require_floating_tensor(t, op);
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return mode == FanMode::fan_in ? fan_in : fan_out;
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double param) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::conv1d:
    case Nonlinearity::conv2d:
    case Nonlinearity::conv3d:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: {
      const double slope = param < 0.0 ? 0.01 : param;
      return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    case Nonlinearity::selu: return 3.0 / 4.0;
  }
  throw Error("calculate_gain: unknown nonlinearity");
}

std::pair<std::int64_t, std::int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  if (!tensor.defined() || tensor.dim() < 2)
    throw Error("calculate_fan_in_and_fan_out: fan in and fan out need a tensor of at least 2 dimensions, got " +
                (tensor.defined() ? shape_str(tensor.shape()) : std::string("an undefined tensor")));
  std::int64_t receptive = 1;
  for (std::int64_t d = 2; d < tensor.dim(); ++d) receptive *= tensor.size(d);
  return {tensor.size(1) * receptive, tensor.size(0) * receptive};
}

Tensor uniform_(Tensor tensor, double low, double high) {
  require_floating_tensor(tensor, "uniform_");
  return assign(tensor, uniform(tensor.shape(), low, high, tensor.dtype()));
}

Tensor normal_(Tensor tensor, double mean, double std) {
  require_floating_tensor(tensor, "normal_");
  return assign(tensor, randn(tensor.shape(), tensor.dtype()) * std + mean);
}

Tensor constant_(Tensor tensor, double value) {
  if (!tensor.defined()) throw Error("constant_: undefined tensor");
  NoGradGuard no_grad;
  tensor.fill_(value);
  return tensor;
}

Tensor zeros_(Tensor tensor) { return constant_(std::move(tensor), 0.0); }
Tensor ones_(Tensor tensor) { return constant_(std::move(tensor), 1.0); }

Tensor xavier_uniform_(Tensor tensor, double gain) {
  require_floating_tensor(tensor, "xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  const double a = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform_(std::move(tensor), -a, a);
}

Tensor xavier_normal_(Tensor tensor, double gain) {
  require_floating_tensor(tensor, "xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  return normal_(std::move(tensor), 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)));
}

Tensor kaiming_uniform_(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity) {
  const double stdev = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(tensor, mode, "kaiming_uniform_")));
  const double bound = std::sqrt(3.0) * stdev;
  return uniform_(std::move(tensor), -bound, bound);
}

Tensor kaiming_normal_(Tensor tensor, double a, FanMode mode, Nonlinearity nonlinearity) {
  const double stdev = calculate_gain(nonlinearity, a) / std::sqrt(static_cast<double>(fan(tensor, mode, "kaiming_normal_")));
  return normal_(std::move(tensor), 0.0, stdev);
}

Tensor orthogonal_(Tensor tensor, double gain) {
  require_floating_tensor(tensor, "orthogonal_");
  if (tensor.dim() < 2)
    throw Error("orthogonal_: needs a tensor of at least 2 dimensions, got " + shape_str(tensor.shape()));
  if (tensor.numel() == 0) return tensor;
  const std::int64_t rows = tensor.size(0), cols = tensor.numel() / rows;
  // QR of a tall (m, n) Gaussian matrix A (transposed when wide) by modified Gram–Schmidt,
  // each column orthogonalised twice for accuracy. R's diagonal is the positive column norm,
  // which is PyTorch's sign convention (q *= sign(diag(r))) already applied.
  const bool wide = rows < cols;
  const std::int64_t m = wide ? cols : rows, n = wide ? rows : cols;
  std::vector<double> a = randn({n, m}, DType::f64).to_vector<double>();  // column j at a[j*m ...]
  for (std::int64_t j = 0; j < n; ++j) {
    double* v = a.data() + j * m;
    for (int pass = 0; pass < 2; ++pass)
      for (std::int64_t i = 0; i < j; ++i) {
        const double* q = a.data() + i * m;
        double r = 0.0;
        for (std::int64_t k = 0; k < m; ++k) r += q[k] * v[k];
        for (std::int64_t k = 0; k < m; ++k) v[k] -= r * q[k];
      }
    double norm = 0.0;
    for (std::int64_t k = 0; k < m; ++k) norm += v[k] * v[k];
    norm = std::sqrt(norm);
    if (norm == 0.0) throw Error("orthogonal_: the random draw was rank deficient; draw again");
    for (std::int64_t k = 0; k < m; ++k) v[k] /= norm;
  }
  // a holds Qᵀ as (n, m): that is the (rows, cols) result when wide; transpose it otherwise.
  std::vector<double> out(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; ++c) out[r * cols + c] = gain * (wide ? a[r * m + c] : a[c * m + r]);
  return assign(tensor, from_vector(out, tensor.shape()));
}

}  // namespace xgrad::nn::init

#pragma once
/// \file
/// LayerNorm: normalisation over the trailing dimensions.
#include <cstdint>
#include <string>

#include <xgrad/core/dtype.hpp>
#include <xgrad/core/options.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Options of LayerNorm.
/// Example: `nn::LayerNorm ln(nn::LayerNormOptions({16}).eps(1e-6).elementwise_affine(false));`
struct LayerNormOptions {
  /// The trailing extents to normalise over, e.g. {H} or {T, H}.
  LayerNormOptions(Shape normalized_shape) : normalized_shape_(std::move(normalized_shape)) {}  // NOLINT: implicit on purpose
  /// The trailing extents normalised over (and the shape of weight and bias).
  XGRAD_ARG(Shape, normalized_shape);
  /// Added to the variance before the square root (default 1e-5).
  XGRAD_ARG(double, eps) = 1e-5;
  /// Learn a per-element scale `weight` (ones) and shift `bias` (zeros) (default true).
  XGRAD_ARG(bool, elementwise_affine) = true;
};

/// y = (x - mean) / √(var + eps) · weight + bias, with mean and the biased variance taken
/// over the trailing dimensions given by normalized_shape. Composed from primitives.
///
/// Parameters (when elementwise_affine): `weight` (normalized_shape) = 1, `bias` = 0.
///
/// Example:
///
///     nn::LayerNorm ln(nn::LayerNormOptions({64}));
///     Tensor y = ln(randn({8, 10, 64}));   // each (b, t) row has mean 0, variance ≈ 1
class LayerNorm : public UnaryModule {
 public:
  /// weight = 1 and bias = 0 of shape normalized_shape (when elementwise_affine).
  explicit LayerNorm(const LayerNormOptions& options);
  /// x (..., *normalized_shape) → same shape.
  Tensor forward(const Tensor& input) override;
  /// Sets weight to ones and bias to zeros.
  void reset_parameters();
  std::string extra_repr() const override;
  /// The options it was built with.
  const LayerNormOptions& options() const { return options_; }

  Tensor weight;  ///< normalized_shape, undefined without elementwise_affine
  Tensor bias;    ///< normalized_shape, undefined without elementwise_affine

 private:
  LayerNormOptions options_;
};

/// The functional form; `weight` and `bias` may be undefined.
/// Example: `Tensor y = nn::layer_norm(x, {64}, Tensor(), Tensor(), 1e-5);`
Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

}  // namespace xgrad::nn

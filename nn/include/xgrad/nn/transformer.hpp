#pragma once
/// \file
/// The Transformer encoder (PyTorch's TransformerEncoderLayer and TransformerEncoder) and
/// two positional encodings, sinusoidal and learned.
///
/// Shapes: src (T, N, E), or (N, T, E) with batch_first, or unbatched (T, E). Padded batches
/// take `nn::Lengths` (either padding side): padded steps are never read and output zeros, so
/// each sequence gets the result it would get alone.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/attention.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/layernorm.hpp>
#include <xgrad/nn/lengths.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// The feed-forward activation of a Transformer layer.
enum class TransformerActivation {
  relu,  ///< max(x, 0), PyTorch's default
  gelu,  ///< exact GELU
};

/// Options of TransformerEncoderLayer (PyTorch's names and defaults).
/// Example: `nn::TransformerEncoderLayerOptions(64, 4).dim_feedforward(128).norm_first(true).batch_first(true)`
struct TransformerEncoderLayerOptions {
  /// Model width and heads (d_model divisible by nhead).
  TransformerEncoderLayerOptions(std::int64_t d_model, std::int64_t nhead) : d_model_(d_model), nhead_(nhead) {}
  /// Width of every step's vector.
  XGRAD_ARG(std::int64_t, d_model);
  /// Attention heads.
  XGRAD_ARG(std::int64_t, nhead);
  /// Width of the feed-forward block's hidden layer (default 2048, as PyTorch).
  XGRAD_ARG(std::int64_t, dim_feedforward) = 2048;
  /// Dropout after attention, inside and after the feed-forward block, in training (default 0.1).
  XGRAD_ARG(double, dropout) = 0.1;
  /// The feed-forward activation (default relu).
  XGRAD_ARG(TransformerActivation, activation) = TransformerActivation::relu;
  /// LayerNorm eps (default 1e-5).
  XGRAD_ARG(double, layer_norm_eps) = 1e-5;
  /// Input and output are (N, T, E) instead of (T, N, E) (default false).
  XGRAD_ARG(bool, batch_first) = false;
  /// Pre-norm: x + block(norm(x)) instead of norm(x + block(x)) (default false).
  XGRAD_ARG(bool, norm_first) = false;
};

/// The per-call arguments of the encoder (PyTorch's `mask` and `src_key_padding_mask`, plus
/// lengths and causal masking). Masks use the modules' convention: b8 true = masked.
/// Example: `encoder(x, nn::EncoderArgs().lengths(lengths).is_causal(true));`
struct EncoderArgs {
  /// (T, T) or (N·nhead, T, T): b8 (true = may not attend) or float (added). PyTorch's `mask`.
  XGRAD_ARG(Tensor, mask);
  /// (N, T) b8 (true = padded) or float (added). PyTorch's `src_key_padding_mask`.
  XGRAD_ARG(Tensor, src_key_padding_mask);
  /// Step i attends to steps j ≤ i only.
  XGRAD_ARG(bool, is_causal) = false;
  /// Valid lengths (and padding side): padded steps are never read and output zeros.
  XGRAD_ARG(Lengths, lengths);
};

/// One Transformer encoder layer, PyTorch's `nn.TransformerEncoderLayer`: self-attention and a
/// feed-forward block (linear1 → activation → linear2), each with a residual connection and a
/// LayerNorm, after (default) or before (norm_first) the block.
///
/// Parameters (PyTorch's names): `self_attn.in_proj_weight`, `self_attn.in_proj_bias`,
/// `self_attn.out_proj.weight/bias`, `linear1.weight/bias` (dim_feedforward, d_model),
/// `linear2.weight/bias` (d_model, dim_feedforward), `norm1.weight/bias`, `norm2.weight/bias`.
///
/// Example:
///
///     nn::TransformerEncoderLayer layer(nn::TransformerEncoderLayerOptions(16, 4).dim_feedforward(32));
///     Tensor y = layer(randn({10, 3, 16}));   // (T, N, E) → same
class TransformerEncoderLayer : public Module {
 public:
  /// Builds the layer with PyTorch's default initialisation; throws on invalid options.
  explicit TransformerEncoderLayer(const TransformerEncoderLayerOptions& options);
  /// src (T, N, E), (N, T, E) with batch_first, or (T, E) → same shape.
  Tensor forward(const Tensor& src, const EncoderArgs& args = {});
  /// Calls forward.
  Tensor operator()(const Tensor& src, const EncoderArgs& args = {}) { return forward(src, args); }
  /// The configuration as repr() prints it.
  std::string extra_repr() const override;
  /// The options the layer was built with.
  const TransformerEncoderLayerOptions& options() const { return options_; }

  std::shared_ptr<MultiheadAttention> self_attn;  ///< "self_attn"
  std::shared_ptr<Linear> linear1;                ///< "linear1": d_model → dim_feedforward
  std::shared_ptr<Linear> linear2;                ///< "linear2": dim_feedforward → d_model
  std::shared_ptr<LayerNorm> norm1;               ///< "norm1"
  std::shared_ptr<LayerNorm> norm2;               ///< "norm2"

 private:
  TransformerEncoderLayerOptions options_;
};

/// Options of TransformerEncoder: `num_layers` copies of one layer configuration, and an
/// optional final LayerNorm (PyTorch's `norm`, usual with norm_first layers).
/// Example: `nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(64, 4), 2).final_norm(true)`
struct TransformerEncoderOptions {
  /// The layer every copy is built from, and how many.
  TransformerEncoderOptions(TransformerEncoderLayerOptions layer, std::int64_t num_layers)
      : layer_(std::move(layer)), num_layers_(num_layers) {}
  /// Configuration of each layer.
  XGRAD_ARG(TransformerEncoderLayerOptions, layer);
  /// Stacked layers (≥ 1).
  XGRAD_ARG(std::int64_t, num_layers);
  /// A LayerNorm(d_model, layer_norm_eps) after the last layer, registered as "norm" (default false).
  XGRAD_ARG(bool, final_norm) = false;
};

/// A stack of TransformerEncoderLayer, PyTorch's `nn.TransformerEncoder`; parameters are named
/// after the layer index and the layer's own name (e.g. `layers.0.linear1.weight`), and
/// `norm.weight`, `norm.bias`.
/// Example:
///
///     nn::TransformerEncoder enc(nn::TransformerEncoderOptions(
///         nn::TransformerEncoderLayerOptions(16, 4).dim_feedforward(32).batch_first(true), 2));
///     Tensor y = enc(x, nn::EncoderArgs().lengths(lengths));   // (N, T, 16) → same
class TransformerEncoder : public Module {
 public:
  /// Builds num_layers independently initialised layers (and the final norm).
  explicit TransformerEncoder(const TransformerEncoderOptions& options);
  /// src shaped as for TransformerEncoderLayer → same shape; args go to every layer.
  Tensor forward(const Tensor& src, const EncoderArgs& args = {});
  /// Calls forward.
  Tensor operator()(const Tensor& src, const EncoderArgs& args = {}) { return forward(src, args); }
  /// The options the encoder was built with.
  const TransformerEncoderOptions& options() const { return options_; }

  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers;  ///< "layers.<i>"
  std::shared_ptr<LayerNorm> norm;                               ///< "norm", or null without final_norm

 private:
  TransformerEncoderOptions options_;
};

/// Options of the positional encodings.
/// Example: `nn::PositionalEncodingOptions(64).max_len(512).batch_first(true)`
struct PositionalEncodingOptions {
  /// Model width E.
  PositionalEncodingOptions(std::int64_t d_model) : d_model_(d_model) {}  // NOLINT: implicit, `SinusoidalPositionalEncoding pe(64)`
  /// Width of every step's vector.
  XGRAD_ARG(std::int64_t, d_model);
  /// Longest sequence accepted (default 5000).
  XGRAD_ARG(std::int64_t, max_len) = 5000;
  /// Dropout after adding the encoding, in training (default 0).
  XGRAD_ARG(double, dropout) = 0.0;
  /// Input (N, T, E) instead of (T, N, E) (default false).
  XGRAD_ARG(bool, batch_first) = false;
};

/// Adds the fixed sinusoidal encoding of "Attention Is All You Need" (the PyTorch tutorial's
/// PositionalEncoding): pe[t, 2i] = sin(t / 10000^(2i/E)), pe[t, 2i+1] = cos(t / 10000^(2i/E)).
/// The table is a non-persistent buffer "pe" (max_len, E): not in the state dict.
/// Example: `nn::SinusoidalPositionalEncoding pe(16);  Tensor y = pe(x);   // x (T, N, 16)`
class SinusoidalPositionalEncoding : public UnaryModule {
 public:
  /// Computes the (max_len, d_model) table.
  explicit SinusoidalPositionalEncoding(const PositionalEncodingOptions& options);
  /// x (T, N, E), (N, T, E) with batch_first, or (T, E) → x + pe[:T], same shape.
  Tensor forward(const Tensor& input) override;
  /// The configuration as repr() prints it.
  std::string extra_repr() const override;

  Tensor pe;  ///< (max_len, E)

 private:
  PositionalEncodingOptions options_;
};

/// Adds a learned vector per position: parameter `weight` (max_len, E), N(0, 1) as an
/// Embedding's. Example: `nn::LearnedPositionalEmbedding pos(nn::PositionalEncodingOptions(16).max_len(128));`
class LearnedPositionalEmbedding : public UnaryModule {
 public:
  /// Draws the (max_len, d_model) weight from N(0, 1).
  explicit LearnedPositionalEmbedding(const PositionalEncodingOptions& options);
  /// x (T, N, E), (N, T, E) with batch_first, or (T, E) → x + weight[:T], same shape.
  Tensor forward(const Tensor& input) override;
  /// The configuration as repr() prints it.
  std::string extra_repr() const override;

  Tensor weight;  ///< (max_len, E)

 private:
  PositionalEncodingOptions options_;
};

}  // namespace xgrad::nn

#pragma once
/// \file
/// Attention: scaled_dot_product_attention and MultiheadAttention (PyTorch's semantics
/// and parameter names), composed from batched matmul, softmax and masked_fill.
///
/// Masks never leak. A query row with no key left to attend to (a fully masked row, a
/// sequence of length 0) attends to nothing: its output and weights are zeros (PyTorch gives
/// NaN). Keys masked for every query, and the padded steps given by lengths, are never read,
/// so NaN or Inf stored there reaches no output or gradient of a valid step.
#include <cstdint>
#include <string>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/lengths.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// softmax(q·kᵀ / √E + mask)·v over the last two dimensions, batch dimensions broadcast:
/// query (..., L, E), key (..., S, E), value (..., S, Ev) → (..., L, Ev).
/// - `attn_mask` broadcastable to (..., L, S): b8 where **true means "may attend"** (PyTorch 2's
///   `scaled_dot_product_attention` convention; the modules' masks are the opposite), or a
///   floating-point mask added to the scores (−∞ forbids).
/// - `dropout_p`: dropout on the attention weights (applied whenever it is > 0; pass 0 in eval).
/// - `is_causal`: query i attends to keys j ≤ i only (combined with attn_mask when both are given).
/// A row with nothing to attend to outputs zeros.
/// Example: `Tensor y = nn::scaled_dot_product_attention(q, k, v, {}, 0.0, true);   // causal`
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask = Tensor(), double dropout_p = 0.0, bool is_causal = false);

/// Options of MultiheadAttention (PyTorch's names and defaults; `add_bias_kv` and
/// `add_zero_attn` are not offered).
/// Example: `nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(64, 4).batch_first(true));`
struct MultiheadAttentionOptions {
  /// Model width E and heads H (E divisible by H; each head has E / H features).
  MultiheadAttentionOptions(std::int64_t embed_dim, std::int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads) {}
  /// Width of the query and of the output.
  XGRAD_ARG(std::int64_t, embed_dim);
  /// Parallel heads.
  XGRAD_ARG(std::int64_t, num_heads);
  /// Dropout on the attention weights, in training mode only (default 0).
  XGRAD_ARG(double, dropout) = 0.0;
  /// Biases on the input and output projections (default true).
  XGRAD_ARG(bool, bias) = true;
  /// Width of the key; 0 (the default) means embed_dim.
  XGRAD_ARG(std::int64_t, kdim) = 0;
  /// Width of the value; 0 (the default) means embed_dim.
  XGRAD_ARG(std::int64_t, vdim) = 0;
  /// Inputs and output are (N, L, E) instead of (L, N, E) (default false, as PyTorch).
  XGRAD_ARG(bool, batch_first) = false;
};

/// The per-call arguments of MultiheadAttention::forward (PyTorch's keyword arguments, plus
/// lengths). Masks of the modules use PyTorch's module convention: b8 **true means "masked"**;
/// a floating-point mask is added to the scores.
/// Example: `mha(x, x, x, nn::AttentionArgs().lengths(lengths).query_lengths(lengths).need_weights(false));`
struct AttentionArgs {
  /// (N, S) b8 (true = ignore that key) or float (added), or (S) for unbatched input.
  XGRAD_ARG(Tensor, key_padding_mask);
  /// (L, S) or (N·H, L, S): b8 (true = may not attend) or float (added).
  XGRAD_ARG(Tensor, attn_mask);
  /// Query i attends to keys j ≤ i only (combined with the masks).
  XGRAD_ARG(bool, is_causal) = false;
  /// Valid lengths of the key / value sequences (and their padding side): padded keys are
  /// masked and never read. Combined with key_padding_mask when both are given.
  XGRAD_ARG(Lengths, lengths);
  /// Valid lengths of the query sequences: padded query steps are never read, output zeros and
  /// attend to nothing. For self-attention pass the same lengths as `lengths`.
  XGRAD_ARG(Lengths, query_lengths);
  /// Return the attention weights (default true, as PyTorch).
  XGRAD_ARG(bool, need_weights) = true;
  /// Average the weights over heads, (N, L, S); false keeps (N, H, L, S) (default true).
  XGRAD_ARG(bool, average_attn_weights) = true;
};

/// What MultiheadAttention returns.
struct AttentionOutput {
  Tensor output;   ///< (L, N, E), (N, L, E) with batch_first, or (L, E) unbatched
  Tensor weights;  ///< (N, L, S) averaged over heads, (N, H, L, S), or undefined without need_weights
};

/// Multi-head attention, PyTorch's `nn.MultiheadAttention`: the query, key and value are
/// projected to H heads of E / H features, each head attends with scaled_dot_product_attention,
/// and the concatenated heads go through `out_proj`.
/// Shapes: query (L, N, E), key (S, N, kdim), value (S, N, vdim) (N first with batch_first;
/// unbatched (L, E), (S, kdim), (S, vdim)) → output shaped as the query.
///
/// Parameters (PyTorch's names, shapes and init, so state dicts load):
/// - `in_proj_weight` (3E, E) when kdim = vdim = E, else `q_proj_weight` (E, E),
///   `k_proj_weight` (E, kdim), `v_proj_weight` (E, vdim): xavier_uniform_;
/// - `in_proj_bias` (3E) = 0 and `out_proj.bias` (E) = 0 (with bias);
/// - `out_proj.weight` (E, E): Linear's default init.
///
/// Example:
///
///     nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(16, 4).batch_first(true));
///     auto [y, w] = mha(x, x, x, nn::AttentionArgs().lengths(lengths).query_lengths(lengths));
///     // x (N, T, 16) → y (N, T, 16), w (N, T, T)
class MultiheadAttention : public Module {
 public:
  /// Builds the layer with PyTorch's default initialisation; throws on invalid options.
  explicit MultiheadAttention(const MultiheadAttentionOptions& options);
  /// Attends from query to key / value; see the class comment for shapes.
  AttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value, const AttentionArgs& args = {});
  /// Calls forward.
  AttentionOutput operator()(const Tensor& query, const Tensor& key, const Tensor& value,
                             const AttentionArgs& args = {}) {
    return forward(query, key, value, args);
  }
  /// Draws the parameters again with PyTorch's default initialisation.
  void reset_parameters();
  /// The configuration as repr() prints it.
  std::string extra_repr() const override;
  /// The options the layer was built with.
  const MultiheadAttentionOptions& options() const { return options_; }

  Tensor in_proj_weight;  ///< (3E, E) when kdim = vdim = E, else undefined
  Tensor q_proj_weight;   ///< (E, E) when kdim or vdim ≠ E, else undefined
  Tensor k_proj_weight;   ///< (E, kdim) when kdim or vdim ≠ E, else undefined
  Tensor v_proj_weight;   ///< (E, vdim) when kdim or vdim ≠ E, else undefined
  Tensor in_proj_bias;    ///< (3E), undefined without bias
  std::shared_ptr<Linear> out_proj;  ///< E → E, registered as "out_proj"

 private:
  MultiheadAttentionOptions options_;
};

}  // namespace xgrad::nn

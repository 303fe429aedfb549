// The Transformer encoder and positional encodings, composed from MultiheadAttention, Linear,
// LayerNorm, dropout and the activations, as PyTorch 1.13's modules.
#include <xgrad/nn/transformer.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

namespace {

// The container PyTorch names "layers": children "0", "1", … so keys read layers.<i>.<name>.
class ModuleList final : public Module {
 public:
  std::string type_name() const override { return "ModuleList"; }
};

// Where the time and batch dimensions of a (T, N, E), (N, T, E) or (T, E) input lie.
struct StepLayout {
  std::int64_t steps, batch;
  Tensor pad;  // b8 broadcastable to the input, true at padded steps; undefined without lengths
};

StepLayout step_layout(const Tensor& x, bool batch_first, const Lengths& lengths, const char* op) {
  const bool unbatched = x.dim() == 2;
  StepLayout l{x.size(unbatched || !batch_first ? 0 : 1), unbatched ? 1 : x.size(batch_first ? 0 : 1), Tensor()};
  if (!lengths.given()) return l;
  lengths.check(op, l.batch, l.steps);
  const Tensor pm = lengths.padding_mask(l.steps);  // (N, T)
  l.pad = unbatched ? pm.t() : batch_first ? unsqueeze(pm, 2) : unsqueeze(pm.t(), 2);
  return l;
}

void require_sequence(const Tensor& x, std::int64_t width, const char* op) {
  if (!x.defined() || (x.dim() != 2 && x.dim() != 3) || x.size(-1) != width || !is_floating(x.dtype()))
    throw Error(fmt::format("{}: expected a floating-point (T, N, {}), (N, T, {}) or (T, {}) input, got {} {}", op, width,
                            width, width, x.defined() ? dtype_name(x.dtype()) : "",
                            x.defined() ? shape_str(x.shape()) : std::string("undefined")));
}

}  // namespace

// --- TransformerEncoderLayer --------------------------------------------------------------------

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerEncoderLayerOptions& options) : options_(options) {
  const auto& o = options;
  if (o.dim_feedforward() < 1)
    throw Error(fmt::format("TransformerEncoderLayer: dim_feedforward must be positive, got {}", o.dim_feedforward()));
  if (!(o.dropout() >= 0.0 && o.dropout() <= 1.0))
    throw Error(fmt::format("TransformerEncoderLayer: dropout must be in [0, 1], got {}", o.dropout()));
  // Registration order is PyTorch's: self_attn, linear1, linear2, norm1, norm2.
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(
                                               MultiheadAttentionOptions(o.d_model(), o.nhead()).dropout(o.dropout())));
  linear1 = register_module("linear1", std::make_shared<Linear>(o.d_model(), o.dim_feedforward()));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward(), o.d_model()));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(LayerNormOptions({o.d_model()}).eps(o.layer_norm_eps())));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(LayerNormOptions({o.d_model()}).eps(o.layer_norm_eps())));
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const EncoderArgs& args) {
  const auto& o = options_;
  require_sequence(src, o.d_model(), "TransformerEncoderLayer");
  const StepLayout l = step_layout(src, o.batch_first(), args.lengths(), "TransformerEncoderLayer: lengths");
  // Padded steps are never read (NaN there must not reach a weight's gradient as 0·NaN).
  const Tensor x0 = l.pad.defined() ? masked_fill(src, l.pad, 0.0) : src;
  const double p = is_training() ? o.dropout() : 0.0;
  const AttentionArgs attention = AttentionArgs()
                                      .attn_mask(args.mask())
                                      .key_padding_mask(args.src_key_padding_mask())
                                      .is_causal(args.is_causal())
                                      .lengths(args.lengths())
                                      .query_lengths(args.lengths())
                                      .need_weights(false);
  auto sa_block = [&](const Tensor& h) {
    // MultiheadAttention reads (T, N, E); a batch-first layer hands it the transpose.
    const Tensor hs = o.batch_first() && h.dim() == 3 ? transpose(h, 0, 1) : h;
    Tensor y = self_attn->forward(hs, hs, hs, attention).output;
    if (o.batch_first() && h.dim() == 3) y = transpose(y, 0, 1);
    return dropout(y, p, true);
  };
  auto ff_block = [&](const Tensor& h) {
    Tensor a = (*linear1)(h);
    a = o.activation() == TransformerActivation::gelu ? gelu(a) : relu(a);
    return dropout((*linear2)(dropout(a, p, true)), p, true);
  };
  Tensor x = x0;
  if (o.norm_first()) {
    x = x + sa_block((*norm1)(x));
    x = x + ff_block((*norm2)(x));
  } else {
    x = (*norm1)(x + sa_block(x));
    x = (*norm2)(x + ff_block(x));
  }
  return l.pad.defined() ? masked_fill(x, l.pad, 0.0) : x;  // a padded step outputs zeros
}

std::string TransformerEncoderLayer::extra_repr() const {
  const auto& o = options_;
  return fmt::format("d_model={}, nhead={}, dim_feedforward={}, dropout={}, activation={}, norm_first={}, batch_first={}",
                     o.d_model(), o.nhead(), o.dim_feedforward(), o.dropout(),
                     o.activation() == TransformerActivation::gelu ? "gelu" : "relu", o.norm_first(), o.batch_first());
}

// --- TransformerEncoder ---------------------------------------------------------------------------

TransformerEncoder::TransformerEncoder(const TransformerEncoderOptions& options) : options_(options) {
  if (options.num_layers() < 1)
    throw Error(fmt::format("TransformerEncoder: num_layers must be at least 1, got {}", options.num_layers()));
  auto list = register_module("layers", std::make_shared<ModuleList>());
  for (std::int64_t i = 0; i < options.num_layers(); ++i)
    layers.push_back(list->register_module(std::to_string(i), std::make_shared<TransformerEncoderLayer>(options.layer())));
  if (options.final_norm()) {
    const auto& lo = options.layer();
    norm = register_module("norm", std::make_shared<LayerNorm>(LayerNormOptions({lo.d_model()}).eps(lo.layer_norm_eps())));
  }
}

Tensor TransformerEncoder::forward(const Tensor& src, const EncoderArgs& args) {
  Tensor x = src;
  for (auto& layer : layers) x = layer->forward(x, args);
  if (!norm) return x;
  x = (*norm)(x);
  const StepLayout l = step_layout(x, options_.layer().batch_first(), args.lengths(), "TransformerEncoder: lengths");
  return l.pad.defined() ? masked_fill(x, l.pad, 0.0) : x;
}

// --- positional encodings -------------------------------------------------------------------------

namespace {

void check_positional(const PositionalEncodingOptions& o, const char* op) {
  if (o.d_model() < 1 || o.max_len() < 1)
    throw Error(fmt::format("{}: d_model ({}) and max_len ({}) must be positive", op, o.d_model(), o.max_len()));
  if (!(o.dropout() >= 0.0 && o.dropout() <= 1.0))
    throw Error(fmt::format("{}: dropout must be in [0, 1], got {}", op, o.dropout()));
}

// x + table[:T], the table (max_len, E) broadcast over the batch.
Tensor add_positions(const Tensor& x, const Tensor& table, const PositionalEncodingOptions& o, const char* op) {
  require_sequence(x, o.d_model(), op);
  const std::int64_t T = x.size(x.dim() == 3 && o.batch_first() ? 1 : 0);
  if (T > o.max_len()) throw Error(fmt::format("{}: the input has {} steps, more than max_len {}", op, T, o.max_len()));
  Tensor rows = narrow(table, 0, 0, T);  // (T, E)
  if (x.dim() == 3) rows = unsqueeze(rows, o.batch_first() ? 0 : 1);
  return x + rows;
}

}  // namespace

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(const PositionalEncodingOptions& options) : options_(options) {
  check_positional(options, "SinusoidalPositionalEncoding");
  const std::int64_t T = options.max_len(), E = options.d_model();
  std::vector<double> table(static_cast<std::size_t>(T * E));
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t c = 0; c < E; ++c) {
      const double freq = std::exp(static_cast<double>(c - c % 2) * (-std::log(10000.0) / static_cast<double>(E)));
      const double angle = static_cast<double>(t) * freq;
      table[static_cast<std::size_t>(t * E + c)] = c % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  pe = register_buffer("pe", from_vector(table, {T, E}).to(DType::f32), /*persistent=*/false);
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& input) {
  return dropout(add_positions(input, pe, options_, "SinusoidalPositionalEncoding"), options_.dropout(), is_training());
}

std::string SinusoidalPositionalEncoding::extra_repr() const {
  return fmt::format("d_model={}, max_len={}", options_.d_model(), options_.max_len());
}

LearnedPositionalEmbedding::LearnedPositionalEmbedding(const PositionalEncodingOptions& options) : options_(options) {
  check_positional(options, "LearnedPositionalEmbedding");
  weight = register_parameter("weight", empty({options.max_len(), options.d_model()}));
  init::normal_(weight);
}

Tensor LearnedPositionalEmbedding::forward(const Tensor& input) {
  return dropout(add_positions(input, weight, options_, "LearnedPositionalEmbedding"), options_.dropout(), is_training());
}

std::string LearnedPositionalEmbedding::extra_repr() const {
  return fmt::format("d_model={}, max_len={}", options_.d_model(), options_.max_len());
}

}  // namespace xgrad::nn

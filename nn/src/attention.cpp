// scaled_dot_product_attention and MultiheadAttention, composed from matmul, softmax,
// masked_fill and where. Shapes inside: N batch, H heads, L query steps, S key steps.
#include <xgrad/nn/attention.hpp>

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::string shape_of(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); }

// a ∨ b for b8 masks (broadcast); an undefined operand is "nothing masked".
Tensor either(const Tensor& a, const Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return where(a, a, b);
}

// (L, S) b8, true where key j lies after query i (j > i): what a causal mask forbids.
Tensor causal_mask(std::int64_t L, std::int64_t S) {
  std::vector<bool> after(static_cast<std::size_t>(L * S));
  for (std::int64_t i = 0; i < L; ++i)
    for (std::int64_t j = 0; j < S; ++j) after[static_cast<std::size_t>(i * S + j)] = j > i;
  return from_vector(after, {L, S});
}

// (…, S, 1) b8 for a key or value of shape `shape` (…, S, F): true for the keys that `masked`
// (broadcastable to the scores (…, L, S)) forbids to every query of every batch member that
// reads them. Worked out on the mask's own shape: a causal (L, S) or padding (N, 1, 1, S) mask
// is never expanded to the (N, H, L, S) of the scores.
Tensor keys_never_read(Tensor masked, const Shape& shape) {
  if (masked.dim() < 2) masked = unsqueeze(masked, 0);
  const Tensor every_query =
      masked.size(-2) == 1 ? masked : eq(min(masked.to(DType::f32), -2, true).first, 1.0);  // (…m, 1, S or 1)
  Tensor per_key = transpose(every_query, -1, -2);                                        // (…m, S or 1, 1)
  Shape target = shape;
  target.back() = 1;
  const Shape both = broadcast_shapes(per_key.shape(), target, "scaled_dot_product_attention");
  if (both != target) {
    // The mask tells batch members apart that share this key: it is never read only when
    // none of them reads it.
    const Tensor count = sum_to(expand(per_key, both).to(DType::f32), target);
    per_key = eq(count, static_cast<double>(shape_numel(both) / std::max<std::int64_t>(shape_numel(target), 1)));
  }
  return per_key;
}

// The attention of q (…, L, E) over k (…, S, E), v (…, S, Ev). `masked` (b8, true = may not
// attend) and `additive` (added to the scores) are optional and broadcast to (…, L, S).
// Returns the output (…, L, Ev) and the weights (…, L, S).
std::pair<Tensor, Tensor> attend(Tensor q, Tensor k, Tensor v, const Tensor& masked, const Tensor& additive,
                                 double dropout_p) {
  Shape scores_shape = broadcast_shapes(Shape(q.shape().begin(), q.shape().end() - 2),
                                        Shape(k.shape().begin(), k.shape().end() - 2), "scaled_dot_product_attention");
  scores_shape.push_back(q.size(-2));
  scores_shape.push_back(k.size(-2));
  if (additive.defined()) scores_shape = broadcast_shapes(scores_shape, additive.shape(), "scaled_dot_product_attention");
  if (masked.defined()) {
    scores_shape = broadcast_shapes(scores_shape, masked.shape(), "scaled_dot_product_attention");
    // A key nobody may read still enters the products as 0·k: zero it, so NaN or Inf stored
    // there reaches neither the output (0·NaN) nor the query's gradient.
    k = masked_fill(k, keys_never_read(masked, k.shape()), 0.0);
    v = masked_fill(v, keys_never_read(masked, v.shape()), 0.0);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  Tensor scores = matmul(q * scale, transpose(k, -2, -1));  // (…, L, S)
  if (additive.defined()) scores = scores + additive;
  if (masked.defined()) scores = masked_fill(expand(scores, scores_shape), masked, -kInf);
  // A row with no key left (all −∞) would be 0/0 in softmax: it attends to nothing instead,
  // weights and output 0, and passes no gradient back. Only a mask can empty a row: without
  // one, skip the pass over the (…, L, S) scores that looks for such rows.
  Tensor dead;  // (…, L, 1)
  bool any_dead = false;
  if (masked.defined() || additive.defined()) {
    dead = eq(max(scores.detach(), -1, true).first, -kInf);
    any_dead = sum(dead).item() > 0;
  }
  if (any_dead) scores = masked_fill(scores, dead, 0.0);
  Tensor weights = softmax(scores, -1);
  if (any_dead) weights = masked_fill(weights, dead, 0.0);
  if (dropout_p > 0.0) weights = dropout(weights, dropout_p, true);
  return {matmul(weights, v), weights};  // (…, L, Ev), (…, L, S)
}

void require_attention_input(const Tensor& t, const char* what, const char* op) {
  if (!t.defined() || t.dim() < 2 || !is_floating(t.dtype()))
    throw Error(fmt::format("{}: {} must be a floating-point tensor of at least 2 dimensions, got {} {}", op, what,
                            t.defined() ? dtype_name(t.dtype()) : "", shape_of(t)));
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal) {
  const char* op = "scaled_dot_product_attention";
  require_attention_input(query, "query", op);
  require_attention_input(key, "key", op);
  require_attention_input(value, "value", op);
  if (key.dtype() != query.dtype() || value.dtype() != query.dtype() || query.size(-1) != key.size(-1) ||
      key.size(-2) != value.size(-2))
    throw Error(fmt::format("{}: query (…, L, E) {}, key (…, S, E) {} and value (…, S, Ev) {} do not fit together "
                            "(one dtype, query and key of one width E, key and value of one length S)",
                            op, shape_of(query), shape_of(key), shape_of(value)));
  if (!(dropout_p >= 0.0 && dropout_p <= 1.0))
    throw Error(fmt::format("{}: dropout_p must be in [0, 1], got {}", op, dropout_p));
  Tensor masked, additive;
  if (attn_mask.defined()) {
    if (attn_mask.dtype() == DType::b8)  // true here means "may attend": masked is its negation
      masked = where(attn_mask, zeros({}, DType::b8), ones({}, DType::b8));
    else if (attn_mask.dtype() == query.dtype()) additive = attn_mask;
    else
      throw Error(fmt::format("{}: attn_mask must be b8 or {} like the query, got {}", op, dtype_name(query.dtype()),
                              dtype_name(attn_mask.dtype())));
  }
  if (is_causal) masked = either(masked, causal_mask(query.size(-2), key.size(-2)));
  return attend(query, key, value, masked, additive, dropout_p).first;
}

// --- MultiheadAttention --------------------------------------------------------------------------

MultiheadAttention::MultiheadAttention(const MultiheadAttentionOptions& options) : options_(options) {
  const std::int64_t E = options.embed_dim(), H = options.num_heads();
  if (E < 1 || H < 1 || E % H != 0)
    throw Error(fmt::format("MultiheadAttention: embed_dim ({}) must be divisible by num_heads ({}), both positive", E, H));
  if (options.kdim() < 0 || options.vdim() < 0)
    throw Error(fmt::format("MultiheadAttention: kdim ({}) and vdim ({}) must be non-negative (0 means embed_dim)",
                            options.kdim(), options.vdim()));
  if (!(options.dropout() >= 0.0 && options.dropout() <= 1.0))
    throw Error(fmt::format("MultiheadAttention: dropout must be in [0, 1], got {}", options.dropout()));
  if (options_.kdim() == 0) options_.kdim(E);
  if (options_.vdim() == 0) options_.vdim(E);
  if (options_.kdim() == E && options_.vdim() == E) {
    in_proj_weight = register_parameter("in_proj_weight", empty({3 * E, E}));
  } else {
    q_proj_weight = register_parameter("q_proj_weight", empty({E, E}));
    k_proj_weight = register_parameter("k_proj_weight", empty({E, options_.kdim()}));
    v_proj_weight = register_parameter("v_proj_weight", empty({E, options_.vdim()}));
  }
  if (options.bias()) in_proj_bias = register_parameter("in_proj_bias", empty({3 * E}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(E, E, options.bias()));
  reset_parameters();
}

void MultiheadAttention::reset_parameters() {
  for (Tensor* w : {&in_proj_weight, &q_proj_weight, &k_proj_weight, &v_proj_weight})
    if (w->defined()) init::xavier_uniform_(*w);
  out_proj->reset_parameters();
  if (in_proj_bias.defined()) init::zeros_(in_proj_bias);
  if (out_proj->bias.defined()) init::zeros_(out_proj->bias);
}

std::string MultiheadAttention::extra_repr() const {
  const auto& o = options_;
  std::string s = fmt::format("embed_dim={}, num_heads={}", o.embed_dim(), o.num_heads());
  if (o.kdim() != o.embed_dim() || o.vdim() != o.embed_dim()) s += fmt::format(", kdim={}, vdim={}", o.kdim(), o.vdim());
  if (o.dropout() != 0.0) s += fmt::format(", dropout={}", o.dropout());
  if (!o.bias()) s += ", bias=false";
  if (o.batch_first()) s += ", batch_first=true";
  return s;
}

namespace {

// A (N, T) mask of a batch of N sequences of T steps from a key_padding_mask and lengths.
// Returns the b8 part (true = padded) and the additive part; either may be undefined.
std::pair<Tensor, Tensor> key_padding(const Tensor& kpm, const Lengths& lengths, std::int64_t N, std::int64_t S,
                                      DType dtype, bool unbatched) {
  Tensor pad, add;
  if (kpm.defined()) {
    const Tensor m = unbatched && kpm.dim() == 1 ? unsqueeze(kpm, 0) : kpm;
    if (m.shape() != Shape{N, S} || (m.dtype() != DType::b8 && m.dtype() != dtype))
      throw Error(fmt::format("MultiheadAttention: key_padding_mask must be b8 or {} of shape ({}, {}), got {} {}",
                              dtype_name(dtype), N, S, dtype_name(m.dtype()), shape_of(kpm)));
    (m.dtype() == DType::b8 ? pad : add) = m;
  }
  if (lengths.given()) {
    lengths.check("MultiheadAttention: lengths", N, S);
    pad = either(pad, lengths.padding_mask(S));
  }
  return {pad, add};
}

// The attn_mask as (L, S) or (N, H, L, S); b8 into `masked`, floating into `additive`.
void split_attn_mask(const Tensor& mask, std::int64_t N, std::int64_t H, std::int64_t L, std::int64_t S, DType dtype,
                     Tensor& masked, Tensor& additive) {
  if (!mask.defined()) return;
  Tensor m;
  if (mask.shape() == Shape{L, S}) m = mask;
  else if (mask.shape() == Shape{N * H, L, S}) m = reshape(mask, {N, H, L, S});
  if (!m.defined() || (m.dtype() != DType::b8 && m.dtype() != dtype))
    throw Error(fmt::format("MultiheadAttention: attn_mask must be b8 or {} of shape ({}, {}) or ({}, {}, {}), got {} {}",
                            dtype_name(dtype), L, S, N * H, L, S, dtype_name(mask.dtype()), shape_of(mask)));
  (m.dtype() == DType::b8 ? masked : additive) = m;
}

// Adds the key padding (N, S) (b8 or additive), causality (L, S) and the query padding (N, L)
// to the masks over the (N, H, L, S) scores: a padded query attends to nothing.
void add_padding_masks(const Tensor& key_pad, const Tensor& key_add, const Tensor& query_pad, bool is_causal,
                       std::int64_t L, std::int64_t S, Tensor& masked, Tensor& additive) {
  if (key_pad.defined()) masked = either(masked, unsqueeze(unsqueeze(key_pad, 1), 1));  // (N, 1, 1, S)
  if (key_add.defined()) {
    const Tensor add = unsqueeze(unsqueeze(key_add, 1), 1);  // (N, 1, 1, S)
    additive = additive.defined() ? additive + add : add;
  }
  if (is_causal) masked = either(masked, causal_mask(L, S));
  if (query_pad.defined()) masked = either(masked, unsqueeze(unsqueeze(query_pad, 1), 3));  // (N, 1, L, 1)
}

}  // namespace

AttentionOutput MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                            const AttentionArgs& args) {
  const auto& o = options_;
  const std::int64_t E = o.embed_dim(), H = o.num_heads(), hd = E / H;
  const char* op = "MultiheadAttention";
  require_attention_input(query, "query", op);
  const bool unbatched = query.dim() == 2;
  auto check = [&](const Tensor& t, const char* what, std::int64_t width) {
    if (!t.defined() || t.dim() != query.dim() || t.size(-1) != width || t.dtype() != query.dtype())
      throw Error(fmt::format("{}: {} must be {} with {} features and the rank of the query {}, got {} {}", op, what,
                              dtype_name(query.dtype()), width, shape_of(query),
                              t.defined() ? dtype_name(t.dtype()) : "", shape_of(t)));
  };
  check(query, "query", E);
  check(key, "key", o.kdim());
  check(value, "value", o.vdim());
  // Batch-first inside: (N, L, E), (N, S, kdim), (N, S, vdim).
  auto batch_first = [&](const Tensor& t) { return unbatched ? unsqueeze(t, 0) : o.batch_first() ? t : transpose(t, 0, 1); };
  Tensor q = batch_first(query), k = batch_first(key), v = batch_first(value);
  const std::int64_t N = q.size(0), L = q.size(1), S = k.size(1);
  if (k.size(0) != N || v.size(0) != N || v.size(1) != S)
    throw Error(fmt::format("{}: query {}, key {} and value {} disagree on the batch or the key and value on the "
                            "length", op, shape_of(query), shape_of(key), shape_of(value)));

  auto [key_pad, key_add] = key_padding(args.key_padding_mask(), args.lengths(), N, S, q.dtype(), unbatched);
  Tensor query_pad;  // (N, L) b8, true at padded query steps
  if (args.query_lengths().given()) {
    args.query_lengths().check("MultiheadAttention: query_lengths", N, L);
    query_pad = args.query_lengths().padding_mask(L);
  }
  // Padded steps are never read: zero them before the projections, so NaN or Inf there reach
  // no product (0·NaN) of the forward pass or of a weight's gradient.
  if (key_pad.defined()) {
    k = masked_fill(k, unsqueeze(key_pad, 2), 0.0);
    v = masked_fill(v, unsqueeze(key_pad, 2), 0.0);
  }
  if (query_pad.defined()) q = masked_fill(q, unsqueeze(query_pad, 2), 0.0);

  // Projections: (N, T, ·) → (N, H, T, hd).
  Tensor wq = q_proj_weight, wk = k_proj_weight, wv = v_proj_weight, bq, bk, bv;
  if (in_proj_weight.defined()) {
    auto w = chunk(in_proj_weight, 3, 0);
    wq = w[0], wk = w[1], wv = w[2];
  }
  if (in_proj_bias.defined()) {
    auto b = chunk(in_proj_bias, 3, 0);
    bq = b[0], bk = b[1], bv = b[2];
  }
  auto heads = [&](const Tensor& t, const Tensor& w, const Tensor& b) {
    return permute(reshape(linear(t, w, b), {N, t.size(1), H, hd}), {0, 2, 1, 3});
  };
  const Tensor qh = heads(q, wq, bq), kh = heads(k, wk, bk), vh = heads(v, wv, bv);

  Tensor masked, additive;  // over the (N, H, L, S) scores
  split_attn_mask(args.attn_mask(), N, H, L, S, q.dtype(), masked, additive);
  add_padding_masks(key_pad, key_add, query_pad, args.is_causal(), L, S, masked, additive);

  const double p = is_training() ? o.dropout() : 0.0;
  auto [attended, weights] = attend(qh, kh, vh, masked, additive, p);  // (N, H, L, hd), (N, H, L, S)
  Tensor out = (*out_proj)(reshape(permute(attended, {0, 2, 1, 3}), {N, L, E}));  // (N, L, E)
  if (query_pad.defined()) out = masked_fill(out, unsqueeze(query_pad, 2), 0.0);  // a padded step outputs zeros

  AttentionOutput result;
  result.output = unbatched ? squeeze(out, 0) : o.batch_first() ? out : transpose(out, 0, 1);
  if (args.need_weights()) {
    Tensor w = args.average_attn_weights() ? mean(weights, {1}) : weights;
    result.weights = unbatched ? squeeze(w, 0) : w;
  }
  return result;
}

}  // namespace xgrad::nn

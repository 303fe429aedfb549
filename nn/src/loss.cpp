#include <xgrad/nn/loss.hpp>

#include <algorithm>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

namespace xgrad::nn {

namespace {

Tensor reduce(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return loss.sum();
    case Reduction::mean: return loss.mean();
  }
  throw Error("loss: unknown reduction");
}

void require_floating_input(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) throw Error(fmt::format("{}: {} is undefined", op, what));
  if (!is_floating(t.dtype()))
    throw Error(fmt::format("{}: {} must be floating-point, got {}", op, what, dtype_name(t.dtype())));
}

void require_same_shape(const Tensor& input, const Tensor& target, const char* op) {
  require_floating_input(input, op, "input");
  require_floating_input(target, op, "target");
  if (input.shape() != target.shape())
    throw Error(fmt::format("{}: input {} and target {} must have the same shape", op, shape_str(input.shape()),
                            shape_str(target.shape())));
  if (input.dtype() != target.dtype())
    throw Error(fmt::format("{}: input is {} but target is {}", op, dtype_name(input.dtype()), dtype_name(target.dtype())));
}

// Class scores (N, C, d...) with class indices (N, d...). An unbatched (C) with () becomes
// (1, C) with (1); `unbatched` tells the caller to drop that dimension again.
struct ClassProblem {
  Tensor scores, target;
  bool unbatched = false;
};

ClassProblem class_problem(const Tensor& input, const Tensor& target, const Tensor& weight, std::int64_t ignore_index,
                           const char* op) {
  require_floating_input(input, op, "input");
  if (!target.defined() || target.dtype() != DType::i64)
    throw Error(fmt::format("{}: target must be int64 class indices, got {}", op,
                            target.defined() ? dtype_name(target.dtype()) : "an undefined tensor"));
  ClassProblem p{input, target, false};
  if (input.dim() == 1) {
    if (target.dim() != 0)
      throw Error(fmt::format("{}: unbatched input {} needs a 0-d target, got {}", op, shape_str(input.shape()),
                              shape_str(target.shape())));
    p = {input.unsqueeze(0), target.reshape({1}), true};
  }
  if (p.scores.dim() < 2) throw Error(fmt::format("{}: input {} needs a class dimension", op, shape_str(input.shape())));
  Shape expected = p.scores.shape();
  expected.erase(expected.begin() + 1);
  if (p.target.shape() != expected)
    throw Error(fmt::format("{}: input {} needs target of shape {}, got {}", op, shape_str(input.shape()),
                            shape_str(expected), shape_str(target.shape())));
  const std::int64_t classes = p.scores.size(1);
  for (std::int64_t t : p.target.to_vector<std::int64_t>())
    if (t != ignore_index && (t < 0 || t >= classes))
      throw Error(fmt::format("{}: target {} is out of bounds for {} classes", op, t, classes));
  if (weight.defined() && (weight.shape() != Shape{classes} || weight.dtype() != input.dtype()))
    throw Error(fmt::format("{}: weight must be a {} tensor of shape ({}), got {} {}", op, dtype_name(input.dtype()),
                            classes, dtype_name(weight.dtype()), shape_str(weight.shape())));
  return p;
}

// Per-element negative log-likelihood and weight, both (N, d...) and zero at ignored targets.
struct NllTerms {
  Tensor loss, weight;
};

NllTerms nll_terms(const Tensor& logp, const Tensor& target, const Tensor& class_weight, std::int64_t ignore_index) {
  const DType dt = logp.dtype();
  Tensor valid = ne(target, full({}, static_cast<double>(ignore_index), DType::i64));  // b8 (N, d...)
  Tensor safe = where(valid, target, zeros({}, DType::i64));                           // ignored → class 0
  Tensor picked = gather(logp, 1, safe.unsqueeze(1)).squeeze(1);                       // log p_t (N, d...)
  Tensor w = class_weight.defined() ? where(valid, index_select(class_weight, 0, safe), zeros({}, dt))
                                    : valid.to(dt);
  return {where(valid, -(picked * w), zeros({}, dt)), w};
}

Tensor reduce_weighted(const Tensor& loss, const Tensor& weight, Reduction reduction) {
  if (reduction == Reduction::mean) return loss.sum() / weight.sum();  // 0/0 = nan when all ignored, as PyTorch
  return reduce(loss, reduction);
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  require_same_shape(input, target, "mse_loss");
  // A reduced loss takes the fused primitive: one pass forward, one backward.
  if (reduction == Reduction::none || input.numel() == 0) {
    const Tensor diff = input - target;
    return reduce(diff * diff, reduction);
  }
  const Tensor total = sum_squared_difference(input, target);
  return reduction == Reduction::sum ? total : total * (1.0 / static_cast<double>(input.numel()));
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  require_same_shape(input, target, "l1_loss");
  return reduce(abs(input - target), reduction);
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossOptions& options) {
  ClassProblem p = class_problem(input, target, options.weight(), options.ignore_index(), "nll_loss");
  NllTerms nll = nll_terms(p.scores, p.target, options.weight(), options.ignore_index());
  Tensor out = reduce_weighted(nll.loss, nll.weight, options.reduction());
  return p.unbatched && options.reduction() == Reduction::none ? out.squeeze(0) : out;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options) {
  const double eps = options.label_smoothing();
  if (!(eps >= 0.0 && eps <= 1.0))
    throw Error(fmt::format("cross_entropy: label_smoothing must be in [0, 1], got {}", eps));
  const Tensor& class_weight = options.weight();

  if (target.defined() && is_floating(target.dtype())) {
    // Probability targets: −Σ_c w_c·q_c·log p_c per element.
    require_same_shape(logits, target, "cross_entropy");
    const bool unbatched = logits.dim() == 1;
    Tensor x = unbatched ? logits.unsqueeze(0) : logits, q = unbatched ? target.unsqueeze(0) : target;
    const std::int64_t classes = x.size(1);
    if (class_weight.defined() && (class_weight.shape() != Shape{classes} || class_weight.dtype() != x.dtype()))
      throw Error(fmt::format("cross_entropy: weight must be a {} tensor of shape ({}), got {} {}",
                              dtype_name(x.dtype()), classes, dtype_name(class_weight.dtype()),
                              shape_str(class_weight.shape())));
    if (eps > 0.0) q = q * (1.0 - eps) + eps / static_cast<double>(classes);
    Tensor logp = log_softmax(x, 1);
    Shape wshape(static_cast<std::size_t>(x.dim()), 1);
    wshape[1] = classes;
    Tensor terms = class_weight.defined() ? logp * q * class_weight.reshape(wshape) : logp * q;
    Tensor loss = -terms.sum({1});  // (N, d...)
    if (options.reduction() == Reduction::none) return unbatched ? loss.squeeze(0) : loss;
    if (options.reduction() == Reduction::sum) return loss.sum();
    return loss.sum() / static_cast<double>(x.numel() / std::max<std::int64_t>(classes, 1));
  }

  ClassProblem p = class_problem(logits, target, class_weight, options.ignore_index(), "cross_entropy");
  const std::int64_t classes = p.scores.size(1);
  Tensor logp = log_softmax(p.scores, 1);  // (N, C, d...)
  NllTerms nll = nll_terms(logp, p.target, class_weight, options.ignore_index());
  Tensor out;
  if (eps == 0.0) {
    out = reduce_weighted(nll.loss, nll.weight, options.reduction());
  } else {
    // PyTorch 1.13's cross_entropy_loss_label_smoothing: the uniform part −Σ_c w_c·log p_c,
    // zeroed at ignored targets and reduced with the same denominator as the nll part.
    Shape wshape(static_cast<std::size_t>(logp.dim()), 1);
    wshape[1] = classes;
    Tensor all = class_weight.defined() ? logp * class_weight.reshape(wshape) : logp;
    Tensor valid = ne(p.target, full({}, static_cast<double>(options.ignore_index()), DType::i64));
    Tensor smooth = where(valid, -all.sum({1}), zeros({}, logp.dtype()));  // (N, d...)
    Tensor nll_part = reduce_weighted(nll.loss, nll.weight, options.reduction());
    Tensor smooth_part = reduce_weighted(smooth, nll.weight, options.reduction());
    out = (1.0 - eps) * nll_part + (eps / static_cast<double>(classes)) * smooth_part;
  }
  return p.unbatched && options.reduction() == Reduction::none ? out.squeeze(0) : out;
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const BCEWithLogitsOptions& options) {
  require_same_shape(input, target, "binary_cross_entropy_with_logits");
  // −[t·log σ(x) + (1−t)·log(1−σ(x))] = (1−t)·x + softplus(−x); pos_weight scales the t term.
  Tensor log_term = softplus(-input);  // −log σ(x), stable for any |x|
  if (options.pos_weight().defined()) {
    const Tensor& pw = options.pos_weight();
    if (pw.dtype() != input.dtype())
      throw Error(fmt::format("binary_cross_entropy_with_logits: pos_weight is {} but input is {}", dtype_name(pw.dtype()),
                              dtype_name(input.dtype())));
    log_term = (1.0 + (pw - 1.0) * target) * log_term;
  }
  Tensor loss = (1.0 - target) * input + log_term;
  if (options.weight().defined()) loss = loss * options.weight();
  if (loss.shape() != input.shape())
    throw Error(fmt::format("binary_cross_entropy_with_logits: weight or pos_weight of shape {} does not broadcast to "
                            "the input {}", shape_str(loss.shape()), shape_str(input.shape())));
  return reduce(loss, options.reduction());
}

}  // namespace xgrad::nn

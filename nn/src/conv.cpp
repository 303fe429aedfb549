// Conv1d and the 1-D poolings. The poolings are composed from primitives: padding is a cat
// with constant blocks, the windows an as_strided view of the padded input. Conv1d runs the
// recorded op of conv1d_kernel.cpp, or under a tracer the composed form (windows, one batched
// GEMM), whose composite scope an exporter maps whole.
#include <xgrad/nn/conv.hpp>

#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/trace.hpp>
#include <xgrad/nn/init.hpp>

#include "conv1d_kernel.hpp"

namespace xgrad::nn {

// --- padding ------------------------------------------------------------------------------------

ConvPadding ConvPadding::from_amount(std::int64_t amount) {
  if (amount < 0) throw Error(fmt::format("Conv1d: padding must be non-negative, got {}", amount));
  ConvPadding p;
  p.amount_ = amount;
  return p;
}

ConvPadding::ConvPadding(const char* mode) : ConvPadding(std::string(mode ? mode : "")) {}

ConvPadding::ConvPadding(const std::string& mode) {
  if (mode == "same") same_ = true;
  else if (mode == "causal") causal_ = true;
  else if (mode == "valid") valid_ = true;
  else throw Error("Conv1d: padding must be a number, \"valid\", \"same\" or \"causal\", got \"" + mode + "\"");
}

namespace {

const char* mode_name(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::zeros: return "zeros";
    case PaddingMode::reflect: return "reflect";
    case PaddingMode::replicate: return "replicate";
    case PaddingMode::circular: return "circular";
  }
  return "?";
}

}  // namespace

std::string ConvPadding::str() const {
  return same_ ? "same" : causal_ ? "causal" : valid_ ? "valid" : std::to_string(amount_);
}

namespace {

std::string shape_of(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); }

// A 3-D x with `left` and `right` steps of `value` added along dimension `dim`, contiguous.
Tensor pad_steps(const Tensor& x, std::int64_t dim, std::int64_t left, std::int64_t right, double value) {
  if (left == 0 && right == 0) return x.contiguous();
  auto block = [&](std::int64_t steps) {
    Shape shape = x.shape();
    shape[static_cast<std::size_t>(dim)] = steps;
    return full(shape, value, x.dtype());
  };
  std::vector<Tensor> parts;
  if (left > 0) parts.push_back(block(left));
  parts.push_back(x);
  if (right > 0) parts.push_back(block(right));
  return cat(parts, dim);
}

// The windows of a contiguous padded (N, C, Lp) as a (N, C, L_out, K) view, or of a padded
// channels-last (N, Lp, C) as a (N, L_out, C, K) view: window t, tap k reads step
// t·stride + k·dilation. No copy; its gradient scatters back into xp.
Tensor windows(const Tensor& xp, bool channels_last, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
               std::int64_t steps_out) {
  const std::int64_t a = xp.size(1), b = xp.size(2);
  if (channels_last)  // a = Lp, b = C
    return as_strided(xp, {xp.size(0), steps_out, b, kernel}, {a * b, stride * b, 1, dilation * b}, xp.storage_offset());
  return as_strided(xp, {xp.size(0), a, steps_out, kernel}, {a * b, b, stride, dilation}, xp.storage_offset());
}

// Accepts (N, C, L) or (C, L) — (N, L, C) or (L, C) channels last; returns the batched form and
// whether it was unbatched.
std::pair<Tensor, bool> batched(const Tensor& input, const char* op, bool channels_last) {
  if (!input.defined() || (input.dim() != 2 && input.dim() != 3) || !is_floating(input.dtype()))
    throw Error(fmt::format("{}: expected a floating-point input {}, got {} {}", op,
                            channels_last ? "(N, L, C) or (L, C) (channels_last)" : "(N, C, L) or (C, L)",
                            input.defined() ? dtype_name(input.dtype()) : "", shape_of(input)));
  return input.dim() == 2 ? std::pair{unsqueeze(input, 0), true} : std::pair{input, false};
}

// Under a tracer, each layer is one composite scope, so that an exporter can map it whole (ONNX
// Conv, MaxPool, AveragePool) instead of its as_strided windows.
void open_scope(std::optional<trace::Composite>& scope, const char* kind, std::vector<Tensor> inputs,
                trace::Attributes attributes) {
  if (trace::active()) scope.emplace(kind, std::move(inputs), std::move(attributes));
}

Tensor finish(std::optional<trace::Composite>& scope, const Tensor& y) {
  if (scope) scope->finish({y});
  return y;
}

void require_positive(std::int64_t value, const char* op, const char* what) {
  if (value < 1) throw Error(fmt::format("{}: {} must be at least 1, got {}", op, what, value));
}

}  // namespace

// --- Conv1d -------------------------------------------------------------------------------------

namespace {

// The composed form, for tracing: pad, (N, G, Cg, K, L_out) windows copied once into the
// (N, G, Cg·K, L_out) column matrix, one batched GEMM, the bias broadcast. x channels first.
Tensor composed_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, const detail::Conv1dGeometry& g) {
  Tensor xp;  // (N, C, Lp)
  if (g.mode == PaddingMode::zeros) {
    xp = pad_steps(x, 2, g.left, g.right, 0.0);
  } else {  // the steps each padded position reads, gathered (their gradients add up)
    std::vector<std::int64_t> steps;
    for (std::int64_t p = -g.left; p < g.L + g.right; ++p) steps.push_back(detail::source_step(g.mode, p, g.L));
    xp = index_select(x, 2, from_vector(steps, {static_cast<std::int64_t>(steps.size())}));
  }
  const std::int64_t Lp = xp.size(2), Cg = g.C / g.G;
  const Tensor win = as_strided(xp, {g.N, g.G, Cg, g.K, g.L_out}, {g.C * Lp, Cg * Lp, Lp, g.dilation, g.stride},
                                xp.storage_offset());
  const Tensor cols = reshape(win, {g.N, g.G, Cg * g.K, g.L_out});
  // (G, O/G, Cg·K) × (N, G, Cg·K, L_out) → (N, G, O/G, L_out).
  Tensor y = reshape(matmul(reshape(weight, {g.G, g.O / g.G, Cg * g.K}), cols), {g.N, g.O, g.L_out});
  if (bias.defined()) y = y + reshape(bias, {g.O, 1});
  return y;
}

// Checks every argument against the input and resolves the padding; `op` names the caller.
detail::Conv1dGeometry conv1d_geometry(const Tensor& input, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       std::int64_t stride, const ConvPadding& padding, std::int64_t dilation,
                                       std::int64_t groups, bool channels_last, PaddingMode mode, const char* op) {
  require_positive(stride, op, "stride");
  require_positive(dilation, op, "dilation");
  require_positive(groups, op, "groups");
  if (!weight.defined() || weight.dim() != 3 || weight.dtype() != x.dtype())
    throw Error(fmt::format("{}: weight must be a {} tensor (C_out, C_in / groups, K), got {}", op,
                            dtype_name(x.dtype()), shape_of(weight)));
  const std::int64_t C = x.size(channels_last ? 2 : 1), L = x.size(channels_last ? 1 : 2);
  const std::int64_t O = weight.size(0), Cg = weight.size(1), K = weight.size(2);
  if (K < 1 || Cg * groups != C || O % groups != 0)
    throw Error(fmt::format("{}: input {} ({}) with weight {} and groups={}: the input has {} channels, the weight "
                            "needs C_in = C_in / groups · groups = {}, C_out divisible by groups and a kernel of at "
                            "least 1", op, shape_of(input), channels_last ? "channels last" : "channels first",
                            shape_of(weight), groups, C, Cg * groups));
  if (bias.defined() && (bias.shape() != Shape{O} || bias.dtype() != x.dtype()))
    throw Error(fmt::format("{}: bias must be ({}) for weight {}, got {}", op, O, shape_of(weight), shape_of(bias)));
  std::int64_t left = padding.amount(), right = padding.amount();
  if (padding.same()) {
    if (stride != 1) throw Error(fmt::format("{}: padding \"same\" needs stride 1, got stride {}", op, stride));
    const std::int64_t total = dilation * (K - 1);
    left = total / 2;  // the odd step goes to the right, as PyTorch
    right = total - left;
  } else if (padding.causal()) {
    left = dilation * (K - 1);  // output step t sees input steps up to t·stride only
    right = 0;
  }
  const bool bounded = mode == PaddingMode::reflect || mode == PaddingMode::circular;
  const std::int64_t most = mode == PaddingMode::reflect ? L - 1 : L;  // PyTorch's limits
  if (bounded && (left > 0 || right > 0) && std::max(left, right) > most)
    throw Error(fmt::format("{}: padding_mode {} pads at most {} steps per side of an input of {} steps {}, "
                            "got {} before and {} after", op, mode_name(mode), most, L, shape_of(input), left, right));
  if (mode == PaddingMode::replicate && L == 0 && left + right > 0)
    throw Error(fmt::format("{}: padding_mode replicate needs at least one step, got input {}", op, shape_of(input)));
  const std::int64_t span = dilation * (K - 1) + 1, Lp = L + left + right;
  if (Lp < span)
    throw Error(fmt::format("{}: the padded input has {} steps, fewer than the kernel's span {} (kernel {}, "
                            "dilation {}); input {}", op, Lp, span, K, dilation, shape_of(input)));
  return {x.size(0), C, L, O, groups, K, stride, dilation, left, right, (Lp - span) / stride + 1, channels_last, mode};
}

Tensor conv1d_checked(const Tensor& input, const Tensor& weight, const Tensor& bias, std::int64_t stride,
                      const ConvPadding& padding, std::int64_t dilation, std::int64_t groups, bool channels_last,
                      PaddingMode mode, const char* op) {
  auto [x, unbatched] = batched(input, op, channels_last);
  const detail::Conv1dGeometry g =
      conv1d_geometry(input, x, weight, bias, stride, padding, dilation, groups, channels_last, mode, op);
  Tensor y;
  if (trace::active()) {
    std::optional<trace::Composite> scope;
    open_scope(scope, "conv1d", {input, weight, bias},
               {{"stride", stride}, {"pad_left", g.left}, {"pad_right", g.right}, {"dilation", dilation},
                {"groups", groups}, {"kernel_size", g.K}, {"channels_last", std::int64_t{channels_last}},
                {"padding_mode", std::string(mode_name(mode))}});
    y = channels_last ? transpose(composed_conv1d(transpose(x, 1, 2), weight, bias, g), 1, 2)
                      : composed_conv1d(x, weight, bias, g);
    return finish(scope, unbatched ? squeeze(y, 0) : y);
  }
  y = detail::conv1d_op(x, weight, bias, g);
  return unbatched ? squeeze(y, 0) : y;
}

}  // namespace

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::int64_t stride,
              const ConvPadding& padding, std::int64_t dilation, std::int64_t groups, bool channels_last) {
  return conv1d_checked(input, weight, bias, stride, padding, dilation, groups, channels_last, PaddingMode::zeros,
                        "conv1d");
}

Conv1d::Conv1d(const Conv1dOptions& options) : options_(options) {
  const auto& o = options;
  require_positive(o.in_channels(), "Conv1d", "in_channels");
  require_positive(o.out_channels(), "Conv1d", "out_channels");
  require_positive(o.kernel_size(), "Conv1d", "kernel_size");
  require_positive(o.stride(), "Conv1d", "stride");
  require_positive(o.dilation(), "Conv1d", "dilation");
  require_positive(o.groups(), "Conv1d", "groups");
  if (o.in_channels() % o.groups() != 0 || o.out_channels() % o.groups() != 0)
    throw Error(fmt::format("Conv1d: in_channels={} and out_channels={} must both be divisible by groups={}",
                            o.in_channels(), o.out_channels(), o.groups()));
  if (o.padding().same() && o.stride() != 1)
    throw Error(fmt::format("Conv1d: padding \"same\" needs stride 1, got stride {}", o.stride()));
  weight = register_parameter("weight", empty({o.out_channels(), o.in_channels() / o.groups(), o.kernel_size()}));
  if (o.bias()) bias = register_parameter("bias", empty({o.out_channels()}));
  reset_parameters();
}

void Conv1d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const auto fan_in = static_cast<double>(weight.size(1) * weight.size(2));
    init::uniform_(bias, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
  }
}

Tensor Conv1d::forward(const Tensor& input) {
  const auto& o = options_;
  return conv1d_checked(input, weight, bias, o.stride(), o.padding(), o.dilation(), o.groups(), o.channels_last(),
                        o.padding_mode(), "Conv1d");
}

std::string Conv1d::extra_repr() const {
  const auto& o = options_;
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", o.in_channels(), o.out_channels(), o.kernel_size(),
                              o.stride());
  if (o.padding().same() || o.padding().causal() || o.padding().amount() != 0) s += ", padding=" + o.padding().str();
  if (o.dilation() != 1) s += fmt::format(", dilation={}", o.dilation());
  if (o.groups() != 1) s += fmt::format(", groups={}", o.groups());
  if (!o.bias()) s += ", bias=false";
  if (o.padding_mode() != PaddingMode::zeros) s += fmt::format(", padding_mode={}", mode_name(o.padding_mode()));
  if (o.channels_last()) s += ", channels_last=true";
  return s;
}

// --- MaxPool1d, AvgPool1d -------------------------------------------------------------------------

namespace {

// Checks the options against an input of `steps` steps; returns (stride, L_out).
std::pair<std::int64_t, std::int64_t> pool_geometry(const Pool1dOptions& o, std::int64_t steps, const char* op) {
  require_positive(o.kernel_size(), op, "kernel_size");
  const std::int64_t stride = o.stride() == 0 ? o.kernel_size() : o.stride();
  require_positive(stride, op, "stride");
  if (o.padding() < 0 || o.padding() > o.kernel_size() / 2)
    throw Error(fmt::format("{}: padding must be in [0, kernel_size / 2] = [0, {}], got {}", op, o.kernel_size() / 2,
                            o.padding()));
  const std::int64_t padded = steps + 2 * o.padding();
  if (padded < o.kernel_size())
    throw Error(fmt::format("{}: the padded input has {} steps, fewer than kernel_size {}", op, padded, o.kernel_size()));
  return {stride, (padded - o.kernel_size()) / stride + 1};
}

std::string pool_repr(const Pool1dOptions& o) {
  return fmt::format("kernel_size={}, stride={}, padding={}", o.kernel_size(), o.stride() == 0 ? o.kernel_size() : o.stride(),
                     o.padding()) + (o.channels_last() ? ", channels_last=true" : "");
}

}  // namespace

Tensor max_pool1d(const Tensor& input, const Pool1dOptions& options) {
  const bool last = options.channels_last();
  auto [x, unbatched] = batched(input, "max_pool1d", last);
  const auto [stride, L_out] = pool_geometry(options, x.size(last ? 1 : 2), "max_pool1d");
  std::optional<trace::Composite> scope;
  open_scope(scope, "max_pool1d", {input},
             {{"kernel_size", options.kernel_size()}, {"stride", stride}, {"padding", options.padding()},
              {"channels_last", std::int64_t{last}}});
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor xp = pad_steps(x, last ? 1 : 2, options.padding(), options.padding(), -inf);  // never the maximum
  Tensor y = max(windows(xp, last, options.kernel_size(), stride, 1, L_out), -1).first;  // (N, C, L_out) or (N, L_out, C)
  return finish(scope, unbatched ? squeeze(y, 0) : y);
}

Tensor avg_pool1d(const Tensor& input, const Pool1dOptions& options) {
  const bool last = options.channels_last();
  auto [x, unbatched] = batched(input, "avg_pool1d", last);
  const std::int64_t L = x.size(last ? 1 : 2);
  const auto [stride, L_out] = pool_geometry(options, L, "avg_pool1d");
  const std::int64_t K = options.kernel_size(), pad = options.padding();
  std::optional<trace::Composite> scope;
  open_scope(scope, "avg_pool1d", {input},
             {{"kernel_size", K}, {"stride", stride}, {"padding", pad},
              {"count_include_pad", std::int64_t{options.count_include_pad()}}, {"channels_last", std::int64_t{last}}});
  const Tensor xp = pad_steps(x, last ? 1 : 2, pad, pad, 0.0);
  Tensor y = sum(windows(xp, last, K, stride, 1, L_out), {-1});  // (N, C, L_out) or (N, L_out, C)
  if (options.count_include_pad() || pad == 0) {
    y = y / static_cast<double>(K);
  } else {
    // Real steps per window: the same windows over ones padded with zeros.
    std::vector<double> count(static_cast<std::size_t>(L_out));
    for (std::int64_t t = 0; t < L_out; ++t) {
      const std::int64_t lo = std::max<std::int64_t>(t * stride, pad), hi = std::min(t * stride + K, pad + L);
      count[static_cast<std::size_t>(t)] = static_cast<double>(hi - lo);
    }
    y = y / from_vector(count, last ? Shape{L_out, 1} : Shape{L_out}).to(x.dtype());
  }
  return finish(scope, unbatched ? squeeze(y, 0) : y);
}

MaxPool1d::MaxPool1d(const Pool1dOptions& options) : options_(options) { (void)pool_geometry(options, options.kernel_size(), "MaxPool1d"); }
Tensor MaxPool1d::forward(const Tensor& input) { return max_pool1d(input, options_); }
std::string MaxPool1d::extra_repr() const { return pool_repr(options_); }

AvgPool1d::AvgPool1d(const Pool1dOptions& options) : options_(options) { (void)pool_geometry(options, options.kernel_size(), "AvgPool1d"); }
Tensor AvgPool1d::forward(const Tensor& input) { return avg_pool1d(input, options_); }
std::string AvgPool1d::extra_repr() const {
  return pool_repr(options_) + (options_.count_include_pad() ? "" : ", count_include_pad=false");
}

// --- global pooling over the valid steps ------------------------------------------------------------

namespace {

struct TimeLayout {
  std::int64_t time_dim, batch_dim;
  Tensor pad;    // b8, true at padded steps, shaped to broadcast against the input; undefined without lengths
  Tensor empty;  // b8 (B, 1), true for sequences of length 0; undefined without lengths
};

TimeLayout time_layout(const Tensor& input, const Lengths& lengths, std::int64_t time_dim, const char* op) {
  if (!input.defined() || input.dim() != 3 || !is_floating(input.dtype()))
    throw Error(fmt::format("{}: expected a floating-point 3-D input, got {} {}", op,
                            input.defined() ? dtype_name(input.dtype()) : "", shape_of(input)));
  if (time_dim < -3 || time_dim > 2)
    throw Error(fmt::format("{}: time_dim {} is out of range for a 3-D input", op, time_dim));
  TimeLayout l;
  l.time_dim = time_dim < 0 ? time_dim + 3 : time_dim;
  l.batch_dim = l.time_dim == 0 ? 1 : 0;
  if (!lengths.given()) return l;
  const std::int64_t B = input.size(l.batch_dim), T = input.size(l.time_dim);
  lengths.check(op, B, T);
  const Tensor pad = lengths.padding_mask(T);  // (B, T)
  l.pad = l.time_dim == 2 ? unsqueeze(pad, 1) : l.time_dim == 1 ? unsqueeze(pad, 2) : unsqueeze(pad.t(), 2);
  l.empty = unsqueeze(eq(lengths.tensor(), 0.0), 1);
  return l;
}

// With lengths, under a tracer: one composite scope over (input, lengths), so that the mask is
// exported computed from the lengths (not a constant of the traced batch).
void open_global_scope(std::optional<trace::Composite>& scope, const char* mode, const Tensor& input,
                       const Lengths& lengths, std::int64_t time_dim) {
  if (!lengths.given() || !trace::active()) return;
  const Tensor given = lengths.source().defined() ? lengths.source() : lengths.tensor();  // the model input, if any
  scope.emplace("global_pool1d", std::vector<Tensor>{input, given},
                trace::Attributes{{"mode", std::string(mode)},
                                  {"time_dim", time_dim},
                                  {"padding", std::string(lengths.padding() == Side::pre ? "pre" : "post")}});
}

}  // namespace

Tensor global_max_pool1d(const Tensor& input, const Lengths& lengths, std::int64_t time_dim) {
  std::optional<trace::Composite> scope;
  open_global_scope(scope, "max", input, lengths, time_dim);
  const TimeLayout l = time_layout(input, lengths, time_dim, "global_max_pool1d");
  if (!l.pad.defined()) return max(input, l.time_dim).first;
  // Padded steps become −∞ (whatever they held, NaN included), so they are never the maximum
  // and receive no gradient; an empty sequence's −∞ is replaced by 0.
  const Tensor masked = masked_fill(input, l.pad, -std::numeric_limits<double>::infinity());
  return finish(scope, masked_fill(max(masked, l.time_dim).first, l.empty, 0.0));  // (B, C)
}

Tensor global_avg_pool1d(const Tensor& input, const Lengths& lengths, std::int64_t time_dim) {
  std::optional<trace::Composite> scope;
  open_global_scope(scope, "avg", input, lengths, time_dim);
  const TimeLayout l = time_layout(input, lengths, time_dim, "global_avg_pool1d");
  if (!l.pad.defined()) return mean(input, {l.time_dim});
  // masked_fill selects (never multiplies), so NaN or Inf at padded steps reach neither the sum
  // nor, in backward, the gradient of a valid step.
  const Tensor total = sum(masked_fill(input, l.pad, 0.0), {l.time_dim});  // (B, C)
  const Tensor count = clamp(lengths.tensor().to(input.dtype()), 1.0, INFINITY);  // length 0 → 0 / 1
  return finish(scope, total / unsqueeze(count, 1));
}

}  // namespace xgrad::nn

// Conv1d and the 1-D poolings, composed from primitives: padding is a cat with constant
// blocks, the windows an as_strided view of the padded input, a convolution one batched GEMM.
#include <xgrad/nn/conv.hpp>

#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/trace.hpp>
#include <xgrad/nn/init.hpp>

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
  else if (mode == "valid") valid_ = true;
  else throw Error("Conv1d: padding must be a number, \"valid\" or \"same\", got \"" + mode + "\"");
}

std::string ConvPadding::str() const { return same_ ? "same" : valid_ ? "valid" : std::to_string(amount_); }

namespace {

std::string shape_of(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); }

// x (N, C, L) with `left` and `right` steps of `value` added along the last dimension, contiguous.
Tensor pad_steps(const Tensor& x, std::int64_t left, std::int64_t right, double value) {
  if (left == 0 && right == 0) return x.contiguous();
  std::vector<Tensor> parts;
  if (left > 0) parts.push_back(full({x.size(0), x.size(1), left}, value, x.dtype()));
  parts.push_back(x);
  if (right > 0) parts.push_back(full({x.size(0), x.size(1), right}, value, x.dtype()));
  return cat(parts, 2);
}

// The windows of a contiguous padded (N, C, Lp) as a (N, C, L_out, K) view: window t, tap k
// reads step t·stride + k·dilation. No copy; its gradient scatters back into xp.
Tensor windows(const Tensor& xp, std::int64_t kernel, std::int64_t stride, std::int64_t dilation, std::int64_t steps_out) {
  const std::int64_t C = xp.size(1), Lp = xp.size(2);
  return as_strided(xp, {xp.size(0), C, steps_out, kernel}, {C * Lp, Lp, stride, dilation}, xp.storage_offset());
}

// Accepts (N, C, L) or (C, L); returns the batched form and whether it was unbatched.
std::pair<Tensor, bool> batched(const Tensor& input, const char* op) {
  if (!input.defined() || (input.dim() != 2 && input.dim() != 3) || !is_floating(input.dtype()))
    throw Error(fmt::format("{}: expected a floating-point input (N, C, L) or (C, L), got {} {}", op,
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

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::int64_t stride,
              const ConvPadding& padding, std::int64_t dilation, std::int64_t groups) {
  auto [x, unbatched] = batched(input, "conv1d");
  require_positive(stride, "conv1d", "stride");
  require_positive(dilation, "conv1d", "dilation");
  require_positive(groups, "conv1d", "groups");
  if (!weight.defined() || weight.dim() != 3 || weight.dtype() != x.dtype())
    throw Error(fmt::format("conv1d: weight must be a {} tensor (C_out, C_in / groups, K), got {}",
                            dtype_name(x.dtype()), shape_of(weight)));
  const std::int64_t N = x.size(0), C = x.size(1), L = x.size(2);
  const std::int64_t O = weight.size(0), Cg = weight.size(1), K = weight.size(2);
  if (K < 1 || Cg * groups != C || O % groups != 0)
    throw Error(fmt::format("conv1d: input {} with weight {} and groups={}: the weight needs C_in / groups = {} "
                            "input channels per filter, C_out divisible by groups and a kernel of at least 1",
                            shape_of(input), shape_of(weight), groups, C / groups));
  if (bias.defined() && (bias.shape() != Shape{O} || bias.dtype() != x.dtype()))
    throw Error(fmt::format("conv1d: bias must be ({}) for weight {}, got {}", O, shape_of(weight), shape_of(bias)));
  std::int64_t left = padding.amount(), right = padding.amount();
  if (padding.same()) {
    if (stride != 1) throw Error(fmt::format("conv1d: padding \"same\" needs stride 1, got stride {}", stride));
    const std::int64_t total = dilation * (K - 1);
    left = total / 2;  // the odd step goes to the right, as PyTorch
    right = total - left;
  }
  const std::int64_t span = dilation * (K - 1) + 1, Lp = L + left + right;
  if (Lp < span)
    throw Error(fmt::format("conv1d: the padded input has {} steps, fewer than the kernel's span {} (kernel {}, "
                            "dilation {}); input {}", Lp, span, K, dilation, shape_of(input)));
  const std::int64_t L_out = (Lp - span) / stride + 1, G = groups;

  std::optional<trace::Composite> scope;
  open_scope(scope, "conv1d", {input, weight, bias},
                         {{"stride", stride}, {"pad_left", left}, {"pad_right", right}, {"dilation", dilation},
                          {"groups", groups}, {"kernel_size", K}});
  const Tensor xp = pad_steps(x, left, right, 0.0);  // (N, C, Lp)
  // (N, G, Cg, K, L_out) windows, copied once into the (N, G, Cg·K, L_out) column matrix.
  const Tensor win = as_strided(xp, {N, G, Cg, K, L_out}, {C * Lp, Cg * Lp, Lp, dilation, stride}, xp.storage_offset());
  const Tensor cols = reshape(win, {N, G, Cg * K, L_out});
  // (G, O/G, Cg·K) × (N, G, Cg·K, L_out) → (N, G, O/G, L_out): one batched GEMM.
  Tensor y = reshape(matmul(reshape(weight, {G, O / G, Cg * K}), cols), {N, O, L_out});
  if (bias.defined()) y = y + reshape(bias, {O, 1});
  return finish(scope, unbatched ? squeeze(y, 0) : y);
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
  return conv1d(input, weight, bias, o.stride(), o.padding(), o.dilation(), o.groups());
}

std::string Conv1d::extra_repr() const {
  const auto& o = options_;
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", o.in_channels(), o.out_channels(), o.kernel_size(),
                              o.stride());
  if (o.padding().same() || o.padding().amount() != 0) s += ", padding=" + o.padding().str();
  if (o.dilation() != 1) s += fmt::format(", dilation={}", o.dilation());
  if (o.groups() != 1) s += fmt::format(", groups={}", o.groups());
  if (!o.bias()) s += ", bias=false";
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
                     o.padding());
}

}  // namespace

Tensor max_pool1d(const Tensor& input, const Pool1dOptions& options) {
  auto [x, unbatched] = batched(input, "max_pool1d");
  const auto [stride, L_out] = pool_geometry(options, x.size(2), "max_pool1d");
  std::optional<trace::Composite> scope;
  open_scope(scope, "max_pool1d", {input},
                         {{"kernel_size", options.kernel_size()}, {"stride", stride}, {"padding", options.padding()}});
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor xp = pad_steps(x, options.padding(), options.padding(), -inf);  // never the maximum
  Tensor y = max(windows(xp, options.kernel_size(), stride, 1, L_out), -1).first;  // (N, C, L_out)
  return finish(scope, unbatched ? squeeze(y, 0) : y);
}

Tensor avg_pool1d(const Tensor& input, const Pool1dOptions& options) {
  auto [x, unbatched] = batched(input, "avg_pool1d");
  const auto [stride, L_out] = pool_geometry(options, x.size(2), "avg_pool1d");
  const std::int64_t K = options.kernel_size(), pad = options.padding();
  std::optional<trace::Composite> scope;
  open_scope(scope, "avg_pool1d", {input},
                         {{"kernel_size", K}, {"stride", stride}, {"padding", pad},
                          {"count_include_pad", std::int64_t{options.count_include_pad()}}});
  const Tensor xp = pad_steps(x, pad, pad, 0.0);
  Tensor y = sum(windows(xp, K, stride, 1, L_out), {-1});  // (N, C, L_out)
  if (options.count_include_pad() || pad == 0) {
    y = y / static_cast<double>(K);
  } else {
    // Real steps per window: the same windows over ones padded with zeros.
    std::vector<double> count(static_cast<std::size_t>(L_out));
    for (std::int64_t t = 0; t < L_out; ++t) {
      const std::int64_t lo = std::max<std::int64_t>(t * stride, pad), hi = std::min(t * stride + K, pad + x.size(2));
      count[static_cast<std::size_t>(t)] = static_cast<double>(hi - lo);
    }
    y = y / from_vector(count, {L_out}).to(x.dtype());
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

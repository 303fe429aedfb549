#pragma once
/// \file
/// 1-D convolution and pooling over time: Conv1d, MaxPool1d, AvgPool1d and global
/// max / average pooling that reads only the valid steps of a padded batch.
///
/// Layout: PyTorch's channels first by default, input (N, C, L) — N sequences, C channels, L
/// steps — or unbatched (C, L). With `channels_last(true)` the layers read and write Keras's
/// (N, L, C) (unbatched (L, C)) directly, with no transposes; the weights stay PyTorch's
/// (C_out, C_in / groups, K) either way, so state dicts are the same.
///
/// The poolings are composed from primitives (the windows of the input are an `as_strided`
/// view). Conv1d is one recorded op: GEMMs over the im2col matrix of a block of sequences at a
/// time, rebuilt in backward instead of kept, so training stores only the input and weight.
#include <concepts>
#include <cstdint>
#include <string>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/lengths.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// The padding of a convolution: a number of zeros on each side, or "valid" (none), "same"
/// (output as long as the input; stride 1 only, as PyTorch) or "causal" (Keras's: dilation·(K − 1)
/// zeros on the left only, so output step t reads input steps ≤ t·stride; as long as the input
/// for stride 1, ⌈L / stride⌉ steps otherwise). Converts from a number or a string.
/// Example: `nn::Conv1dOptions(4, 8, 3).padding("same")`,  `.padding(1)`,  `.padding("causal")`
class ConvPadding {
 public:
  /// No padding.
  ConvPadding() = default;
  /// `amount` zeros before and after each sequence (≥ 0). Any integer type (a literal `0`
  /// would otherwise also match `const char*`).
  template <std::integral I>
  ConvPadding(I amount) : ConvPadding(from_amount(static_cast<std::int64_t>(amount))) {}  // NOLINT: implicit, `.padding(1)`
  /// "valid" (no padding), "same" or "causal"; anything else throws.
  ConvPadding(const char* mode);  // NOLINT: implicit, `.padding("same")` reads naturally
  /// Same as the `const char*` form.
  ConvPadding(const std::string& mode);  // NOLINT: implicit
  /// True for "same".
  bool same() const { return same_; }
  /// True for "causal".
  bool causal() const { return causal_; }
  /// The explicit amount per side (0 for "valid"; unused for "same" and "causal").
  std::int64_t amount() const { return amount_; }
  /// "same", "causal", "valid" or the number, as PyTorch prints it.
  std::string str() const;

 private:
  static ConvPadding from_amount(std::int64_t amount);
  std::int64_t amount_ = 0;
  bool same_ = false;
  bool causal_ = false;
  bool valid_ = false;
};

/// What Conv1d's padding steps hold (PyTorch's `padding_mode`): zeros, the input mirrored
/// without repeating the edge step (`reflect`: x₁ x₂ | x₀ … — at most L − 1 steps per side), the
/// edge step repeated (`replicate`), or the other end of the sequence (`circular`: at most L steps
/// per side). Example: `nn::Conv1dOptions(4, 8, 3).padding(1).padding_mode(nn::PaddingMode::circular)`
enum class PaddingMode { zeros, reflect, replicate, circular };

/// Options of Conv1d (PyTorch's names and defaults).
/// Example: `nn::Conv1d conv(nn::Conv1dOptions(16, 32, 5).stride(2).padding(2));`
struct Conv1dOptions {
  /// Channels in, channels out and the kernel width (all ≥ 1).
  Conv1dOptions(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  /// Channels of the input.
  XGRAD_ARG(std::int64_t, in_channels);
  /// Channels of the output (filters).
  XGRAD_ARG(std::int64_t, out_channels);
  /// Width of each filter, in steps.
  XGRAD_ARG(std::int64_t, kernel_size);
  /// Steps between consecutive windows (default 1).
  XGRAD_ARG(std::int64_t, stride) = 1;
  /// Steps added: a number (both sides), "valid" (0, the default), "same" or "causal".
  XGRAD_ARG(ConvPadding, padding);
  /// What the added steps hold (default zeros; PyTorch's `padding_mode`).
  XGRAD_ARG(PaddingMode, padding_mode) = PaddingMode::zeros;
  /// Spacing between the taps of a filter (default 1).
  XGRAD_ARG(std::int64_t, dilation) = 1;
  /// Channel groups: in and out channels are split into `groups` independent convolutions
  /// (both must be divisible by it; `groups == in_channels` is a depthwise convolution).
  XGRAD_ARG(std::int64_t, groups) = 1;
  /// Learn an additive bias per output channel (default true).
  XGRAD_ARG(bool, bias) = true;
  /// Read (N, L, C_in) and write (N, L_out, C_out) — Keras's `Conv1D` layout — instead of
  /// PyTorch's (N, C, L) (default false). The weight keeps its (C_out, C_in / groups, K) shape.
  XGRAD_ARG(bool, channels_last) = false;
};

/// 1-D convolution (cross-correlation, as PyTorch): out[n, o, t] = bias[o] +
/// Σ_{c in o's group, k} weight[o, c, k] · x_padded[n, c, t·stride + k·dilation].
/// Shapes: (N, C_in, L) → (N, C_out, L_out), L_out = ⌊(L + pad_left + pad_right − dilation·(K − 1) − 1) / stride⌋ + 1;
/// unbatched (C_in, L) → (C_out, L_out); with `channels_last`, (N, L, C_in) → (N, L_out, C_out)
/// and (L, C_in) → (L_out, C_out).
///
/// Parameters (PyTorch's names, shapes and default init, so state dicts load):
/// - `weight` (C_out, C_in / groups, K): kaiming_uniform_(a = √5), i.e. U(±1/√(C_in / groups · K));
/// - `bias` (C_out): U(±1/√(C_in / groups · K)); absent without `bias`.
///
/// Example:
///
///     nn::Conv1d conv(nn::Conv1dOptions(8, 16, 3).padding("same"));
///     Tensor y = conv(randn({4, 8, 50}));   // (4, 16, 50)
///     nn::Conv1d keras(nn::Conv1dOptions(8, 16, 3).padding("causal").channels_last(true));
///     Tensor z = keras(randn({4, 50, 8}));  // (4, 50, 16)
class Conv1d : public UnaryModule {
 public:
  /// Builds the layer with PyTorch's default initialisation; throws on invalid options.
  explicit Conv1d(const Conv1dOptions& options);
  /// x (N, C_in, L) or (C_in, L) → (N, C_out, L_out) or (C_out, L_out); channels last,
  /// (N, L, C_in) or (L, C_in) → (N, L_out, C_out) or (L_out, C_out).
  Tensor forward(const Tensor& input) override;
  /// Draws the parameters again with PyTorch's default initialisation.
  void reset_parameters();
  /// The configuration as repr() prints it.
  std::string extra_repr() const override;
  /// The options the layer was built with.
  const Conv1dOptions& options() const { return options_; }

  Tensor weight;  ///< (C_out, C_in / groups, K)
  Tensor bias;    ///< (C_out), undefined without bias

 private:
  Conv1dOptions options_;
};

/// The functional form of Conv1d: x (N, C_in, L) or (C_in, L) — (N, L, C_in) or (L, C_in) with
/// `channels_last` — weight (C_out, C_in / groups, K), bias (C_out) or undefined. The padding
/// steps are zeros (`padding_mode` is the module's option, as in PyTorch's `F.conv1d`).
/// Example: `Tensor y = nn::conv1d(x, w, b, 1, "same");`
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), std::int64_t stride = 1,
              const ConvPadding& padding = {}, std::int64_t dilation = 1, std::int64_t groups = 1,
              bool channels_last = false);

/// Options of MaxPool1d and AvgPool1d (PyTorch's): `stride` 0 means "= kernel_size".
/// Example: `nn::MaxPool1d pool(nn::Pool1dOptions(3).stride(2).padding(1));`
struct Pool1dOptions {
  /// The window width (≥ 1).
  Pool1dOptions(std::int64_t kernel_size) : kernel_size_(kernel_size) {}  // NOLINT: implicit, `MaxPool1d pool(2)`
  /// Width of each window, in steps.
  XGRAD_ARG(std::int64_t, kernel_size);
  /// Steps between windows; 0 (the default) means kernel_size, as PyTorch's `stride=None`.
  XGRAD_ARG(std::int64_t, stride) = 0;
  /// Implicit padding on both sides (at most kernel_size / 2): −∞ for max, 0 for average.
  XGRAD_ARG(std::int64_t, padding) = 0;
  /// Average pooling only: count the padded zeros in the divisor (default true, as PyTorch);
  /// false divides by the number of real steps in each window.
  XGRAD_ARG(bool, count_include_pad) = true;
  /// Read and write (N, L, C) — Keras's `MaxPooling1D` / `AveragePooling1D` layout — instead
  /// of (N, C, L) (default false).
  XGRAD_ARG(bool, channels_last) = false;
};

/// Max over sliding windows of each channel: (N, C, L) → (N, C, L_out) or (C, L) → (C, L_out),
/// L_out = ⌊(L + 2·padding − kernel_size) / stride⌋ + 1; with `channels_last`, (N, L, C) →
/// (N, L_out, C) or (L, C) → (L_out, C). The gradient goes to the first maximum of each window. Example: `nn::MaxPool1d pool(2);  Tensor y = pool(randn({4, 8, 50}));  // (4, 8, 25)`
class MaxPool1d : public UnaryModule {
 public:
  /// Checks the options (kernel ≥ 1, padding ≤ kernel / 2) and keeps them.
  explicit MaxPool1d(const Pool1dOptions& options);
  /// x (N, C, L) or (C, L) → (N, C, L_out) or (C, L_out); channels last, (N, L, C) or (L, C)
  /// → (N, L_out, C) or (L_out, C).
  Tensor forward(const Tensor& input) override;
  /// The configuration as repr() prints it.
  std::string extra_repr() const override;
  /// The options the layer was built with.
  const Pool1dOptions& options() const { return options_; }

 private:
  Pool1dOptions options_;
};

/// Mean over sliding windows of each channel, shaped as MaxPool1d.
/// Example: `nn::AvgPool1d pool(nn::Pool1dOptions(3).stride(1).padding(1));  // keeps L`
class AvgPool1d : public UnaryModule {
 public:
  /// Checks the options (kernel ≥ 1, padding ≤ kernel / 2) and keeps them.
  explicit AvgPool1d(const Pool1dOptions& options);
  /// x (N, C, L) or (C, L) → (N, C, L_out) or (C, L_out); channels last, (N, L, C) or (L, C)
  /// → (N, L_out, C) or (L_out, C).
  Tensor forward(const Tensor& input) override;
  /// The configuration as repr() prints it.
  std::string extra_repr() const override;
  /// The options the layer was built with.
  const Pool1dOptions& options() const { return options_; }

 private:
  Pool1dOptions options_;
};

/// The functional form of MaxPool1d. Example: `Tensor y = nn::max_pool1d(x, nn::Pool1dOptions(2));`
Tensor max_pool1d(const Tensor& input, const Pool1dOptions& options);
/// The functional form of AvgPool1d. Example: `Tensor y = nn::avg_pool1d(x, nn::Pool1dOptions(2));`
Tensor avg_pool1d(const Tensor& input, const Pool1dOptions& options);

/// The largest value of each channel over the valid steps of each sequence. `time_dim` is the
/// step dimension: −1 (the default) for Conv1d's (N, C, L), 1 for a batch-first (N, L, C)
/// batch as Keras's `GlobalMaxPooling1D` reads, 0 for a (L, N, C) recurrent output. Padded steps
/// (given by `lengths` and their side) are never read, whatever they hold (NaN, Inf); a
/// sequence of length 0 gives zeros. The time dimension is removed: (N, C).
/// Example: `Tensor pooled = nn::global_max_pool1d(conv(x), lengths);   // (N, C_out)`
Tensor global_max_pool1d(const Tensor& input, const Lengths& lengths = {}, std::int64_t time_dim = -1);
/// The mean of each channel over the valid steps of each sequence, as global_max_pool1d
/// (length 0 gives zeros). Example: `Tensor pooled = nn::global_avg_pool1d(out, lengths, 1);`
Tensor global_avg_pool1d(const Tensor& input, const Lengths& lengths = {}, std::int64_t time_dim = -1);

/// global_max_pool1d as a module, with the step dimension fixed at construction.
/// Example: `nn::GlobalMaxPool1d pool;  Tensor y = pool(x, lengths);   // (N, C, L) → (N, C)`
class GlobalMaxPool1d : public Module {
 public:
  /// `time_dim`: −1 for (N, C, L), 1 for batch-first (N, L, C), 0 for (L, N, C).
  explicit GlobalMaxPool1d(std::int64_t time_dim = -1) : time_dim_(time_dim) {}
  /// x with steps along time_dim → that dimension removed; only valid steps are read.
  Tensor forward(const Tensor& input, const Lengths& lengths = {}) const {
    return global_max_pool1d(input, lengths, time_dim_);
  }
  /// Calls forward.
  Tensor operator()(const Tensor& input, const Lengths& lengths = {}) const { return forward(input, lengths); }
  /// The configuration as repr() prints it.
  std::string extra_repr() const override { return "time_dim=" + std::to_string(time_dim_); }

 private:
  std::int64_t time_dim_;
};

/// global_avg_pool1d as a module, with the step dimension fixed at construction.
/// Example: `nn::GlobalAvgPool1d pool(1);  Tensor y = pool(out, lengths);   // (N, L, C) → (N, C)`
class GlobalAvgPool1d : public Module {
 public:
  /// `time_dim`: −1 for (N, C, L), 1 for batch-first (N, L, C), 0 for (L, N, C).
  explicit GlobalAvgPool1d(std::int64_t time_dim = -1) : time_dim_(time_dim) {}
  /// x with steps along time_dim → that dimension removed; only valid steps are read.
  Tensor forward(const Tensor& input, const Lengths& lengths = {}) const {
    return global_avg_pool1d(input, lengths, time_dim_);
  }
  /// Calls forward.
  Tensor operator()(const Tensor& input, const Lengths& lengths = {}) const { return forward(input, lengths); }
  /// The configuration as repr() prints it.
  std::string extra_repr() const override { return "time_dim=" + std::to_string(time_dim_); }

 private:
  std::int64_t time_dim_;
};

}  // namespace xgrad::nn

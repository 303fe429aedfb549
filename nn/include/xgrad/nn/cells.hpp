#pragma once
/// \file
/// Recurrent cells: one time step of a recurrent network, composed from core's
/// primitives (matmul, add, sigmoid, tanh, mul, chunk). Backpropagation through time comes
/// from the engine; no cell has backward code.
///
/// A cell splits its step in two so that a sequence driver (`nn::Recurrent`, and the RNN,
/// LSTM and GRU built on it) can run it fast:
/// - `project_input(x)`: the part that does not depend on the state, computed for every
///   time step at once with one matmul before the time loop;
/// - `step(xp, state)`: the rest, run once per time step.
/// Derive from `RecurrentCell` to write your own (see docs/custom_layer.md).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/state.hpp>

namespace xgrad::nn {

/// One time step prepared for a whole sequence: (projected input (B, G), state) → next state.
using StepFn = std::function<CellState(const Tensor& xp, const CellState& state)>;

/// Base class of recurrent cells. A cell is a Module (its parameters are registered by
/// name) with a two-part step:
///
///     gates_x = project_input(x)             // (..., input_size) → (..., G), all steps at once
///     state   = step(gates_x[t], state)      // (B, G) and the state → the next state
///
/// Any cell runs in `nn::Recurrent`, which provides layers, directions, variable lengths,
/// batch_first and dropout between layers.
///
/// As `Module::forward` (and PyTorch's), a cell's computing functions are non-const, so a
/// step can call child modules registered with `register_module`, e.g. a member
/// `nn::LayerNorm` in a layer-norm LSTM (docs/custom_layer.md, section 6).
///
/// Example (an Elman cell, h' = tanh(x W_ihᵀ + h W_hhᵀ)):
///
///     struct Elman : nn::RecurrentCell {
///       Tensor w_ih, w_hh;
///       Elman(std::int64_t in, std::int64_t hidden) : RecurrentCell(in, {hidden}) {
///         w_ih = register_parameter("weight_ih", randn({hidden, in}) * 0.3);
///         w_hh = register_parameter("weight_hh", randn({hidden, hidden}) * 0.3);
///       }
///       Tensor project_input(const Tensor& x) override { return matmul(x, w_ih.t()); }
///       nn::CellState step(const Tensor& xp, const nn::CellState& s) override {
///         return {tanh(xp + matmul(s[0], w_hh.t()))};
///       }
///     };
class RecurrentCell : public Module {
 public:
  /// `state_sizes[k]` is the width of state entry k; `state_sizes[0]` is the output width.
  RecurrentCell(std::int64_t input_size, std::vector<std::int64_t> state_sizes);

  /// Features of the input x.
  std::int64_t input_size() const { return input_size_; }
  /// Width of each state entry; the first is h, the output at each step.
  const std::vector<std::int64_t>& state_sizes() const { return state_sizes_; }
  /// Width of the output at each step (= state_sizes()[0]).
  std::int64_t output_size() const { return state_sizes_[0]; }

  /// The state-independent part of a step, for any number of leading dimensions:
  /// (..., input_size) → (..., G). The driver calls it once on the whole (T, B, input_size)
  /// sequence, which matmul folds into a single GEMM.
  virtual Tensor project_input(const Tensor& x) = 0;

  /// One time step: the projected input of this step (B, G) and the state (entries
  /// (B, state_sizes()[k])) → the next state.
  virtual CellState step(const Tensor& xp, const CellState& state) = 0;
  /// One time step with recurrent dropout (Keras's `recurrent_dropout`): the same as
  /// `step(xp, state)`, except that the recurrent matmul reads `state[0] * recurrent_mask`
  /// (the mask (B, output_size) is fixed for a whole sequence); the state carried to the
  /// next step is not dropped. The built-in cells implement it; the default throws, naming
  /// the cell. Override it for a custom cell to run with `recurrent_dropout`.
  virtual CellState step(const Tensor& xp, const CellState& state, const Tensor& recurrent_mask);

  /// The step the driver calls at every time step of one sequence. The default calls
  /// `step`. Override it to do per-sequence work once instead of once per step (a cell that
  /// multiplies by a transformed weight can transform it here, once per sequence).
  virtual StepFn sequence_step();

  /// Zeros of the right shapes for a batch of `batch` sequences: entry k is
  /// (batch, state_sizes()[k]).
  CellState zero_state(std::int64_t batch, DType dtype = DType::f32) const;

  /// One step on an unprojected input: `step(project_input(x), state)`, with undefined
  /// state entries (or an empty state) taken as zeros. x is (B, input_size).
  /// Example: `nn::CellState s = cell.step_input(x_t, s);`
  CellState step_input(const Tensor& x, const CellState& state = {});

 private:
  std::int64_t input_size_;
  std::vector<std::int64_t> state_sizes_;
};

// --- RNNCell -----------------------------------------------------------------------------------

/// The nonlinearity of an Elman RNN (PyTorch's `nonlinearity="tanh"` / `"relu"`).
enum class RNNNonlinearity { tanh, relu };

/// The options the three built-in cells share: sizes and bias. `RNNCellOptions`,
/// `LSTMCellOptions` and `GRUCellOptions` derive from it; setters chain.
template <class Derived>
class CellOptionsBase {
 public:
  /// Setters return the derived options (`nn::GRUCellOptions&`), so chains mix base and derived.
  using options_type = Derived;
  /// Options of a cell reading `input_size` features with a hidden state of `hidden_size`.
  CellOptionsBase(std::int64_t input_size, std::int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  /// Features of the input.
  XGRAD_ARG(std::int64_t, input_size);
  /// Features of the hidden state.
  XGRAD_ARG(std::int64_t, hidden_size);
  /// Adds bias_ih and bias_hh (default true; a GRU with reset_after false has bias_ih only).
  XGRAD_ARG(bool, bias) = true;
};

/// Options of RNNCell. Example: `nn::RNNCellOptions(4, 8).nonlinearity(nn::RNNNonlinearity::relu)`
class RNNCellOptions : public CellOptionsBase<RNNCellOptions> {
 public:
  /// Options of an RNNCell from `input_size` features to `hidden_size`.
  using CellOptionsBase::CellOptionsBase;
  /// tanh (default) or relu.
  XGRAD_ARG(RNNNonlinearity, nonlinearity) = RNNNonlinearity::tanh;
};

/// An Elman RNN cell, as torch.nn.RNNCell: h' = act(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh).
/// Parameters: weight_ih (H, I), weight_hh (H, H), bias_ih (H), bias_hh (H), all drawn from
/// U(−1/√H, 1/√H). x is (B, I), h is (B, H).
/// Example:
///
///     nn::RNNCell cell(4, 8);
///     Tensor h = cell(x0);      // zero initial state
///     h = cell(x1, h);
class RNNCell : public RecurrentCell {
 public:
  /// A cell as `options` describe, its parameters drawn from U(−1/√H, 1/√H).
  explicit RNNCell(const RNNCellOptions& options);
  /// tanh, with biases.
  RNNCell(std::int64_t input_size, std::int64_t hidden_size) : RNNCell(RNNCellOptions(input_size, hidden_size)) {}

  /// One step: the next hidden state (B, H). An undefined h means zeros.
  Tensor forward(const Tensor& x, const Tensor& h = {});
  /// The same as `forward`. Example: `h = cell(x_t, h);`
  Tensor operator()(const Tensor& x, const Tensor& h = {}) { return forward(x, h); }

  Tensor project_input(const Tensor& x) override;
  CellState step(const Tensor& xp, const CellState& state) override;
  CellState step(const Tensor& xp, const CellState& state, const Tensor& recurrent_mask) override;
  /// "RNNCell(4, 8)", plus bias / nonlinearity when not the defaults.
  std::string extra_repr() const override;
  /// The options it was built with.
  const RNNCellOptions& options() const { return options_; }

  /// The parameters, shared with the registry (bias_* undefined without bias). Change their
  /// values in place; assigning a new tensor unlinks them from named_parameters().
  ///@{
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
  ///@}

 private:
  RNNCellOptions options_;
};

// --- LSTMCell ----------------------------------------------------------------------------------

/// Options of LSTMCell. Example: `nn::LSTMCellOptions(4, 8).proj_size(3)`
class LSTMCellOptions : public CellOptionsBase<LSTMCellOptions> {
 public:
  /// Options of an LSTMCell from `input_size` features to `hidden_size`.
  using CellOptionsBase::CellOptionsBase;
  /// When > 0, h is projected to this size by weight_hr (as torch.nn.LSTM's proj_size).
  XGRAD_ARG(std::int64_t, proj_size) = 0;
};

/// A long short-term memory cell, as torch.nn.LSTMCell, gates in PyTorch's order i, f, g, o:
///
///     i, f, g, o = chunk(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh, 4)
///     c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
///     h' = σ(o) ⊙ tanh(c')            (then h' W_hrᵀ when proj_size > 0)
///
/// Parameters: weight_ih (4H, I), weight_hh (4H, R), bias_ih (4H), bias_hh (4H) and, with a
/// projection, weight_hr (P, H), where R = P if proj_size > 0 else H; all drawn from
/// U(−1/√H, 1/√H). The state entries are h (B, R) and c (B, H).
/// Example:
///
///     nn::LSTMCell cell(4, 8);
///     nn::RecurrentState s = cell(x0);     // zero initial state
///     s = cell(x1, s);                     // s.h(), s.c(): (B, 8)
class LSTMCell : public RecurrentCell {
 public:
  /// A cell as `options` describe, its parameters drawn from U(−1/√H, 1/√H).
  explicit LSTMCell(const LSTMCellOptions& options);
  /// No projection, with biases.
  LSTMCell(std::int64_t input_size, std::int64_t hidden_size) : LSTMCell(LSTMCellOptions(input_size, hidden_size)) {}

  /// One step: the next state {h, c}. An empty state or undefined entries mean zeros.
  RecurrentState forward(const Tensor& x, const RecurrentState& state = {});
  /// The same as `forward`. Example: `s = cell(x_t, s);`
  RecurrentState operator()(const Tensor& x, const RecurrentState& state = {}) { return forward(x, state); }

  Tensor project_input(const Tensor& x) override;
  CellState step(const Tensor& xp, const CellState& state) override;
  CellState step(const Tensor& xp, const CellState& state, const Tensor& recurrent_mask) override;
  /// "LSTMCell(4, 8)", plus bias / proj_size when not the defaults.
  std::string extra_repr() const override;
  /// The options it was built with.
  const LSTMCellOptions& options() const { return options_; }

  /// The parameters, shared with the registry (bias_* undefined without bias, weight_hr
  /// without a projection). Change their values in place.
  ///@{
  Tensor weight_ih, weight_hh, bias_ih, bias_hh, weight_hr;
  ///@}

 private:
  LSTMCellOptions options_;
};

// --- GRUCell -----------------------------------------------------------------------------------

/// Options of GRUCell. Example: `nn::GRUCellOptions(4, 8).reset_after(false)`
class GRUCellOptions : public CellOptionsBase<GRUCellOptions> {
 public:
  /// Options of a GRUCell from `input_size` features to `hidden_size`.
  using CellOptionsBase::CellOptionsBase;
  /// Where the reset gate acts. true (default): on the recurrent term after its matmul, bias
  /// included — PyTorch's GRU, and Keras's `reset_after=True`. false: on h before the matmul,
  /// with one bias vector — Keras's `reset_after=False` (the original GRU of Cho et al.).
  XGRAD_ARG(bool, reset_after) = true;
};

/// A gated recurrent unit cell, as torch.nn.GRUCell, gates in PyTorch's order r, z, n; the
/// reset gate multiplies the whole recurrent term of n, bias included:
///
///     r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)
///     z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
///     n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))
///     h' = (1 − z) ⊙ n + z ⊙ h
///
/// With `reset_after(false)` (Keras's `reset_after=False`) the reset gate acts on h before
/// the matmul, and there is one bias, bias_ih:
///
///     n = tanh(x W_inᵀ + b_in + (r ⊙ h) W_hnᵀ)
///
/// Parameters: weight_ih (3H, I), weight_hh (3H, H), bias_ih (3H), bias_hh (3H; not with
/// reset_after false), all drawn from U(−1/√H, 1/√H).
/// Example:
///
///     nn::GRUCell cell(4, 8);
///     Tensor h = cell(x0);
///     h = cell(x1, h);
class GRUCell : public RecurrentCell {
 public:
  /// A cell as `options` describe, its parameters drawn from U(−1/√H, 1/√H).
  explicit GRUCell(const GRUCellOptions& options);
  /// PyTorch's reset_after, with biases.
  GRUCell(std::int64_t input_size, std::int64_t hidden_size) : GRUCell(GRUCellOptions(input_size, hidden_size)) {}

  /// One step: the next hidden state (B, H). An undefined h means zeros.
  Tensor forward(const Tensor& x, const Tensor& h = {});
  /// The same as `forward`. Example: `h = cell(x_t, h);`
  Tensor operator()(const Tensor& x, const Tensor& h = {}) { return forward(x, h); }

  Tensor project_input(const Tensor& x) override;
  CellState step(const Tensor& xp, const CellState& state) override;
  CellState step(const Tensor& xp, const CellState& state, const Tensor& recurrent_mask) override;
  /// What the driver calls at each step of a sequence: `step`'s computation, with the slices of
  /// weight_hh and bias_hh it reads cut once per sequence instead of once per step. It does not
  /// call the virtual `step`: a subclass that overrides `step` overrides this too, or returns
  /// `RecurrentCell::sequence_step()` (which calls `step`).
  StepFn sequence_step() override;
  /// "GRUCell(4, 8)", plus bias / reset_after when not the defaults.
  std::string extra_repr() const override;
  /// The options it was built with.
  const GRUCellOptions& options() const { return options_; }

  /// The parameters, shared with the registry (bias_* undefined without bias, bias_hh
  /// also with reset_after false). Change their values in place.
  ///@{
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
  ///@}

 private:
  // What a step reads of weight_hh and bias_hh: b_hn (reset_after, with bias), or the r, z
  // rows and the n rows of weight_hh (reset_after false).
  struct RecurrentParts {
    Tensor bias_hn, weight_rz, weight_n;
  };
  RecurrentParts recurrent_parts() const;
  GRUCellOptions options_;
};

}  // namespace xgrad::nn

#pragma once
/// \file
/// Recurrent sequence layers: one driver (`nn::Recurrent`) that runs any cell over
/// layers × directions × time steps, and PyTorch's RNN, LSTM and GRU built on it.
///
/// Shapes (PyTorch's): T time steps, B sequences, I input features, D = 2 if bidirectional
/// else 1, L layers, H the output width of a cell (hidden_size, or proj_size for an LSTM with
/// a projection).
/// - input (T, B, I), or (B, T, I) with batch_first, or unbatched (T, I)
/// - output (T, B, D·H), or (B, T, D·H) with batch_first, or (T, D·H) unbatched
/// - states (L·D, B, H) — never batch-first — or (L·D, H) unbatched
///
/// Truncated backpropagation through time: run a long sequence in chunks and carry the final
/// state into the next chunk detached, so each backward stops at the chunk boundary:
///
///     nn::RecurrentState state;                         // zeros for the first chunk
///     for (const Tensor& chunk : split(x, 50, 0)) {     // (50, B, I) pieces of (T, B, I)
///       auto [out, next] = lstm(chunk, state);
///       Tensor loss = ...;  loss.backward();  /* optimizer step */
///       state = next.detach();                          // values flow on, gradients stop
///     }
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/cells.hpp>
#include <xgrad/nn/lengths.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/state.hpp>

namespace xgrad::nn {

/// The output of each sequence at its last valid step: (B, F) from a (T, B, F) output, or a
/// (B, T, F) one with batch_first. Without lengths, or with pre-padded ones, the last step
/// (T − 1) of every sequence; with post-padded ones, step len_b − 1 of sequence b.
/// Use it to stack "lower layers return sequences, the top returns its last step"; the
/// gradient flows only into the picked steps. Not for a bidirectional output: at the last
/// step the reverse direction has read one input only. For a summary of each sequence by
/// every direction, use `Recurrent::final_hidden(state)`.
/// Example:
///
///     auto [out, state] = gru(x, {}, lengths);         // out (T, B, H)
///     Tensor logits = head(nn::last_step(out, lengths)); // (B, classes)
Tensor last_step(const Tensor& output, const Lengths& lengths = {}, bool batch_first = false);

/// The options every recurrent layer shares (the driver's knobs). `RNNOptions`,
/// `LSTMOptions`, `GRUOptions` and `RecurrentOptions` derive from it; setters chain.
template <class Derived>
class RecurrentOptionsBase {
 public:
  /// Setters return the derived options (`nn::LSTMOptions&`), so chains mix base and derived.
  using options_type = Derived;
  /// Options of layers reading `input_size` features with a hidden state of `hidden_size`.
  RecurrentOptionsBase(std::int64_t input_size, std::int64_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  /// Features of the input.
  XGRAD_ARG(std::int64_t, input_size);
  /// Features of the hidden state.
  XGRAD_ARG(std::int64_t, hidden_size);
  /// Stacked layers (default 1): layer l > 0 reads layer l − 1's output.
  XGRAD_ARG(std::int64_t, num_layers) = 1;
  /// Input and output are (B, T, F) instead of (T, B, F); states keep (L·D, B, H).
  XGRAD_ARG(bool, batch_first) = false;
  /// PyTorch's dropout: probability of zeroing the output of every layer but the last, in
  /// training mode only (so it needs num_layers > 1; with one layer it warns, as PyTorch).
  XGRAD_ARG(double, dropout) = 0.0;
  /// Keras's `dropout`: probability of zeroing each input feature of each layer, with one
  /// mask per sequence held for all its time steps (variational dropout, Gal & Ghahramani
  /// 2016). Training mode only.
  XGRAD_ARG(double, input_dropout) = 0.0;
  /// Keras's `recurrent_dropout`: probability of zeroing each feature of h where the
  /// recurrent matmul reads it, one mask per sequence held for all its time steps; the state
  /// carried on is not dropped. Training mode only; the cell must implement
  /// `step(xp, state, recurrent_mask)` (the built-in cells do).
  XGRAD_ARG(double, recurrent_dropout) = 0.0;
  /// Adds a reverse direction per layer; outputs are concatenated (forward first).
  XGRAD_ARG(bool, bidirectional) = false;
};

/// Options of the generic driver `nn::Recurrent`.
/// Example: `nn::RecurrentOptions(4, 8).num_layers(2).bidirectional(true)`
class RecurrentOptions : public RecurrentOptionsBase<RecurrentOptions> {
 public:
  /// Options of a driver reading `input_size` features with cells of width `hidden_size`.
  using RecurrentOptionsBase::RecurrentOptionsBase;
  /// The driver options of any layer's options (drops the cell-specific ones).
  template <class D>
  static RecurrentOptions from(const RecurrentOptionsBase<D>& o) {
    return RecurrentOptions(o.input_size(), o.hidden_size())
        .num_layers(o.num_layers())
        .batch_first(o.batch_first())
        .dropout(o.dropout())
        .input_dropout(o.input_dropout())
        .recurrent_dropout(o.recurrent_dropout())
        .bidirectional(o.bidirectional());
  }
};

/// Builds the cell of one layer and direction; `input_size` is that layer's input width
/// (the layer input for layer 0, D times the cell's output width above).
using CellFactory = std::function<std::shared_ptr<RecurrentCell>(std::int64_t input_size, std::int64_t hidden_size)>;

/// What every recurrent layer returns: the output at every step and the final state.
/// Example: `auto [out, state] = lstm(x);   // state.h(), state.c(): (L·D, B, H)`
struct RecurrentOutput {
  Tensor output;          ///< every step's output: (T, B, D·H), (B, T, D·H) with batch_first, or (T, D·H)
  RecurrentState state;   ///< the final state: entries (L·D, B, H), or (L·D, H) unbatched
};

/// The sequence driver: runs a cell over layers × directions × time steps.
///
/// - The input projection of all T steps is one matmul (the cell's `project_input`) before
///   the time loop; only the cell's `step` runs per step.
/// - Variable lengths, padded after or before (`Lengths::padding()`): a padded step leaves the
///   state unchanged and outputs zeros; the final state of each sequence is the one after its
///   last valid step; the reverse direction starts at each sequence's own last valid step.
/// - Dropout (training mode only): PyTorch's on the output of every layer but the last;
///   Keras's on each layer's input and on the state the recurrent matmul reads, one mask per
///   sequence for all time steps. Masks are drawn layer by layer, forward direction first,
///   the input mask before the recurrent one, then the mask between layers.
/// - Parameters are registered as PyTorch names them: each cell parameter `name` becomes
///   `name_l{layer}` and `name_l{layer}_reverse` (dots in nested names become '_').
///
/// Any RecurrentCell plugs in through a factory, and gets all of the above for free.
/// Example:
///
///     nn::Recurrent rnn(nn::RecurrentOptions(4, 8).num_layers(2).bidirectional(true),
///                       [](std::int64_t in, std::int64_t hidden) { return std::make_shared<MyCell>(in, hidden); });
///     auto [out, state] = rnn(x);   // out (T, B, 16), state[0] (4, B, 8)
class Recurrent : public Module {
 public:
  /// Builds the cells of every layer and direction with `make_cell` and registers their
  /// parameters under PyTorch's names; throws naming the option that is out of range.
  Recurrent(const RecurrentOptions& options, const CellFactory& make_cell);

  /// Moves the cells, options and name (an LSTM moved into a `Recurrent` stays an LSTM).
  ///@{
  Recurrent(Recurrent&&) = default;
  Recurrent& operator=(Recurrent&&) = default;
  ///@}

  /// Runs the sequence. `initial_state[k]` is (L·D, B, state_sizes()[k]); an empty state
  /// or undefined entries mean zeros. `lengths` gives each sequence's valid length
  /// (0 ≤ length ≤ T) and the side of its padding: post-padded sequences are read from step 0,
  /// pre-padded ones from step T − len_b; either way each sequence's outputs (at its own
  /// steps) and final state are those of the sequence run alone.
  RecurrentOutput forward(const Tensor& input, const RecurrentState& initial_state = {}, const Lengths& lengths = {});
  /// The same as `forward`. Example: `auto [out, state] = lstm(x, {}, lengths);`
  RecurrentOutput operator()(const Tensor& input, const RecurrentState& initial_state = {},
                             const Lengths& lengths = {}) {
    return forward(input, initial_state, lengths);
  }

  /// The driver's options (sizes, layers, directions, batch_first, dropout).
  const RecurrentOptions& recurrent_options() const { return options_; }
  /// Number of directions D (1 or 2).
  std::int64_t num_directions() const { return options_.bidirectional() ? 2 : 1; }
  /// The cell of `layer` and `direction` (0 forward, 1 reverse).
  RecurrentCell& cell(std::int64_t layer, std::int64_t direction = 0) const;
  /// The final hidden state of every direction of the top layer, side by side, forward
  /// first: h_n (L·D, B, H) → (B, D·H), or (L·D, H) → (D·H) unbatched. This is each
  /// sequence read whole by each direction — the forward one at the sequence's last valid
  /// step, the reverse one at its first — so it honours lengths (it reads the state, which
  /// stops at each sequence's end) and batch_first (states are never batch-first). PyTorch's
  /// `torch.cat([h_n[-2], h_n[-1]], dim=1)`, and Keras's `Bidirectional(..., return_sequences=False)`;
  /// for one direction, h_n[-1]. Throws when `state` is not this layer's final state.
  /// Example:
  ///
  ///     auto [out, state] = gru(x, {}, lengths);            // bidirectional, H = 8
  ///     Tensor logits = head(gru.final_hidden(state));     // (B, 16) → (B, classes)
  Tensor final_hidden(const RecurrentState& state) const;
  /// Every cell, layer by layer, forward before reverse.
  const std::vector<std::shared_ptr<RecurrentCell>>& cells() const { return cells_; }
  /// "Recurrent", or the layer it was built as ("LSTM", ...) — kept when an LSTM is moved
  /// into a `Recurrent` value, as is everything else (cells, options, repr).
  std::string type_name() const override { return name_.empty() ? Module::type_name() : name_; }
  /// E.g. "3, 8, num_layers=2, bidirectional=true, cell=MyCell", or PyTorch's for RNN, LSTM
  /// and GRU: "4, 8, num_layers=2".
  std::string extra_repr() const override;

 protected:
  /// For RNN, LSTM and GRU: the name and the cell-specific part of PyTorch's repr ("I, H",
  /// then `extra`, then the driver's options that differ from their defaults; `bias` false
  /// adds ", bias=false").
  void describe(std::string name, const std::string& extra, bool bias);

 private:
  struct Steps;  // one call's inputs, lengths and masks (recurrent.cpp)
  Steps prepare(const Tensor& input, const Lengths& lengths) const;
  std::vector<CellState> initial_states(const RecurrentState& initial_state, const Steps& steps) const;
  Tensor run_direction(RecurrentCell& cell, const Tensor& input, CellState& state, bool reverse,
                       const Steps& steps) const;
  RecurrentOutput run(const Tensor& input, const RecurrentState& initial_state, const Lengths& lengths);

  RecurrentOptions options_;
  std::vector<std::shared_ptr<RecurrentCell>> cells_;
  std::string name_;  // empty for a generic driver
  std::string repr_;  // PyTorch's extra_repr for RNN, LSTM and GRU
};

// --- in a Sequential ---------------------------------------------------------------------------

/// A recurrent layer as a one-in, one-out module for `Sequential`: the layer's output at
/// every step, run from a zero state over the whole input (Keras's `return_sequences=True`).
/// The layer is shared; its entries keep their own keys under the Sequential's index
/// (`1.weight_ih_l0`). Follow it with `LastStep` for Keras's `return_sequences=False`.
/// Example (the Keras tutorial's Embedding → LSTM → Dense):
///
///     auto lstm = std::make_shared<nn::LSTM>(nn::LSTMOptions(16, 8).batch_first(true));
///     nn::Sequential model{std::make_shared<nn::Embedding>(500, 16), std::make_shared<nn::SequenceOutput>(lstm),
///                          std::make_shared<nn::LastStep>(/*batch_first=*/true), std::make_shared<nn::Linear>(8, 1)};
///     Tensor logits = model(ids);   // ids (B, T) int64 → (B, 1)
class SequenceOutput : public UnaryModule {
 public:
  /// Wraps `layer` (not null), registered without a name of its own.
  explicit SequenceOutput(std::shared_ptr<Recurrent> layer);
  /// The layer's output at every step, from a zero state.
  Tensor forward(const Tensor& input) override;
  /// The wrapped layer.
  Recurrent& layer() const { return *layer_; }
  /// The layer's own repr.
  std::string extra_repr() const override { return layer_->repr(); }

 private:
  std::shared_ptr<Recurrent> layer_;
};

/// The last step of a sequence output, (T, B, F) → (B, F), or (B, T, F) with batch_first:
/// `nn::last_step` as a module, for `Sequential` (all sequences full length). For one
/// direction only: after a bidirectional layer, the reverse half of the last step has read
/// one input (use `Recurrent::final_hidden` in a module of your own).
class LastStep : public UnaryModule {
 public:
  /// Takes the last step along dimension 0, or 1 with `batch_first`.
  explicit LastStep(bool batch_first = false) : batch_first_(batch_first) {}
  /// (T, B, F) → (B, F), or (B, T, F) → (B, F) with batch_first.
  Tensor forward(const Tensor& input) override { return last_step(input, {}, batch_first_); }
  /// "batch_first=true" when set.
  std::string extra_repr() const override { return batch_first_ ? "batch_first=true" : ""; }

 private:
  bool batch_first_;
};

// --- RNN ------------------------------------------------------------------------------------------

/// Options of RNN. Example: `nn::RNNOptions(4, 8).num_layers(2).nonlinearity(nn::RNNNonlinearity::relu)`
class RNNOptions : public RecurrentOptionsBase<RNNOptions> {
 public:
  /// Options of an RNN from `input_size` features to `hidden_size`.
  using RecurrentOptionsBase::RecurrentOptionsBase;
  /// Adds bias_ih and bias_hh (default true).
  XGRAD_ARG(bool, bias) = true;
  /// tanh (default) or relu.
  XGRAD_ARG(RNNNonlinearity, nonlinearity) = RNNNonlinearity::tanh;
};

/// A multi-layer Elman RNN, as torch.nn.RNN: RNNCell run by the sequence driver.
/// Parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and _reverse).
/// Example:
///
///     nn::RNN rnn(nn::RNNOptions(4, 8).batch_first(true));
///     auto [out, state] = rnn(x);          // x (B, T, 4) → out (B, T, 8), state.h() (1, B, 8)
class RNN : public Recurrent {
 public:
  /// An RNN as `options` describe, its parameters drawn from U(−1/√H, 1/√H).
  explicit RNN(const RNNOptions& options);
  /// One layer, one direction, tanh, with biases.
  RNN(std::int64_t input_size, std::int64_t hidden_size) : RNN(RNNOptions(input_size, hidden_size)) {}
  /// The options it was built with.
  const RNNOptions& options() const { return options_; }

 private:
  RNNOptions options_;
};

// --- LSTM -----------------------------------------------------------------------------------------

/// Options of LSTM.
/// Example: `nn::LSTMOptions(1, 64).num_layers(2).batch_first(true).bidirectional(true).proj_size(0).dropout(0.1).bias(true)`
class LSTMOptions : public RecurrentOptionsBase<LSTMOptions> {
 public:
  /// Options of an LSTM from `input_size` features to `hidden_size`.
  using RecurrentOptionsBase::RecurrentOptionsBase;
  /// Adds bias_ih and bias_hh (default true).
  XGRAD_ARG(bool, bias) = true;
  /// When > 0 (and < hidden_size), h is projected to this size by weight_hr_l{k}.
  XGRAD_ARG(std::int64_t, proj_size) = 0;
};

/// A multi-layer LSTM, as torch.nn.LSTM: LSTMCell run by the sequence driver.
/// Parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k}
/// (with proj_size) and their _reverse twins, in PyTorch's order and shapes.
/// Example:
///
///     nn::LSTM lstm(nn::LSTMOptions(1, 64).num_layers(2).batch_first(true));
///     auto [out, state] = lstm(x);         // out (B, T, 64); state.h(), state.c() (2, B, 64)
///     auto [out2, s2] = lstm(x2, state);   // continue from a state
class LSTM : public Recurrent {
 public:
  /// An LSTM as `options` describe, its parameters drawn from U(−1/√H, 1/√H).
  explicit LSTM(const LSTMOptions& options);
  /// One layer, one direction, no projection, with biases.
  LSTM(std::int64_t input_size, std::int64_t hidden_size) : LSTM(LSTMOptions(input_size, hidden_size)) {}
  /// The options it was built with.
  const LSTMOptions& options() const { return options_; }

 private:
  LSTMOptions options_;
};

// --- GRU ------------------------------------------------------------------------------------------

/// Options of GRU. Example: `nn::GRUOptions(4, 8).num_layers(2).dropout(0.2)`
class GRUOptions : public RecurrentOptionsBase<GRUOptions> {
 public:
  /// Options of a GRU from `input_size` features to `hidden_size`.
  using RecurrentOptionsBase::RecurrentOptionsBase;
  /// Adds bias_ih and bias_hh (default true); with reset_after false, bias_ih only.
  XGRAD_ARG(bool, bias) = true;
  /// PyTorch's GRU (default true, = Keras's `reset_after=True`), or Keras's
  /// `reset_after=False`: the reset gate on h before the recurrent matmul (see GRUCell).
  XGRAD_ARG(bool, reset_after) = true;
};

/// A multi-layer GRU, as torch.nn.GRU: GRUCell run by the sequence driver.
/// Parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and _reverse).
/// Example:
///
///     nn::GRU gru(nn::GRUOptions(4, 8).bidirectional(true));
///     auto [out, state] = gru(x, {}, {5, 2, 4});   // lengths of a padded (5, 3, 4) batch; state.h()
class GRU : public Recurrent {
 public:
  /// A GRU as `options` describe, its parameters drawn from U(−1/√H, 1/√H).
  explicit GRU(const GRUOptions& options);
  /// One layer, one direction, PyTorch's reset_after, with biases.
  GRU(std::int64_t input_size, std::int64_t hidden_size) : GRU(GRUOptions(input_size, hidden_size)) {}
  /// The options it was built with.
  const GRUOptions& options() const { return options_; }

 private:
  GRUOptions options_;
};

}  // namespace xgrad::nn

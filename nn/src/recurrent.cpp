// The sequence driver: any RecurrentCell over layers × directions × time steps, with
// variable lengths, batch_first, dropout (PyTorch's between layers, Keras's on inputs and
// state) and initial / final states; and RNN, LSTM and GRU, a built-in cell each on it.
#include <xgrad/nn/recurrent.hpp>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <optional>
#include <typeinfo>
#include <utility>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/trace.hpp>
#include <xgrad/nn/dropout.hpp>

namespace xgrad::nn {

// --- Lengths and last_step ----------------------------------------------------------------------

namespace {

// T tensors (B, F) → (T, B, F) or (B, T, F). Time-major outputs are joined as (T·B, F) rows
// by one cat node, with no unsqueeze node per step.
Tensor join_steps(const std::vector<Tensor>& steps, std::int64_t time_dim) {
  const std::int64_t B = steps[0].size(0);
  if (time_dim != 0 || B == 0) return stack(steps, time_dim);
  return reshape(cat(steps, 0), {static_cast<std::int64_t>(steps.size()), B, steps[0].size(1)});
}

}  // namespace

Tensor last_step(const Tensor& output, const Lengths& lengths, bool batch_first) {
  if (!output.defined() || output.dim() < 2 || output.dim() > 3)
    throw Error("last_step: expected an output of shape (T, B, F) or (B, T, F), got " +
                (output.defined() ? shape_str(output.shape()) : std::string("an undefined tensor")));
  if (output.dim() == 2) {  // unbatched (T, F)
    if (lengths.given()) throw Error("last_step: lengths need a batched (3-D) output");
    return select(output, 0, -1);
  }
  const std::int64_t time_dim = batch_first ? 1 : 0;
  const std::int64_t T = output.size(time_dim), B = output.size(1 - time_dim), F = output.size(2);
  if (!lengths.given()) return select(output, time_dim, -1);
  lengths.check("last_step", B, T, 1);
  if (lengths.padding() == Side::pre) return select(output, time_dim, -1);  // every sequence ends at T − 1
  // Row of (sequence b, step len_b − 1) in the output flattened to (T·B, F) or (B·T, F).
  std::vector<std::int64_t> rows(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t t = lengths.values()[static_cast<std::size_t>(b)] - 1;
    rows[static_cast<std::size_t>(b)] = batch_first ? b * T + t : t * B + b;
  }
  return index_select(reshape(output, {T * B, F}), 0, from_vector(rows, {B}));
}

// --- Recurrent -------------------------------------------------------------------------------------

Recurrent::Recurrent(const RecurrentOptions& options, const CellFactory& make_cell) : options_(options) {
  const std::string what = "Recurrent";
  if (options.input_size() <= 0 || options.hidden_size() <= 0)
    throw Error(fmt::format("{}: input_size and hidden_size must be positive, got {} and {}", what,
                            options.input_size(), options.hidden_size()));
  if (options.num_layers() < 1)
    throw Error(fmt::format("{}: num_layers must be at least 1, got {}", what, options.num_layers()));
  for (const auto& [name, p] : {std::pair<const char*, double>{"dropout", options.dropout()},
                                 {"input_dropout", options.input_dropout()},
                                 {"recurrent_dropout", options.recurrent_dropout()}})
    if (!(p >= 0.0 && p <= 1.0)) throw Error(fmt::format("{}: {} must be in [0, 1], got {}", what, name, p));
  if (options.dropout() > 0.0 && options.num_layers() == 1)
    std::cerr << fmt::format(
        "xgrad warning: a recurrent layer with dropout={} and num_layers=1: PyTorch's dropout acts between "
        "stacked layers only, so here it does nothing. For Keras's dropout on the layer's input and state, use "
        "input_dropout() and recurrent_dropout().\n",
        options.dropout());
  if (!make_cell) throw Error(what + ": the cell factory is empty");

  const std::int64_t D = num_directions();
  std::int64_t layer_input = options.input_size();
  for (std::int64_t l = 0; l < options.num_layers(); ++l) {
    for (std::int64_t d = 0; d < D; ++d) {
      std::shared_ptr<RecurrentCell> cell = make_cell(layer_input, options.hidden_size());
      if (!cell) throw Error(fmt::format("{}: the cell factory returned null for layer {}", what, l));
      if (cell->input_size() != layer_input)
        throw Error(fmt::format("{}: the cell of layer {} reads {} features, but its input has {}", what, l,
                                cell->input_size(), layer_input));
      if (!cells_.empty() && cell->state_sizes() != cells_[0]->state_sizes())
        throw Error(fmt::format("{}: every cell must have the state sizes of the first, ({}) ; layer {} has ({})",
                                what, fmt::join(cells_[0]->state_sizes(), ", "), l,
                                fmt::join(cell->state_sizes(), ", ")));
      // A child whose entries take PyTorch's names: weight_ih → weight_ih_l0, weight_ih_l0_reverse.
      const std::string suffix = fmt::format("_l{}{}", l, d == 1 ? "_reverse" : "");
      register_inlined_module("cell" + suffix, cell, suffix);
      cells_.push_back(std::move(cell));
    }
    layer_input = D * cells_.back()->output_size();
  }
}

RecurrentCell& Recurrent::cell(std::int64_t layer, std::int64_t direction) const {
  if (layer < 0 || layer >= options_.num_layers() || direction < 0 || direction >= num_directions())
    throw Error(fmt::format("{}: no cell for layer {} direction {} ({} layers, {} directions)", type_name(), layer,
                            direction, options_.num_layers(), num_directions()));
  return *cells_[static_cast<std::size_t>(layer * num_directions() + direction)];
}

namespace {

// PyTorch's RNNBase.extra_repr: sizes, `extra`, then only the options that differ from the
// defaults.
std::string options_repr(const RecurrentOptions& o, const std::string& extra, bool bias) {
  std::string s = fmt::format("{}, {}", o.input_size(), o.hidden_size()) + extra;
  if (o.num_layers() != 1) s += fmt::format(", num_layers={}", o.num_layers());
  if (!bias) s += ", bias=false";
  if (o.batch_first()) s += ", batch_first=true";
  if (o.dropout() != 0.0) s += fmt::format(", dropout={}", o.dropout());
  if (o.bidirectional()) s += ", bidirectional=true";
  if (o.input_dropout() != 0.0) s += fmt::format(", input_dropout={}", o.input_dropout());
  if (o.recurrent_dropout() != 0.0) s += fmt::format(", recurrent_dropout={}", o.recurrent_dropout());
  return s;
}

}  // namespace

void Recurrent::describe(std::string name, const std::string& extra, bool bias) {
  name_ = std::move(name);
  repr_ = options_repr(options_, extra, bias);
}

Tensor Recurrent::final_hidden(const RecurrentState& state) const {
  const std::int64_t D = num_directions(), LD = options_.num_layers() * D;
  const Tensor h = state.empty() ? Tensor() : state.h();
  if (!h.defined() || h.dim() < 2 || h.dim() > 3 || h.size(0) != LD ||
      h.size(h.dim() - 1) != cells_[0]->output_size())
    throw Error(fmt::format("{}::final_hidden: expected the layer's final h of shape ({}, B, {}) or ({}, {}), got {}",
                            type_name(), LD, cells_[0]->output_size(), LD, cells_[0]->output_size(),
                            h.defined() ? shape_str(h.shape()) : std::string("none")));
  // The top layer's D rows, (D, B, H), side by side along the feature dimension.
  const std::vector<Tensor> top = unbind(narrow(h, 0, LD - D, D), 0);
  return D == 1 ? top[0] : cat(top, top[0].dim() - 1);
}

std::string Recurrent::extra_repr() const {
  return repr_.empty() ? options_repr(options_, "", true) + ", cell=" + cells_[0]->type_name() : repr_;
}

// --- Recurrent::forward, in parts ------------------------------------------------------------------

// One call's input, seen as a batch (T, B, I) or (B, T, I), and its padding.
struct Recurrent::Steps {
  Tensor input;                // padded steps zeroed (see zero_padding)
  bool unbatched = false;      // the caller's input was (T, I)
  std::int64_t time_dim = 0;   // 1 with batch_first
  std::int64_t T = 0, B = 0;
  std::int64_t begin = 0, end = 0;  // steps outside [begin, end) are padding in every sequence
  std::vector<Tensor> masks;   // per step: (B, 1) true where valid; undefined where all are
  DType dtype = DType::f32;
};

namespace {

// Whether step t of sequence b is one of its valid steps.
bool is_valid(const Lengths& lengths, std::int64_t t, std::int64_t b, std::int64_t T) {
  const std::int64_t first = lengths.first_step(b, T);
  return t >= first && t < first + lengths.values()[static_cast<std::size_t>(b)];
}

// The input with its padded steps replaced by zeros. The layer never uses their values, but
// the input projection and the steps outside a sequence do compute with them: NaN or Inf
// there would reach every weight's gradient through 0 · NaN. PyTorch never reads padding.
Tensor zero_padding(const Tensor& x, const Lengths& lengths, std::int64_t time_dim) {
  const std::int64_t T = x.size(time_dim), B = x.size(1 - time_dim);
  std::vector<bool> valid(static_cast<std::size_t>(T * B));
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t b = 0; b < B; ++b)
      valid[static_cast<std::size_t>(time_dim == 0 ? t * B + b : b * T + t)] = is_valid(lengths, t, b, T);
  const Shape shape = time_dim == 0 ? Shape{T, B, 1} : Shape{B, T, 1};
  return where(from_vector(valid, shape), x, zeros({}, x.dtype()));
}

// An inverted-dropout mask of `shape`: 0 with probability p, else 1 / (1 − p).
Tensor dropout_mask(const Shape& shape, double p, DType dtype) { return dropout(ones(shape, dtype), p, true); }

}  // namespace

Recurrent::Steps Recurrent::prepare(const Tensor& input, const Lengths& lengths) const {
  const std::string what = type_name();
  if (!input.defined() || input.dim() < 2 || input.dim() > 3)
    throw Error(fmt::format("{}: expected an input of shape (T, B, {}){}, got {}", what, options_.input_size(),
                            options_.batch_first() ? " with batch_first (B, T, ...)" : "",
                            input.defined() ? shape_str(input.shape()) : std::string("an undefined tensor")));
  if (!is_floating(input.dtype()))
    throw Error(fmt::format("{}: the input must be float32 or float64, got {}", what, dtype_name(input.dtype())));
  Steps s;
  // Unbatched (T, I) runs as a batch of one: (T, 1, I), batch_first ignored (as PyTorch).
  s.unbatched = input.dim() == 2;
  s.input = s.unbatched ? unsqueeze(input, 1) : input;
  s.time_dim = !s.unbatched && options_.batch_first() ? 1 : 0;
  s.T = s.input.size(s.time_dim);
  s.B = s.input.size(1 - s.time_dim);
  s.dtype = input.dtype();
  if (s.input.size(2) != options_.input_size())
    throw Error(fmt::format("{}: expected {} input features (last dimension), got input of shape {}", what,
                            options_.input_size(), shape_str(input.shape())));
  if (s.T == 0) throw Error(fmt::format("{}: the input has no time steps, shape {}", what, shape_str(input.shape())));
  for (const Tensor& p : cells_[0]->parameters())
    if (p.dtype() != s.dtype)
      throw Error(fmt::format("{}: the input is {} but the parameters are {}; convert one of them with to()", what,
                              dtype_name(s.dtype), dtype_name(p.dtype())));

  s.begin = 0;
  s.end = s.T;
  s.masks.resize(static_cast<std::size_t>(s.T));
  if (!lengths.given()) return s;
  if (s.unbatched) throw Error(what + ": lengths need a batched (3-D) input");
  const std::vector<std::int64_t>& len = lengths.values();
  lengths.check(what.c_str(), s.B, s.T, 0);
  if (s.B == 0) return s;
  const std::int64_t max_len = *std::max_element(len.begin(), len.end());
  const std::int64_t min_len = *std::min_element(len.begin(), len.end());
  // Steps some sequence holds, [begin, end): [0, max_len) padded after, [T − max_len, T)
  // padded before; the ones not every sequence holds get a mask.
  const bool pre = lengths.padding() == Side::pre;
  s.begin = pre ? s.T - max_len : 0;
  s.end = pre ? s.T : max_len;
  const std::int64_t mixed_begin = pre ? s.T - max_len : min_len, mixed_end = pre ? s.T - min_len : max_len;
  for (std::int64_t t = mixed_begin; t < mixed_end; ++t) {
    std::vector<bool> valid(static_cast<std::size_t>(s.B));
    for (std::int64_t b = 0; b < s.B; ++b) valid[static_cast<std::size_t>(b)] = is_valid(lengths, t, b, s.T);
    s.masks[static_cast<std::size_t>(t)] = from_vector(valid, {s.B, 1});
  }
  if (min_len < s.T) s.input = zero_padding(s.input, lengths, s.time_dim);
  return s;
}

std::vector<CellState> Recurrent::initial_states(const RecurrentState& initial_state, const Steps& s) const {
  // Entry k of cell c is (B, sizes[k]); given states are (L·D, B, sizes[k]), or (L·D, sizes[k])
  // unbatched, and zeros where undefined.
  const std::string what = type_name();
  const std::vector<std::int64_t>& sizes = cells_[0]->state_sizes();
  const std::size_t K = sizes.size();
  if (!initial_state.empty() && initial_state.size() != K)
    throw Error(fmt::format("{}: expected an initial state of {} tensor(s), got {}", what, K, initial_state.size()));
  std::vector<CellState> states(cells_.size(), CellState(K));
  const auto LD = static_cast<std::int64_t>(cells_.size());
  for (std::size_t k = 0; k < K; ++k) {
    const Tensor given = k < initial_state.size() ? initial_state[k] : Tensor();
    if (!given.defined()) {
      const Tensor z = zeros({s.B, sizes[k]}, s.dtype);
      for (auto& state : states) state[k] = z;
      continue;
    }
    const Shape expected = s.unbatched ? Shape{LD, sizes[k]} : Shape{LD, s.B, sizes[k]};
    if (given.shape() != expected)
      throw Error(fmt::format("{}: expected initial state {} of shape {}, got {}", what, k, shape_str(expected),
                              shape_str(given.shape())));
    if (given.dtype() != s.dtype)
      throw Error(fmt::format("{}: initial state {} has dtype {}, the input has {}", what, k,
                              dtype_name(given.dtype()), dtype_name(s.dtype)));
    const std::vector<Tensor> per_cell = unbind(s.unbatched ? unsqueeze(given, 1) : given, 0);  // one node
    for (std::size_t c = 0; c < cells_.size(); ++c) states[c][k] = per_cell[c];
  }
  return states;
}

namespace {

// One step as a trace composite: inputs (xp, state...), outputs the next state.
CellState traced_step(const StepFn& step, const Tensor& xp, const CellState& state) {
  std::vector<Tensor> inputs{xp};
  inputs.insert(inputs.end(), state.begin(), state.end());
  trace::Composite scope("recurrent_step", std::move(inputs), {});
  CellState next = step(xp, state);
  scope.finish(next);
  return next;
}

}  // namespace

// One layer in one direction: the cell over every time step of `input`, updating `state` in
// place; returns the output sequence (T, B, H) or (B, T, H).
Tensor Recurrent::run_direction(RecurrentCell& cell, const Tensor& input, CellState& state, bool reverse,
                                const Steps& s) const {
  const std::string what = type_name();
  const std::vector<std::int64_t>& sizes = cell.state_sizes();
  const std::size_t K = sizes.size();
  const bool training = is_training();
  // Keras's dropout: one mask per sequence, the same at every step (variational).
  Tensor x = input;
  if (training && options_.input_dropout() > 0.0) {
    const Tensor mask = dropout_mask({s.B, x.size(2)}, options_.input_dropout(), s.dtype);
    x = x * unsqueeze(mask, s.time_dim);
  }
  Tensor recurrent_mask;
  if (training && options_.recurrent_dropout() > 0.0)
    recurrent_mask = dropout_mask({s.B, sizes[0]}, options_.recurrent_dropout(), s.dtype);

  // Under a tracer, the direction and each step are composites of their own, so that an
  // exporter can take one step as the body of a loop (a user cell as ONNX Scan).
  const bool traced = trace::active() != nullptr;
  std::optional<trace::Composite> scope;
  if (traced) scope.emplace("recurrent_direction", std::vector<Tensor>{x}, trace::Attributes{{"reverse", std::int64_t{reverse}}});
  // The input projection of every step in one GEMM, then split once: (T, B, G) → T × (B, G).
  // (unbind, not a split of the (T·B, G) rows: the latter raised a step's peak memory, with
  // no gain in time.)
  std::vector<Tensor> xp = unbind(cell.project_input(x), s.time_dim);
  const StepFn step = recurrent_mask.defined()
                          ? StepFn([&](const Tensor& xp_t, const CellState& st) { return cell.step(xp_t, st, recurrent_mask); })
                          : cell.sequence_step();
  const Tensor zero = zeros({}, s.dtype);
  const Tensor zero_output = s.end - s.begin < s.T ? zeros({s.B, sizes[0]}, s.dtype) : Tensor();
  std::vector<Tensor> outputs(static_cast<std::size_t>(s.T));
  for (std::int64_t i = 0; i < s.T; ++i) {
    const std::int64_t t = reverse ? s.T - 1 - i : i;
    const auto ti = static_cast<std::size_t>(t);
    if (t < s.begin || t >= s.end) {  // padding in every sequence: nothing to compute
      outputs[ti] = zero_output;
      continue;
    }
    // Each step's projection is let go as soon as the step has used it.
    CellState next = traced ? traced_step(step, std::exchange(xp[ti], Tensor()), state)
                            : step(std::exchange(xp[ti], Tensor()), state);
    if (next.size() != K || next[0].shape() != Shape{s.B, sizes[0]})
      throw Error(fmt::format("{}: the cell's step returned {} tensor(s), first of shape {}; expected {} with "
                              "the first ({}, {})",
                              what, next.size(), next.empty() ? "-" : shape_str(next[0].shape()), K, s.B, sizes[0]));
    if (s.masks[ti].defined()) {
      // Padded sequences keep their state and output zeros at this step.
      outputs[ti] = where(s.masks[ti], next[0], zero);
      for (std::size_t k = 0; k < K; ++k) next[k] = where(s.masks[ti], next[k], state[k]);
    } else {
      outputs[ti] = next[0];
    }
    state = std::move(next);
  }
  Tensor joined = join_steps(outputs, s.time_dim);
  if (scope) scope->finish({joined});
  return joined;
}

namespace {

// What a tracer (an exporter) needs to see the whole layer as one op: the cell kind ("LSTM",
// "GRU", "RNN" for the built-in cells exactly, else the cell's type name), the driver's
// options and the cell's own, and the local names of each cell's parameters.
trace::Attributes trace_attributes(const Recurrent& layer, const RecurrentOptions& o, const Lengths& lengths) {
  const RecurrentCell& cell = *layer.cells()[0];
  std::string kind = cell.type_name();
  trace::Attributes a;
  if (typeid(cell) == typeid(LSTMCell)) {
    const auto& c = static_cast<const LSTMCell&>(cell).options();
    kind = "LSTM";
    a.push_back({"proj_size", c.proj_size()});
    a.push_back({"bias", std::int64_t{c.bias()}});
  } else if (typeid(cell) == typeid(GRUCell)) {
    const auto& c = static_cast<const GRUCell&>(cell).options();
    kind = "GRU";
    a.push_back({"reset_after", std::int64_t{c.reset_after()}});
    a.push_back({"bias", std::int64_t{c.bias()}});
  } else if (typeid(cell) == typeid(RNNCell)) {
    const auto& c = static_cast<const RNNCell&>(cell).options();
    kind = "RNN";
    a.push_back({"nonlinearity", std::string(c.nonlinearity() == RNNNonlinearity::relu ? "relu" : "tanh")});
    a.push_back({"bias", std::int64_t{c.bias()}});
  }
  a.push_back({"cell", kind});
  a.push_back({"num_layers", o.num_layers()});
  a.push_back({"num_directions", layer.num_directions()});
  a.push_back({"hidden_size", cell.output_size()});
  a.push_back({"state_count", static_cast<std::int64_t>(cell.state_sizes().size())});
  a.push_back({"state_sizes", cell.state_sizes()});
  a.push_back({"batch_first", std::int64_t{o.batch_first()}});
  a.push_back({"training", std::int64_t{layer.is_training()}});
  a.push_back({"dropout", o.dropout()});
  a.push_back({"input_dropout", o.input_dropout()});
  a.push_back({"recurrent_dropout", o.recurrent_dropout()});
  a.push_back({"padding", std::string(lengths.padding() == Side::pre ? "pre" : "post")});
  std::vector<std::string> names;
  for (const auto& [name, p] : cell.named_parameters()) names.push_back(name);
  a.push_back({"parameters", std::move(names)});
  return a;
}

}  // namespace

RecurrentOutput Recurrent::forward(const Tensor& input, const RecurrentState& initial_state, const Lengths& lengths) {
  if (!trace::active()) return run(input, initial_state, lengths);
  // Inputs: the input, the lengths (undefined when not given), one tensor per state entry
  // (undefined for zeros), then every cell's parameters in cell order.
  std::vector<Tensor> inputs{input, !lengths.given() ? Tensor() : lengths.source().defined() ? lengths.source() : lengths.tensor()};
  const std::size_t K = cells_[0]->state_sizes().size();
  for (std::size_t k = 0; k < K; ++k) inputs.push_back(k < initial_state.size() ? initial_state[k] : Tensor());
  for (const auto& cell : cells_)
    for (const auto& [name, p] : cell->named_parameters()) inputs.push_back(p);
  trace::Composite scope("recurrent", std::move(inputs), trace_attributes(*this, options_, lengths));
  RecurrentOutput out = run(input, initial_state, lengths);
  std::vector<Tensor> outputs{out.output};
  for (std::size_t k = 0; k < out.state.size(); ++k) outputs.push_back(out.state[k]);
  scope.finish(outputs);
  return out;
}

RecurrentOutput Recurrent::run(const Tensor& input, const RecurrentState& initial_state, const Lengths& lengths) {
  const Steps s = prepare(input, lengths);
  std::vector<CellState> states = initial_states(initial_state, s);
  const std::int64_t D = num_directions(), L = options_.num_layers();
  Tensor layer_input = s.input;
  for (std::int64_t l = 0; l < L; ++l) {
    std::vector<Tensor> outputs;
    for (std::int64_t d = 0; d < D; ++d) {
      const auto c = static_cast<std::size_t>(l * D + d);
      outputs.push_back(run_direction(*cells_[c], layer_input, states[c], d == 1, s));
    }
    layer_input = D == 1 ? outputs[0] : cat(outputs, 2);
    if (l + 1 < L) layer_input = dropout(layer_input, options_.dropout(), is_training());  // PyTorch's, between layers
  }

  CellState final_state;
  for (std::size_t k = 0; k < states[0].size(); ++k) {
    std::vector<Tensor> finals;
    finals.reserve(states.size());
    for (const CellState& state : states) finals.push_back(state[k]);
    const Tensor stacked = stack(finals, 0);  // (L·D, B, sizes[k])
    final_state.push_back(s.unbatched ? squeeze(stacked, 1) : stacked);
  }
  return {s.unbatched ? squeeze(layer_input, 1) : layer_input, RecurrentState(std::move(final_state))};
}

// --- SequenceOutput ------------------------------------------------------------------------------

SequenceOutput::SequenceOutput(std::shared_ptr<Recurrent> layer) : layer_(std::move(layer)) {
  if (!layer_) throw Error("SequenceOutput: the layer is null");
  register_inlined_module("layer", layer_, "");
}

Tensor SequenceOutput::forward(const Tensor& input) { return (*layer_)(input).output; }

// --- RNN, LSTM and GRU ---------------------------------------------------------------------------
// PyTorch's sequence layers, each its cell run by the driver: they add only their options;
// running, states and outputs are the driver's.

RNN::RNN(const RNNOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<RNNCell>(
                      RNNCellOptions(in, hidden).bias(options.bias()).nonlinearity(options.nonlinearity()));
                }),
      options_(options) {
  describe("RNN", options.nonlinearity() == RNNNonlinearity::relu ? ", nonlinearity=relu" : "", options.bias());
}

LSTM::LSTM(const LSTMOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<LSTMCell>(
                      LSTMCellOptions(in, hidden).bias(options.bias()).proj_size(options.proj_size()));
                }),
      options_(options) {
  describe("LSTM", options.proj_size() != 0 ? fmt::format(", proj_size={}", options.proj_size()) : "", options.bias());
}

GRU::GRU(const GRUOptions& options)
    : Recurrent(RecurrentOptions::from(options),
                [options](std::int64_t in, std::int64_t hidden) {
                  return std::make_shared<GRUCell>(
                      GRUCellOptions(in, hidden).bias(options.bias()).reset_after(options.reset_after()));
                }),
      options_(options) {
  describe("GRU", options.reset_after() ? "" : ", reset_after=false", options.bias());
}

}  // namespace xgrad::nn

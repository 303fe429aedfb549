// The recurrent cells, composed from primitives only. Every affine map is one `linear`: a GEMM
// that reads the weight transposed in place and starts from the term it is added to.
#include <xgrad/nn/cells.hpp>

#include <cmath>
#include <type_traits>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

namespace xgrad::nn {

namespace {

// Validates a cell's options before the base class sees the sizes they imply.
template <class Options>
const Options& checked(const char* what, const Options& o) {
  if (o.input_size() <= 0 || o.hidden_size() <= 0)
    throw Error(fmt::format("{}: input_size and hidden_size must be positive, got {} and {}", what, o.input_size(),
                            o.hidden_size()));
  if constexpr (std::is_same_v<Options, LSTMCellOptions>)
    if (o.proj_size() < 0 || o.proj_size() >= o.hidden_size())
      throw Error(fmt::format("{}: proj_size must be in [0, hidden_size), got {} for hidden_size {}", what,
                              o.proj_size(), o.hidden_size()));
  return o;
}

// U(−1/√H, 1/√H), PyTorch's default for every recurrent parameter.
Tensor init_uniform(const Shape& shape, std::int64_t hidden_size) {
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  return uniform(shape, -k, k);
}

// x W_ihᵀ (+ b): (..., I) → (..., G) in one GEMM.
Tensor project(const Tensor& x, const Tensor& weight_ih, const Tensor& bias) { return linear(x, weight_ih, bias); }

// The bias that does not depend on the state: b_ih + b_hh for RNN and LSTM, whose two biases
// are simply added (computed once per call, not once per step).
Tensor folded_bias(const Tensor& bias_ih, const Tensor& bias_hh) {
  return bias_ih.defined() ? bias_ih + bias_hh : Tensor();
}

void check_state(const char* what, const CellState& state, std::size_t entries) {
  if (state.size() != entries)
    throw Error(fmt::format("{}: expected a state of {} tensor(s), got {}", what, entries, state.size()));
}

// Fills undefined entries of `state` with zeros for a batch of `batch`.
CellState complete_state(const RecurrentCell& cell, CellState state, std::int64_t batch, DType dtype) {
  state.resize(cell.state_sizes().size());
  for (std::size_t k = 0; k < state.size(); ++k)
    if (!state[k].defined()) state[k] = zeros({batch, cell.state_sizes()[k]}, dtype);
  return state;
}

std::string bias_repr(bool bias) { return bias ? "" : ", bias=false"; }

// --- the steps ----------------------------------------------------------------------------------

// h with recurrent dropout's mask applied: what the recurrent matmul reads (h itself when
// the mask is undefined). The state carried on (h, and c) is never dropped.
Tensor recurrent_input(const Tensor& h, const Tensor& mask) { return mask.defined() ? h * mask : h; }

// h' = act(xp + h W_hhᵀ); xp already holds x W_ihᵀ + b_ih + b_hh.
CellState rnn_step(const Tensor& xp, const CellState& state, const Tensor& w_hh, RNNNonlinearity act,
                   const Tensor& mask = {}) {
  check_state("RNNCell", state, 1);
  Tensor pre = linear(recurrent_input(state[0], mask), w_hh, xp);  // (B, H)
  return {act == RNNNonlinearity::tanh ? tanh(pre) : relu(pre)};
}

// xp already holds x W_ihᵀ + b_ih + b_hh, (B, 4H); w_hr is undefined without a projection.
CellState lstm_step(const Tensor& xp, const CellState& state, const Tensor& w_hh, const Tensor& w_hr,
                    const Tensor& mask = {}) {
  check_state("LSTMCell", state, 2);
  const Tensor gates = linear(recurrent_input(state[0], mask), w_hh, xp);  // (B, 4H)
  const std::vector<Tensor> g = chunk(gates, 4, 1);  // i, f, g, o: (B, H) each
  const Tensor c = sigmoid(g[1]) * state[1] + sigmoid(g[0]) * tanh(g[2]);
  Tensor h = sigmoid(g[3]) * tanh(c);
  if (w_hr.defined()) h = linear(h, w_hr);  // (B, P)
  return {h, c};
}

// xp holds x W_ihᵀ + b_ih + (b_hr, b_hz, 0), (B, 3H) (see GRUCell::project_input); b_hn stays
// in the step because r multiplies it. The recurrent GEMM starts from zero: starting it from
// b_hh would copy a (B, 3H) bias every step, where adding b_hn to the n block costs (B, H).
CellState gru_step(const Tensor& xp, const CellState& state, const Tensor& w_hh, const Tensor& bias_hn,
                   const Tensor& mask = {}) {
  check_state("GRUCell", state, 1);
  const Tensor& h = state[0];
  const Tensor hh = linear(recurrent_input(h, mask), w_hh);  // (B, 3H)
  const std::vector<Tensor> x3 = chunk(xp, 3, 1);  // r, z, n parts
  const std::vector<Tensor> h3 = chunk(hh, 3, 1);
  const Tensor r = sigmoid(x3[0] + h3[0]);
  const Tensor z = sigmoid(x3[1] + h3[1]);
  // r ⊙ h_n saves h_n for r's gradient: a dense tensor of its own, since saving the chunk
  // itself (a view) would keep all of hh, r's and z's parts too, alive until backward.
  const Tensor h_n = bias_hn.defined() ? h3[2] + bias_hn : h3[2].contiguous();
  const Tensor n = tanh(x3[2] + r * h_n);
  return {lerp(n, h, z)};  // (1 − z) ⊙ n + z ⊙ h, as ATen's n + z ⊙ (h − n), in one primitive
}

// Keras's reset_after=False: xp holds x W_ihᵀ + b_ih, (B, 3H); r acts on h before the
// matmul by the n rows of W_hh, so the recurrent matmul splits in two: w_rz (the r, z rows of
// W_hh) and w_n (its n rows).
CellState gru_reset_before_step(const Tensor& xp, const CellState& state, const Tensor& w_rz, const Tensor& w_n,
                                const Tensor& mask = {}) {
  check_state("GRUCell", state, 1);
  const Tensor& h = state[0];
  const Tensor h_in = recurrent_input(h, mask);
  const std::vector<Tensor> x3 = chunk(xp, 3, 1);  // r, z, n parts
  const Tensor rz = linear(h_in, w_rz);            // (B, 2H)
  const std::vector<Tensor> h2 = chunk(rz, 2, 1);
  const Tensor r = sigmoid(x3[0] + h2[0]);
  const Tensor z = sigmoid(x3[1] + h2[1]);
  const Tensor n = tanh(linear(r * h_in, w_n, x3[2]));
  return {lerp(n, h, z)};
}

}  // namespace

// --- RecurrentCell ---------------------------------------------------------------------------

RecurrentCell::RecurrentCell(std::int64_t input_size, std::vector<std::int64_t> state_sizes)
    : input_size_(input_size), state_sizes_(std::move(state_sizes)) {
  if (input_size_ <= 0) throw Error(fmt::format("RecurrentCell: input_size must be positive, got {}", input_size_));
  if (state_sizes_.empty()) throw Error("RecurrentCell: a cell needs at least one state entry (h)");
  for (auto s : state_sizes_)
    if (s <= 0) throw Error(fmt::format("RecurrentCell: state sizes must be positive, got {}", s));
}

StepFn RecurrentCell::sequence_step() {
  return [this](const Tensor& xp, const CellState& state) { return step(xp, state); };
}

CellState RecurrentCell::step(const Tensor&, const CellState&, const Tensor&) {
  throw Error(type_name() + ": recurrent_dropout needs a cell that overrides step(xp, state, recurrent_mask) "
              "(the built-in RNN, LSTM and GRU cells do)");
}

CellState RecurrentCell::zero_state(std::int64_t batch, DType dtype) const {
  return complete_state(*this, {}, batch, dtype);
}

CellState RecurrentCell::step_input(const Tensor& x, const CellState& state) {
  if (x.dim() != 2 || x.size(1) != input_size_)
    throw Error(fmt::format("{}: expected an input of shape (B, {}), got {}", type_name(), input_size_,
                            shape_str(x.shape())));
  if (!state.empty() && state.size() != state_sizes_.size())
    throw Error(fmt::format("{}: expected a state of {} tensor(s), got {}", type_name(), state_sizes_.size(),
                            state.size()));
  const CellState full = complete_state(*this, state, x.size(0), x.dtype());
  for (std::size_t k = 0; k < full.size(); ++k)
    if (full[k].shape() != Shape{x.size(0), state_sizes_[k]})
      throw Error(fmt::format("{}: state entry {} should be ({}, {}), got {}", type_name(), k, x.size(0),
                              state_sizes_[k], shape_str(full[k].shape())));
  return step(project_input(x), full);
}

// --- RNNCell -------------------------------------------------------------------------------------

RNNCell::RNNCell(const RNNCellOptions& options)
    : RecurrentCell(checked("RNNCell", options).input_size(), {options.hidden_size()}), options_(options) {
  const std::int64_t H = options.hidden_size(), I = options.input_size();
  weight_ih = register_parameter("weight_ih", init_uniform({H, I}, H));
  weight_hh = register_parameter("weight_hh", init_uniform({H, H}, H));
  if (options.bias()) {
    bias_ih = register_parameter("bias_ih", init_uniform({H}, H));
    bias_hh = register_parameter("bias_hh", init_uniform({H}, H));
  }
}

Tensor RNNCell::forward(const Tensor& x, const Tensor& h) { return step_input(x, {h})[0]; }

Tensor RNNCell::project_input(const Tensor& x) {
  return project(x, weight_ih, folded_bias(bias_ih, bias_hh));
}

CellState RNNCell::step(const Tensor& xp, const CellState& state) {
  return rnn_step(xp, state, weight_hh, options_.nonlinearity());
}

CellState RNNCell::step(const Tensor& xp, const CellState& state, const Tensor& recurrent_mask) {
  return rnn_step(xp, state, weight_hh, options_.nonlinearity(), recurrent_mask);
}

std::string RNNCell::extra_repr() const {
  return fmt::format("{}, {}{}{}", options_.input_size(), options_.hidden_size(), bias_repr(options_.bias()),
                     options_.nonlinearity() == RNNNonlinearity::relu ? ", nonlinearity=relu" : "");
}

// --- LSTMCell --------------------------------------------------------------------------------------

namespace {
std::vector<std::int64_t> lstm_state_sizes(const LSTMCellOptions& o) {
  return {o.proj_size() > 0 ? o.proj_size() : o.hidden_size(), o.hidden_size()};
}
}  // namespace

LSTMCell::LSTMCell(const LSTMCellOptions& options)
    : RecurrentCell(options.input_size(), lstm_state_sizes(checked("LSTMCell", options))), options_(options) {
  const std::int64_t H = options.hidden_size(), I = options.input_size(), P = options.proj_size();
  const std::int64_t R = P > 0 ? P : H, G = checked_mul(4, H, "LSTMCell: 4 gates × hidden_size");
  weight_ih = register_parameter("weight_ih", init_uniform({G, I}, H));
  weight_hh = register_parameter("weight_hh", init_uniform({G, R}, H));
  if (options.bias()) {
    bias_ih = register_parameter("bias_ih", init_uniform({G}, H));
    bias_hh = register_parameter("bias_hh", init_uniform({G}, H));
  }
  if (P > 0) weight_hr = register_parameter("weight_hr", init_uniform({P, H}, H));
}

RecurrentState LSTMCell::forward(const Tensor& x, const RecurrentState& state) {
  return step_input(x, state.entries());
}

Tensor LSTMCell::project_input(const Tensor& x) {
  return project(x, weight_ih, folded_bias(bias_ih, bias_hh));
}

CellState LSTMCell::step(const Tensor& xp, const CellState& state) {
  return lstm_step(xp, state, weight_hh, weight_hr);
}

CellState LSTMCell::step(const Tensor& xp, const CellState& state, const Tensor& recurrent_mask) {
  return lstm_step(xp, state, weight_hh, weight_hr, recurrent_mask);
}

std::string LSTMCell::extra_repr() const {
  return fmt::format("{}, {}{}{}", options_.input_size(), options_.hidden_size(), bias_repr(options_.bias()),
                     options_.proj_size() > 0 ? fmt::format(", proj_size={}", options_.proj_size()) : "");
}

// --- GRUCell ---------------------------------------------------------------------------------------

GRUCell::GRUCell(const GRUCellOptions& options)
    : RecurrentCell(checked("GRUCell", options).input_size(), {options.hidden_size()}), options_(options) {
  const std::int64_t H = options.hidden_size(), I = options.input_size();
  const std::int64_t G = checked_mul(3, H, "GRUCell: 3 gates × hidden_size");
  weight_ih = register_parameter("weight_ih", init_uniform({G, I}, H));
  weight_hh = register_parameter("weight_hh", init_uniform({G, H}, H));
  if (options.bias()) {
    bias_ih = register_parameter("bias_ih", init_uniform({G}, H));
    if (options.reset_after()) bias_hh = register_parameter("bias_hh", init_uniform({G}, H));
  }
}

Tensor GRUCell::forward(const Tensor& x, const Tensor& h) { return step_input(x, {h})[0]; }

// b_ih + (b_hr, b_hz, 0): the parts of b_hh that are simply added join the projection's bias.
Tensor GRUCell::project_input(const Tensor& x) {
  if (!bias_hh.defined()) return project(x, weight_ih, bias_ih);
  const std::int64_t H = options_.hidden_size();
  return project(x, weight_ih, bias_ih + cat({narrow(bias_hh, 0, 0, 2 * H), zeros({H}, bias_hh.dtype())}, 0));
}

CellState GRUCell::step(const Tensor& xp, const CellState& state) { return step(xp, state, Tensor()); }

CellState GRUCell::step(const Tensor& xp, const CellState& state, const Tensor& recurrent_mask) {
  const RecurrentParts p = recurrent_parts();
  return options_.reset_after() ? gru_step(xp, state, weight_hh, p.bias_hn, recurrent_mask)
                                : gru_reset_before_step(xp, state, p.weight_rz, p.weight_n, recurrent_mask);
}

// The slices of weight_hh and bias_hh a step reads are cut once per sequence: a narrow per
// step was one more node per step, whose backward spread a gradient of the whole parameter
// (for reset_after false, two of (3H, H)) at every step.
StepFn GRUCell::sequence_step() {
  return [this, p = recurrent_parts()](const Tensor& xp, const CellState& state) {
    return options_.reset_after() ? gru_step(xp, state, weight_hh, p.bias_hn)
                                  : gru_reset_before_step(xp, state, p.weight_rz, p.weight_n);
  };
}

GRUCell::RecurrentParts GRUCell::recurrent_parts() const {
  const std::int64_t H = options_.hidden_size();
  if (!options_.reset_after()) return {Tensor(), narrow(weight_hh, 0, 0, 2 * H), narrow(weight_hh, 0, 2 * H, H)};
  return {bias_hh.defined() ? narrow(bias_hh, 0, 2 * H, H) : Tensor(), Tensor(), Tensor()};
}

std::string GRUCell::extra_repr() const {
  return fmt::format("{}, {}{}{}", options_.input_size(), options_.hidden_size(), bias_repr(options_.bias()),
                     options_.reset_after() ? "" : ", reset_after=false");
}

}  // namespace xgrad::nn

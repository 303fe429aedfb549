// Keras's weight layout and initialisation for xgrad's layers (see keras.hpp for the table).
#include <xgrad/nn/keras.hpp>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/embedding.hpp>
#include <xgrad/nn/init.hpp>
#include <xgrad/nn/linear.hpp>

#include <fmt/format.h>

namespace xgrad::nn::keras {

namespace {

// What the two layouts need to know about a cell.
struct CellKind {
  const char* name;        // the Keras layer it corresponds to
  std::int64_t gates;      // G
  bool swap_first_two;     // GRU: Keras z, r, h ↔ xgrad r, z, n
  bool two_biases;         // GRU reset_after=True: Keras bias (2, 3H)
  std::int64_t hidden;     // H
  Tensor *w_ih, *w_hh, *b_ih, *b_hh;
};

CellKind kind_of(const RecurrentCell& cell_in) {
  auto& cell = const_cast<RecurrentCell&>(cell_in);  // the pointers are only read by get_weights
  if (auto* c = dynamic_cast<RNNCell*>(&cell))
    return {"SimpleRNN", 1, false, false, c->options().hidden_size(), &c->weight_ih, &c->weight_hh, &c->bias_ih, &c->bias_hh};
  if (auto* c = dynamic_cast<LSTMCell*>(&cell)) {
    if (c->options().proj_size() > 0)
      throw Error("keras: an LSTM with proj_size has no Keras counterpart (Keras's LSTM has no projection)");
    return {"LSTM", 4, false, false, c->options().hidden_size(), &c->weight_ih, &c->weight_hh, &c->bias_ih, &c->bias_hh};
  }
  if (auto* c = dynamic_cast<GRUCell*>(&cell))
    return {"GRU", 3, true, c->options().reset_after(), c->options().hidden_size(), &c->weight_ih, &c->weight_hh,
            &c->bias_ih, &c->bias_hh};
  throw Error("keras: " + cell.type_name() + " has no Keras layout (RNNCell, LSTMCell and GRUCell have)");
}

// Reorders the G gate blocks along dim 0 of (G·H, ...) between the two orders (its own inverse).
Tensor reorder(const Tensor& t, const CellKind& k) {
  if (!k.swap_first_two) return t;
  const std::vector<Tensor> g = chunk(t, 3, 0);
  return cat({g[1], g[0], g[2]}, 0);
}

void require_shape(const Tensor& t, const Shape& shape, const CellKind& k, const char* what) {
  if (!t.defined()) throw Error(fmt::format("keras::set_weights: {} needs a {} of shape {}", k.name, what, shape_str(shape)));
  if (t.shape() != shape)
    throw Error(fmt::format("keras::set_weights: {} {} has shape {}, expected {}", k.name, what, shape_str(t.shape()),
                            shape_str(shape)));
  if (!is_floating(t.dtype()))
    throw Error(fmt::format("keras::set_weights: {} {} must be floating-point, got {}", k.name, what,
                            dtype_name(t.dtype())));
}

// Copies `value` into the parameter in place, converting the dtype.
void assign(Tensor& param, const Tensor& value) { param.copy_(value.to(param.dtype())); }

// Keras's SimpleRNN and LSTM have one bias where PyTorch's have two that are only added.
// Trained both, every optimizer would move their sum twice as far as Keras moves its one
// bias (an adaptive one exactly twice: each gets the same gradient and the same step), so
// bias_hh is held at zero and frozen: optimizers skip a parameter without a gradient, and
// training is Keras's. A gradient left from earlier training is dropped for the same reason.
void freeze_second_bias(Tensor& bias_hh) {
  bias_hh.zero_();
  bias_hh.requires_grad_(false);
  bias_hh.set_grad(Tensor());
}

}  // namespace

void set_weights(RecurrentCell& cell, const RecurrentWeights& w) {
  const CellKind k = kind_of(cell);
  const std::int64_t I = cell.input_size(), H = k.hidden, GH = k.gates * H;
  require_shape(w.kernel, {I, GH}, k, "kernel");
  require_shape(w.recurrent_kernel, {H, GH}, k, "recurrent_kernel");
  const bool cell_has_bias = k.b_ih->defined();
  if (w.bias.defined() != cell_has_bias)
    throw Error(fmt::format("keras::set_weights: the {} {} a bias but the Keras weights {}", k.name,
                            cell_has_bias ? "has" : "has no", w.bias.defined() ? "do" : "do not"));
  if (cell_has_bias) require_shape(w.bias, k.two_biases ? Shape{2, GH} : Shape{GH}, k, "bias");
  NoGradGuard no_grad;
  assign(*k.w_ih, reorder(w.kernel.t(), k));
  assign(*k.w_hh, reorder(w.recurrent_kernel.t(), k));
  if (!cell_has_bias) return;
  if (k.two_biases) {
    assign(*k.b_ih, reorder(select(w.bias, 0, 0), k));
    assign(*k.b_hh, reorder(select(w.bias, 0, 1), k));
    return;
  }
  assign(*k.b_ih, reorder(w.bias, k));
  if (k.b_hh->defined()) freeze_second_bias(*k.b_hh);
}

RecurrentWeights get_weights(const RecurrentCell& cell) {
  const CellKind k = kind_of(cell);
  NoGradGuard no_grad;
  RecurrentWeights w;
  w.kernel = reorder(*k.w_ih, k).t().contiguous();
  w.recurrent_kernel = reorder(*k.w_hh, k).t().contiguous();
  if (!k.b_ih->defined()) return w;
  if (k.two_biases) w.bias = stack({reorder(*k.b_ih, k), reorder(*k.b_hh, k)}, 0).contiguous();
  else if (k.b_hh->defined()) w.bias = reorder(*k.b_ih + *k.b_hh, k).contiguous();
  else w.bias = reorder(*k.b_ih, k).contiguous();
  return w;
}

void set_weights(Recurrent& layer, std::int64_t layer_index, const RecurrentWeights& weights, std::int64_t direction) {
  set_weights(layer.cell(layer_index, direction), weights);
}

RecurrentWeights get_weights(const Recurrent& layer, std::int64_t layer_index, std::int64_t direction) {
  return get_weights(layer.cell(layer_index, direction));
}

namespace {

void initialize_cell(RecurrentCell& cell) {
  const CellKind k = kind_of(cell);
  init::xavier_uniform_(*k.w_ih);  // glorot over (I, G·H): the same fans as (G·H, I)
  init::orthogonal_(*k.w_hh);      // (G·H, H) with orthonormal columns = Keras's (H, G·H) rows
  NoGradGuard no_grad;
  if (k.b_ih->defined()) k.b_ih->zero_();
  if (k.gates == 4 && k.b_ih->defined()) narrow(*k.b_ih, 0, k.hidden, k.hidden).fill_(1.0);  // unit_forget_bias
  if (!k.b_hh->defined()) return;
  if (k.two_biases) k.b_hh->zero_();   // GRU reset_after=True: Keras trains both biases
  else freeze_second_bias(*k.b_hh);    // SimpleRNN and LSTM: one bias in Keras
}

}  // namespace

void initialize(Module& module) {
  // Every submodule once, children first; a recurrent layer's cells are its children.
  module.apply([](Module& m) {
    if (auto* cell = dynamic_cast<RecurrentCell*>(&m)) {
      initialize_cell(*cell);
    } else if (auto* linear = dynamic_cast<Linear*>(&m)) {
      init::xavier_uniform_(linear->weight);
      if (linear->bias.defined()) init::zeros_(linear->bias);
    } else if (auto* embedding = dynamic_cast<Embedding*>(&m)) {
      init::uniform_(embedding->weight, -0.05, 0.05);
      if (const auto pad = embedding->options().padding_idx()) {
        NoGradGuard no_grad;
        embedding->weight.select(0, *pad).zero_();
      }
    }
  });
}

}  // namespace xgrad::nn::keras

#pragma once
/// \file Keras's conventions for xgrad's layers: its weight layout (to load weights trained
/// in Keras, or hand xgrad's to Keras) and its initialisation.
///
/// Keras stores a recurrent layer as `kernel` (I, G·H), `recurrent_kernel` (H, G·H) and
/// `bias`, with the gates in its own order; xgrad (as PyTorch) stores weight_ih (G·H, I),
/// weight_hh (G·H, H), bias_ih and bias_hh:
///
/// | Keras layer                | gates (Keras → xgrad) | Keras bias          | xgrad biases          |
/// |----------------------------|-----------------------|---------------------|-----------------------|
/// | SimpleRNN                  | h → h                 | (H)                 | bias_ih, bias_hh = 0  |
/// | LSTM                       | i f c o → i f g o     | (4H)                | bias_ih, bias_hh = 0  |
/// | GRU, reset_after=True      | z r h → r z n         | (2, 3H): input, rec.| bias_ih, bias_hh      |
/// | GRU, reset_after=False     | z r h → r z n         | (3H)                | bias_ih               |
///
/// Example (weights exported from Keras with `layer.get_weights()` and saved as .npy):
///     nn::LSTM lstm(nn::LSTMOptions(16, 8).batch_first(true));
///     nn::keras::set_weights(lstm, 0, {load_npy("kernel.npy"), load_npy("recurrent_kernel.npy"),
///                                      load_npy("bias.npy")});
#include <cstdint>

#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/rnn.hpp>
#include <xgrad/nn/rnn_cell.hpp>

namespace xgrad::nn::keras {

/// One recurrent cell's weights in Keras's layout (see the table above). An undefined bias
/// means a layer without bias (`use_bias=False`).
struct RecurrentWeights {
  Tensor kernel;
  Tensor recurrent_kernel;
  Tensor bias;
};

/// Copies Keras-layout weights into an RNNCell, LSTMCell (without projection) or GRUCell,
/// in place (the parameters stay the same tensors). Throws naming the cell, the weight and
/// both shapes when they do not fit.
void set_weights(RecurrentCell& cell, const RecurrentWeights& weights);
/// The cell's weights in Keras's layout (new tensors; RNN and LSTM biases summed into one).
RecurrentWeights get_weights(const RecurrentCell& cell);
/// The same for cell (layer, direction) of an RNN, LSTM or GRU layer; direction 1 is the
/// reverse direction of a bidirectional layer (Keras's `Bidirectional` backward layer).
void set_weights(Recurrent& layer, std::int64_t layer_index, const RecurrentWeights& weights,
                 std::int64_t direction = 0);
RecurrentWeights get_weights(const Recurrent& layer, std::int64_t layer_index, std::int64_t direction = 0);

/// Re-initialises every layer in `module` (itself and all submodules) as Keras initialises
/// its counterpart, drawing from xgrad's generator (seed it with `manual_seed`):
/// - RNN, LSTM, GRU cells: the input kernel glorot-uniform, the recurrent kernel orthogonal,
///   biases zero, except an LSTM's forget-gate bias, one (Keras's `unit_forget_bias`). RNN
///   and LSTM cells have two biases that are only added, where Keras has one: `bias_hh` is
///   frozen at zero (requires_grad false), so adaptive optimizers train what Keras trains and
///   `num_parameters(true)` counts what Keras counts;
/// - Linear (Keras's Dense): glorot-uniform weight, zero bias;
/// - Embedding: uniform in [−0.05, 0.05].
/// Other modules keep their values. Example: `nn::keras::initialize(model);`
void initialize(Module& module);

}  // namespace xgrad::nn::keras

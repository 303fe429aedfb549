#pragma once
/// \file
/// Keras's conventions for xgrad's layers: its weight layout (to load weights trained
/// in Keras, or hand xgrad's to Keras) and its initialisation.
///
/// Keras stores a recurrent layer as `kernel` (I, G·H), `recurrent_kernel` (H, G·H) and
/// `bias`, with the gates in its own order; xgrad (as PyTorch) stores weight_ih (G·H, I),
/// weight_hh (G·H, H), bias_ih and bias_hh:
///
/// | Keras layer                | gates (Keras → xgrad) | Keras bias          | xgrad biases                   |
/// |----------------------------|-----------------------|---------------------|--------------------------------|
/// | SimpleRNN                  | h → h                 | (H)                 | bias_ih, bias_hh = 0 (frozen ᶠ)|
/// | LSTM                       | i f c o → i f g o     | (4H)                | bias_ih, bias_hh = 0 (frozen ᶠ)|
/// | GRU, reset_after=True      | z r h → r z n         | (2, 3H): input, rec.| bias_ih, bias_hh               |
/// | GRU, reset_after=False     | z r h → r z n         | (3H)                | bias_ih                        |
///
/// ᶠ Frozen. Keras's SimpleRNN and LSTM have one bias where PyTorch's have two that are only
/// added; trained both, any optimizer would move their sum twice as far as Keras moves its
/// bias. So `set_weights` and `initialize` zero `bias_hh` and freeze it (`requires_grad`
/// false, gradient cleared): it stays in `parameters()`, `named_parameters()` and
/// `state_dict()` (a zero tensor, so checkpoints keep PyTorch's keys and load in PyTorch),
/// optimizers built on `parameters()` skip it (it never gets a gradient), and training after
/// loading Keras weights is Keras's, step for step. `num_parameters(true)` counts what Keras
/// counts. To train both biases as PyTorch does, call `bias_hh.requires_grad_(true)` on the
/// cell. `requires_grad` is not part of a checkpoint: to resume Keras-style training in a new
/// process, build the model, call `nn::keras::initialize` (or `set_weights`), then load.
///
/// Example (weights exported from Keras with `layer.get_weights()` and saved as .npy):
///
///     nn::LSTM lstm(nn::LSTMOptions(16, 8).batch_first(true));
///     nn::keras::set_weights(lstm, 0, {load_npy("kernel.npy"), load_npy("recurrent_kernel.npy"),
///                                      load_npy("bias.npy")});
#include <cstdint>

#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/cells.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/recurrent.hpp>

namespace xgrad::nn::keras {

/// One recurrent cell's weights in Keras's layout (see the table above). An undefined bias
/// means a layer without bias (`use_bias=False`).
struct RecurrentWeights {
  Tensor kernel;            ///< (I, G·H): the input weights, gates in Keras's order
  Tensor recurrent_kernel;  ///< (H, G·H): the recurrent weights
  Tensor bias;              ///< (G·H), or (2, G·H) for a GRU with reset_after=True
};

/// Copies Keras-layout weights into an RNNCell, LSTMCell (without projection) or GRUCell,
/// in place (the parameters stay the same tensors); an RNN's or LSTM's bias_hh becomes zero
/// and frozen (see ᶠ above), so training from here follows Keras. Throws naming the cell,
/// the weight and both shapes when they do not fit, and then changes nothing.
void set_weights(RecurrentCell& cell, const RecurrentWeights& weights);
/// The cell's weights in Keras's layout (new tensors; RNN and LSTM biases summed into one).
RecurrentWeights get_weights(const RecurrentCell& cell);
/// The same for cell (layer, direction) of an RNN, LSTM or GRU layer; direction 1 is the
/// reverse direction of a bidirectional layer (Keras's `Bidirectional` backward layer).
void set_weights(Recurrent& layer, std::int64_t layer_index, const RecurrentWeights& weights,
                 std::int64_t direction = 0);
/// The weights of cell (layer, direction) of an RNN, LSTM or GRU layer in Keras's layout.
RecurrentWeights get_weights(const Recurrent& layer, std::int64_t layer_index, std::int64_t direction = 0);

/// Re-initialises every layer in `module` (itself and all submodules) as Keras initialises
/// its counterpart, drawing from xgrad's generator (seed it with `manual_seed`):
/// - RNN, LSTM, GRU cells: the input kernel glorot-uniform, the recurrent kernel orthogonal,
///   biases zero, except an LSTM's forget-gate bias, one (Keras's `unit_forget_bias`); an
///   RNN's or LSTM's `bias_hh` frozen at zero, as by `set_weights` (see ᶠ above);
/// - Linear (Keras's Dense): glorot-uniform weight, zero bias;
/// - Embedding: uniform in [−0.05, 0.05].
/// Other modules keep their values. Example: `nn::keras::initialize(model);`
void initialize(Module& module);

}  // namespace xgrad::nn::keras

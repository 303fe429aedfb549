#pragma once
/// \file
/// Loading the weights of an ONNX model — one written by PyTorch's `torch.onnx.export`
/// or by `onnx::export_model` — into the matching xgrad module.
#include <string>

#include <xgrad/nn/module.hpp>

namespace xgrad::onnx {

/// Loads the weights of the ONNX model at `path` into `module`'s parameters, in place.
///
/// - An initializer whose name is a parameter's name in `named_parameters()` (`fc.weight`,
///   `lstm.weight_ih_l0`: what both exporters keep for linear layers and embeddings, and what
///   `export_model` keeps for everything) is copied into it.
/// - ONNX RNN / LSTM / GRU nodes, in graph order, fill the module's recurrent layers, layer
///   by layer in `named_modules()` order: W, R and B are split per direction and their gate
///   blocks put back in PyTorch's order (LSTM i,f,g,o; GRU r,z,n). The node's hidden_size,
///   direction, activations and linear_before_reset must be the layer's.
///
/// The model is checked first (ONNX's checker: a truncated file, an unknown op or a malformed
/// graph is refused); every tensor read is checked for dtype and shape. Every parameter of
/// `module` must receive a value, else the error lists those that did not. Throws
/// xgrad::Error naming the file's offending field.
/// Example:
///
///     nn::LSTM lstm(nn::LSTMOptions(1, 64).num_layers(2));
///     onnx::load_weights(lstm, "lstm_from_torch.onnx");
void load_weights(nn::Module& module, const std::string& path);

/// As `load_weights`, from a serialized model.
/// Example: `onnx::load_weights_bytes(model, bytes);`
void load_weights_bytes(nn::Module& module, const std::string& bytes);

}  // namespace xgrad::onnx

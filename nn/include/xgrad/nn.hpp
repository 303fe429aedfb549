#pragma once
/// \file
/// Everything in xgrad's nn module: modules, layers, init, losses and utilities.
///
///     #include <xgrad/nn.hpp>   // or <xgrad/xgrad.hpp>
#include <xgrad/nn/activation.hpp>
#include <xgrad/nn/attention.hpp>
#include <xgrad/nn/cells.hpp>
#include <xgrad/nn/conv.hpp>
#include <xgrad/nn/dropout.hpp>
#include <xgrad/nn/embedding.hpp>
#include <xgrad/nn/init.hpp>
#include <xgrad/nn/keras.hpp>
#include <xgrad/nn/layernorm.hpp>
#include <xgrad/nn/lengths.hpp>
#include <xgrad/nn/linear.hpp>
#include <xgrad/nn/loss.hpp>
#include <xgrad/nn/module.hpp>
#include <xgrad/nn/recurrent.hpp>
#include <xgrad/nn/sequential.hpp>
#include <xgrad/nn/transformer.hpp>
#include <xgrad/nn/utils.hpp>

/// \namespace xgrad::nn
/// Modules and layers composed from core's primitives (Linear, Embedding, RNN, LSTM, GRU, ...),
/// losses, and their utilities; parameter names and semantics are PyTorch's.

/// \namespace xgrad::nn::init
/// In-place parameter initialisers, as torch.nn.init.

/// \namespace xgrad::nn::keras
/// Keras's weight layout and initialisation for xgrad's layers.

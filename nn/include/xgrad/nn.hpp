#pragma once
/// \file Everything in xgrad's nn module: modules, layers, init, losses and utilities.
///     #include <xgrad/nn.hpp>   // or <xgrad/xgrad.hpp>
#include <xgrad/nn/activation.hpp>
#include <xgrad/nn/attention.hpp>
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
#include <xgrad/nn/rnn.hpp>
#include <xgrad/nn/rnn_cell.hpp>
#include <xgrad/nn/sequential.hpp>
#include <xgrad/nn/transformer.hpp>
#include <xgrad/nn/utils.hpp>

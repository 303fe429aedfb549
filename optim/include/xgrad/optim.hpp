#pragma once
/// \file
/// Everything in xgrad's optim module: optimizers and learning-rate schedulers.
///
///     #include <xgrad/optim.hpp>
///     xgrad::optim::Adam opt(params, xgrad::optim::AdamOptions(1e-3));
#include <xgrad/optim/adagrad.hpp>
#include <xgrad/optim/adam.hpp>
#include <xgrad/optim/optimizer.hpp>
#include <xgrad/optim/plateau.hpp>
#include <xgrad/optim/rmsprop.hpp>
#include <xgrad/optim/scheduler.hpp>
#include <xgrad/optim/sgd.hpp>

/// \namespace xgrad::optim
/// Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate schedulers; they see only
/// tensors, never modules.

#pragma once
/// \file The umbrella header: everything a training script needs (core, nn, optim, train).
///     #include <xgrad/xgrad.hpp>
///     using namespace xgrad;
#include <xgrad/core.hpp>
#include <xgrad/nn/nn.hpp>
#include <xgrad/optim/optim.hpp>
#include <xgrad/train/train.hpp>

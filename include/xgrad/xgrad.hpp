#pragma once
/// \file
/// The umbrella header: everything a training script needs (core, nn, optim, train).
///
///     #include <xgrad/xgrad.hpp>
///     using namespace xgrad;
#include <xgrad/core.hpp>
#include <xgrad/nn.hpp>
#include <xgrad/optim.hpp>
#include <xgrad/train.hpp>

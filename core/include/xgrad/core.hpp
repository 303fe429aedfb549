#pragma once
/// \file
/// Everything in xgrad's core module.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/dtype.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/extension.hpp>
#include <xgrad/core/format.hpp>
#include <xgrad/core/gradcheck.hpp>
#include <xgrad/core/io.hpp>
#include <xgrad/core/memory.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/options.hpp>
#include <xgrad/core/parallel.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/core/trace.hpp>

/// \namespace xgrad
/// xgrad's core: Tensor, the ops (the primitives and their compositions), autograd, tensor
/// creation and random draws, safetensors and npy I/O; the other modules' namespaces nest in it.

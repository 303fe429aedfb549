#pragma once
/// \file
/// Deprecated spelling of <xgrad/nn/cells.hpp>, kept so that old includes compile.
#include <xgrad/nn/cells.hpp>

#pragma once
/// \file
/// Deprecated spelling of <xgrad/nn.hpp>, kept so that old includes compile.
#include <xgrad/nn.hpp>

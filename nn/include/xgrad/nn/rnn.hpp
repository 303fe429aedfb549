#pragma once
/// \file
/// Deprecated spelling of <xgrad/nn/recurrent.hpp>, kept so that old includes compile.
#include <xgrad/nn/recurrent.hpp>

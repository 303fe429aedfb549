#pragma once
/// \file
/// Deprecated spelling of <xgrad/optim.hpp>, kept so that old includes compile.
#include <xgrad/optim.hpp>

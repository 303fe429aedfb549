#pragma once
/// \file
/// Deprecated spelling of <xgrad/train.hpp>, kept so that old includes compile.
#include <xgrad/train.hpp>

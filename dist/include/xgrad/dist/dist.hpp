#pragma once
/// \file Deprecated spelling of <xgrad/dist.hpp>, kept so that old includes compile.
#include <xgrad/dist.hpp>

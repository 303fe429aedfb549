#pragma once
/// \file The dist module: data-parallel training over MPI (optional; link xgrad::dist).
///     #include <xgrad/dist.hpp>
#include <xgrad/dist/data_parallel.hpp>
#include <xgrad/dist/process.hpp>
#include <xgrad/dist/process_group.hpp>
#include <xgrad/dist/sampler.hpp>

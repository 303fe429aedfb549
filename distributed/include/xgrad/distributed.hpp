#pragma once
/// \file
/// The distributed module: data-parallel training over MPI (optional; link xgrad::distributed).
///
///     #include <xgrad/distributed.hpp>
#include <xgrad/distributed/data_parallel.hpp>
#include <xgrad/distributed/process.hpp>
#include <xgrad/distributed/process_group.hpp>
#include <xgrad/distributed/sampler.hpp>

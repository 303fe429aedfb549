#pragma once
/// \file
/// The distributed module: data-parallel training over MPI (optional; link xgrad::distributed).
///
///     #include <xgrad/distributed.hpp>
#include <xgrad/distributed/data_parallel.hpp>
#include <xgrad/distributed/process.hpp>
#include <xgrad/distributed/process_group.hpp>
#include <xgrad/distributed/sampler.hpp>

/// \namespace xgrad::distributed
/// Data-parallel training over MPI: the process Context, collectives, DataParallel and the
/// DistributedSampler.

#pragma once
/// \file
/// The MPI job as train::fit's process group.
#include <memory>

#include <xgrad/train/fit.hpp>

namespace xgrad::distributed {

/// All ranks of the job, for train::FitOptions::process_group (needs a live distributed::Context).
/// Example:
///
///     train::fit(model, loss, opt, loader, train::FitOptions().epochs(10).process_group(distributed::process_group()));
std::shared_ptr<const train::ProcessGroup> process_group();

}  // namespace xgrad::distributed

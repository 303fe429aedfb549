// The MPI job as train's ProcessGroup: rank, size and sums of doubles over MPI_COMM_WORLD.
#include <xgrad/distributed/process_group.hpp>

#include "mpi_util.hpp"

namespace xgrad::distributed {

namespace {
class WorldGroup : public train::ProcessGroup {
 public:
  int rank() const override { return distributed::rank(); }
  int size() const override { return distributed::world_size(); }
  void sum(std::vector<double>& values) const override {
    detail::require_initialized("distributed::process_group");
    // fit sums after every batch: the sum travels while the step guard checks that every rank
    // is here (a mismatch ends the job before the result is used), saving a round trip.
    MPI_Request request = MPI_REQUEST_NULL;
    detail::check(MPI_Iallreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM,
                                 MPI_COMM_WORLD, &request),
                  "distributed::process_group: sum");
    detail::agree({detail::Step::collective, detail::Step::group_sum, 0});
    detail::check(MPI_Wait(&request, MPI_STATUS_IGNORE), "distributed::process_group: sum");
  }
};
}  // namespace

std::shared_ptr<const train::ProcessGroup> process_group() {
  detail::require_initialized("distributed::process_group");
  return std::make_shared<WorldGroup>();
}

}  // namespace xgrad::distributed

// The MPI job as train's ProcessGroup: rank, size and sums of doubles over MPI_COMM_WORLD.
#include <xgrad/dist/process_group.hpp>

#include "mpi_util.hpp"

namespace xgrad::dist {

namespace {
class WorldGroup : public train::ProcessGroup {
 public:
  int rank() const override { return dist::rank(); }
  int size() const override { return dist::world_size(); }
  void sum(std::vector<double>& values) const override {
    detail::require_initialized("dist::process_group");
    detail::check(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                  "dist::process_group: sum");
  }
};
}  // namespace

std::shared_ptr<const train::ProcessGroup> process_group() {
  detail::require_initialized("dist::process_group");
  return std::make_shared<WorldGroup>();
}

}  // namespace xgrad::dist

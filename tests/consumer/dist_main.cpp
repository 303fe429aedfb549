// The installed dist module from an outside project: MPI starts (a job of one process when
// run without mpirun), a collective runs, and DataParallel wraps a layer. Linked through
// xgrad::dist, found with find_package(xgrad COMPONENTS dist).
#include <cstdio>

#include <xgrad/dist.hpp>
#include <xgrad/dist/dist.hpp>  // the deprecated spelling still compiles
#include <xgrad/xgrad.hpp>

int main(int argc, char** argv) {
  using namespace xgrad;
  dist::Context mpi(argc, argv);
  Tensor t = ones({3});
  dist::all_reduce(t);
  nn::Linear layer(4, 2);
  dist::DataParallel ddp(layer);
  nn::mse_loss(layer(ones({5, 4})), zeros({5, 2})).backward();
  const bool ok = t.to_vector<float>()[0] == static_cast<float>(dist::world_size()) && layer.weight.grad().defined();
  std::printf("dist consumer: %d rank(s), all_reduce and DataParallel %s\n", dist::world_size(), ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

// The installed distributed module from an outside project: MPI starts (a job of one process when
// run without mpirun), a collective runs, and DataParallel wraps a layer. Linked through
// xgrad::distributed, found with find_package(xgrad COMPONENTS distributed).
#include <cstdio>

#include <xgrad/distributed.hpp>
#include <xgrad/xgrad.hpp>

int main(int argc, char** argv) {
  using namespace xgrad;
  distributed::Context mpi(argc, argv);
  Tensor t = ones({3});
  distributed::all_reduce(t);
  nn::Linear layer(4, 2);
  distributed::DataParallel ddp(layer);
  nn::mse_loss(layer(ones({5, 4})), zeros({5, 2})).backward();
  const bool ok = t.to_vector<float>()[0] == static_cast<float>(distributed::world_size()) && layer.weight.grad().defined();
  std::printf("distributed consumer: %d rank(s), all_reduce and DataParallel %s\n", distributed::world_size(), ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

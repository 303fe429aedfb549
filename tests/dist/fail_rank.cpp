// Rank 1 throws while the other ranks wait for it in a collective. The job must end within
// seconds with rank 1's message and a non-zero exit, not hang (tests/dist/expect_failure.cmake).
//   fail_rank escape   the exception escapes main
//   fail_rank caught   main catches it (after it unwound past dist::Context) and returns 1
#include <cstdio>
#include <exception>
#include <string>

#include <xgrad/dist/process.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {
void run_training(int& argc, char**& argv) {
  auto mpi = dist::init(argc, argv);
  Tensor t = ones({4});
  dist::all_reduce(t);  // every rank gets here
  if (dist::rank() == 1) throw Error("rank 1 found a corrupt batch at step 3");
  dist::all_reduce(t);  // the others wait here for rank 1, which never comes
  dist::barrier();
}
}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "escape";
  if (mode == "caught") {
    try {
      run_training(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "training failed: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  run_training(argc, argv);
  return 0;
}

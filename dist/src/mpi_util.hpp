#pragma once
// dist's private helpers around MPI: the only files that include <mpi.h> are dist's .cpp files.
#include <mpi.h>

#include <string>

#include <xgrad/core/error.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/dist/process.hpp>

namespace xgrad::dist::detail {

// Throws an Error naming `what` with MPI's own message when `code` is not MPI_SUCCESS.
inline void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw Error(std::string(what) + ": MPI failed: " + std::string(text, static_cast<std::size_t>(length)));
}

// Throws unless a Context is alive.
void require_initialized(const char* op);

// The MPI type of a dtype; throws naming `op` for b8.
MPI_Datatype mpi_type(DType dtype, const char* op);

}  // namespace xgrad::dist::detail

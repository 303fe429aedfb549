#pragma once
// Private to core: OpenBLAS's thread count as the process started. matmul.cpp lowers OpenBLAS's
// setting to one thread for small GEMMs, so openblas_get_num_threads() read later says 1.
namespace xgrad {
int blas_threads_at_start();
}  // namespace xgrad

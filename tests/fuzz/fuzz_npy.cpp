/// Fuzz target: `load_npy` on arbitrary bytes; a loaded array is summed (bool arrays are
/// compared, which reads every byte as a bool: they must all be 0 or 1).
#include <xgrad/core.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = xgrad::fuzz::write_input(data, size);
  xgrad::fuzz::expect_xgrad_errors_only("load_npy", [&] {
    const xgrad::Tensor t = xgrad::load_npy(path);
    if (t.numel() == 0) {
      // An empty array with a huge outer extent must cost nothing to reduce.
      const xgrad::Tensor d = t.to(xgrad::DType::f64);
      (void)d.sum().item();
      if (t.dim() > 0) (void)d.sum({0}).numel();
      return;
    }
    if (t.dtype() == xgrad::DType::b8) {
      const bool* b = t.data<bool>();
      std::int64_t on = 0;
      for (std::int64_t i = 0; i < t.numel(); ++i) on += b[i] ? 1 : 0;
      if (on > t.numel()) std::abort();
    } else {
      (void)t.to(xgrad::DType::f64).sum().item();
    }
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  using namespace xgrad;
  save_npy(dir + "/f4.npy", arange(0.0, 6.0).reshape({2, 3}));
  save_npy(dir + "/f8.npy", full({3}, -1.5, DType::f64));
  save_npy(dir + "/i8.npy", full({2, 1, 2}, 7, DType::i64));
  save_npy(dir + "/b1.npy", gt(arange(0.0, 5.0), full({}, 2.0)));
  save_npy(dir + "/scalar.npy", full({}, 2.0));
}

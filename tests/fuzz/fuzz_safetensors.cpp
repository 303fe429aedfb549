/// Fuzz target: `load_safetensors` on arbitrary bytes, then every tensor it returns is read
/// and permuted (a loaded shape must be one the rest of the library can work with), and summed.
#include <numeric>
#include <vector>

#include <xgrad/core.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = xgrad::fuzz::write_input(data, size);
  xgrad::fuzz::expect_xgrad_errors_only("load_safetensors", [&] {
    const xgrad::SafetensorsFile file = xgrad::load_safetensors(path);
    for (const auto& [name, t] : file.tensors) {
      std::vector<std::int64_t> dims(static_cast<std::size_t>(t.dim()));
      std::iota(dims.rbegin(), dims.rend(), 0);  // reversed axes
      const xgrad::Tensor p = t.permute(dims).contiguous();
      if (p.numel() != t.numel()) std::abort();
      // Reductions run on empty tensors too: an empty tensor with a huge outer extent must
      // cost nothing (a 74-byte file of shape [5e8, 0, 0] once made sum() run for seconds and
      // allocate gigabytes).
      const xgrad::Tensor d = t.to(xgrad::DType::f64);
      (void)d.sum().item();
      if (t.dim() > 0) (void)d.sum({0}).numel();
    }
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  using namespace xgrad;
  save_safetensors(dir + "/mixed.safetensors",
                   {{"w", arange(0.0, 6.0).reshape({2, 3})},
                    {"b", full({3}, 0.5, DType::f64)},
                    {"steps", full({}, 4, DType::i64)},
                    {"mask", gt(arange(0.0, 4.0), full({}, 1.0))},
                    {"empty", zeros({0, 3})}},
                   {{"format", "pt"}, {"epoch", "3"}});
  save_safetensors(dir + "/none.safetensors", {});
}

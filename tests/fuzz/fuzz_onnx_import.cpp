/// Fuzz target: `onnx::load_weights` on arbitrary bytes, into the module PyTorch's exported
/// fixture matches (tests/onnx/tagger.hpp); a load that succeeds is followed by a forward.
#include <xgrad/onnx.hpp>
#include <xgrad/xgrad.hpp>

#include "../onnx/tagger.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = xgrad::fuzz::write_input(data, size);
  xgrad::fuzz::expect_xgrad_errors_only("onnx::load_weights", [&] {
    xgrad_test::TorchTagger model;
    model.eval();
    xgrad::onnx::load_weights(model, path);
    xgrad::NoGradGuard no_grad;
    (void)model.forward(xgrad::zeros({2, 3}, xgrad::DType::i64)).sum().item();
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  using namespace xgrad;
  manual_seed(0);
  xgrad_test::TorchTagger model;
  model.eval();
  const std::string bytes = onnx::export_model_bytes(
      model, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.forward(in[0])}; },
      {randint(0, 20, {2, 3})});
  write_file_atomic(dir + "/xgrad_export.onnx", bytes);
  write_file_atomic(dir + "/truncated.onnx", bytes.substr(0, bytes.size() / 2));
}

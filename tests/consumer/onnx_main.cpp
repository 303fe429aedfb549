// The installed onnx module from an outside project: an LSTM exported to ONNX (checked by ONNX's
// checker) and its weights loaded back into a fresh one. Linked through xgrad::onnx, found with
// find_package(xgrad COMPONENTS onnx).
#include <cstdio>

#include <xgrad/onnx.hpp>
#include <xgrad/xgrad.hpp>

int main() {
  using namespace xgrad;
  nn::LSTM lstm(nn::LSTMOptions(3, 4));
  lstm.eval();
  const std::string bytes = onnx::export_model_bytes(
      lstm, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{lstm(in[0]).output}; }, {randn({5, 2, 3})},
      onnx::ExportOptions().dynamic_axes({{0, 0, "steps"}, {0, 1, "batch"}}));
  onnx::check_model_bytes(bytes);
  nn::LSTM copy(nn::LSTMOptions(3, 4));
  onnx::load_weights_bytes(copy, bytes);
  const bool ok = allclose(copy.parameters()[0], lstm.parameters()[0], 0, 0);
  std::printf("onnx consumer: %zu bytes exported, weights loaded back %s\n", bytes.size(), ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

// Exports the inference workloads of bench_rnn (infer_<cell>_<size>) to ONNX for bench/ort.sh:
// the same model, weights and input as bench_rnn and bench/rnn_bench.py read from
// `<inputs>/<cell>_<size>.safetensors`, written as `<inputs>/<cell>_<size>.onnx` with the input
// as `<inputs>/<cell>_<size>_x.npy` (T, B, I). Prints xgrad's output checksum (mean |y|),
// which bench/ort_bench.js prints for ONNX Runtime's.
//
// Usage: bench_ort_export [--filter TEXT] [--inputs DIR]
#include <xgrad/onnx.hpp>
#include <xgrad/xgrad.hpp>

#include "rnn_workloads.hpp"

int main(int argc, char** argv) {
  using namespace xgrad;
  std::string filter, inputs = "build/bench-results/rnn-inputs";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--filter" || arg == "--inputs") && i + 1 < argc) (arg == "--filter" ? filter : inputs) = argv[++i];
    else {
      fmt::print(stderr, "usage: {} [--filter TEXT] [--inputs DIR]\n", argv[0]);
      return 2;
    }
  }
  try {
    for (const std::string cell : {"rnn", "lstm", "gru"})
      for (const bench::Size& s : bench::kSizes) {
        const std::string id = fmt::format("infer_{}_{}", cell, s.name);
        if (id.find(filter) == std::string::npos) continue;
        auto model = bench::make_model(cell, s);
        const bench::Data d = bench::load_inputs(inputs, cell, s, *model);
        model->eval();
        nn::Recurrent& layer = *model;
        auto forward = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{layer.Recurrent::forward(in[0]).output}; };
        const std::string stem = fmt::format("{}/{}_{}", inputs, cell, s.name);
        onnx::export_model(layer, forward, {d.input}, stem + ".onnx",
                           onnx::ExportOptions().input_names({"x"}).output_names({"y"}));
        save_npy(stem + "_x.npy", d.input);
        NoGradGuard no_grad;
        fmt::print("{} exported: {}.onnx, xgrad output_mean_abs={:.9g}\n", id, stem,
                   forward({d.input})[0].abs().mean().item());
      }
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_ort_export: {}\n", e.what());
    return 1;
  }
  return 0;
}

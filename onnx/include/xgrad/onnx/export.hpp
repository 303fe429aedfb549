#pragma once
/// \file
/// ONNX export by tracing: run a model's forward once on example inputs, record the
/// primitives it executes, and write them as an ONNX model (opset 17) that ONNX Runtime and
/// every other ONNX engine runs. Recurrent layers (`nn::RNN`, `nn::LSTM`, `nn::GRU`) become
/// ONNX's own RNN, LSTM and GRU ops, one per layer, so the sequence length stays dynamic.
///
/// What the trace cannot see is fixed at export: Python-style control flow in `forward`
/// (an `if` on a value), lengths given as a vector rather than a tensor input, and tensors
/// created inside forward (`zeros`, `from_vector`) become constants of the exported model (with
/// a warning on stderr when one has a dimension of a dynamic axis's example size).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/core/options.hpp>
#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::onnx {

/// The ONNX opset the exporter writes (the default domain).
inline constexpr std::int64_t opset_version = 17;

/// A dimension of a model input that varies from call to call (its size in the example input
/// is only an example). Every dimension computed from it stays dynamic in the exported model;
/// outputs get `name` (or a product such as "batch*sequence") as their dim_param.
/// Example: `onnx::DynamicAxis{0, 1, "sequence"}   // input 0, axis 1`
struct DynamicAxis {
  /// Which example input (0-based).
  std::size_t input = 0;
  /// Which axis of that input.
  std::int64_t axis = 0;
  /// The symbolic name written into the model ("batch", "sequence").
  std::string name;
};

/// Options of `export_model`.
/// Example:
///
///     onnx::ExportOptions().input_names({"x"}).output_names({"y"})
///         .dynamic_axes({{0, 0, "batch"}, {0, 1, "sequence"}})
class ExportOptions {
 public:
  /// Names of the graph inputs, one per example input (default "input0", "input1", ...).
  XGRAD_ARG(std::vector<std::string>, input_names) = {};
  /// Names of the graph outputs, one per returned tensor (default "output0", ...).
  XGRAD_ARG(std::vector<std::string>, output_names) = {};
  /// The dynamic dimensions of the inputs (default none: every shape is the example's).
  /// Give each dynamic axis an example size of at least 2 that differs from the other
  /// dynamic axes' sizes: the exporter tells them apart by their sizes.
  XGRAD_ARG(std::vector<DynamicAxis>, dynamic_axes) = {};
  /// Written as the model's producer_name.
  XGRAD_ARG(std::string, producer_name) = "xgrad";
  /// The model's doc_string.
  XGRAD_ARG(std::string, doc_string) = "";
};

/// A model's forward as the exporter calls it: the example inputs in, the outputs out.
/// Example: `[&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model(in[0])}; }`
using ExportForward = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;

/// Exports `module` as the ONNX model `forward` computes, to `path` (written atomically).
///
/// `forward` runs once on `example_inputs`, with grad mode off. Every parameter and buffer of
/// `module` becomes an initializer named as in `named_parameters()` (`lstm.weight_ih_l0`);
/// inputs and outputs are named by `options`. The model is checked with ONNX's checker and
/// full shape inference before it is written. The module must be in eval mode (`eval()`):
/// dropout exports as identity; a module in training mode is refused, as is any primitive
/// with no ONNX equivalent (the error names it). Throws xgrad::Error.
/// Example:
///
///     model.eval();
///     onnx::export_model(model, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model(in[0])}; },
///                        {x}, "model.onnx", onnx::ExportOptions().dynamic_axes({{0, 0, "batch"}}));
void export_model(const nn::Module& module, const ExportForward& forward, const std::vector<Tensor>& example_inputs,
                  const std::string& path, const ExportOptions& options = {});

/// As `export_model`, returning the serialized model instead of writing a file.
/// Example: `std::string bytes = onnx::export_model_bytes(model, forward, {x});`
std::string export_model_bytes(const nn::Module& module, const ExportForward& forward,
                               const std::vector<Tensor>& example_inputs, const ExportOptions& options = {});

/// True when the exporter maps the primitive `name` (an entry of `xgrad::primitives()`) to
/// ONNX nodes; false for the ones it refuses with a reason (`as_strided`, `copy_slices`) and for
/// names it does not know (user-defined ops). Example: `onnx::is_exportable("lerp") == true`
bool is_exportable(const std::string& name);

/// Checks the ONNX model file at `path` with ONNX's checker and full shape inference (type
/// checks and strict mode, as Python's `onnx.checker.check_model(m, full_check=True)`).
/// Throws xgrad::Error with ONNX's message when the model is invalid or unreadable.
/// Example: `onnx::check_model("model.onnx");`
void check_model(const std::string& path);

/// As `check_model`, for a serialized model.
/// Example: `onnx::check_model_bytes(onnx::export_model_bytes(model, forward, {x}));`
void check_model_bytes(const std::string& bytes);

}  // namespace xgrad::onnx

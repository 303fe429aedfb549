#pragma once
/// \file
/// Tracing: an observer of the primitives a thread runs, for exporters (xgrad_onnx) and
/// tools. Core knows nothing of what a tracer does with what it sees.
///
/// While a `Tracer` is installed on a thread (`TracerGuard`), every primitive that thread runs
/// — built-in or user-defined (`record_op`), with or without grad mode — is reported once,
/// after it ran, with its inputs, outputs and attributes (the arguments that are not tensors:
/// `dim`, `start`, `exponent`, ...); so are the comparisons (`eq`, `lt`, ...), which make
/// masks, and every in-place write. Layers that a tracer may want to see whole (the recurrent
/// driver) open a `Composite` scope around the primitives they run, with a kind and attributes
/// of their own.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <xgrad/core/error.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad::trace {

/// The value of one attribute: an integer, a real, a list of integers, a string or a list of
/// strings. Example: `trace::Value{std::int64_t{2}}`.
using Value = std::variant<std::int64_t, double, std::vector<std::int64_t>, std::string, std::vector<std::string>>;

/// Named attributes, in the order the op gives them. Example: `{{"dim", std::int64_t{1}}}`.
using Attributes = std::vector<std::pair<std::string, Value>>;

/// The attribute `name` of `attributes` as a T; throws an Error naming `op` and the attribute
/// when it is missing or of another type.
/// Example: `std::int64_t dim = trace::get<std::int64_t>(attrs, "dim", "narrow");`
template <class T>
const T& get(const Attributes& attributes, const std::string& name, const std::string& op) {
  for (const auto& [key, value] : attributes)
    if (key == name) {
      if (const T* v = std::get_if<T>(&value)) return *v;
      throw Error(op + ": attribute '" + name + "' has an unexpected type");
    }
  throw Error(op + ": attribute '" + name + "' is missing");
}

/// Receives what a thread runs while installed. Callbacks run with tracing suspended, so a
/// tracer may compute with tensors without seeing its own work. Undefined tensors stand for
/// absent optional inputs (a linear without bias).
class Tracer {
 public:
  virtual ~Tracer() = default;
  /// The primitive `name` ran on `inputs` and produced `outputs`.
  virtual void primitive(const std::string& name, std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                         const Attributes& attributes) = 0;
  /// `self` is about to be written in place by `op` (`add_`, `copy_`, `fill_`, ...).
  virtual void in_place(const std::string& op, const Tensor& self) = 0;
  /// A composite op of `kind` begins; the primitives it runs are reported until its end.
  virtual void begin_composite(const std::string& kind, std::span<const Tensor> inputs,
                               const Attributes& attributes) = 0;
  /// The composite op of `kind` that began last ends with `outputs` (empty when it threw).
  virtual void end_composite(const std::string& kind, std::span<const Tensor> outputs) = 0;
};

/// Installs `tracer` on this thread for the guard's lifetime (the previous one, if any, is
/// restored after). Example: `{ trace::TracerGuard guard(my_tracer); model(x); }`
class TracerGuard {
 public:
  /// Installs `tracer`, remembering the tracer it replaces.
  explicit TracerGuard(Tracer& tracer);
  ~TracerGuard();
  TracerGuard(const TracerGuard&) = delete;
  TracerGuard& operator=(const TracerGuard&) = delete;

 private:
  Tracer* previous_;
};

/// The tracer installed on this thread, or nullptr.
Tracer* active();

/// A composite op as one scope: reports its beginning at construction (when a tracer is
/// active; otherwise does nothing) and its end at `finish`, or at destruction with no outputs
/// when an exception left the scope.
/// Example:
///
///     trace::Composite scope("recurrent", {x, h0}, {{"cell", std::string("LSTM")}});
///     ... compute out, hn ...
///     scope.finish({out, hn});
class Composite {
 public:
  /// Opens a scope of kind `kind` (e.g. "recurrent") over `inputs`, described by `attributes`.
  Composite(std::string kind, std::vector<Tensor> inputs, Attributes attributes);
  ~Composite();
  Composite(const Composite&) = delete;
  Composite& operator=(const Composite&) = delete;
  /// Reports the end of the scope with its outputs.
  void finish(const std::vector<Tensor>& outputs);

 private:
  std::string kind_;
  Tracer* tracer_;
};

/// For core's ops: the attributes of the primitive `name` this thread records next. Call it
/// only when `active()`, right before recording.
void annotate(const char* name, Attributes attributes);

}  // namespace xgrad::trace

#pragma once
// The recording path's side of tracing (trace.cpp): core's ops and record_op report each
// primitive here; nothing happens unless a tracer is installed on the thread.
#include <string>

#include <xgrad/core/trace.hpp>

#include "record.hpp"

namespace xgrad::trace {

// True when a tracer is installed on this thread and not suspended.
bool tracing();
// Reports `name(inputs) -> outputs[0..count)` to the active tracer, with the attributes the
// op annotated (if any). No-op when not tracing.
void report(const std::string& name, TensorList inputs, const Tensor* outputs, std::size_t count);

// Reports an in-place write into `self` by `op` to the active tracer. No-op when not tracing.
void report_in_place(const char* op, const Tensor& self);

}  // namespace xgrad::trace

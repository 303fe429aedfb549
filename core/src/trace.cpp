// Tracing: a thread-local tracer that the recording path (extension.cpp) reports every
// primitive to. Core only forwards what ran; what it means is the tracer's business.
#include "trace_hook.hpp"

#include <vector>

namespace xgrad::trace {

namespace {

thread_local Tracer* current = nullptr;
// Attributes annotated for the next primitive, and its name: an op that annotates and then
// throws before recording must not lend its attributes to the next op.
thread_local const char* pending_name = nullptr;
thread_local Attributes pending;

// Suspends tracing while a tracer's callback runs: what the tracer computes is not the model.
class Suspend {
 public:
  Suspend() : saved_(current) { current = nullptr; }
  ~Suspend() { current = saved_; }
  Suspend(const Suspend&) = delete;
  Suspend& operator=(const Suspend&) = delete;

 private:
  Tracer* saved_;
};

}  // namespace

TracerGuard::TracerGuard(Tracer& tracer) : previous_(current) { current = &tracer; }
TracerGuard::~TracerGuard() {
  current = previous_;
  pending_name = nullptr;
  pending.clear();
}

Tracer* active() { return current; }
bool tracing() { return current != nullptr; }

void annotate(const char* name, Attributes attributes) {
  pending_name = name;
  pending = std::move(attributes);
}

void report(const std::string& name, TensorList inputs, const Tensor* outputs, std::size_t count) {
  if (!current) return;
  Attributes attributes;
  if (pending_name && name == pending_name) attributes = std::move(pending);
  pending_name = nullptr;
  pending.clear();
  std::vector<Tensor> in;
  in.reserve(inputs.size());
  for (const Tensor& t : inputs) in.push_back(t);
  Tracer* tracer = current;
  Suspend suspend;
  tracer->primitive(name, in, std::span<const Tensor>(outputs, count), attributes);
}

void report_in_place(const char* op, const Tensor& self) {
  if (!current) return;
  Tracer* tracer = current;
  Suspend suspend;
  tracer->in_place(op, self);
}

Composite::Composite(std::string kind, std::vector<Tensor> inputs, Attributes attributes)
    : kind_(std::move(kind)), tracer_(current) {
  if (!tracer_) return;
  Suspend suspend;
  tracer_->begin_composite(kind_, inputs, attributes);
}

void Composite::finish(const std::vector<Tensor>& outputs) {
  if (!tracer_) return;
  Tracer* tracer = std::exchange(tracer_, nullptr);
  Suspend suspend;
  tracer->end_composite(kind_, outputs);
}

Composite::~Composite() {
  if (!tracer_) return;
  Suspend suspend;
  try {
    tracer_->end_composite(kind_, {});
  } catch (...) {  // a destructor during unwinding must not throw; the first error stands
  }
}

}  // namespace xgrad::trace

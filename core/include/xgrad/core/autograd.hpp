#pragma once
/// \file
/// Switches of the autograd engine: grad mode and anomaly detection; callbacks at the
/// end of a backward pass.
#include <functional>

namespace xgrad {

/// True unless a NoGradGuard is alive on this thread.
bool is_grad_enabled();

/// While alive, ops on this thread record nothing (as `torch.no_grad()`).
/// Example: `{ NoGradGuard g; w.add_(w.grad(), -lr); }`
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// True while an AnomalyGuard is alive on this thread.
bool is_anomaly_enabled();

/// While alive, every op checks its output and backward checks every gradient for NaN or
/// Inf, and throws an Error naming the op that produced it (as `torch.autograd.detect_anomaly`).
/// Example: `AnomalyGuard a; loss.backward();  // throws "anomaly: backward of 'log' ..."`
class AnomalyGuard {
 public:
  AnomalyGuard();
  ~AnomalyGuard();
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  bool previous_;
};

/// Runs `callback` once the backward pass now running on this thread has finished (after
/// every gradient is accumulated and every hook has run), as PyTorch's
/// `Variable._execution_engine.queue_callback`. Call it from a hook; throws outside backward.
/// Callbacks run in the order queued; one that throws ends backward with its exception.
void queue_callback(std::function<void()> callback);

}  // namespace xgrad

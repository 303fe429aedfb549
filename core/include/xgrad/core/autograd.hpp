#pragma once
/// \file Switches of the autograd engine: grad mode and anomaly detection.

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

}  // namespace xgrad

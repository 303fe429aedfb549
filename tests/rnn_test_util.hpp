#pragma once
// Helpers shared by the recurrent-layer tests.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include <xgrad/xgrad.hpp>

namespace rnn_test {

using namespace xgrad;

/// max |a − b| over all elements (shapes must match); NaN where only one of them is NaN
/// (equal infinities and NaN against NaN count as equal).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) != std::isnan(y[i])) return NAN;  // std::max would skip a NaN
    if (!std::isnan(x[i])) worst = std::max(worst, x[i] == y[i] ? 0.0 : std::abs(x[i] - y[i]));
  }
  return worst;
}

/// gradcheck over `inputs` and over parameters held by a module. gradcheck differentiates
/// with respect to fresh leaves, so while it evaluates `fn` its leaves stand in for the
/// parameters (as torch.func.functional_call does); the originals are put back afterwards.
/// `params` point at the members the module's forward reads.
inline GradcheckResult gradcheck_with_parameters(const std::vector<Tensor*>& params, std::vector<Tensor> inputs,
                                                 const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                                 const GradcheckOptions& options = {}) {
  const std::size_t n = inputs.size();
  std::vector<Tensor> saved;
  for (Tensor* p : params) {
    saved.push_back(*p);
    inputs.push_back(*p);
  }
  struct Restore {
    const std::vector<Tensor*>& params;
    const std::vector<Tensor>& saved;
    ~Restore() {
      for (std::size_t i = 0; i < params.size(); ++i) *params[i] = saved[i];
    }
  } restore{params, saved};
  return gradcheck(
      [&](const std::vector<Tensor>& leaves) {
        for (std::size_t i = 0; i < params.size(); ++i) *params[i] = leaves[n + i];
        return fn(std::vector<Tensor>(leaves.begin(), leaves.begin() + static_cast<std::ptrdiff_t>(n)));
      },
      inputs, options);
}

/// The parameter members of the built-in cells (undefined ones skipped).
inline std::vector<Tensor*> builtin_parameter_slots(nn::RecurrentCell& cell) {
  std::vector<Tensor*> slots;
  if (auto* c = dynamic_cast<nn::LSTMCell*>(&cell))
    slots = {&c->weight_ih, &c->weight_hh, &c->bias_ih, &c->bias_hh, &c->weight_hr};
  else if (auto* g = dynamic_cast<nn::GRUCell*>(&cell))
    slots = {&g->weight_ih, &g->weight_hh, &g->bias_ih, &g->bias_hh};
  else if (auto* r = dynamic_cast<nn::RNNCell*>(&cell))
    slots = {&r->weight_ih, &r->weight_hh, &r->bias_ih, &r->bias_hh};
  std::erase_if(slots, [](Tensor* t) { return !t->defined(); });
  return slots;
}

/// A (T, B, V) one-hot encoding of symbols given as seq[t][b], in `dtype`.
inline Tensor one_hot_sequence(const std::vector<std::vector<std::int64_t>>& seq, std::int64_t vocab) {
  const auto T = static_cast<std::int64_t>(seq.size()), B = static_cast<std::int64_t>(seq[0].size());
  std::vector<float> data(static_cast<std::size_t>(T * B * vocab), 0.0f);
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t b = 0; b < B; ++b)
      data[static_cast<std::size_t>((t * B + b) * vocab + seq[t][b])] = 1.0f;
  return from_vector(data, {T, B, vocab});
}

}  // namespace rnn_test

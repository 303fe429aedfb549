// Helpers shared by the optimizers' sources (private to optim).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/optim/optimizer.hpp>

namespace xgrad::optim::detail {

/// The largest step or epoch count a loaded state may hold: 2^53, the counts a double still
/// represents exactly (no run takes that many steps). Above it, counting on overflows.
inline constexpr std::int64_t kMaxCount = std::int64_t{1} << 53;

/// A count saved by a state_dict(), checked: one int64 number in [lowest, 2^53]. Errors begin
/// with `where` ("StepLR: load_state_dict") and name `key`.
inline std::int64_t count_value(const Tensor& t, const std::string& where, const std::string& key,
                                std::int64_t lowest) {
  if (t.numel() != 1 || t.dtype() != DType::i64)
    throw Error(fmt::format("{}: '{}' must be one int64 number, got shape {} and dtype {}", where, key,
                            shape_str(t.shape()), dtype_name(t.dtype())));
  const auto v = t.item<std::int64_t>();
  if (v < lowest || v > kMaxCount) throw Error(fmt::format("{}: '{}' is {}, outside [{}, 2^53]", where, key, v, lowest));
  return v;
}

/// A 0-d i64 tensor.
inline Tensor int_scalar(std::int64_t v) { return from_vector(std::vector<std::int64_t>{v}, {}); }

/// Calls f.template operator()<float>() or <double>() for the parameter's dtype.
template <class F>
void dispatch_float(DType dtype, F&& f) {
  if (dtype == DType::f32)
    f.template operator()<float>();
  else
    f.template operator()<double>();
}

/// The state buffer `name`, created filled with `value` (shape and dtype of `param`) when
/// absent; `created` tells which.
inline Tensor buffer(ParamState& state, const std::string& name, const Tensor& param, double value,
                     bool* created = nullptr) {
  auto it = state.buffers.find(name);
  if (created) *created = it == state.buffers.end();
  if (it != state.buffers.end()) return it->second;
  Tensor t = full(param.shape(), value, param.dtype());
  state.buffers.emplace(name, t);
  return t;
}

/// The options cast to their concrete type; throws naming the optimizer if they are another kind.
template <class Options>
const Options& options_as(const OptimizerOptions& options, std::string_view optimizer, std::string_view expected) {
  const auto* o = dynamic_cast<const Options*>(&options);
  if (!o) throw Error(std::string(optimizer) + ": a parameter group's options are not " + std::string(expected));
  return *o;
}

/// Throws "<optimizer>: invalid <what> <value> (must be <rule>)" unless ok.
inline void check(bool ok, std::string_view optimizer, std::string_view what, double value, std::string_view rule) {
  if (!ok) throw Error(fmt::format("{}: invalid {} {} (must be {})", optimizer, what, value, rule));
}

}  // namespace xgrad::optim::detail

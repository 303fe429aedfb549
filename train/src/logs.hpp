// What fit and the callbacks share about Logs.
#pragma once
#include <string>

#include <xgrad/train/fit.hpp>

namespace xgrad::train::detail {

// "loss, val_loss, ...": the names a Logs holds, for error messages.
inline std::string names_in(const Logs& logs) {
  std::string names;
  for (const auto& [key, value] : logs) names += (names.empty() ? "" : ", ") + key;
  return names;
}

}  // namespace xgrad::train::detail

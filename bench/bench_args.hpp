#pragma once
// Command-line parsing the C++ benchmarks share.
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

// The integer after `flag`; throws naming the flag when it is missing, not an integer or below `min`.
inline long parse_count(std::string_view flag, const char* value, long min) {
  if (value == nullptr) throw std::runtime_error(fmt::format("{} needs a value", flag));
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || v < min)
    throw std::runtime_error(fmt::format("{}: expected an integer >= {}, got '{}'", flag, min, value));
  return v;
}

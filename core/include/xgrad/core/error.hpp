#pragma once
/// \file
/// The one exception type xgrad throws for user mistakes.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace xgrad {

/// Thrown for every user mistake (shape or dtype mismatch, bad axis or index, backward
/// through a freed graph, malformed file). The message starts with the operation's name,
/// e.g. `matmul: cannot multiply (3, 4) by (5, 6)`.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `a × b` for a size or count computed from user input (rows × columns, gates × hidden
/// size): throws an Error "<what> = <a> × <b>, more than an int64 can count" instead of
/// wrapping around, and refuses a negative factor likewise. `what` starts with the operation.
/// Example: `std::int64_t n = checked_mul(rows, maxlen, "pad_sequences: sequences × maxlen");`
inline std::int64_t checked_mul(std::int64_t a, std::int64_t b, std::string_view what) {
  std::int64_t product = 0;
  if (a < 0 || b < 0)
    throw Error(std::string(what) + " = " + std::to_string(a) + " × " + std::to_string(b) + ": a size cannot be negative");
  if (__builtin_mul_overflow(a, b, &product))
    throw Error(std::string(what) + " = " + std::to_string(a) + " × " + std::to_string(b) +
                ", more than an int64 can count");
  return product;
}

}  // namespace xgrad

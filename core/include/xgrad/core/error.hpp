#pragma once
/// \file The one exception type xgrad throws for user mistakes.
#include <stdexcept>
#include <string>

namespace xgrad {

/// Thrown for every user mistake (shape or dtype mismatch, bad axis or index, backward
/// through a freed graph, malformed file). The message starts with the operation's name,
/// e.g. `matmul: cannot multiply (3, 4) by (5, 6)`.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace xgrad

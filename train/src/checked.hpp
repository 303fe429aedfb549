// Allocation sizes that come from user input, checked in one place: an overflowing count is
// refused by core's checked_mul before anything is allocated, and a request memory cannot
// hold becomes an xgrad::Error naming it.
#pragma once
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include <xgrad/core/error.hpp>

namespace xgrad::train::detail {

/// Runs `allocate` (which builds a container of `count` `items`); a std::bad_alloc or
/// std::length_error becomes an Error "<op>: cannot allocate <count> <items>".
template <class F>
auto allocating(const char* op, std::int64_t count, const char* items, F&& allocate) -> decltype(allocate()) {
  try {
    return std::forward<F>(allocate)();
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  throw Error(std::string(op) + ": cannot allocate " + std::to_string(count) + " " + items + " (not enough memory)");
}

}  // namespace xgrad::train::detail

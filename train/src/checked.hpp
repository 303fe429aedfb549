// Allocation sizes and filesystem calls that come from user input, checked in one place:
// an overflowing count is refused by core's checked_mul before anything is allocated, a
// request memory cannot hold and a failed filesystem call become an xgrad::Error naming it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
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

/// Throws "<op>: cannot <action> '<path>': <reason>" when `ec` holds an error.
inline void check_fs(const std::error_code& ec, const char* op, const char* action, const std::string& path) {
  if (ec) throw Error(std::string(op) + ": cannot " + action + " '" + path + "': " + ec.message());
}

/// Whether `path` exists, as an Error when the filesystem cannot tell (a component not a
/// directory, no permission).
inline bool exists(const std::string& path, const char* op) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) check_fs(ec, op, "inspect", path);
  return std::filesystem::exists(status);
}

/// Creates the directory `path` and its parents; an Error when that fails or when `path`
/// is something other than a directory.
inline void create_directories(const std::string& path, const char* op) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (!ec && !std::filesystem::is_directory(path, ec) && !ec)
    throw Error(std::string(op) + ": '" + path + "' exists and is not a directory");
  check_fs(ec, op, "create the directory", path);
}

}  // namespace xgrad::train::detail

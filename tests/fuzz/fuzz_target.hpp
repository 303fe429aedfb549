#pragma once
/// \file What every fuzz target shares: the libFuzzer entry point's contract and a file to
/// load from. xgrad's loaders take paths, so each input is written to a file first and the
/// real loader reads it, exactly as a user's program would.
///
/// The contract checked: whatever the bytes, a loader returns or throws `xgrad::Error`.
/// Any other exception aborts (a finding, as a crash is); ASan and UBSan report the rest.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <typeinfo>
#include <unistd.h>

#include <xgrad/core/error.hpp>

namespace xgrad::fuzz {

/// A file of this process's own, rewritten for each input (removed at exit).
inline const std::string& input_path() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/xgrad-fuzz-" + std::to_string(::getpid());
    std::atexit([] { std::remove(input_path().c_str()); });
    return p;
  }();
  return path;
}

inline const std::string& write_input(const std::uint8_t* data, std::size_t size) {
  const std::string& path = input_path();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

/// Runs `load`; `xgrad::Error` is an accepted answer, any other exception is a finding.
/// With XGRAD_FUZZ_VERBOSE set, prints each answer (to see which seeds load).
template <class Fn>
void expect_xgrad_errors_only(const char* what, Fn&& load) {
  static const bool verbose = std::getenv("XGRAD_FUZZ_VERBOSE") != nullptr;
  try {
    load();
    if (verbose) std::fprintf(stderr, "  %s: loaded\n", what);
  } catch (const xgrad::Error& e) {
    if (verbose) std::fprintf(stderr, "  %s: xgrad::Error: %s\n", what, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: %s threw %s, not xgrad::Error: %s\n", what, typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "fuzz: %s threw a non-standard exception\n", what);
    std::abort();
  }
}

}  // namespace xgrad::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

/// Writes the target's seed corpus (small valid files, made with xgrad's own writers) into
/// `dir`: `fuzz_replay_<target> --write-seeds tests/fuzz/corpus/<target>`.
void write_seeds(const std::string& dir);

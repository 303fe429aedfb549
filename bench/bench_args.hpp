#pragma once
// Command-line parsing the C++ benchmarks share, and the build facts they report.
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

// xgrad's version and the instruction set xgrad_core was compiled for, as bench/CMakeLists.txt
// passes them (cmake/XgradArch.cmake); "unknown" in a build that does not.
#ifndef XGRAD_BENCH_VERSION
#define XGRAD_BENCH_VERSION "unknown"
#endif
#ifndef XGRAD_BENCH_ARCH
#define XGRAD_BENCH_ARCH "unknown"
#endif

// The integer after `flag`; throws naming the flag when it is missing, not an integer or below `min`.
inline long parse_count(std::string_view flag, const char* value, long min) {
  if (value == nullptr) throw std::runtime_error(fmt::format("{} needs a value", flag));
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || v < min)
    throw std::runtime_error(fmt::format("{}: expected an integer >= {}, got '{}'", flag, min, value));
  return v;
}

namespace bench {

// The flags a benchmark takes, declared one by one, then parse(): each value is checked as it
// is read, an unknown argument is refused, and -h / --help prints `usage` ("{0}" stands for
// the program's path) and exits.
class ArgParser {
 public:
  explicit ArgParser(std::string usage) : usage_(std::move(usage)) {}

  // A flag without a value: sets `target`.
  ArgParser& flag(std::string name, bool& target) {
    return add(std::move(name), 0, "", [&target](char**) { target = true; });
  }
  // An integer >= `min` (parse_count).
  ArgParser& count(std::string name, long& target, long min) {
    return add(name, 1, "a value", [&target, name, min](char** v) { target = parse_count(name, v[0], min); });
  }
  // One word; `what` completes "NAME needs ..." when it is missing.
  ArgParser& text(std::string name, std::string& target, std::string what) {
    return add(std::move(name), 1, std::move(what), [&target](char** v) { target = v[0]; });
  }
  // `n` words (--peak-mem CELL SIZE).
  ArgParser& words(std::string name, int n, std::vector<std::string>& target, std::string what) {
    return add(std::move(name), n, std::move(what), [&target, n](char** v) { target.assign(v, v + n); });
  }

  void parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        fmt::print(fmt::runtime(usage_), argv[0]);
        std::exit(0);
      }
      const Flag* f = find(arg);
      if (f == nullptr) throw std::runtime_error(fmt::format("unknown argument '{}' (try --help)", arg));
      if (i + f->values >= argc) throw std::runtime_error(fmt::format("{} needs {}", arg, f->what));
      f->set(argv + i + 1);
      i += f->values;
    }
  }

 private:
  struct Flag {
    std::string name;
    int values;
    std::string what;
    std::function<void(char**)> set;  // given the flag's values
  };

  ArgParser& add(std::string name, int values, std::string what, std::function<void(char**)> set) {
    flags_.push_back({std::move(name), values, std::move(what), std::move(set)});
    return *this;
  }
  const Flag* find(std::string_view arg) const {
    for (const Flag& f : flags_)
      if (f.name == arg) return &f;
    return nullptr;
  }

  std::string usage_;
  std::vector<Flag> flags_;
};

// The options of a benchmark of named workloads run beside a PyTorch script (bench_rnn,
// bench_seq): the Python sides take the same flags.
struct WorkloadOptions {
  std::string filter;  // substring of the workload id; empty: all
  bool list = false;
  bool quick = false;
  long reps = -1, warmup = -1;  // -1: the benchmark's default for the workload
  std::string inputs = "bench-inputs";
  std::string json;
  std::vector<std::string> peak_mem;  // --peak-mem mode: the workload to measure, in a child process
};

// A parser of WorkloadOptions' flags into `o`. `extra_usage` holds the lines of the binary's
// own flags (declare them on the parser returned), `peak_mem` the words --peak-mem takes
// ("MODEL", "CELL SIZE") and `peak_what` how an error names them.
inline ArgParser workload_args(WorkloadOptions& o, const std::string& extra_usage, const std::string& peak_mem,
                               const std::string& peak_what) {
  const int peak_words = static_cast<int>(std::count(peak_mem.begin(), peak_mem.end(), ' ')) + 1;
  ArgParser p("usage: {0} [--filter TEXT] [--list] [--quick] [--reps N] [--warmup N] [--inputs DIR] [--json FILE]\n" +
              extra_usage + "       {0} --peak-mem " + peak_mem + " [--inputs DIR]\n");
  p.text("--filter", o.filter, "a text")
      .flag("--list", o.list)
      .flag("--quick", o.quick)
      .count("--reps", o.reps, 1)
      .count("--warmup", o.warmup, 0)
      .text("--inputs", o.inputs, "a directory")
      .text("--json", o.json, "a file name")
      .words("--peak-mem", peak_words, o.peak_mem, peak_what);
  return p;
}

}  // namespace bench

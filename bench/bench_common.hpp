#pragma once
// Timing, peak-memory measurement and the results file the C++ benchmarks share.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <time.h>

#include <xgrad/nn/module.hpp>

#include "bench_args.hpp"

namespace bench {

using Clock = std::chrono::steady_clock;

// --- timing -----------------------------------------------------------------------------------------

// CPU time of the whole process: unlike wall-clock time, it does not count the time other
// processes held the cores, so it stays meaningful on a busy machine.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Timing {
  double median_s = 0, min_s = 0, cpu_s = 0;  // per call; cpu: CPU time of the whole process
};

// Wall and process CPU seconds per call, over `inner` calls of f.
struct Sample {
  double wall, cpu;
};
template <class F>
Sample measure(long inner, F&& f) {
  const double c0 = process_cpu_seconds();
  const auto t0 = Clock::now();
  for (long i = 0; i < inner; ++i) f();
  const double n = static_cast<double>(inner);
  return {std::chrono::duration<double>(Clock::now() - t0).count() / n, (process_cpu_seconds() - c0) / n};
}

inline Timing summarize(const std::vector<Sample>& samples) {
  std::vector<double> wall, cpu;
  for (const Sample& s : samples) {
    wall.push_back(s.wall);
    cpu.push_back(s.cpu);
  }
  return {median(wall), *std::min_element(wall.begin(), wall.end()), median(cpu)};
}

// `warmup` untimed calls of f, then `reps` timed ones of `inner` calls each.
template <class F>
Timing time_calls(long warmup, long reps, long inner, F&& f) {
  for (long r = 0; r < warmup; ++r) f();
  std::vector<Sample> samples;
  for (long r = 0; r < reps; ++r) samples.push_back(measure(inner, f));
  return summarize(samples);
}

// As time_calls for f and g, one call each, alternating: on a shared machine both see the
// same load, so their ratio is steadier than either time.
template <class F, class G>
std::pair<Timing, Timing> time_alternating(long warmup, long reps, F&& f, G&& g) {
  for (long r = 0; r < warmup; ++r) f(), g();
  std::vector<Sample> fs, gs;
  for (long r = 0; r < reps; ++r) {
    fs.push_back(measure(1, f));
    gs.push_back(measure(1, g));
  }
  return {summarize(fs), summarize(gs)};
}

// --- peak memory of one step, in a fresh child process ----------------------------------------------

// A field of /proc/self/status in kB ("VmRSS", "VmHWM").
inline long status_kb(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  throw std::runtime_error("no " + field + " in /proc/self/status");
}

// The child's side, once everything is set up: how far `step` (returning its loss) raises the
// resident set above what the setup left. Writing 5 to clear_refs resets the kernel's
// high-water mark (VmHWM) to the current RSS, so peaks of the setup do not count. Prints the
// one line of JSON peak_mem_values reads.
template <class Step>
int print_step_peak(Step&& step) {
  const long baseline = status_kb("VmRSS");
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    if (!clear) throw std::runtime_error("cannot reset the peak RSS (/proc/self/clear_refs)");
  }
  const double loss = step();
  const long peak = status_kb("VmHWM");
  fmt::print("{{\"baseline_kb\": {}, \"peak_kb\": {}, \"growth_kb\": {}, \"loss\": {:.9g}}}\n", baseline, peak,
             peak - baseline, loss);
  return 0;
}

// The parent's side: runs this executable with `args` (its --peak-mem mode) in a fresh process
// and returns the row's values, baseline_mb, peak_mb, growth_mb and first_loss.
inline std::vector<std::pair<std::string, double>> peak_mem_values(const std::string& args) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string cmd = fmt::format("'{}' {}", exe, args);
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("cannot run " + cmd);
  char buf[512] = {};
  const bool got = std::fgets(buf, sizeof buf, p) != nullptr;
  if (pclose(p) != 0 || !got) throw std::runtime_error("the peak-memory child failed: " + cmd);
  long baseline = 0, peak = 0, growth = 0;
  double loss = 0;
  if (std::sscanf(buf, "{\"baseline_kb\": %ld, \"peak_kb\": %ld, \"growth_kb\": %ld, \"loss\": %lf", &baseline,
                  &peak, &growth, &loss) != 4)
    throw std::runtime_error(std::string("unexpected output of the peak-memory child: ") + buf);
  return {{"baseline_mb", baseline / 1024.0}, {"peak_mb", peak / 1024.0}, {"growth_mb", growth / 1024.0},
          {"first_loss", loss}};
}

// --- results --------------------------------------------------------------------------------------

// The norm of all the model's gradients (a check that both frameworks computed the same step).
inline double grad_norm(const xgrad::nn::Module& model) {
  double sq = 0;
  for (const xgrad::Tensor& p : model.parameters())
    if (p.grad().defined()) sq += (p.grad() * p.grad()).sum().item();
  return std::sqrt(sq);
}

// Writes the JSON of a workload benchmark (bench_rnn, bench_seq), which bench/*report.py read:
// what ran, then one object per row, `fields(row)` (its id, kind, ...: JSON members, formatted)
// followed by the row's `values`.
template <class Row, class Fields>
void write_results_json(const std::string& path, const std::string& benchmark, bool quick,
                        const std::vector<Row>& rows, Fields&& fields) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error(fmt::format("cannot write '{}'", path));
  fmt::print(f, "{{\n  \"benchmark\": \"{}\",\n  \"framework\": \"xgrad\",\n", benchmark);
  fmt::print(f, "  \"version\": \"{}\",\n  \"arch\": \"{}\",\n", XGRAD_BENCH_VERSION, XGRAD_BENCH_ARCH);
  fmt::print(f, "  \"quick\": {},\n  \"results\": [\n", quick ? "true" : "false");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    fmt::print(f, "    {{{}", fields(rows[i]));
    for (const auto& [k, v] : rows[i].values) fmt::print(f, ", \"{}\": {:.9g}", k, v);
    fmt::print(f, "}}{}\n", i + 1 < rows.size() ? "," : "");
  }
  fmt::print(f, "  ]\n}}\n");
  if (std::fclose(f) != 0) throw std::runtime_error(fmt::format("cannot write '{}'", path));
}

}  // namespace bench

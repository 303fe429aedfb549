// Stopwatch and RunSummary. The summary is an nlohmann ordered_json behind a pointer, so the
// public header needs no JSON library.
#include "run_summary.hpp"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <xgrad/core/error.hpp>
#include <xgrad/core/io.hpp>

namespace xgrad::examples {

// --- Stopwatch ---------------------------------------------------------------------------------

Stopwatch::Stopwatch(bool running) {
  if (running) start();
}

void Stopwatch::start() {
  if (running_) throw Error("Stopwatch::start: the stopwatch is already running");
  running_ = true;
  lap_start_ = std::chrono::steady_clock::now();
  lap_cpu_start_ = std::clock();
}

void Stopwatch::stop() {
  if (!running_) throw Error("Stopwatch::stop: the stopwatch is not running");
  seconds_ = seconds();
  cpu_seconds_ = cpu_seconds();
  running_ = false;
}

double Stopwatch::seconds() const {
  if (!running_) return seconds_;
  return seconds_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - lap_start_).count();
}

double Stopwatch::cpu_seconds() const {
  if (!running_) return cpu_seconds_;
  return cpu_seconds_ + static_cast<double>(std::clock() - lap_cpu_start_) / CLOCKS_PER_SEC;
}

void Stopwatch::add(double seconds, double cpu_seconds) {
  if (!(seconds >= 0.0) || !(cpu_seconds >= 0.0))
    throw Error(fmt::format("Stopwatch::add: times must be >= 0 seconds, got {} and {}", seconds, cpu_seconds));
  seconds_ += seconds;
  cpu_seconds_ += cpu_seconds;
}

// --- RunSummary --------------------------------------------------------------------------------

struct RunSummary::Impl {
  nlohmann::ordered_json values = nlohmann::ordered_json::object();
};

RunSummary::RunSummary() : impl_(std::make_unique<Impl>()) {}
RunSummary::~RunSummary() = default;
RunSummary::RunSummary(const RunSummary& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
RunSummary& RunSummary::operator=(const RunSummary& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
RunSummary::RunSummary(RunSummary&&) noexcept = default;
RunSummary& RunSummary::operator=(RunSummary&&) noexcept = default;

namespace {

// JSON has no NaN or infinity: they are written as null (nlohmann's choice, made explicit).
nlohmann::ordered_json json_number(double value) {
  if (!std::isfinite(value)) return nullptr;
  return value;
}

const char* better_name(Mode better) { return better == Mode::min ? "lower" : "higher"; }

}  // namespace

RunSummary& RunSummary::set(const std::string& key, double value) {
  impl_->values[key] = json_number(value);
  return *this;
}
RunSummary& RunSummary::set_signed(const std::string& key, std::int64_t value) {
  impl_->values[key] = value;
  return *this;
}
RunSummary& RunSummary::set_unsigned(const std::string& key, std::uint64_t value) {
  impl_->values[key] = value;
  return *this;
}
RunSummary& RunSummary::set(const std::string& key, bool value) {
  impl_->values[key] = value;
  return *this;
}
RunSummary& RunSummary::set(const std::string& key, const std::string& value) {
  impl_->values[key] = value;
  return *this;
}
RunSummary& RunSummary::set(const std::string& key, const std::vector<double>& values) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (double v : values) array.push_back(json_number(v));
  impl_->values[key] = std::move(array);
  return *this;
}
RunSummary& RunSummary::set(const std::string& key, const std::vector<std::int64_t>& values) {
  impl_->values[key] = values;
  return *this;
}
RunSummary& RunSummary::set(const std::string& key, const std::vector<std::string>& values) {
  impl_->values[key] = values;
  return *this;
}
RunSummary& RunSummary::set(const std::string& key, const std::map<std::string, std::vector<double>>& arrays) {
  RunSummary object;
  for (const auto& [name, values] : arrays) object.set(name, values);
  return set(key, object);
}
RunSummary& RunSummary::set(const std::string& key, const RunSummary& object) {
  impl_->values[key] = object.impl_->values;
  return *this;
}

RunSummary& RunSummary::append(const std::string& key, const RunSummary& object) {
  auto& values = impl_->values;
  if (!values.contains(key)) values[key] = nlohmann::ordered_json::array();
  if (!values[key].is_array())
    throw Error(fmt::format("RunSummary::append: \"{}\" holds a {}, not an array", key, values[key].type_name()));
  values[key].push_back(object.impl_->values);
  return *this;
}

bool RunSummary::check(const std::string& metric, double value, const std::string& baseline, double baseline_value,
                       Mode better, double margin) {
  if (better == Mode::automatic)
    throw Error("RunSummary::check: say which way " + metric + " improves: Mode::min or Mode::max, not automatic");
  if (!(margin >= 0.0) || (better == Mode::min && !(margin < 1.0)))
    throw Error(fmt::format("RunSummary::check: the margin of {} over {} must be in [0, {}), got {}", metric, baseline,
                            better == Mode::min ? "1" : "inf", margin));
  const double threshold = better == Mode::min ? (1.0 - margin) * baseline_value : (1.0 + margin) * baseline_value;
  const bool passed = better == Mode::min ? value <= threshold : value >= threshold;  // false for NaN
  auto& checks = impl_->values["checks"];
  if (checks.is_null()) checks = nlohmann::ordered_json::array();
  checks.push_back({{"metric", metric},
                    {"value", json_number(value)},
                    {"baseline", baseline},
                    {"baseline_value", json_number(baseline_value)},
                    {"better", better_name(better)},
                    {"margin", margin},
                    {"threshold", json_number(threshold)},
                    {"passed", passed}});
  return passed;
}

bool RunSummary::passed() const {
  if (!impl_->values.contains("checks")) return true;
  for (const auto& c : impl_->values["checks"])
    if (!c["passed"].get<bool>()) return false;
  return true;
}

std::vector<std::string> RunSummary::check_lines() const {
  std::vector<std::string> lines;
  if (!impl_->values.contains("checks")) return lines;
  for (const auto& c : impl_->values["checks"]) {
    const bool lower = c["better"] == "lower";
    auto text = [](const nlohmann::ordered_json& v) { return v.is_null() ? std::string("nan") : fmt::format("{:.4g}", v.get<double>()); };
    lines.push_back(fmt::format("{} {} {} {} ({} {} {} {:g} %): {}", c["metric"].get<std::string>(), text(c["value"]),
                                lower ? "<=" : ">=", text(c["threshold"]), c["baseline"].get<std::string>(),
                                text(c["baseline_value"]), lower ? "-" : "+", 100 * c["margin"].get<double>(),
                                c["passed"].get<bool>() ? "passed" : "FAILED"));
  }
  return lines;
}

bool RunSummary::contains(const std::string& key) const { return impl_->values.contains(key); }

double RunSummary::number(const std::string& key) const {
  const auto it = impl_->values.find(key);
  if (it == impl_->values.end()) throw Error(fmt::format("RunSummary::number: there is no \"{}\"", key));
  if (!it->is_number()) throw Error(fmt::format("RunSummary::number: \"{}\" holds a {}, not a number", key, it->type_name()));
  return it->get<double>();
}

std::string RunSummary::json() const {
  return impl_->values.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void RunSummary::write(const std::string& path) const { write_file_atomic(path, json()); }

}  // namespace xgrad::examples

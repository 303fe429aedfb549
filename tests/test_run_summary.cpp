// examples::RunSummary and examples::Stopwatch: what the examples' --json files and timings come
// from. The JSON keeps the order of set(), checks against baselines pass and fail at their
// thresholds, and the file reads back as the numbers written.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include <nlohmann/json.hpp>

#include <xgrad/xgrad.hpp>

#include "common/run_summary.hpp"

#include "temp_dir.hpp"

using namespace xgrad;
using xgrad_test::TempDir;

TEST_CASE("RunSummary writes its values in the order they were set, and replaces in place") {
  examples::RunSummary s;
  s.set("loss_first", 1.5).set("epochs", 3).set("seed", std::uint64_t{7}).set("cell", "lstm").set("bidirectional", false);
  s.set("curve", std::vector<double>{0.5, 0.25}).set("lengths", std::vector<std::int64_t>{5, 10});
  s.set("loss_first", 2.5);  // keeps its place
  const auto j = nlohmann::ordered_json::parse(s.json());
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"loss_first", "epochs", "seed", "cell", "bidirectional", "curve", "lengths"});
  CHECK(j["loss_first"].get<double>() == 2.5);
  CHECK(j["epochs"].get<int>() == 3);
  CHECK(j["cell"] == "lstm");
  CHECK(j["curve"][1].get<double>() == 0.25);
  CHECK(s.number("epochs") == 3.0);
}

TEST_CASE("RunSummary nests objects, appends to arrays and writes NaN as null") {
  examples::RunSummary run, s;
  run.set("cell", "gru").set("accuracy", 0.75);
  s.append("results", run).append("results", run.set("accuracy", 1.0)).set("config", run);
  s.set("nan", std::nan(""));
  s.set("by_cell", std::map<std::string, std::vector<double>>{{"lstm", {1.0, 0.5}}, {"gru", {}}});
  const auto j = nlohmann::json::parse(s.json());
  REQUIRE(j["results"].size() == 2);
  CHECK(j["results"][0]["accuracy"].get<double>() == 0.75);
  CHECK(j["results"][1]["accuracy"].get<double>() == 1.0);
  CHECK(j["config"]["cell"] == "gru");
  CHECK(j["nan"].is_null());
  CHECK(j["by_cell"]["lstm"][1].get<double>() == 0.5);
  CHECK(j["by_cell"]["gru"].is_array());
  CHECK(j["by_cell"]["gru"].empty());
  CHECK_THROWS_WITH_AS(s.append("config", run), "RunSummary::append: \"config\" holds a object, not an array", Error);
  CHECK_THROWS_WITH_AS(s.number("missing"), "RunSummary::number: there is no \"missing\"", Error);
  CHECK_THROWS_WITH_AS(s.number("nan"), "RunSummary::number: \"nan\" holds a null, not a number", Error);
}

TEST_CASE("RunSummary::check takes the one Mode, and needs min or max (no name to read automatic from)") {
  examples::RunSummary summary;
  CHECK_THROWS_WITH_AS(summary.check("acc", 1, "chance", 0.5, train::Mode::automatic),
                       doctest::Contains("Mode::min or Mode::max"), Error);
  CHECK(summary.check("acc", 1, "chance", 0.5, optim::Mode::max));
}

TEST_CASE("RunSummary::check needs the margin below (or above) the baseline") {
  examples::RunSummary s;
  CHECK(s.passed());  // no checks
  CHECK(s.check("test_rmse", 0.80, "persistence_rmse", 1.0, train::Mode::min, 0.2));   // 0.80 <= 0.80
  CHECK_FALSE(s.check("test_rmse", 0.81, "persistence_rmse", 1.0, train::Mode::min, 0.2));
  CHECK_FALSE(s.passed());
  examples::RunSummary h;
  CHECK(h.check("test_acc", 0.6, "majority_acc", 0.5, train::Mode::max, 0.2));  // needs >= 0.6
  CHECK_FALSE(h.check("test_acc", 0.59, "majority_acc", 0.5, train::Mode::max, 0.2));
  CHECK_FALSE(h.check("test_acc", std::nan(""), "majority_acc", 0.5, train::Mode::max));
  CHECK(h.check("val_bpc", 2.4, "unigram_bpc", 2.4, train::Mode::min, 0.0));  // a tie passes a 0 margin
  const auto j = nlohmann::json::parse(h.json());
  REQUIRE(j["checks"].size() == 4);
  CHECK(j["checks"][0]["metric"] == "test_acc");
  CHECK(j["checks"][0]["baseline"] == "majority_acc");
  CHECK(j["checks"][0]["better"] == "higher");
  CHECK(j["checks"][0]["threshold"].get<double>() == doctest::Approx(0.6));
  CHECK(j["checks"][0]["passed"] == true);
  CHECK(j["checks"][1]["passed"] == false);
  CHECK(j["checks"][2]["value"].is_null());
  CHECK(h.check_lines()[1] == "test_acc 0.59 >= 0.6 (majority_acc 0.5 + 20 %): FAILED");
  CHECK(h.check("acc", 0.75, "chance", 0.25, train::Mode::max, 2.0));  // 3 × chance
  CHECK_THROWS_WITH_AS(h.check("a", 1, "b", 1, train::Mode::min, -0.1),
                       "RunSummary::check: the margin of a over b must be in [0, 1), got -0.1", Error);
  CHECK_THROWS_WITH_AS(h.check("a", 1, "b", 1, train::Mode::min, 1.0),
                       "RunSummary::check: the margin of a over b must be in [0, 1), got 1", Error);
  CHECK_THROWS_WITH_AS(h.check("a", 1, "b", 1, train::Mode::max, -1.0),
                       "RunSummary::check: the margin of a over b must be in [0, inf), got -1", Error);
}

TEST_CASE("RunSummary::write writes the file that json() shows, and copies are independent") {
  TempDir dir;
  examples::RunSummary s;
  s.set("sample", std::string("ok \xff"));  // invalid UTF-8 becomes U+FFFD
  examples::RunSummary copy = s;
  copy.set("extra", 1);
  s.write(dir.file("run.json"));
  const auto j = nlohmann::json::parse(train::read_text(dir.file("run.json")));
  CHECK(j["sample"] == "ok \xEF\xBF\xBD");
  CHECK_FALSE(j.contains("extra"));
  CHECK(copy.contains("extra"));
}

TEST_CASE("Stopwatch adds up its laps and refuses to start twice") {
  examples::Stopwatch clock(/*running=*/false);
  CHECK(clock.seconds() == 0.0);
  clock.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  clock.stop();
  const double lap = clock.seconds();
  CHECK(lap >= 0.02);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(clock.seconds() == lap);  // stopped: the pause does not count
  clock.add(1.0, 0.5);
  CHECK(clock.seconds() == doctest::Approx(lap + 1.0));
  CHECK(clock.cpu_seconds() >= 0.5);
  CHECK_THROWS_WITH_AS(clock.stop(), "Stopwatch::stop: the stopwatch is not running", Error);
  clock.start();
  CHECK_THROWS_WITH_AS(clock.start(), "Stopwatch::start: the stopwatch is already running", Error);
  CHECK_THROWS_WITH_AS(clock.add(-1.0), "Stopwatch::add: times must be >= 0 seconds, got -1 and 0", Error);
}

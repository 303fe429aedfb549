// Learning-rate schedulers: PyTorch's 50-step learning-rate sequences reproduced (including
// a warm-up + cosine chain and ReduceLROnPlateau on a scripted metric), resume through
// state dicts, and clear errors. Reference: tests/fixtures/gen_optim_fixtures.py.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

using namespace xgrad;

namespace {

const std::string kSchedulers = XGRAD_FIXTURES_DIR "/optim/schedulers.safetensors";

// Drives one scheduler of either kind: `step(t)` advances it by epoch t (0-based);
// `state_dict` / `load_state_dict` forward to it.
struct Driver {
  std::function<void(std::int64_t t)> step;
  std::function<NamedTensors()> state_dict;
  std::function<void(const NamedTensors&)> load_state_dict;
};

Driver every_epoch(std::shared_ptr<optim::LRScheduler> s) {
  return {[s](std::int64_t) { s->step(); }, [s] { return s->state_dict(); },
          [s](const NamedTensors& state) { s->load_state_dict(state); }};
}

Driver on_metric(std::shared_ptr<optim::ReduceLROnPlateau> s, std::vector<double> metrics) {
  return {[s, metrics](std::int64_t t) { s->step(metrics.at(static_cast<std::size_t>(t))); },
          [s] { return s->state_dict(); }, [s](const NamedTensors& state) { s->load_state_dict(state); }};
}

struct Case {
  std::vector<double> lrs;  // initial learning rate of each parameter group
  std::function<Driver(optim::Optimizer&, const SafetensorsFile&)> make;
};

// An SGD over one scalar parameter per group, with the given learning rates.
std::unique_ptr<optim::SGD> make_optimizer(const std::vector<double>& lrs) {
  std::vector<optim::ParamGroup> groups;
  for (double lr : lrs) groups.emplace_back(std::vector<Tensor>{zeros({1}).requires_grad_()}, optim::SGDOptions(lr));
  return std::make_unique<optim::SGD>(groups, optim::SGDOptions(lrs[0]));
}

std::vector<double> lrs_of(const optim::Optimizer& opt) {
  std::vector<double> out;
  for (const auto& g : opt.param_groups()) out.push_back(g.lr());
  return out;
}

using Sched = std::shared_ptr<optim::LRScheduler>;
using optim::LinearLROptions, optim::ReduceLROnPlateauOptions;

// The configurations of gen_optim_fixtures.py, by the same names.
const std::map<std::string, Case>& cases() {
  static const std::map<std::string, Case> table = {
      {"step", {{0.1}, [](auto& o, auto&) { return every_epoch(std::make_shared<optim::StepLR>(o, 7, 0.5)); }}},
      {"step_groups", {{0.1, 0.02}, [](auto& o, auto&) { return every_epoch(std::make_shared<optim::StepLR>(o, 3)); }}},
      {"multistep",
       {{0.1}, [](auto& o, auto&) {
          return every_epoch(std::make_shared<optim::MultiStepLR>(o, std::vector<std::int64_t>{5, 12, 12, 30}, 0.3));
        }}},
      {"exponential",
       {{0.1, 0.5}, [](auto& o, auto&) { return every_epoch(std::make_shared<optim::ExponentialLR>(o, 0.93)); }}},
      {"cosine",
       {{0.1}, [](auto& o, auto&) { return every_epoch(std::make_shared<optim::CosineAnnealingLR>(o, 20, 0.001)); }}},
      {"cosine_default",
       {{0.05, 0.2}, [](auto& o, auto&) { return every_epoch(std::make_shared<optim::CosineAnnealingLR>(o, 50)); }}},
      {"linear_warmup",
       {{0.1}, [](auto& o, auto&) {
          return every_epoch(std::make_shared<optim::LinearLR>(o, LinearLROptions().start_factor(0.25).total_iters(10)));
        }}},
      {"linear_default", {{0.3}, [](auto& o, auto&) { return every_epoch(std::make_shared<optim::LinearLR>(o)); }}},
      {"linear_decay",
       {{0.1, 0.01}, [](auto& o, auto&) {
          return every_epoch(std::make_shared<optim::LinearLR>(
              o, LinearLROptions().start_factor(1.0).end_factor(0.1).total_iters(30)));
        }}},
      {"warmup_cosine",
       {{0.1}, [](auto& o, auto&) {
          auto warmup = std::make_shared<optim::LinearLR>(o, LinearLROptions().start_factor(0.1).total_iters(5));
          auto cosine = std::make_shared<optim::CosineAnnealingLR>(o, 45, 1e-4);
          return every_epoch(std::make_shared<optim::SequentialLR>(o, std::vector<Sched>{warmup, cosine},
                                                                   std::vector<std::int64_t>{5}));
        }}},
      {"sequential3",
       {{0.1, 0.2}, [](auto& o, auto&) {
          auto a = std::make_shared<optim::ExponentialLR>(o, 0.9);
          auto b = std::make_shared<optim::StepLR>(o, 4, 0.5);
          auto c = std::make_shared<optim::MultiStepLR>(o, std::vector<std::int64_t>{3, 8}, 0.2);
          return every_epoch(std::make_shared<optim::SequentialLR>(o, std::vector<Sched>{a, b, c},
                                                                   std::vector<std::int64_t>{10, 25}));
        }}},
      {"chained",
       {{0.1}, [](auto& o, auto&) {
          return every_epoch(std::make_shared<optim::ChainedScheduler>(
              std::vector<Sched>{std::make_shared<optim::ExponentialLR>(o, 0.95), std::make_shared<optim::StepLR>(o, 10, 0.5)}));
        }}},
      {"plateau",
       {{0.1, 0.05}, [](auto& o, const SafetensorsFile& f) {
          auto s = std::make_shared<optim::ReduceLROnPlateau>(
              o, ReduceLROnPlateauOptions().factor(0.5).patience(3).threshold(0.01).cooldown(2).min_lr({0.005, 0.01}));
          return on_metric(s, f.at("plateau.metrics").to_vector<double>());
        }}},
      {"plateau_default",
       {{0.1}, [](auto& o, const SafetensorsFile& f) {
          auto s = std::make_shared<optim::ReduceLROnPlateau>(o, ReduceLROnPlateauOptions().patience(2));
          return on_metric(s, f.at("plateau.metrics").to_vector<double>());
        }}},
      {"plateau_max_abs",
       {{0.1}, [](auto& o, const SafetensorsFile& f) {
          auto s = std::make_shared<optim::ReduceLROnPlateau>(o, ReduceLROnPlateauOptions()
                                                                     .mode(optim::Mode::max)
                                                                     .factor(0.3)
                                                                     .patience(1)
                                                                     .threshold(0.5)
                                                                     .threshold_mode(optim::ThresholdMode::abs));
          return on_metric(s, f.at("plateau_max.metrics").to_vector<double>());
        }}},
  };
  return table;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("every scheduler's learning rates over 50 steps match PyTorch's") {
  const SafetensorsFile fixture = load_safetensors(kSchedulers);
  std::size_t sequences = 0;
  for (const auto& [key, t] : fixture.tensors)
    if (key.size() > 3 && key.substr(key.size() - 3) == ".lr") ++sequences;
  CHECK(sequences == cases().size());

  for (const auto& [name, c] : cases()) {
    INFO("scheduler " << name);
    REQUIRE(fixture.contains(name + ".lr"));
    const Tensor& ref = fixture.at(name + ".lr");  // (51, groups): after construction, then after each step
    REQUIRE(ref.size(1) == static_cast<std::int64_t>(c.lrs.size()));
    auto opt = make_optimizer(c.lrs);
    Driver driver = c.make(*opt, fixture);
    double worst = 0;
    for (std::int64_t t = 0; t < ref.size(0); ++t) {
      if (t > 0) {
        opt->step();
        driver.step(t - 1);
      }
      const auto expected = ref.select(0, t).to_vector<double>();
      const auto actual = lrs_of(*opt);
      for (std::size_t g = 0; g < expected.size(); ++g) {
        INFO("epoch " << t << ", group " << g);
        const double diff = std::abs(actual[g] - expected[g]);
        CHECK(diff <= 1e-14 * std::abs(expected[g]));
        if (diff > 0) worst = std::max(worst, diff / std::abs(expected[g]));
      }
    }
    if (std::getenv("XGRAD_OPTIM_REPORT")) std::printf("scheduler %-20s worst relative difference %.3g\n", name.c_str(), worst);
  }
}

TEST_CASE("get_last_lr, last_epoch and initial_lr follow PyTorch") {
  auto opt = make_optimizer({0.1});
  optim::StepLR sched(*opt, 2, 0.5);
  CHECK(sched.last_epoch() == 0);
  CHECK(opt->param_groups()[0].initial_lr == 0.1);
  CHECK(sched.base_lrs() == std::vector<double>{0.1});
  for (int i = 0; i < 3; ++i) sched.step();
  CHECK(sched.last_epoch() == 3);
  CHECK(sched.get_last_lr() == std::vector<double>{0.05});
  CHECK(opt->param_groups()[0].lr() == 0.05);
}

TEST_CASE("schedulers resume from their state dicts mid-schedule, bit for bit") {
  const SafetensorsFile fixture = load_safetensors(kSchedulers);
  const std::int64_t N = 20, total = 50;
  for (const auto& [name, c] : cases()) {
    INFO("scheduler " << name);
    // Uninterrupted.
    auto straight = make_optimizer(c.lrs);
    Driver d = c.make(*straight, fixture);
    std::vector<std::vector<double>> expected;
    for (std::int64_t t = 0; t < total; ++t) {
      straight->step();
      d.step(t);
      expected.push_back(lrs_of(*straight));
    }
    // N epochs, state dicts, then fresh optimizer and scheduler loaded from them.
    auto first = make_optimizer(c.lrs);
    Driver d1 = c.make(*first, fixture);
    for (std::int64_t t = 0; t < N; ++t) {
      first->step();
      d1.step(t);
    }
    const NamedTensors opt_state = first->state_dict(), sched_state = d1.state_dict();
    auto resumed = make_optimizer(c.lrs);
    Driver d2 = c.make(*resumed, fixture);
    resumed->load_state_dict(opt_state);
    d2.load_state_dict(sched_state);
    CHECK(lrs_of(*resumed) == expected[N - 1]);
    for (std::int64_t t = N; t < total; ++t) {
      resumed->step();
      d2.step(t);
      INFO("epoch " << t + 1);
      CHECK(lrs_of(*resumed) == expected[static_cast<std::size_t>(t)]);
    }
  }
}

TEST_CASE("scheduler state files round-trip through save and load") {
  auto opt = make_optimizer({0.1});
  optim::CosineAnnealingLR sched(*opt, 10);
  for (int i = 0; i < 4; ++i) sched.step();
  const std::string path = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/xgrad_sched_" +
                           std::to_string(::getpid()) + ".safetensors";
  sched.save(path);
  auto opt2 = make_optimizer({0.1});
  optim::CosineAnnealingLR sched2(*opt2, 10);
  sched2.load(path);
  std::remove(path.c_str());
  CHECK(sched2.last_epoch() == 4);
  CHECK(sched2.get_last_lr() == sched.get_last_lr());

  optim::StepLR other(*opt2, 3);
  sched.save(path);
  CHECK(error_of([&] { other.load(path); }) == "StepLR: load: '" + path + "' holds the state of a CosineAnnealingLR scheduler");
  std::remove(path.c_str());
}

TEST_CASE("bad scheduler arguments throw naming the scheduler") {
  auto opt = make_optimizer({0.1});
  auto other = make_optimizer({0.1});
  CHECK(error_of([&] { optim::StepLR(*opt, 0); }) == "StepLR: step_size must be positive, got 0");
  CHECK(error_of([&] { optim::CosineAnnealingLR(*opt, -5); }) == "CosineAnnealingLR: T_max must be positive, got -5");
  CHECK(error_of([&] { optim::LinearLR(*opt, LinearLROptions().start_factor(0)); }) ==
        "LinearLR: start_factor must be in (0, 1], got 0");
  CHECK(error_of([&] { optim::LinearLR(*opt, LinearLROptions().end_factor(1.5)); }) ==
        "LinearLR: end_factor must be in [0, 1], got 1.5");
  auto a = std::make_shared<optim::ExponentialLR>(*opt, 0.9);
  auto b = std::make_shared<optim::StepLR>(*other, 3);
  CHECK(error_of([&] { optim::SequentialLR(*opt, {a, b}, {5}); }) ==
        "SequentialLR: scheduler 1 (StepLR) belongs to another optimizer");
  CHECK(error_of([&] { optim::SequentialLR(*opt, {a}, {5}); }) ==
        "SequentialLR: expects one milestone fewer than schedulers, got 1 schedulers and 1 milestones");
  CHECK(error_of([&] { optim::ReduceLROnPlateau(*opt, ReduceLROnPlateauOptions().factor(1.0)); }) ==
        "ReduceLROnPlateau: factor must be < 1, got 1");
  CHECK(error_of([&] { optim::ReduceLROnPlateau(*opt, ReduceLROnPlateauOptions().min_lr({0.1, 0.2})); }) ==
        "ReduceLROnPlateau: expected 1 or 1 min_lr values (one per parameter group), got 2");
  optim::StepLR sched(*opt, 3);
  CHECK(error_of([&] { sched.load_state_dict({}); }) == "StepLR.load_state_dict: missing key 'last_epoch'");
}

TEST_CASE("scheduler states with malformed counters are xgrad::Errors, not std::out_of_range") {
  Tensor w = ones({1}).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  optim::StepLR sched(opt, 2);
  NamedTensors state = sched.state_dict();
  for (auto& [name, t] : state)
    if (name == "last_epoch") t = zeros({0}, DType::i64);
  CHECK_THROWS_WITH_AS(sched.load_state_dict(state), doctest::Contains("'last_epoch' must be one int64 number"), Error);
  for (auto& [name, t] : state)
    if (name == "last_epoch") t = tensor({-5}, DType::i64).reshape({});
  CHECK_THROWS_WITH_AS(sched.load_state_dict(state), doctest::Contains("'last_epoch' is -5, outside [-1, 2^53]"), Error);
  // Counting on from the largest int64 would overflow (undefined behaviour): refused.
  for (auto& [name, t] : state)
    if (name == "last_epoch") t = tensor({9.2e18}, DType::f64).to(DType::i64).reshape({});
  CHECK_THROWS_WITH_AS(sched.load_state_dict(state), doctest::Contains("outside [-1, 2^53]"), Error);
  optim::ReduceLROnPlateau plateau(opt);
  NamedTensors pstate = plateau.state_dict();
  for (auto& [name, t] : pstate)
    if (name == "num_bad_epochs") t = zeros({0}, DType::i64);
  CHECK_THROWS_WITH_AS(plateau.load_state_dict(pstate), doctest::Contains("'num_bad_epochs' must be one int64 number"), Error);
  for (auto& [name, t] : pstate)
    if (name == "num_bad_epochs") t = tensor({9.2e18}, DType::f64).to(DType::i64).reshape({});
  CHECK_THROWS_WITH_AS(plateau.load_state_dict(pstate), doctest::Contains("'num_bad_epochs' is 9200000000000000000, outside [0, 2^53]"), Error);
}

TEST_CASE("scheduler states: learning rates must be finite, and a refused state changes nothing") {
  Tensor w = ones({1}).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  optim::StepLR sched(opt, 2);
  sched.step();
  const NamedTensors good = sched.state_dict();
  for (double bad : {std::nan(""), double(INFINITY), -0.5}) {
    NamedTensors state = good;
    for (auto& [name, t] : state)
      if (name == "base_lrs") t = tensor({bad}, DType::f64);
    CHECK_THROWS_WITH_AS(sched.load_state_dict(state), doctest::Contains("not a finite number >= 0"), Error);
  }
  NamedTensors two = good;
  for (auto& [name, t] : two)
    if (name == "last_lr") t = tensor({0.1, 0.1}, DType::f64);
  CHECK_THROWS_WITH_AS(sched.load_state_dict(two), doctest::Contains("must hold 1 learning rates"), Error);

  // A composite whose second part is refused: the first part keeps its previous state.
  auto warm = std::make_shared<optim::LinearLR>(opt, optim::LinearLROptions().total_iters(3));
  auto step = std::make_shared<optim::StepLR>(opt, 2);
  optim::SequentialLR seq(opt, {warm, step}, {3});
  for (int i = 0; i < 5; ++i) seq.step();
  NamedTensors state = seq.state_dict();
  const NamedTensors warm_before = warm->state_dict();
  for (auto& [name, t] : state) {
    if (name == "schedulers.0.last_epoch") t = tensor({1}, DType::i64).reshape({});
    if (name == "schedulers.1.step_count") t = tensor({-1}, DType::i64).reshape({});
  }
  CHECK_THROWS_WITH_AS(seq.load_state_dict(state), doctest::Contains("'step_count' is -1"), Error);
  const NamedTensors warm_after = warm->state_dict();
  REQUIRE(warm_after.size() == warm_before.size());
  for (std::size_t i = 0; i < warm_after.size(); ++i)
    CHECK(warm_after[i].second.to(DType::f64).to_vector<double>() == warm_before[i].second.to(DType::f64).to_vector<double>());
}

TEST_CASE("a scheduler state file that is refused is named in the error, with the key") {
  auto opt = make_optimizer({0.1});
  optim::StepLR sched(*opt, 3);
  const std::string path = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/xgrad_sched_bad_" +
                           std::to_string(::getpid()) + ".safetensors";
  NamedTensors s = sched.state_dict();
  for (auto& [k, t] : s)
    if (k == "base_lrs") t = zeros({0}, DType::f64);
  save_safetensors(path, s, {{"xgrad.scheduler", "StepLR"}});
  const std::string message = error_of([&] { sched.load(path); });
  std::remove(path.c_str());
  CHECK(message.find("StepLR: load: '" + path + "': ") == 0);
  CHECK(message.find("'base_lrs' must hold 1 learning rates") != std::string::npos);
}

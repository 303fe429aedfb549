// train::fit, evaluate, predict and the callbacks: fit equals a hand-written loop bit for
// bit, early stopping fires at the right epoch and restores the best weights, checkpoints are
// written only on improvement, and a fit resumed from its checkpoint ends exactly where the
// uninterrupted one does.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using xgrad_test::TempDir;

namespace {

// y = tanh(2 x0) + x1 / 2 + noise, 40 samples of 2 features.
train::TensorDataset regression_data() {
  manual_seed(17);
  const Tensor x = randn({40, 2});
  const Tensor y = (tanh(x.select(1, 0) * 2.0) + x.select(1, 1) * 0.5 + randn({40}) * 0.05).reshape({40, 1});
  return train::TensorDataset(x, y);
}

nn::Sequential make_model(double dropout = 0.0) {
  manual_seed(3);
  nn::Sequential m{std::make_shared<nn::Linear>(2, 8), std::make_shared<nn::Tanh>()};
  if (dropout > 0) m.push_back(std::make_shared<nn::Dropout>(dropout));
  m.push_back(std::make_shared<nn::Linear>(8, 1));
  return m;
}

const train::Loss mse = [](const Tensor& p, const Tensor& y) { return nn::mse_loss(p, y); };

std::vector<std::vector<float>> weights(const nn::Module& m) {
  std::vector<std::vector<float>> out;
  for (const Tensor& p : m.parameters()) out.push_back(p.to_vector<float>());
  return out;
}

// Sets logs[name] from a list per epoch, so callbacks can be tested on a known sequence.
struct Inject : train::Callback {
  std::string name;
  std::vector<double> values;
  Inject(std::string n, std::vector<double> v) : name(std::move(n)), values(std::move(v)) {}
  void on_epoch_end(train::FitState&, std::int64_t epoch, train::Logs& logs) override {
    logs[name] = values.at(static_cast<std::size_t>(epoch - 1));  // epochs count from 1
  }
};

// Records the weights after every epoch.
struct Snapshots : train::Callback {
  std::vector<std::vector<std::vector<float>>> after;
  void on_epoch_end(train::FitState& s, std::int64_t, train::Logs&) override { after.push_back(weights(s.model)); }
};

}  // namespace

TEST_CASE("fit is the hand-written loop: same batches, same steps, the same weights bit for bit") {
  const train::TensorDataset data = regression_data();
  const train::DataLoader loader(data, train::LoaderOptions().batch_size(8).shuffle(true).seed(5));
  nn::Sequential a = make_model();
  optim::Adam opt_a(a.parameters(), optim::AdamOptions(0.01));
  const train::History h = train::fit(a, mse, opt_a, loader, train::FitOptions().epochs(3).verbose(false).metrics({"mae"}));

  nn::Sequential b = make_model();
  optim::Adam opt_b(b.parameters(), optim::AdamOptions(0.01));
  std::vector<double> losses, maes;
  for (std::int64_t e = 0; e < 3; ++e) {
    double sum = 0, abs_sum = 0;
    for (const train::Batch& batch : loader.epoch(e)) {
      const Tensor p = b(batch.inputs);
      Tensor loss = nn::mse_loss(p, batch.targets);
      opt_b.zero_grad();
      loss.backward();
      opt_b.step();
      sum += loss.item() * static_cast<double>(batch.size());
      abs_sum += abs(p.to(DType::f64) - batch.targets.to(DType::f64)).sum().item();
    }
    losses.push_back(sum / 40);
    maes.push_back(abs_sum / 40);
  }
  CHECK(weights(a) == weights(b));
  REQUIRE(h.size() == 3);
  for (std::size_t e = 0; e < 3; ++e) {
    CHECK(h.values("loss")[e] == doctest::Approx(losses[e]).epsilon(1e-12));
    CHECK(h.values("mae")[e] == doctest::Approx(maes[e]).epsilon(1e-12));
  }
  CHECK_THROWS_WITH_AS(h.values("val_loss"), doctest::Contains("no 'val_loss' in the logs"), Error);
}

TEST_CASE("EarlyStopping fires after `patience` epochs without improvement and restores the best weights") {
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(10));
  nn::Sequential model = make_model();
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.05));
  // Improvements at epochs 1, 2, 3; then 3.5 (worse), 2.95 (better, but not by min_delta 0.1:
  // EarlyStopping waits, ModelCheckpoint, without min_delta, saves): the second epoch without
  // improvement, patience 2, stops at 5 (Keras's rule).
  auto inject = std::make_shared<Inject>("score", std::vector<double>{5, 4, 3, 3.5, 2.95, 3.05, 1, 1});
  auto snapshots = std::make_shared<Snapshots>();
  auto stop = std::make_shared<train::EarlyStopping>(
      train::EarlyStoppingOptions().monitor("score").patience(2).min_delta(0.1).restore_best_weights(true));
  auto checkpoint_dir = TempDir();
  auto best_only = std::make_shared<train::ModelCheckpoint>(checkpoint_dir.file("best.safetensors"), "score");
  const train::History h = train::fit(model, mse, opt, loader,
                                      train::FitOptions().epochs(8).verbose(false).callbacks({inject, snapshots, stop, best_only}));
  CHECK(h.size() == 5);               // epochs 1..5, stopped at 5
  CHECK(stop->stopped_epoch() == 5);
  CHECK(stop->best_epoch() == 3);
  CHECK(weights(model) == snapshots->after.at(2));  // epoch 3's, restored bit for bit
  CHECK(best_only->saved_epochs() == std::vector<std::int64_t>{1, 2, 3, 5});
  nn::Sequential reloaded = make_model();
  reloaded.load(checkpoint_dir.file("best.safetensors"));
  CHECK(weights(reloaded) == snapshots->after.at(4));
  CHECK(h.epoch(5).at("score") == 2.95);
  CHECK_THROWS_WITH_AS(h.epoch(6), "History: no epoch 6 (epochs are numbered 1 to 5)", Error);
  // A monitor the logs lack is named.
  auto missing = std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions().monitor("val_accuracy"));
  CHECK_THROWS_WITH_AS(train::fit(model, mse, opt, loader, train::FitOptions().verbose(false).callbacks({missing})),
                       doctest::Contains("EarlyStopping: the logs have no 'val_accuracy'"), Error);
}

TEST_CASE("NaN is never the best epoch: EarlyStopping, ModelCheckpoint and ReduceLROnPlateau skip it") {
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(10));
  nn::Sequential model = make_model();
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.05));
  auto inject = std::make_shared<Inject>("score", std::vector<double>{NAN, 1, 0.5, 0.7, 0.6, 0.4});
  auto snapshots = std::make_shared<Snapshots>();
  auto stop = std::make_shared<train::EarlyStopping>(
      train::EarlyStoppingOptions().monitor("score").patience(2).restore_best_weights(true));
  TempDir dir;
  auto best_only = std::make_shared<train::ModelCheckpoint>(dir.file("best.safetensors"), "score");
  auto plateau = std::make_shared<train::ReduceLROnPlateau>(optim::ReduceLROnPlateauOptions().patience(0).factor(0.5), "score");
  const train::History h = train::fit(model, mse, opt, loader,
                                      train::FitOptions().epochs(6).verbose(false).callbacks({inject, snapshots, stop, best_only, plateau}));
  // Epoch 1 (NaN) is not a best; 2 and 3 improve; 4 and 5 do not: patience 2 stops at 5.
  CHECK(h.size() == 5);
  CHECK(stop->best_epoch() == 3);
  CHECK(stop->stopped_epoch() == 5);
  CHECK(weights(model) == snapshots->after.at(2));
  CHECK(best_only->saved_epochs() == std::vector<std::int64_t>{2, 3});
  // PyTorch's plateau rule, patience 0: every epoch that does not improve halves the rate
  // (NaN included); 2 and 3 improve.
  CHECK(h.values("lr") == std::vector<double>{0.025, 0.025, 0.025, 0.0125, 0.00625});
  // A run whose every value is NaN has no best epoch, restores nothing and saves nothing.
  auto all_nan = std::make_shared<Inject>("score", std::vector<double>{NAN, NAN, NAN});
  auto stop_nan = std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions().monitor("score").patience(5));
  auto best_nan = std::make_shared<train::ModelCheckpoint>(dir.file("never.safetensors"), "score");
  train::fit(model, mse, opt, loader, train::FitOptions().epochs(3).verbose(false).callbacks({all_nan, stop_nan, best_nan}));
  CHECK(stop_nan->best_epoch() == 0);
  CHECK(stop_nan->stopped_epoch() == 0);
  CHECK(best_nan->saved_epochs().empty());
  CHECK_FALSE(std::filesystem::exists(dir.file("never.safetensors")));
}

TEST_CASE("EarlyStopping counts patience as Keras does: patience 1 stops at the first epoch without improvement") {
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(10));
  nn::Sequential model = make_model();
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.05));
  for (const std::int64_t patience : {0, 1, 3}) {
    CAPTURE(patience);
    auto inject = std::make_shared<Inject>("score", std::vector<double>{3, 2, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5});
    auto stop = std::make_shared<train::EarlyStopping>(train::EarlyStoppingOptions().monitor("score").patience(patience));
    const train::History h = train::fit(model, mse, opt, loader, train::FitOptions().epochs(8).verbose(false).callbacks({inject, stop}));
    // Keras stops at epoch 2 + max(patience, 1): the epoch `wait >= patience` first holds after epoch 1.
    CHECK(stop->stopped_epoch() == 2 + std::max<std::int64_t>(patience, 1));
    CHECK(h.size() == static_cast<std::size_t>(stop->stopped_epoch()));
  }
}

TEST_CASE("a fit resumed from its checkpoint ends exactly where the uninterrupted fit does") {
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(8).shuffle(true).seed(2));
  TempDir dir;
  auto run = [&](std::int64_t epochs, const std::string& path, bool resume) {
    nn::Sequential model = make_model(/*dropout=*/0.3);  // dropout: the random generator must resume too
    optim::Adam opt(model.parameters(), optim::AdamOptions(0.02));
    train::History h = train::fit(model, mse, opt, loader,
                                  train::FitOptions().epochs(epochs).verbose(false).checkpoint(path).resume(resume));
    return std::make_pair(weights(model), h);
  };
  manual_seed(99);
  const auto [whole, whole_history] = run(4, dir.file("whole.safetensors"), false);
  manual_seed(99);
  run(2, dir.file("parts.safetensors"), false);           // interrupted after epoch 2
  manual_seed(12345);                                      // a new process: another seed, fresh weights
  const auto [resumed, resumed_history] = run(4, dir.file("parts.safetensors"), true);
  CHECK(resumed == whole);
  REQUIRE(resumed_history.size() == 4);
  CHECK(resumed_history.values("loss") == whole_history.values("loss"));
}

TEST_CASE("log_dir: metrics.csv holds every epoch, a resumed run's included, and loss.png is drawn") {
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(8).shuffle(true).seed(2));
  TempDir dir;
  auto run = [&](std::int64_t epochs) {
    nn::Sequential model = make_model();
    optim::Adam opt(model.parameters(), optim::AdamOptions(0.02));
    return train::fit(model, mse, opt, loader,
                      train::FitOptions().epochs(epochs).verbose(false).validation_split(0.25).checkpoint(dir.file("state.safetensors"))
                          .resume(true).log_dir(dir.file("run")));
  };
  run(2);
  const train::History h = run(3);  // resumed after epoch 2
  std::ifstream in(dir.file("run/metrics.csv"));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "epoch,loss,seconds,val_loss");
  for (std::size_t e = 0; e < 3; ++e) {
    CHECK(lines[e + 1].rfind(std::to_string(e + 1) + ",", 0) == 0);
    CHECK(lines[e + 1].find(fmt::format(",{}", h.epochs[e].at("val_loss"))) != std::string::npos);
  }
  CHECK(std::filesystem::exists(dir.file("run/loss.png")) == train::have_gnuplot());
}

TEST_CASE("validation_split, evaluate, predict, ReduceLROnPlateau, CsvLog and TerminateOnNaN") {
  const train::TensorDataset data = regression_data();
  const train::DataLoader loader(data, train::LoaderOptions().batch_size(8));
  nn::Sequential model = make_model();
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  TempDir dir;
  auto plateau = std::make_shared<train::ReduceLROnPlateau>(optim::ReduceLROnPlateauOptions().patience(0).factor(0.5), "loss_up");
  auto inject = std::make_shared<Inject>("loss_up", std::vector<double>{1, 2, 3});
  auto csv = std::make_shared<train::CsvLog>(dir.file("log.csv"));
  const train::History h = train::fit(model, mse, opt, loader,
                                      train::FitOptions().epochs(3).verbose(false).validation_split(0.25).callbacks({inject, plateau, csv}));
  // The last 10 samples validate: val_loss is evaluate() on them with the final weights.
  const train::DataLoader last(train::TensorDataset(narrow(data.inputs, 0, 30, 10), narrow(data.targets, 0, 30, 10)),
                               train::LoaderOptions().batch_size(8));
  const train::Forward forward = [&](const train::Batch& b) { return model(b.inputs); };
  CHECK(h.values("val_loss").back() == doctest::Approx(train::evaluate(model, forward, mse, last).at("loss")).epsilon(1e-12));
  CHECK(h.values("lr") == std::vector<double>{0.1, 0.05, 0.025});  // no improvement after epoch 0
  std::ifstream in(dir.file("log.csv"));
  std::string header;
  std::getline(in, header);
  CHECK(header == "epoch,loss,loss_up,lr,seconds,val_loss");
  // predict joins the batches in order; evaluate and predict leave the mode as it was.
  model.train();
  const Tensor p = train::predict(model, forward, loader);
  CHECK(p.shape() == Shape{40, 1});
  CHECK(model.is_training());
  // A NaN loss stops fit after that batch.
  auto nan_loss = [](const Tensor& p, const Tensor&) { return p.sum() * NAN; };
  const train::History stopped = train::fit(model, nan_loss, opt, loader,
                                            train::FitOptions().epochs(5).verbose(false).callbacks({std::make_shared<train::TerminateOnNaN>()}));
  CHECK(stopped.size() == 1);
  CHECK_THROWS_WITH_AS(train::make_metric("f1"), doctest::Contains("unknown metric 'f1'"), Error);
}

namespace {

// A sequence classifier whose forward takes the ids and their lengths, as a user writes one.
struct Tagger : nn::Module {
  nn::Embedding embed{6, 3};
  nn::GRU gru{nn::GRUOptions(3, 4).batch_first(true)};
  nn::Linear head{4, 2};
  Tagger() {
    register_module("embed", embed);
    register_module("gru", gru);
    register_module("head", head);
  }
  Tensor forward(const Tensor& ids, const nn::Lengths& lengths) {
    return head(gru.final_hidden(gru(embed(ids), {}, lengths).state));
  }
};

// A module whose forward takes the inputs alone, without deriving from UnaryModule.
struct Regressor : nn::Module {
  nn::Linear a{2, 4}, b{4, 1};
  Regressor() {
    register_module("a", a);
    register_module("b", b);
  }
  Tensor forward(const Tensor& x) { return b(tanh(a(x))); }
};

}  // namespace

TEST_CASE("fit's short form takes any module whose forward reads the inputs (and lengths), as the long form") {
  const train::DataLoader loader(train::TensorDataset(train::pad_sequences({{1, 2, 3}, {4}, {5, 1}, {2, 2, 2, 3}}),
                                                      from_vector(std::vector<std::int64_t>{0, 1, 0, 1}, {4})),
                                 train::LoaderOptions().batch_size(2));
  const train::Loss ce = [](const Tensor& logits, const Tensor& y) { return nn::cross_entropy(logits, y); };
  auto train_with = [&](bool short_form) {
    manual_seed(5);
    Tagger model;
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
    const auto o = train::FitOptions().epochs(3).verbose(false);
    const train::History h =
        short_form ? train::fit(model, ce, opt, loader, o)
                   : train::fit(model, [&](const train::Batch& b) { return model.forward(b.inputs, b.lengths); }, ce,
                                opt, loader, o);
    CHECK(train::predict(model, train::forward_of(model), loader).shape() == Shape{4, 2});
    return std::make_pair(weights(model), h.values("loss"));
  };
  CHECK(train_with(true) == train_with(false));

  manual_seed(5);
  Regressor reg;
  optim::SGD opt(reg.parameters(), optim::SGDOptions(0.05));
  const train::DataLoader data(regression_data(), train::LoaderOptions().batch_size(10));
  const train::History h = train::fit(reg, mse, opt, data, train::FitOptions().epochs(5).verbose(false));
  CHECK(h.values("loss").back() < h.values("loss").front());
  const train::Forward by_hand = [&](const train::Batch& b) { return reg.forward(b.inputs); };
  CHECK(train::evaluate(reg, train::forward_of(reg), mse, data).at("loss") == train::evaluate(reg, by_hand, mse, data).at("loss"));
}

TEST_CASE("one Mode for minimise or maximise: optim's plateau and train's callbacks") {
  nn::Linear layer(2, 1);
  optim::SGD opt(layer.parameters(), optim::SGDOptions(0.1));
  CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(opt, optim::ReduceLROnPlateauOptions().mode(optim::Mode::automatic)),
                       doctest::Contains("mode automatic needs the monitored value's name"), Error);
  // train's callback resolves automatic from its monitor: an accuracy must go up.
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(10));
  nn::Sequential model = make_model();
  optim::SGD sgd(model.parameters(), optim::SGDOptions(0.1));
  auto inject = std::make_shared<Inject>("val_acc", std::vector<double>{0.5, 0.6, 0.7});
  auto plateau = std::make_shared<train::ReduceLROnPlateau>(
      optim::ReduceLROnPlateauOptions().mode(train::Mode::automatic).patience(0).factor(0.5), "val_acc");
  const train::History h = train::fit(model, mse, sgd, loader, train::FitOptions().epochs(3).verbose(false).callbacks({inject, plateau}));
  CHECK(h.values("lr") == std::vector<double>{0.1, 0.1, 0.1});  // rising accuracy: no reduction
}

TEST_CASE("fit's files: a log_dir or checkpoint the filesystem refuses is an xgrad::Error naming it") {
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(8));
  TempDir dir;
  std::ofstream(dir.file("a_file")) << "not a directory";
  auto fit_with = [&](const train::FitOptions& options) {
    nn::Sequential model = make_model();
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.01));
    train::fit(model, mse, opt, loader, options);
  };
  const auto quiet = [] { return train::FitOptions().epochs(1).verbose(false); };
  CHECK_THROWS_WITH_AS(fit_with(quiet().log_dir(dir.file("a_file"))),
                       doctest::Contains(("fit: log_dir: cannot create the directory '" + dir.file("a_file") + "'").c_str()), Error);
  CHECK_THROWS_WITH_AS(fit_with(quiet().log_dir(dir.file("a_file/run"))),
                       doctest::Contains(("fit: log_dir: cannot create the directory '" + dir.file("a_file/run") + "'").c_str()), Error);
  // /proc takes no new directories, even from root: a read-only place.
  CHECK_THROWS_WITH_AS(fit_with(quiet().log_dir("/proc/xgrad_test_logs")),
                       doctest::Contains("fit: log_dir: cannot create the directory '/proc/xgrad_test_logs'"), Error);
  CHECK_THROWS_WITH_AS(fit_with(quiet().checkpoint(dir.file("a_file/state.safetensors")).resume(true)),
                       doctest::Contains(("fit: checkpoint: cannot inspect '" + dir.file("a_file/state.safetensors") + "'").c_str()), Error);
  CHECK_THROWS_WITH_AS(train::CsvLogger(dir.file("a_file/log.csv"), {"epoch"}, true),
                       doctest::Contains(("CsvLogger: cannot inspect '" + dir.file("a_file/log.csv") + "'").c_str()), Error);
}

TEST_CASE("fit refuses a gradient-clip value that is not a positive finite number, naming the option") {
  const train::DataLoader loader(regression_data(), train::LoaderOptions().batch_size(8));
  for (double bad : {0.0, -1.0, static_cast<double>(NAN), static_cast<double>(INFINITY)}) {
    nn::Sequential model = make_model();
    optim::SGD opt(model.parameters(), optim::SGDOptions(0.01));
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(train::fit(model, mse, opt, loader, train::FitOptions().verbose(false).clip_grad_norm(bad)),
                         doctest::Contains("fit: clip_grad_norm must be a positive finite number, got"), Error);
  }
  nn::Sequential model = make_model();
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.01));
  CHECK_NOTHROW(train::fit(model, mse, opt, loader, train::FitOptions().verbose(false).clip_grad_norm(0.5)));
}

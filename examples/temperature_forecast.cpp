// Forecasts an indoor sensor's temperature k readings ahead from its last W readings with a
// recurrent network (LSTM by default), on the Suthaharan single-hop sensor-network data
// (examples/data/README.md): one reading every 5 s for 6 h per mote.
//
// The split is chronological (train / validation / test = 70 / 15 / 15 %), normalisation is
// fitted on the training part only. The network sees each reading as its difference from the
// window's last one and predicts the change over the horizon, so what it learns does not
// depend on the temperature level (the test part is cooler than the training part). The
// weights with the best validation RMSE are kept (out/best.safetensors) and tested. Test
// RMSE and MAE in °C are reported beside persistence (the last reading as the forecast); the
// program exits with 1 if the network does not beat it. Windows touching a reading the
// dataset labels anomalous are left out.
//
//   build/release/examples/temperature_forecast [--cell lstm] [--window 30] [--horizon 12] ...
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <xgrad/xgrad.hpp>

using namespace xgrad;
namespace fs = std::filesystem;

#ifndef XGRAD_EXAMPLES_DATA_DIR
#define XGRAD_EXAMPLES_DATA_DIR "examples/data"
#endif

// One mote's readings in time order: temperature (°C) and the dataset's anomaly label.
struct Series {
  std::vector<double> temperature;
  std::vector<bool> anomaly;
};

// data.csv columns: reading,mote_id,indoor,humidity,temperature,label
Series load_mote(const std::string& path, int mote) {
  const train::Table table = train::read_csv(path);
  const auto id = table.numbers("mote_id"), temperature = table.numbers("temperature"), label = table.numbers("label");
  Series s;
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (id[i] != mote) continue;
    s.temperature.push_back(temperature[i]);
    s.anomaly.push_back(label[i] != 0);
  }
  return s;
}

// The windows over `range` (index of each window's last reading) whose readings and target
// are all free of anomalies.
std::vector<std::int64_t> clean_windows(const Series& s, train::Range range, std::int64_t window, std::int64_t horizon) {
  std::vector<std::int64_t> last;
  for (std::int64_t t : train::sliding_windows(range, window, horizon)) {
    bool clean = true;
    for (std::int64_t j = t - window + 1; j <= t + horizon; ++j) clean = clean && !s.anomaly[j];
    if (clean) last.push_back(t);
  }
  return last;
}

// Model input: (B, W, 1), each reading's difference from the window's last reading;
// target: (B, 1), the change over the horizon; both divided by `scale`, the RMS of the
// change over the horizon in the training part.
constexpr std::int64_t kFeatures = 1;
struct Batch {
  Tensor x, y;
};

Batch make_batch(const Series& s, const std::vector<std::int64_t>& last, std::int64_t window, std::int64_t horizon,
                 double scale) {
  std::vector<float> xs, ys;
  xs.reserve(last.size() * window);
  for (std::int64_t t : last) {
    for (std::int64_t j = t - window + 1; j <= t; ++j) xs.push_back(static_cast<float>((s.temperature[j] - s.temperature[t]) / scale));
    ys.push_back(static_cast<float>((s.temperature[t + horizon] - s.temperature[t]) / scale));
  }
  const auto b = static_cast<std::int64_t>(last.size());
  return {from_vector(xs, {b, window, kFeatures}), from_vector(ys, {b, 1})};
}

// The recurrent layer named on the command line; every layer is an nn::Recurrent.
nn::Recurrent make_rnn(const std::string& cell, std::int64_t hidden, std::int64_t layers) {
  if (cell == "lstm") return nn::LSTM(nn::LSTMOptions(kFeatures, hidden).num_layers(layers).batch_first(true));
  if (cell == "gru") return nn::GRU(nn::GRUOptions(kFeatures, hidden).num_layers(layers).batch_first(true));
  return nn::RNN(nn::RNNOptions(kFeatures, hidden).num_layers(layers).batch_first(true));
}

// Recurrent layer (batch_first) → Linear on its last step.
struct Forecaster : nn::Module {
  nn::Recurrent rnn;
  nn::Linear head;
  Forecaster(const std::string& cell, std::int64_t hidden, std::int64_t layers)
      : rnn(make_rnn(cell, hidden, layers)), head(hidden, 1) {
    register_module("rnn", rnn);
    register_module("head", head);
  }
  Tensor forward(const Tensor& x) { return head(nn::last_step(rnn(x).output, {}, true)); }
};

// Forecasts in °C for the windows `last`: the last reading plus the predicted change.
std::vector<double> predict(Forecaster& model, const Series& s, const std::vector<std::int64_t>& last,
                            std::int64_t window, std::int64_t horizon, double scale) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<double> out;
  for (const auto& idx : train::BatchSampler(static_cast<std::int64_t>(last.size()), 1024).epoch(0)) {
    std::vector<std::int64_t> ends;
    for (std::int64_t i : idx) ends.push_back(last[i]);
    const std::vector<float> delta = model.forward(make_batch(s, ends, window, horizon, scale).x).to_vector<float>();
    for (std::size_t i = 0; i < ends.size(); ++i) out.push_back(s.temperature[ends[i]] + delta[i] * scale);
  }
  model.train();
  return out;
}

struct Errors {
  double rmse = 0, mae = 0;
};
Errors errors(const std::vector<double>& forecast, const Series& s, const std::vector<std::int64_t>& last,
              std::int64_t horizon) {
  Errors e;
  for (std::size_t i = 0; i < last.size(); ++i) {
    const double d = forecast[i] - s.temperature[last[i] + horizon];
    e.rmse += d * d;
    e.mae += std::abs(d);
  }
  e.rmse = std::sqrt(e.rmse / last.size());
  e.mae /= last.size();
  return e;
}

int main(int argc, char** argv) {
  std::string data = std::string(XGRAD_EXAMPLES_DATA_DIR) + "/suthaharan_sensor.csv";
  std::string cell = "lstm", json_path, out_dir = "runs/temperature_forecast";
  int mote = 1, epochs = 15;
  std::int64_t hidden = 32, layers = 1, window = 30, horizon = 12, batch = 64;
  double lr = 3e-3;
  std::uint64_t seed = 0;
  CLI::App app{"Forecast an indoor sensor's temperature with a recurrent network"};
  app.add_option("--data", data, "the sensor CSV (examples/data/suthaharan_sensor.csv)")->capture_default_str();
  app.add_option("--mote", mote, "mote id; 1 and 2 are indoors")->check(CLI::Range(1, 4))->capture_default_str();
  app.add_option("--cell", cell, "recurrent cell")->check(CLI::IsMember({"rnn", "lstm", "gru"}))->capture_default_str();
  app.add_option("--hidden", hidden, "hidden units")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--layers", layers, "stacked recurrent layers")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--window", window, "past readings the model sees (5 s apart)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--horizon", horizon, "readings ahead to forecast (12 = 1 minute)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training windows")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", batch, "windows per batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", seed, "random seed (initialisation and shuffling)")->capture_default_str();
  app.add_option("--out", out_dir, "directory for metrics.csv, forecast.csv, best.safetensors and PNG plots")->capture_default_str();
  app.add_option("--json", json_path, "write the final metrics to this file as JSON");
  CLI11_PARSE(app, argc, argv);
  manual_seed(seed);

  // Data: a chronological 70 / 15 / 15 split of the mote's readings.
  const Series s = load_mote(data, mote);
  const auto n = static_cast<std::int64_t>(s.temperature.size());
  const auto parts = train::chronological_split(n, {0.70, 0.15, 0.15});
  const auto train_windows = clean_windows(s, parts[0], window, horizon);
  const auto val = clean_windows(s, parts[1], window, horizon), test = clean_windows(s, parts[2], window, horizon);
  if (train_windows.empty() || val.empty() || test.empty()) {
    fmt::print(stderr, "mote {}: {} readings are too few for --window {} --horizon {}\n", mote, n, window, horizon);
    return 2;
  }

  // Normalisation fitted on the training windows only.
  double scale = 0;
  for (std::int64_t t : train_windows) scale += std::pow(s.temperature[t + horizon] - s.temperature[t], 2);
  scale = std::sqrt(std::max(scale / static_cast<double>(train_windows.size()), 1e-12));
  fmt::print("mote {}: {} readings; windows train {} / val {} / test {}; W = {}, k = {} ({} s ahead)\n", mote, n,
             train_windows.size(), val.size(), test.size(), window, horizon, 5 * horizon);

  Forecaster model(cell, hidden, layers);
  optim::Adam opt(model.parameters(), optim::AdamOptions(lr));
  fmt::print("{} {}×{}: {} parameters\n", cell, layers, hidden, model.num_parameters());

  // Training; the weights with the best validation RMSE are kept.
  fs::create_directories(out_dir);
  const std::string dir = fs::path(out_dir).string();
  const std::string best_path = dir + "/best.safetensors";
  train::CsvLogger log(dir + "/metrics.csv", {"epoch", "train_loss", "val_rmse"});
  std::vector<double> val_persistence;
  for (std::int64_t t : val) val_persistence.push_back(s.temperature[t]);
  fmt::print("validation persistence RMSE {:.4f} °C\n", errors(val_persistence, s, val, horizon).rmse);
  train::BatchSampler batches(train_windows, batch, /*shuffle=*/true, seed);
  double loss_first = 0, loss_last = 0, best_val = INFINITY, seconds = 0;
  int best_epoch = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    train::ProgressBar bar(fmt::format("epoch {:2d}/{}", epoch, epochs), batches.num_batches());
    for (const auto& ends : batches.epoch(epoch)) {
      auto [x, y] = make_batch(s, ends, window, horizon, scale);
      Tensor loss = nn::mse_loss(model.forward(x), y);
      opt.zero_grad();
      loss.backward();
      nn::clip_grad_norm(model.parameters(), 1.0);
      opt.step();
      bar.update(static_cast<std::int64_t>(ends.size()), {{"loss", loss.item()}});
    }
    const double train_loss = bar.mean("loss");
    seconds += bar.training_seconds();
    const double val_rmse = errors(predict(model, s, val, window, horizon, scale), s, val, horizon).rmse;
    bar.finish({{"val_rmse", val_rmse}});
    log.log({static_cast<double>(epoch), train_loss, val_rmse});
    if (epoch == 1) loss_first = train_loss;
    loss_last = train_loss;
    if (!std::isfinite(train_loss)) {
      fmt::print(stderr, "the loss diverged; try a smaller --lr\n");
      return 1;
    }
    if (val_rmse < best_val) {
      best_val = val_rmse;
      best_epoch = epoch;
      model.save(best_path);
    }
  }
  model.load(best_path);
  fmt::print("trained in {}; best validation RMSE {:.4f} °C at epoch {} (weights in {})\n", train::format_duration(seconds),
             best_val, best_epoch, best_path);

  // Test: the network against persistence, in °C.
  const std::vector<double> forecast = predict(model, s, test, window, horizon, scale);
  std::vector<double> persistence;
  for (std::int64_t t : test) persistence.push_back(s.temperature[t]);
  const Errors net = errors(forecast, s, test, horizon), base = errors(persistence, s, test, horizon);
  fmt::print("test ({} windows, {} s ahead)   RMSE {:.4f} °C   MAE {:.4f} °C\n", test.size(), 5 * horizon, net.rmse, net.mae);
  fmt::print("persistence baseline           RMSE {:.4f} °C   MAE {:.4f} °C   ({:.0f} % lower RMSE)\n", base.rmse,
             base.mae, 100 * (1 - net.rmse / base.rmse));

  std::string fc_csv = "reading,truth,forecast,persistence\n";  // reading numbered from 1, as in the data
  for (std::size_t i = 0; i < test.size(); ++i)
    fc_csv += fmt::format("{},{:.2f},{:.4f},{:.2f}\n", test[i] + horizon + 1, s.temperature[test[i] + horizon], forecast[i],
                          persistence[i]);
  write_file_atomic(dir + "/forecast.csv", fc_csv);
  const bool plotted =
      train::plot_csv(dir + "/forecast.csv", dir + "/forecast.png",
                      train::PlotOptions().title(fmt::format("mote {}: temperature {} s ahead, test part", mote, 5 * horizon))
                          .xlabel("reading (5 s)").ylabel("°C").y_columns({2, 3, 4})) &&
      train::plot_csv(dir + "/metrics.csv", dir + "/loss_curve.png",
                      train::PlotOptions().title("training loss (normalised MSE) and validation RMSE (°C)").xlabel("epoch")
                          .y_columns({2, 3}).log_y(true).points(true));
  fmt::print("wrote {0}/metrics.csv and {0}/forecast.csv{1}\n", dir, plotted ? " and their plots (forecast.png, loss_curve.png)" : "");
  if (!plotted) fmt::print("{}\n", train::gnuplot_notice());

  if (!json_path.empty()) {
    nlohmann::json j = {{"mote", mote},           {"cell", cell},           {"hidden", hidden},
                        {"layers", layers},       {"window", window},       {"horizon", horizon},
                        {"epochs", epochs},       {"batch", batch},         {"lr", lr},
                        {"seed", seed},           {"parameters", model.num_parameters()},
                        {"loss_first", loss_first}, {"loss_last", loss_last},
                        {"best_epoch", best_epoch}, {"val_rmse", best_val}, {"test_rmse", net.rmse},
                        {"test_mae", net.mae},    {"persistence_rmse", base.rmse},
                        {"persistence_mae", base.mae}, {"test_windows", test.size()},
                        {"beats_persistence", net.rmse < base.rmse}, {"train_seconds", seconds}};
    write_file_atomic(json_path, j.dump(2) + "\n");
  }
  if (!(net.rmse < base.rmse)) {
    fmt::print(stderr, "the network did not beat persistence\n");
    return 1;
  }
  return 0;
}

// Forecasts an indoor sensor's temperature k readings ahead from its last W readings with a
// recurrent network (LSTM by default), on the Suthaharan single-hop sensor-network data
// (examples/data/README.md): one reading every 5 s for 6 h per mote.
//
// The split is chronological (train / validation / test = 70 / 15 / 15 %), normalisation is
// fitted on the training part only. The network sees each reading as its difference from the
// window's last one and predicts the change over the horizon, so what it learns does not
// depend on the temperature level (the test part is cooler than the training part). Test
// RMSE and MAE in °C are reported beside persistence (the last reading as the forecast); the
// program exits with 1 if the network does not beat it. Windows touching a reading the
// dataset labels anomalous are left out.
//
//   build/release/examples/temperature_forecast [--cell lstm] [--window 30] [--horizon 12] ...
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
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
  std::vector<float> temperature;
  std::vector<bool> anomaly;
};

// data.csv columns: reading,mote_id,indoor,humidity,temperature,label
Series load_mote(const std::string& path, int mote) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Series s;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    if (f.size() < 6 || std::stoi(f[1]) != mote) continue;
    s.temperature.push_back(std::stof(f[4]));
    s.anomaly.push_back(std::stoi(f[5]) != 0);
  }
  return s;
}

// Sliding windows over readings [begin, end): window i reads W readings ending at `last[i]`
// and is asked for the reading `horizon` steps after it. Windows touching a reading labelled
// anomalous are left out.
std::vector<std::int64_t> window_ends(const Series& s, std::int64_t begin, std::int64_t end, std::int64_t window,
                                      std::int64_t horizon) {
  std::vector<std::int64_t> last;
  for (std::int64_t t = begin + window - 1; t + horizon < end; ++t) {
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

Batch make_batch(const Series& s, const std::vector<std::int64_t>& last, std::size_t from, std::size_t to,
                 std::int64_t window, std::int64_t horizon, double scale) {
  const auto b = static_cast<std::int64_t>(to - from);
  std::vector<float> xs, ys;
  xs.reserve(b * window);
  for (std::size_t i = from; i < to; ++i) {
    const std::int64_t t = last[i];
    for (std::int64_t j = t - window + 1; j <= t; ++j) xs.push_back(static_cast<float>((s.temperature[j] - s.temperature[t]) / scale));
    ys.push_back(static_cast<float>((s.temperature[t + horizon] - s.temperature[t]) / scale));
  }
  return {from_vector(xs, {b, window, kFeatures}), from_vector(ys, {b, 1})};
}

// Recurrent layer (batch_first) → Linear on its last step.
struct Forecaster : nn::Module {
  std::shared_ptr<nn::Recurrent> rnn;
  std::shared_ptr<nn::Linear> head;
  Forecaster(const std::string& cell, std::int64_t hidden, std::int64_t layers) {
    if (cell == "lstm") rnn = std::make_shared<nn::LSTM>(nn::LSTMOptions(kFeatures, hidden).num_layers(layers).batch_first(true));
    else if (cell == "gru") rnn = std::make_shared<nn::GRU>(nn::GRUOptions(kFeatures, hidden).num_layers(layers).batch_first(true));
    else rnn = std::make_shared<nn::RNN>(nn::RNNOptions(kFeatures, hidden).num_layers(layers).batch_first(true));
    register_module("rnn", rnn);
    head = register_module("head", std::make_shared<nn::Linear>(hidden, 1));
  }
  Tensor forward(const Tensor& x) { return (*head)(nn::last_step(rnn->forward(x).output, {}, true)); }
};

// Forecasts in °C for the windows `last`: the last reading plus the predicted change.
std::vector<double> predict(Forecaster& model, const Series& s, const std::vector<std::int64_t>& last,
                            std::int64_t window, std::int64_t horizon, double scale) {
  NoGradGuard no_grad;
  model.eval();
  std::vector<double> out;
  for (std::size_t from = 0; from < last.size(); from += 1024) {
    const std::size_t to = std::min(last.size(), from + 1024);
    const std::vector<float> delta = model.forward(make_batch(s, last, from, to, window, horizon, scale).x).to_vector<float>();
    for (std::size_t i = from; i < to; ++i) out.push_back(s.temperature[last[i]] + delta[i - from] * scale);
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

// Renders a PNG with gnuplot when it is on PATH; returns whether it did.
bool gnuplot(const std::string& script) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) return false;
  FILE* p = popen("gnuplot", "w");
  if (p == nullptr) return false;
  std::fputs(script.c_str(), p);
  return pclose(p) == 0;
}

// Writes `text` to a temporary file beside `path`, then renames it over `path`: an interrupted
// run leaves the previous file or the new one, never half of one.
void write_atomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = fs::path(path).concat(".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

int main(int argc, char** argv) {
  std::string data = std::string(XGRAD_EXAMPLES_DATA_DIR) + "/suthaharan_sensor.csv";
  std::string cell = "lstm", json_path, out_dir = ".";
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
  app.add_option("--epochs", epochs, "passes over the training windows")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--batch", batch, "windows per batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", seed, "random seed (initialisation and shuffling)")->capture_default_str();
  app.add_option("--out", out_dir, "directory for forecast.csv, loss_curve.csv (and PNGs with gnuplot)")->capture_default_str();
  app.add_option("--json", json_path, "write the final metrics to this file as JSON");
  CLI11_PARSE(app, argc, argv);
  manual_seed(seed);
  std::mt19937_64 rng(seed);

  // Data: a chronological 70 / 15 / 15 split of the mote's readings.
  const Series s = load_mote(data, mote);
  const auto n = static_cast<std::int64_t>(s.temperature.size());
  const std::int64_t n_train = n * 70 / 100, n_val = n * 15 / 100;
  const auto train = window_ends(s, 0, n_train, window, horizon);
  const auto val = window_ends(s, n_train, n_train + n_val, window, horizon);
  const auto test = window_ends(s, n_train + n_val, n, window, horizon);
  if (train.empty() || val.empty() || test.empty()) {
    fmt::print(stderr, "mote {}: {} readings are too few for --window {} --horizon {}\n", mote, n, window, horizon);
    return 2;
  }

  // Normalisation fitted on the training windows only.
  double scale = 0;
  for (std::int64_t t : train) scale += std::pow(s.temperature[t + horizon] - s.temperature[t], 2);
  scale = std::sqrt(std::max(scale / static_cast<double>(train.size()), 1e-12));
  fmt::print("mote {}: {} readings; windows train {} / val {} / test {}; W = {}, k = {} ({} s ahead)\n", mote, n,
             train.size(), val.size(), test.size(), window, horizon, 5 * horizon);

  Forecaster model(cell, hidden, layers);
  optim::Adam opt(model.parameters(), optim::AdamOptions(lr));

  // Training.
  const auto start = std::chrono::steady_clock::now();
  fs::create_directories(out_dir);
  std::string loss_csv = "epoch,train_loss,val_rmse\n";
  std::vector<double> val_persistence;
  for (std::int64_t t : val) val_persistence.push_back(s.temperature[t]);
  fmt::print("validation persistence RMSE {:.4f} °C\n", errors(val_persistence, s, val, horizon).rmse);
  std::vector<std::int64_t> order = train;
  double val_rmse = 0;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    double total = 0;
    for (std::size_t from = 0; from < order.size(); from += batch) {
      const std::size_t to = std::min(order.size(), from + static_cast<std::size_t>(batch));
      auto [x, y] = make_batch(s, order, from, to, window, horizon, scale);
      Tensor loss = nn::mse_loss(model.forward(x), y);
      opt.zero_grad();
      loss.backward();
      nn::clip_grad_norm(model.parameters(), 1.0);
      opt.step();
      total += loss.item() * static_cast<double>(to - from);
    }
    const double train_loss = total / order.size();
    val_rmse = errors(predict(model, s, val, window, horizon, scale), s, val, horizon).rmse;
    fmt::print("epoch {:3d}  train loss {:.4f}  val RMSE {:.4f} °C\n", epoch, train_loss, val_rmse);
    loss_csv += fmt::format("{},{:.6f},{:.6f}\n", epoch, train_loss, val_rmse);
    write_atomic(fs::path(out_dir) / "loss_curve.csv", loss_csv);  // the curve so far survives an interrupt
    if (!std::isfinite(train_loss)) {
      fmt::print(stderr, "the loss diverged; try a smaller --lr\n");
      return 1;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Test: the network against persistence, in °C.
  const std::vector<double> forecast = predict(model, s, test, window, horizon, scale);
  std::vector<double> persistence;
  for (std::int64_t t : test) persistence.push_back(s.temperature[t]);
  const Errors net = errors(forecast, s, test, horizon), base = errors(persistence, s, test, horizon);
  fmt::print("trained in {:.1f} s\n", seconds);
  fmt::print("test ({} windows, {} s ahead)   RMSE {:.4f} °C   MAE {:.4f} °C\n", test.size(), 5 * horizon, net.rmse, net.mae);
  fmt::print("persistence baseline           RMSE {:.4f} °C   MAE {:.4f} °C\n", base.rmse, base.mae);

  std::string fc_csv = "reading,truth,forecast,persistence\n";  // reading numbered from 1, as in the data
  for (std::size_t i = 0; i < test.size(); ++i)
    fc_csv += fmt::format("{},{:.2f},{:.4f},{:.2f}\n", test[i] + horizon + 1, s.temperature[test[i] + horizon], forecast[i],
                          persistence[i]);
  write_atomic(fs::path(out_dir) / "forecast.csv", fc_csv);
  const std::string dir = fs::path(out_dir).string();
  const bool plotted =
      gnuplot(fmt::format("set terminal png size 1000,500\nset datafile separator ','\nset key autotitle columnhead\n"
                          "set output '{0}/forecast.png'\nset xlabel 'reading (5 s)'\nset ylabel 'temperature (°C)'\n"
                          "plot '{0}/forecast.csv' using 1:2 with lines, '' using 1:3 with lines\n"
                          "set output '{0}/loss_curve.png'\nset xlabel 'epoch'\nset ylabel ''\nset logscale y\n"
                          "plot '{0}/loss_curve.csv' using 1:2 with linespoints, '' using 1:3 with linespoints\n",
                          dir));
  fmt::print("wrote {0}/forecast.csv and {0}/loss_curve.csv{1}\n", dir,
             plotted ? " and their PNGs" : " (install gnuplot for PNG plots)");

  if (!json_path.empty()) {
    nlohmann::json j = {{"mote", mote},           {"cell", cell},           {"hidden", hidden},
                        {"layers", layers},       {"window", window},       {"horizon", horizon},
                        {"epochs", epochs},       {"batch", batch},         {"lr", lr},
                        {"seed", seed},           {"val_rmse", val_rmse},   {"test_rmse", net.rmse},
                        {"test_mae", net.mae},    {"persistence_rmse", base.rmse},
                        {"persistence_mae", base.mae}, {"test_windows", test.size()},
                        {"beats_persistence", net.rmse < base.rmse}, {"train_seconds", seconds}};
    write_atomic(json_path, j.dump(2) + "\n");
  }
  if (!(net.rmse < base.rmse)) {
    fmt::print(stderr, "the network did not beat persistence\n");
    return 1;
  }
  return 0;
}

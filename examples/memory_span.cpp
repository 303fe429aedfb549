// How far back can a recurrent network remember? Trains a plain RNN, an LSTM and a GRU on
// delayed recall for several lags T and measures, for each cell, the accuracy, the gradient
// that reaches each time step, the parameter count and the training time.
//
// The task: a sequence of T + 1 one-hot symbols. Step 0 holds a signal, one of 4 symbols;
// steps 1..T hold distractors drawn from 4 other symbols. After the last step the model must
// name the signal, which lies exactly T steps back:
//
//   one-hot (T+1, B, 8) → RNN / LSTM / GRU (T+1, B, H) → h_T (B, H) → Linear (B, 4) → cross entropy
//
// Why delayed recall rather than the adding problem: the answer depends on one input at a
// known distance T and on nothing else, so accuracy against T measures memory span directly,
// and chance is a plain number (1/4 = 25 %). In the adding problem the two marked inputs sit
// at random distances and the score is an MSE whose baseline (0.167 for guessing 1) a reader
// has to be told; a model can also beat that baseline a little using the recent marker alone.
//
// The data are generated: every training step draws a fresh batch, and the held-out accuracy
// is measured on 1 000 sequences drawn from a separate stream. (For T = 5 there are only
// 4·4⁵ = 4 096 distinct sequences, so there "held-out" means "freshly drawn".) For a given T
// every cell sees the same batches, and every cell starts from the same seed.
//
// Initialisation: PyTorch's for all three cells, except that the gated cells start out
// remembering (--gate-bias b, default 5): the GRU's update gate at +b, so that it keeps ≈ σ(b)
// of its state per step and writes ≈ σ(−b); the LSTM's forget gate at +b and its input gate at
// −b, the same keep / write split (a fixed-value "chrono" initialisation, Tallec & Ollivier
// 2018; the forget-gate half is Gers et al. 2000). With the forget gate alone at 3, as in
// tests/test_rnn_learning.cpp, the LSTM learned T = 100 within 600 steps for 3 seeds of 4;
// with this split it learned it for seeds 0–4, and the GRU for seeds 0–3. The plain RNN has
// no gate to set: that is the point.
//
// The gradient ‖∂L/∂h_t‖ at every step t is measured on the largest T, for each cell freshly
// initialised and after training. The probe runs the layer's own cell step by step and asks
// each h_t to keep its gradient (retain_grad(), as in PyTorch); it checks that its loop
// reproduces the layer's output.
//
// train::fit does not fit this loop: every step draws a fresh batch from a generator (there
// is no dataset to load), and the gradient probe runs the cell step by step. It is written with
// the pieces fit uses instead: ProgressBar, the Accuracy metric, CsvLogger, Stopwatch (wall and
// CPU time) and RunSummary, whose checks require the gated cells (LSTM, GRU) to reach at least
// 3 × chance (0.75) held-out accuracy at every T; the program exits with 1 otherwise. The plain
// RNN is not checked: that it fails at long T is the finding.
//
// Writes to --out: accuracy.csv (cell × T), curve_T<T>.csv (training loss and accuracy every
// --log-every steps), grad_norms.csv (‖∂L/∂h_t‖ per step and cell), and with gnuplot their PNGs.
// --json adds the whole result; its loss_first / loss_last are the training loss over the
// first and the last logging interval, averaged over every trained cell and T.
//
//   build/release/examples/memory_span [--cells rnn,lstm,gru] [--lengths 5,10,20,50,100] [--steps 600] ...
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <xgrad/xgrad.hpp>

#include "common/run_summary.hpp"

using namespace xgrad;
namespace fs = std::filesystem;

constexpr std::int64_t kSignals = 4, kDistractors = 4, kVocab = kSignals + kDistractors;

// A batch of recall sequences: x (T+1, B, 8) one-hot, targets (B) i64, the signal of step 0.
struct Batch {
  Tensor x, targets;
};

Batch recall_batch(std::mt19937_64& rng, std::int64_t lag, std::int64_t batch) {
  std::vector<float> x(static_cast<std::size_t>((lag + 1) * batch * kVocab), 0.0f);
  std::vector<std::int64_t> targets(static_cast<std::size_t>(batch));
  for (std::int64_t b = 0; b < batch; ++b) {
    // rng() % n rather than std::uniform_int_distribution: the same sequences on every platform.
    const auto signal = static_cast<std::int64_t>(rng() % kSignals);
    targets[b] = signal;
    for (std::int64_t t = 0; t <= lag; ++t) {
      const std::int64_t symbol = t == 0 ? signal : kSignals + static_cast<std::int64_t>(rng() % kDistractors);
      x[static_cast<std::size_t>((t * batch + b) * kVocab + symbol)] = 1.0f;
    }
  }
  return {from_vector(x, {lag + 1, batch, kVocab}), from_vector(targets, {batch})};
}

// The recurrent layer named on the command line; every layer is an nn::Recurrent.
nn::Recurrent make_rnn(const std::string& cell, std::int64_t hidden) {
  if (cell == "lstm") return nn::LSTM(nn::LSTMOptions(kVocab, hidden));
  if (cell == "gru") return nn::GRU(nn::GRUOptions(kVocab, hidden));
  return nn::RNN(nn::RNNOptions(kVocab, hidden));
}

// The recurrent layer's last hidden state through a linear head.
struct Recaller : nn::Module {
  nn::Recurrent rnn;
  nn::Linear head;
  Recaller(const std::string& cell, std::int64_t hidden, double gate_bias)
      : rnn(make_rnn(cell, hidden)), head(hidden, kSignals) {
    register_module("rnn", rnn);
    register_module("head", head);
    // Start out remembering: the GRU's update gate z (gates r, z, n) at +gate_bias, so that
    // h' = (1 − z) n + z h keeps ≈ σ(b) of the state and writes ≈ σ(−b); the LSTM's forget
    // gate f at +gate_bias and its input gate i at −gate_bias (gates i, f, g, o), the same
    // keep / write split. The blocks are H entries each, set in bias_ih_l0 (bias_hh stays).
    if (cell != "rnn" && gate_bias != 0.0) {
      NoGradGuard no_grad;
      Tensor bias;
      for (const auto& [name, p] : rnn.named_parameters())
        if (name == "bias_ih_l0") bias = p;
      std::vector<float> b = bias.to_vector<float>();
      const auto keep = b.begin() + hidden, write = b.begin();  // LSTM: f and i; GRU: z
      std::fill(keep, keep + hidden, static_cast<float>(gate_bias));
      if (cell == "lstm") std::fill(write, write + hidden, static_cast<float>(-gate_bias));
      bias.copy_(from_vector(b, bias.shape()));  // in place: the registry shares the tensor
    }
  }
  Tensor forward(const Tensor& x) { return head(nn::last_step(rnn(x).output)); }
};

// ‖∂L/∂h_t‖ for t = 0..T on one batch: the cross entropy of the answer read from h_T,
// differentiated with respect to every hidden state. Runs the layer's own cell step by step;
// `mismatch` receives the largest difference between the loop's h_T and the layer's.
// The probe runs in f64 (the model is converted there and back, which is exact): a plain
// RNN's gradient 100 steps back is smaller than the smallest f32.
std::vector<double> hidden_grad_norms(Recaller& model, const Batch& batch_f32, double& mismatch) {
  model.to(DType::f64);
  const Batch b{batch_f32.x.to(DType::f64), batch_f32.targets};
  nn::RecurrentCell& cell = model.rnn.cell(0);
  // The input part of every step, (T+1, B, G), cut into T+1 steps (B, G) by one node (T+1
  // `select`s would each send back a gradient of the whole (T+1, B, G)).
  const std::vector<Tensor> xp = cell.project_input(b.x).unbind(0);
  nn::CellState state = cell.zero_state(b.x.size(1), DType::f64);
  std::vector<Tensor> hidden;  // h_t (B, H), each keeping its gradient
  for (const Tensor& x_t : xp) {
    state = cell.step(x_t, state);
    state[0].retain_grad();
    hidden.push_back(state[0]);
  }
  Tensor loss = nn::cross_entropy(model.head(state[0]), b.targets);
  loss.backward();
  {
    NoGradGuard no_grad;
    const Tensor layer_h = nn::last_step(model.rnn(b.x).output);
    mismatch = max(abs(layer_h - state[0])).item();
  }
  std::vector<double> norms;
  for (const Tensor& h : hidden) norms.push_back(std::sqrt(sum(h.grad() * h.grad()).item()));
  model.to(DType::f32);  // also drops the probe's parameter gradients
  return norms;
}

// One trained configuration.
struct Run {
  std::string cell;
  std::int64_t lag = 0, params = 0;
  double accuracy = 0, seconds = 0, cpu_seconds = 0;  // wall-clock and CPU time of the training loop
  std::vector<double> curve_loss, curve_acc;  // training means per logging interval
};

struct Settings {
  std::int64_t hidden = 32, steps = 600, batch = 32, log_every = 50;
  double lr = 3e-3, gate_bias = 5.0, clip = 1.0;
  std::uint64_t seed = 0;
};

// Trains `cell` on lag T; with `probe`, also measures ‖∂L/∂h_t‖ before and after training.
Run train_one(const std::string& cell, std::int64_t lag, const Settings& s, const Batch* probe,
              std::vector<double>* norms_init, std::vector<double>* norms_trained) {
  manual_seed(s.seed);  // the same initial weights for every T
  Recaller model(cell, s.hidden, s.gate_bias);
  std::mt19937_64 data(s.seed * 1'000'003 + static_cast<std::uint64_t>(lag));  // the same batches for every cell
  std::mt19937_64 held_out(s.seed * 1'000'003 + static_cast<std::uint64_t>(lag) + 500'000);
  std::vector<Batch> test;  // 1000 sequences in 4 batches: a smaller peak of memory at T = 100
  for (int i = 0; i < 4; ++i) test.push_back(recall_batch(held_out, lag, 250));
  double mismatch = 0;
  if (probe != nullptr) *norms_init = hidden_grad_norms(model, *probe, mismatch);

  optim::Adam opt(model.parameters(), optim::AdamOptions(s.lr));
  Run run;
  run.cell = cell;
  run.lag = lag;
  run.params = model.num_parameters();
  train::ProgressBar bar(fmt::format("{:4} T={:<3}", cell, lag), s.steps);
  double loss_sum = 0;
  train::Accuracy interval_acc;  // over the current logging interval
  examples::Stopwatch clock;
  for (std::int64_t step = 1; step <= s.steps; ++step) {
    const Batch b = recall_batch(data, lag, s.batch);
    const Tensor logits = model.forward(b.x);
    Tensor loss = nn::cross_entropy(logits, b.targets);
    opt.zero_grad();
    loss.backward();
    nn::clip_grad_norm(model.parameters(), s.clip);
    opt.step();
    const double l = loss.item();
    interval_acc.update(logits, b.targets);
    bar.update(s.batch, {{"loss", l}});
    loss_sum += l;
    if (step % s.log_every == 0 || step == s.steps) {
      const auto n = static_cast<double>(step % s.log_every == 0 ? s.log_every : step % s.log_every);
      run.curve_loss.push_back(loss_sum / n);
      run.curve_acc.push_back(interval_acc.value());
      loss_sum = 0;
      interval_acc.reset();
    }
  }
  clock.stop();
  run.seconds = clock.seconds();
  run.cpu_seconds = clock.cpu_seconds();
  {
    NoGradGuard no_grad;
    train::Accuracy held_out;
    for (const Batch& b : test) held_out.update(model.forward(b.x), b.targets);
    run.accuracy = held_out.value();
  }
  bar.finish({{"held_out_acc", run.accuracy}});
  if (probe != nullptr) {
    *norms_trained = hidden_grad_norms(model, *probe, mismatch);
    fmt::print("  gradient probe: step-by-step h_T matches the {} layer's to {:.1e}\n", cell, mismatch);
  }
  return run;
}

// The first field of /proc/loadavg (Linux), or "n/a": timings on a busy machine need it.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one_minute;
  return in >> one_minute ? one_minute : "n/a";
}

int main(int argc, char** argv) {
  Settings s;
  std::vector<std::string> cells = {"rnn", "lstm", "gru"};
  std::string out_dir = "runs/memory_span", json_path;
  std::vector<std::int64_t> lengths = {5, 10, 20, 50, 100};
  CLI::App app{"Delayed recall: how far back can an RNN, an LSTM and a GRU remember?"};
  app.add_option("--cells", cells, "recurrent cells to compare")
      ->delimiter(',')->check(CLI::IsMember({"rnn", "lstm", "gru"}))->capture_default_str();
  app.add_option("--lengths", lengths, "lags T: the signal is T steps before the answer")
      ->delimiter(',')->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--hidden", s.hidden, "hidden units of every cell")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--steps", s.steps, "training steps per cell and T")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", s.batch, "sequences per step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", s.lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--gate-bias", s.gate_bias, "start remembering: LSTM forget gate +b, input gate -b; GRU update gate +b (0: PyTorch's init)")
      ->capture_default_str();
  app.add_option("--log-every", s.log_every, "steps per point of the training curves")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", s.seed, "random seed (weights and data)")->capture_default_str();
  app.add_option("--out", out_dir, "directory for the CSV files (and PNG plots with gnuplot)")->capture_default_str();
  app.add_option("--json", json_path, "write the results to this file as JSON");
  CLI11_PARSE(app, argc, argv);
  cells.erase(std::unique(cells.begin(), cells.end()), cells.end());
  std::sort(lengths.begin(), lengths.end());
  lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  const std::int64_t longest = lengths.back();
  fs::create_directories(out_dir);
  fmt::print("delayed recall: name the first of T+1 symbols (chance {:.0f} %); hidden {}, {} steps of {} sequences, "
             "Adam lr {}, clip {}, seed {}; gate bias {} (LSTM forget +b, input −b; GRU update +b)\n",
             100.0 / kSignals, s.hidden, s.steps, s.batch, s.lr, s.clip, s.seed, s.gate_bias);

  // Training: for each T, every cell on the same batches; the curves of one T in one CSV.
  std::map<std::string, std::vector<double>> norms_init, norms_trained;
  std::mt19937_64 probe_rng(s.seed + 77);
  const Batch probe = recall_batch(probe_rng, longest, 256);
  std::vector<Run> runs;
  const std::string load_at_start = load_average();
  examples::Stopwatch total;
  for (std::int64_t lag : lengths) {
    std::vector<Run> of_lag;
    for (const auto& cell : cells) {
      const bool probe_here = lag == longest;
      of_lag.push_back(train_one(cell, lag, s, probe_here ? &probe : nullptr, &norms_init[cell], &norms_trained[cell]));
    }
    std::vector<std::string> columns = {"step"};
    for (const auto& c : cells) columns.push_back(c + "_loss");
    for (const auto& c : cells) columns.push_back(c + "_acc");
    train::CsvLogger curve(fmt::format("{}/curve_T{}.csv", out_dir, lag), columns);
    for (std::size_t i = 0; i < of_lag[0].curve_loss.size(); ++i) {
      std::vector<double> row = {static_cast<double>(std::min<std::int64_t>((i + 1) * s.log_every, s.steps))};
      for (const Run& r : of_lag) row.push_back(r.curve_loss[i]);
      for (const Run& r : of_lag) row.push_back(r.curve_acc[i]);
      curve.log(row);
    }
    runs.insert(runs.end(), of_lag.begin(), of_lag.end());
  }
  const double total_seconds = total.seconds();
  auto find = [&](const std::string& cell, std::int64_t lag) -> const Run& {
    return *std::find_if(runs.begin(), runs.end(), [&](const Run& r) { return r.cell == cell && r.lag == lag; });
  };

  // The table: held-out accuracy per cell and T, then size and cost per cell.
  fmt::print("\nheld-out accuracy (1000 sequences; chance {:.2f})\n{:>6}", 1.0 / kSignals, "T");
  for (const auto& c : cells) fmt::print("{:>8}", c);
  fmt::print("\n");
  for (std::int64_t lag : lengths) {
    fmt::print("{:>6}", lag);
    for (const auto& c : cells) fmt::print("{:>8.3f}", find(c, lag).accuracy);
    fmt::print("\n");
  }
  // CPU time counts this process only, so on a shared machine it compares the cells more
  // fairly than the wall clock — though shared cores and caches still slow it down when the
  // machine is busy.
  fmt::print("\n{:>6}{:>12}{:>14}{:>13}{:>24}\n", "cell", "parameters", "train wall s", "train CPU s",
             fmt::format("CPU ms/step at T={}", longest));
  for (const auto& c : cells) {
    double wall = 0, cpu = 0;
    for (std::int64_t lag : lengths) wall += find(c, lag).seconds, cpu += find(c, lag).cpu_seconds;
    fmt::print("{:>6}{:>12}{:>14.1f}{:>13.1f}{:>24.1f}\n", c, find(c, longest).params, wall, cpu,
               1000.0 * find(c, longest).cpu_seconds / static_cast<double>(s.steps));
  }

  // Gradient norms at the longest T: one row per time step.
  std::vector<std::string> columns = {"t"};
  for (const auto& c : cells) columns.push_back(c + "_init");
  for (const auto& c : cells) columns.push_back(c + "_trained");
  const std::string grad_csv = out_dir + "/grad_norms.csv";
  {
    train::CsvLogger log(grad_csv, columns);
    for (std::int64_t t = 0; t <= longest; ++t) {
      std::vector<double> row = {static_cast<double>(t)};
      for (const auto& c : cells) row.push_back(norms_init[c][t]);
      for (const auto& c : cells) row.push_back(norms_trained[c][t]);
      log.log(row);
    }
  }
  fmt::print("\n‖∂L/∂h_t‖ at T={} (the loss reads h_{}; 256 sequences), {}\n{:>8}", longest, longest, grad_csv, "t");
  for (const auto& c : cells) fmt::print("{:>14}", c + " init");
  for (const auto& c : cells) fmt::print("{:>14}", c + " trained");
  fmt::print("\n");
  std::vector<std::int64_t> shown = {longest, longest - 1, longest - 5, longest - 10, longest - 20, longest - 50, 0};
  shown.erase(std::remove_if(shown.begin(), shown.end(), [&](std::int64_t t) { return t < 0; }), shown.end());
  shown.erase(std::unique(shown.begin(), shown.end()), shown.end());
  for (std::int64_t t : shown) {
    fmt::print("{:>8}", t);
    for (const auto& c : cells) fmt::print("{:>14.3e}", norms_init[c][t]);
    for (const auto& c : cells) fmt::print("{:>14.3e}", norms_trained[c][t]);
    fmt::print("\n");
  }
  // Two summaries: over all steps, and over all but the last (whose gradient also comes
  // straight from the head; an LSTM's h_{T-1} reaches the loss only through its gates).
  for (std::int64_t from : {longest, longest - 1}) {
    if (from <= 0) continue;
    fmt::print("{:>8}", fmt::format("h_0/h_{}", from));
    for (const auto& c : cells) fmt::print("{:>14.3e}", norms_init[c][0] / norms_init[c][from]);
    for (const auto& c : cells) fmt::print("{:>14.3e}", norms_trained[c][0] / norms_trained[c][from]);
    fmt::print("\n");
  }
  fmt::print("\ntotal {:.1f} s wall (training, evaluation and probes); load average {} at the start, {} at the end\n",
             total_seconds, load_at_start, load_average());

  // Accuracy against T, and the plots.
  std::vector<std::string> acc_columns = {"T"};
  for (const auto& c : cells) acc_columns.push_back(c);
  const std::string acc_csv = out_dir + "/accuracy.csv";
  {
    train::CsvLogger log(acc_csv, acc_columns);
    for (std::int64_t lag : lengths) {
      std::vector<double> row = {static_cast<double>(lag)};
      for (const auto& c : cells) row.push_back(find(c, lag).accuracy);
      log.log(row);
    }
  }
  const int n = static_cast<int>(cells.size());
  std::vector<int> first_block, second_block;
  for (int i = 0; i < n; ++i) first_block.push_back(2 + i), second_block.push_back(2 + n + i);
  bool plotted = train::plot_csv(acc_csv, out_dir + "/accuracy.png",
                                 train::PlotOptions().title("delayed recall: held-out accuracy (chance 0.25)")
                                     .xlabel("T (steps between the signal and the answer)").ylabel("accuracy")
                                     .y_columns(first_block).points(true));
  plotted = plotted &&
            train::plot_csv(grad_csv, out_dir + "/grad_norms.png",
                            train::PlotOptions().title(fmt::format("||dL/dh_t||, T = {}", longest)).xlabel("time step t")
                                .ylabel("gradient norm").y_columns(first_block).log_y(true)) &&
            train::plot_csv(grad_csv, out_dir + "/grad_norms_trained.png",
                            train::PlotOptions().title(fmt::format("||dL/dh_t|| after training, T = {}", longest))
                                .xlabel("time step t").ylabel("gradient norm").y_columns(second_block).log_y(true)) &&
            train::plot_csv(fmt::format("{}/curve_T{}.csv", out_dir, longest), out_dir + "/curve.png",
                            train::PlotOptions().title(fmt::format("training loss, T = {}", longest)).xlabel("step")
                                .ylabel("cross entropy").y_columns(first_block));
  if (plotted) fmt::print("wrote CSV files and PNG plots to {}/\n", out_dir);
  else fmt::print("wrote CSV files to {}/; {}\n", out_dir, train::gnuplot_notice());

  // The run summary (--json). loss_first / loss_last: the training loss over the first and
  // over the last logging interval, averaged over every trained configuration.
  double loss_first = 0, loss_last = 0;
  examples::RunSummary params, summary;
  std::map<std::string, std::vector<double>> acc, seconds, cpu_seconds;
  for (const Run& r : runs) {
    loss_first += r.curve_loss.front() / static_cast<double>(runs.size());
    loss_last += r.curve_loss.back() / static_cast<double>(runs.size());
    summary.append("results", examples::RunSummary().set("cell", r.cell).set("T", r.lag).set("accuracy", r.accuracy)
                                  .set("params", r.params).set("train_seconds", r.seconds).set("cpu_seconds", r.cpu_seconds)
                                  .set("cpu_ms_per_step", 1000.0 * r.cpu_seconds / static_cast<double>(s.steps))
                                  .set("loss_first", r.curve_loss.front()).set("loss_last", r.curve_loss.back()));
    acc[r.cell].push_back(r.accuracy);
    seconds[r.cell].push_back(r.seconds);
    cpu_seconds[r.cell].push_back(r.cpu_seconds);
    params.set(r.cell, r.params);
  }
  summary.set("task", "delayed recall").set("chance", 1.0 / kSignals).set("cells", cells).set("lengths", lengths)
      .set("hidden", s.hidden).set("steps", s.steps).set("batch", s.batch).set("lr", s.lr).set("gate_bias", s.gate_bias)
      .set("seed", s.seed).set("loss_first", loss_first).set("loss_last", loss_last).set("accuracy", acc)
      .set("params", params).set("train_seconds", seconds).set("cpu_seconds", cpu_seconds)
      .set("total_seconds", total_seconds)
      .set("grad_norms", examples::RunSummary().set("T", longest).set("init", norms_init).set("trained", norms_trained));
  // What the example claims: the gated cells remember at every T (3 × chance at least).
  for (const Run& r : runs)
    if (r.cell != "rnn")
      summary.check(fmt::format("{}_accuracy_T{}", r.cell, r.lag), r.accuracy, "chance", 1.0 / kSignals,
                    train::Mode::max, 2.0);
  for (const auto& line : summary.check_lines()) fmt::print("{}\n", line);
  if (!json_path.empty()) summary.write(json_path);
  if (!summary.passed()) {
    fmt::print(stderr, "a gated cell did not reach 3 × chance accuracy\n");
    return 1;
  }
  return 0;
}

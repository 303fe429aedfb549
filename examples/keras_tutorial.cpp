// The Keras tutorial's six sentiment models, written with xgrad's Keras conventions:
// Keras's initialisers (nn::keras::initialize), Keras's RMSprop, pad_sequences, and fit with
// EarlyStopping(patience 3, restore best weights) and a best-only ModelCheckpoint.
//
//   build/release/examples/keras_tutorial                    # all six models, up to 100 epochs
//   build/release/examples/keras_tutorial --models 3 --epochs 10
//
// Data: the 3000 labelled review sentences in examples/data/sentiment/ (IMDb, Yelp, Amazon;
// see its LICENSE.md), split 60 / 20 / 20 into training, validation and test sentences. The
// vocabulary is the 500 most frequent training words (ids 0 and 1 are padding and unknown);
// every sentence is cut or padded to 100 ids the Keras way (before the sentence). As in the
// tutorial there is no masking: the layers read the padding.
//
// It prints and writes (--out) a table: trainable parameters (as Keras counts them), epochs run, best validation loss and
// accuracy, test accuracy and time per model.
//
// Keras itself (TensorFlow.js) side by side, examples/keras_tfjs/ (see its README.md):
//   --export DIR         writes what the TF.js script replays: the data, each model's initial weights
//                        in Keras's layout, the batch order of --epochs epochs, and xgrad's losses of
//                        the first --steps training steps with dropout off
//   --check-steps FILE   trains the first steps again and compares the losses with TF.js's
//                        (FILE: examples/keras_tfjs/tfjs_steps.json); exits 1 above 1e-4 relative
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

constexpr std::int64_t kVocabulary = 500, kMaxlen = 100, kEmbedding = 16, kUnits = 8;

struct Split {
  Tensor ids, labels;  // (N, 100) int64, (N) float32 0 / 1
};

struct Data {
  Split train, validation, test;
};

Data load(const std::string& dir, std::uint64_t seed) {
  std::vector<std::vector<std::string>> words;
  std::vector<float> labels;
  for (const char* name : {"imdb", "yelp", "amazon"}) {
    const train::Table t = train::read_json_records(dir + "/" + name + ".json", {"text", "class"});
    for (const auto& row : t.rows) {
      if (row[1].empty()) continue;  // each file ends with {"text": "", "class": null}
      words.push_back(train::tokenize_words(row[0]));
      labels.push_back(std::stof(row[1]));
    }
  }
  const auto parts = train::random_split(static_cast<std::int64_t>(words.size()), {0.6, 0.2, 0.2}, seed);
  std::vector<std::vector<std::string>> train_words;
  for (std::int64_t i : parts[0]) train_words.push_back(words[static_cast<std::size_t>(i)]);
  const train::Vocabulary vocab = train::Vocabulary::build(train_words, 1, kVocabulary);
  auto split = [&](const std::vector<std::int64_t>& index) {
    std::vector<std::vector<std::int64_t>> ids;
    std::vector<float> y;
    for (std::int64_t i : index) {
      ids.push_back(vocab.encode(words[static_cast<std::size_t>(i)]));
      y.push_back(labels[static_cast<std::size_t>(i)]);
    }
    return Split{train::pad_sequences(ids, train::PadOptions().maxlen(kMaxlen)).padded,
                 from_vector(y, {static_cast<std::int64_t>(y.size())})};
  };
  return {split(parts[0]), split(parts[1]), split(parts[2])};
}

// ids (B, 100) → one-hot (B, 100, 500): the tutorial's model without an Embedding.
struct OneHot : nn::UnaryModule {
  Tensor forward(const Tensor& ids) override { return nn::one_hot(ids, kVocabulary); }
};

std::shared_ptr<nn::UnaryModule> recurrent(nn::Recurrent layer) {
  return std::make_shared<nn::SequenceOutput>(std::make_shared<nn::Recurrent>(std::move(layer)));
}

// The six models, each ending in one logit (Keras's Dense(1, sigmoid) with the sigmoid in the loss).
// `make(dropout)`: the input dropout of models 4 and 5 (the tutorial's 0.3; 0 to compare step for step).
struct ModelSpec {
  std::string name;
  std::function<nn::Sequential(double dropout)> make;
};

std::vector<ModelSpec> models() {
  auto embedding = [] { return std::make_shared<nn::Embedding>(kVocabulary, kEmbedding); };
  auto last = [] { return std::make_shared<nn::LastStep>(/*batch_first=*/true); };
  auto dense = [] { return std::make_shared<nn::Linear>(kUnits, 1); };
  return {
      {"Embedding(500, 16) → SimpleRNN(8)",
       [=](double) { return nn::Sequential{embedding(), recurrent(nn::RNN(nn::RNNOptions(kEmbedding, kUnits).batch_first(true))), last(), dense()}; }},
      {"one-hot(500) → SimpleRNN(8)",
       [=](double) { return nn::Sequential{std::make_shared<OneHot>(), recurrent(nn::RNN(nn::RNNOptions(kVocabulary, kUnits).batch_first(true))), last(), dense()}; }},
      {"Embedding(500, 16) → LSTM(8)",
       [=](double) { return nn::Sequential{embedding(), recurrent(nn::LSTM(nn::LSTMOptions(kEmbedding, kUnits).batch_first(true))), last(), dense()}; }},
      {"Embedding(500, 16) → LSTM(8, dropout 0.3)",
       [=](double dropout) {
         return nn::Sequential{embedding(), recurrent(nn::LSTM(nn::LSTMOptions(kEmbedding, kUnits).batch_first(true).input_dropout(dropout))),
                               last(), dense()};
       }},
      {"Embedding(500, 16) → LSTM(8) → LSTM(8), dropout 0.3",
       [=](double dropout) {
         return nn::Sequential{embedding(),
                               recurrent(nn::LSTM(nn::LSTMOptions(kEmbedding, kUnits).batch_first(true).input_dropout(dropout))),
                               recurrent(nn::LSTM(nn::LSTMOptions(kUnits, kUnits).batch_first(true).input_dropout(dropout))),
                               last(), dense()};
       }},
      {"Embedding(500, 16) → GRU(8)",
       [=](double) { return nn::Sequential{embedding(), recurrent(nn::GRU(nn::GRUOptions(kEmbedding, kUnits).batch_first(true))), last(), dense()}; }},
  };
}

// The training options every mode shares.
struct Run {
  std::int64_t epochs = 100, batch = 64, patience = 3, steps = 50;
  double lr = 1e-4;
  std::uint64_t seed = 0;
};

// Keras's binary_crossentropy on Dense(1, sigmoid), written on the logit.
Tensor bce(const Tensor& logits, const Tensor& y) { return nn::binary_cross_entropy_with_logits(logits.reshape({-1}), y); }

// Model m (1-6) with Keras's initialisation drawn after manual_seed(seed + m): the same initial
// weights whatever the dropout.
nn::Sequential make_model(const ModelSpec& spec, int m, std::uint64_t seed, double dropout) {
  manual_seed(seed + static_cast<std::uint64_t>(m));
  nn::Sequential model = spec.make(dropout);
  nn::keras::initialize(model);
  return model;
}

// The model's weights in Keras's layout, named "<position in the Sequential>.<Keras's name>":
// Embedding embeddings (500, 16); a recurrent layer's kernel, recurrent_kernel and bias; Dense
// kernel (8, 1) and bias (1).
NamedTensors keras_weights(const nn::Sequential& model) {
  NamedTensors out;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const std::string p = std::to_string(i) + ".";
    if (auto* e = dynamic_cast<nn::Embedding*>(&model[i])) {
      out.emplace_back(p + "embeddings", e->weight.detach());
    } else if (auto* r = dynamic_cast<nn::SequenceOutput*>(&model[i])) {
      const nn::keras::RecurrentWeights w = nn::keras::get_weights(r->layer(), 0);
      out.insert(out.end(), {{p + "kernel", w.kernel}, {p + "recurrent_kernel", w.recurrent_kernel}, {p + "bias", w.bias}});
    } else if (auto* d = dynamic_cast<nn::Linear*>(&model[i])) {
      out.insert(out.end(), {{p + "kernel", d->weight.detach().t().contiguous()}, {p + "bias", d->bias.detach()}});
    }
  }
  return out;
}

// Records every training step's loss and ends fit after `steps` of them.
struct StepLosses : train::Callback {
  explicit StepLosses(std::int64_t steps) : steps_(steps) {}
  void on_batch_end(train::FitState& state, std::int64_t, const train::Logs& logs) override {
    losses.push_back(logs.at("loss"));
    if (static_cast<std::int64_t>(losses.size()) == steps_) state.stop_training = true;
  }
  std::vector<double> losses;

 private:
  std::int64_t steps_;
};

// The losses of model m's first `steps` training steps with dropout off.
std::vector<double> step_losses(const ModelSpec& spec, int m, const Run& run, const train::DataLoader& loader,
                                std::int64_t steps) {
  nn::Sequential model = make_model(spec, m, run.seed, 0.0);
  optim::RMSprop opt(model.parameters(), optim::RMSpropOptions::keras(run.lr));
  auto record = std::make_shared<StepLosses>(steps);
  const std::int64_t epochs = (steps + loader.num_batches() - 1) / loader.num_batches();
  train::fit(model, bce, opt, loader, train::FitOptions().epochs(epochs).verbose(false).callbacks({record}));
  return record->losses;
}

// --export: what examples/keras_tfjs/compare.js replays. data.safetensors (train_ids (N, 100)
// int64, train_labels (N) float32, val_ids, val_labels), model<m>.safetensors (initial weights,
// keras_weights), run.json (lr, batch, seed, steps; "batches": per epoch, the training samples of
// each batch in order; "models": [{model, name, xgrad_losses}]).
void export_run(const std::string& dir, const Data& data, const train::DataLoader& loader,
                const std::vector<ModelSpec>& specs, const std::vector<int>& which, const Run& run) {
  std::filesystem::create_directories(dir);
  save_safetensors(dir + "/data.safetensors", {{"train_ids", data.train.ids}, {"train_labels", data.train.labels},
                                               {"val_ids", data.validation.ids}, {"val_labels", data.validation.labels}});
  nlohmann::json batches = nlohmann::json::array();
  for (std::int64_t e = 0; e < run.epochs; ++e) batches.push_back(loader.sampler().epoch(e));
  nlohmann::json models = nlohmann::json::array();
  for (int m : which) {
    const ModelSpec& spec = specs[static_cast<std::size_t>(m - 1)];
    save_safetensors(fmt::format("{}/model{}.safetensors", dir, m), keras_weights(make_model(spec, m, run.seed, 0.0)));
    const std::vector<double> losses = step_losses(spec, m, run, loader, run.steps);
    fmt::print("model {}: initial weights and {} step losses ({:.6f} → {:.6f})\n", m, losses.size(), losses.front(), losses.back());
    models.push_back({{"model", m}, {"name", spec.name}, {"xgrad_losses", losses}});
  }
  write_file_atomic(dir + "/run.json", nlohmann::json{{"lr", run.lr}, {"batch", run.batch}, {"seed", run.seed},
                                                      {"steps", run.steps}, {"batches", batches}, {"models", models}}.dump());
  fmt::print("wrote {}/data.safetensors, model<m>.safetensors, run.json ({} epochs of batches)\n", dir, run.epochs);
}

// --check-steps: xgrad's first steps again, against the TF.js losses in `path` (compare.sh made
// it from this program's --export). Returns 1 when a loss differs by more than 1e-4 relative.
int check_steps(const std::string& path, const train::DataLoader& loader, const std::vector<ModelSpec>& specs,
                const std::vector<int>& which, const Run& run) {
  constexpr double kTolerance = 1e-4;
  std::ifstream in(path);
  if (!in) throw Error("--check-steps: cannot open " + path);
  const nlohmann::json ref = nlohmann::json::parse(in);
  if (ref.at("lr").get<double>() != run.lr || ref.at("batch").get<std::int64_t>() != run.batch ||
      ref.at("seed").get<std::uint64_t>() != run.seed || ref.at("steps").get<std::int64_t>() < run.steps)
    throw Error(fmt::format("--check-steps: {} holds {} steps made with --lr {} --batch {} --seed {}; this run asks for "
                            "{} steps with --lr {} --batch {} --seed {}", path, ref.at("steps").dump(), ref.at("lr").dump(),
                            ref.at("batch").dump(), ref.at("seed").dump(), run.steps, run.lr, run.batch, run.seed));
  int failures = 0;
  for (int m : which) {
    const auto it = std::find_if(ref.at("models").begin(), ref.at("models").end(), [&](const nlohmann::json& j) { return j.at("model") == m; });
    if (it == ref.at("models").end()) throw Error(fmt::format("--check-steps: {} has no model {}", path, m));
    const std::vector<double> tfjs = it->at("tfjs_losses").get<std::vector<double>>();
    const std::vector<double> ours = step_losses(specs[static_cast<std::size_t>(m - 1)], m, run, loader, run.steps);
    double worst = 0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
      const double rel = std::abs(ours[i] - tfjs.at(i)) / std::abs(tfjs.at(i));
      if (!(rel <= worst)) worst = rel, at = i;  // NaN counts as the worst
    }
    const bool ok = worst <= kTolerance && ours.size() == static_cast<std::size_t>(run.steps);
    fmt::print("model {}: {} steps, max relative difference to TF.js {:.2e} (step {}: xgrad {:.7f}, TF.js {:.7f}) {}\n", m,
               ours.size(), worst, at + 1, ours[at], tfjs[at], ok ? "ok" : "FAIL");
    failures += ok ? 0 : 1;
  }
  return failures == 0 ? 0 : 1;
}

// Trains the chosen models as the tutorial does; prints and writes the results table.
void train_models(const Data& data, const train::DataLoader& train_loader, const std::vector<ModelSpec>& specs,
                  const std::vector<int>& which, const Run& run, const std::string& out_dir, const std::string& json_path) {
  const train::DataLoader val_loader(train::TensorDataset(data.validation.ids, data.validation.labels),
                                     train::LoaderOptions().batch_size(256));
  const train::DataLoader test_loader(train::TensorDataset(data.test.ids, data.test.labels),
                                      train::LoaderOptions().batch_size(256));
  nlohmann::json results = nlohmann::json::array();
  std::string table = "| model | parameters | epochs | best val loss | best val acc | test acc | time |\n|---|---|---|---|---|---|---|\n";
  double loss_first = 0, loss_last = 0;
  for (int m : which) {
    const ModelSpec& spec = specs[static_cast<std::size_t>(m - 1)];
    fmt::print("\n== model {}: {}\n", m, spec.name);
    nn::Sequential model = make_model(spec, m, run.seed, 0.3);
    optim::RMSprop opt(model.parameters(), optim::RMSpropOptions::keras(run.lr));
    auto stop = std::make_shared<train::EarlyStopping>(
        train::EarlyStoppingOptions().monitor("val_loss").patience(run.patience).restore_best_weights(true));
    const std::string best_path = fmt::format("{}/model{}_best.safetensors", out_dir, m);
    auto checkpoint = std::make_shared<train::ModelCheckpoint>(best_path, "val_loss");
    const auto start = std::chrono::steady_clock::now();
    const train::History h = train::fit(model, bce, opt, train_loader,
                                        train::FitOptions().epochs(run.epochs).validation(&val_loader)
                                            .metrics({"binary_accuracy"}).callbacks({stop, checkpoint}));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const train::Forward forward = [&](const train::Batch& b) { return model(b.inputs); };
    const train::Logs test = train::evaluate(model, forward, bce, test_loader, {"binary_accuracy"});
    const std::int64_t best = std::max<std::int64_t>(stop->best_epoch(), 1);  // 0: no epoch improved
    const double val_loss = h.epoch(best).at("val_loss"), val_acc = h.epoch(best).at("val_binary_accuracy");
    fmt::print("model {}: {} epochs, best epoch {}, val loss {:.4f}, val acc {:.3f}, test acc {:.3f}, {:.1f} s\n", m,
               h.size(), best, val_loss, val_acc, test.at("binary_accuracy"), seconds);
    table += fmt::format("| {} | {} | {} | {:.4f} | {:.3f} | {:.3f} | {:.1f} s |\n", spec.name, model.num_parameters(true),
                         h.size(), val_loss, val_acc, test.at("binary_accuracy"), seconds);
    results.push_back({{"model", spec.name}, {"parameters", model.num_parameters(true)}, {"epochs", h.size()},
                       {"best_epoch", best}, {"val_loss", val_loss}, {"val_accuracy", val_acc},
                       {"test_accuracy", test.at("binary_accuracy")}, {"seconds", seconds},
                       {"train_loss", h.values("loss")}, {"val_loss_per_epoch", h.values("val_loss")},
                       {"val_accuracy_per_epoch", h.values("val_binary_accuracy")}});
    if (m == which.front()) loss_first = h.values("loss").front();
    loss_last = h.values("loss").back();
  }
  fmt::print("\n{}", table);
  std::ofstream(out_dir + "/results.md") << table;
  if (!json_path.empty()) {
    // loss_first / loss_last: the training loss of the first model's first epoch and the last
    // model's last epoch (what the smoke test compares when one model runs).
    std::ofstream(json_path) << nlohmann::json{{"models", results}, {"loss_first", loss_first}, {"loss_last", loss_last}}.dump(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The Keras tutorial's six sentiment models with Keras's conventions"};
  std::string data_dir = XGRAD_EXAMPLES_DATA_DIR "/sentiment", out_dir = "runs/keras_tutorial", json_path, export_dir, check_path;
  Run run;
  std::vector<int> which;
  app.add_option("--data-dir", data_dir, "directory holding imdb.json, yelp.json and amazon.json")->capture_default_str();
  app.add_option("--epochs", run.epochs, "at most this many epochs per model (--export: epochs of batch order)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", run.batch, "sentences per batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", run.lr, "RMSprop learning rate (Keras's convention)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--patience", run.patience, "EarlyStopping patience")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--models", which, "which models to train (1-6; default all)")->check(CLI::Range(1, 6));
  app.add_option("--seed", run.seed, "split, initialisation and batch order")->capture_default_str();
  app.add_option("--out", out_dir, "directory for checkpoints and the results table")->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON here");
  app.add_option("--export", export_dir, "write the data, initial weights, batch order and step losses for TF.js here, and stop");
  app.add_option("--check-steps", check_path, "compare the first --steps losses with TF.js's in this JSON file, and stop");
  app.add_option("--steps", run.steps, "training steps that --export and --check-steps compare (dropout off)")->check(CLI::PositiveNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (!export_dir.empty() && !check_path.empty()) {
    fmt::print(stderr, "--export and --check-steps: choose one\n");
    return 2;
  }

  const Data data = load(data_dir, run.seed);
  fmt::print("{} training, {} validation, {} test sentences; vocabulary {}, maxlen {}\n", data.train.ids.size(0),
             data.validation.ids.size(0), data.test.ids.size(0), kVocabulary, kMaxlen);
  const train::DataLoader train_loader(train::TensorDataset(data.train.ids, data.train.labels),
                                       train::LoaderOptions().batch_size(run.batch).shuffle(true).seed(run.seed));
  const std::vector<ModelSpec> specs = models();
  if (which.empty())
    for (int i = 1; i <= 6; ++i) which.push_back(i);
  if (!export_dir.empty()) {
    export_run(export_dir, data, train_loader, specs, which, run);
    return 0;
  }
  if (!check_path.empty()) {
    try {
      return check_steps(check_path, train_loader, specs, which, run);
    } catch (const std::exception& e) {  // no such file, another --lr, a model the file lacks
      fmt::print(stderr, "{}\n", e.what());
      return 2;
    }
  }
  std::filesystem::create_directories(out_dir);
  train_models(data, train_loader, specs, which, run, out_dir, json_path);
  return 0;
}

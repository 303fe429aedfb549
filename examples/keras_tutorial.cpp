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
#include <chrono>
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
    return Split{train::pad_sequences(ids, train::PadOptions().maxlen(kMaxlen)),
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
struct ModelSpec {
  std::string name;
  std::function<nn::Sequential()> make;
};

std::vector<ModelSpec> models() {
  auto embedding = [] { return std::make_shared<nn::Embedding>(kVocabulary, kEmbedding); };
  auto last = [] { return std::make_shared<nn::LastStep>(/*batch_first=*/true); };
  auto dense = [] { return std::make_shared<nn::Linear>(kUnits, 1); };
  return {
      {"Embedding(500, 16) → SimpleRNN(8)",
       [=] { return nn::Sequential{embedding(), recurrent(nn::RNN(nn::RNNOptions(kEmbedding, kUnits).batch_first(true))), last(), dense()}; }},
      {"one-hot(500) → SimpleRNN(8)",
       [=] { return nn::Sequential{std::make_shared<OneHot>(), recurrent(nn::RNN(nn::RNNOptions(kVocabulary, kUnits).batch_first(true))), last(), dense()}; }},
      {"Embedding(500, 16) → LSTM(8)",
       [=] { return nn::Sequential{embedding(), recurrent(nn::LSTM(nn::LSTMOptions(kEmbedding, kUnits).batch_first(true))), last(), dense()}; }},
      {"Embedding(500, 16) → LSTM(8, dropout 0.3)",
       [=] {
         return nn::Sequential{embedding(), recurrent(nn::LSTM(nn::LSTMOptions(kEmbedding, kUnits).batch_first(true).input_dropout(0.3))),
                               last(), dense()};
       }},
      {"Embedding(500, 16) → LSTM(8) → LSTM(8), dropout 0.3",
       [=] {
         return nn::Sequential{embedding(),
                               recurrent(nn::LSTM(nn::LSTMOptions(kEmbedding, kUnits).batch_first(true).input_dropout(0.3))),
                               recurrent(nn::LSTM(nn::LSTMOptions(kUnits, kUnits).batch_first(true).input_dropout(0.3))),
                               last(), dense()};
       }},
      {"Embedding(500, 16) → GRU(8)",
       [=] { return nn::Sequential{embedding(), recurrent(nn::GRU(nn::GRUOptions(kEmbedding, kUnits).batch_first(true))), last(), dense()}; }},
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The Keras tutorial's six sentiment models with Keras's conventions"};
  std::string data_dir = XGRAD_EXAMPLES_DATA_DIR "/sentiment", out_dir = "runs/keras_tutorial", json_path;
  std::int64_t epochs = 100, batch = 64, patience = 3;
  double lr = 1e-4;
  std::uint64_t seed = 0;
  std::vector<int> which;
  app.add_option("--data-dir", data_dir, "directory holding imdb.json, yelp.json and amazon.json")->capture_default_str();
  app.add_option("--epochs", epochs, "at most this many epochs per model")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", batch, "sentences per batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", lr, "RMSprop learning rate (Keras's convention)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--patience", patience, "EarlyStopping patience")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--models", which, "which models to train (1-6; default all)")->check(CLI::Range(1, 6));
  app.add_option("--seed", seed, "split, initialisation and batch order")->capture_default_str();
  app.add_option("--out", out_dir, "directory for checkpoints and the results table")->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON here");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(out_dir);

  const Data data = load(data_dir, seed);
  fmt::print("{} training, {} validation, {} test sentences; vocabulary {}, maxlen {}\n", data.train.ids.size(0),
             data.validation.ids.size(0), data.test.ids.size(0), kVocabulary, kMaxlen);
  const train::DataLoader train_loader(train::TensorDataset(data.train.ids, data.train.labels),
                                       train::LoaderOptions().batch_size(batch).shuffle(true).seed(seed));
  const train::DataLoader val_loader(train::TensorDataset(data.validation.ids, data.validation.labels),
                                     train::LoaderOptions().batch_size(256));
  const train::DataLoader test_loader(train::TensorDataset(data.test.ids, data.test.labels),
                                      train::LoaderOptions().batch_size(256));
  const train::Loss bce = [](const Tensor& logits, const Tensor& y) {
    return nn::binary_cross_entropy_with_logits(logits.reshape({-1}), y);
  };

  const std::vector<ModelSpec> specs = models();
  if (which.empty())
    for (int i = 1; i <= 6; ++i) which.push_back(i);
  nlohmann::json results = nlohmann::json::array();
  std::string table = "| model | parameters | epochs | best val loss | best val acc | test acc | time |\n|---|---|---|---|---|---|---|\n";
  double loss_first = 0, loss_last = 0;
  for (int m : which) {
    const ModelSpec& spec = specs[static_cast<std::size_t>(m - 1)];
    fmt::print("\n== model {}: {}\n", m, spec.name);
    manual_seed(seed + static_cast<std::uint64_t>(m));
    nn::Sequential model = spec.make();
    nn::keras::initialize(model);
    optim::RMSprop opt(model.parameters(), optim::RMSpropOptions::keras(lr));
    auto stop = std::make_shared<train::EarlyStopping>(
        train::EarlyStoppingOptions().monitor("val_loss").patience(patience).restore_best_weights(true));
    const std::string best_path = fmt::format("{}/model{}_best.safetensors", out_dir, m);
    auto checkpoint = std::make_shared<train::ModelCheckpoint>(best_path, "val_loss");
    const auto start = std::chrono::steady_clock::now();
    const train::History h = train::fit(model, bce, opt, train_loader,
                                        train::FitOptions().epochs(epochs).validation(&val_loader)
                                            .metrics({"binary_accuracy"}).callbacks({stop, checkpoint}));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const train::Forward forward = [&](const train::Batch& b) { return model(b.inputs); };
    const train::Logs test = train::evaluate(model, forward, bce, test_loader, {"binary_accuracy"});
    const auto best = static_cast<std::size_t>(std::max<std::int64_t>(stop->best_epoch(), 0));
    const double val_loss = h.values("val_loss")[best], val_acc = h.values("val_binary_accuracy")[best];
    fmt::print("model {}: {} epochs, best epoch {}, val loss {:.4f}, val acc {:.3f}, test acc {:.3f}, {:.1f} s\n", m,
               h.size(), best + 1, val_loss, val_acc, test.at("binary_accuracy"), seconds);
    table += fmt::format("| {} | {} | {} | {:.4f} | {:.3f} | {:.3f} | {:.1f} s |\n", spec.name, model.num_parameters(true),
                         h.size(), val_loss, val_acc, test.at("binary_accuracy"), seconds);
    results.push_back({{"model", spec.name}, {"parameters", model.num_parameters(true)}, {"epochs", h.size()},
                       {"best_epoch", best + 1}, {"val_loss", val_loss}, {"val_accuracy", val_acc},
                       {"test_accuracy", test.at("binary_accuracy")}, {"seconds", seconds},
                       {"train_loss", h.values("loss")}});
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
  return 0;
}

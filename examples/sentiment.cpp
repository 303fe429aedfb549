// Classifies review sentences as positive or negative with a recurrent network, a 1-D
// convnet followed by a GRU, or a Transformer encoder, on the UCI "Sentiment Labelled
// Sentences" (examples/data/README.md): 1 000 sentences each from IMDb, Yelp and Amazon, half
// of them positive.
//
// A seeded random split (train / validation / test = 70 / 15 / 15 %); the word vocabulary
// is built from the training sentences only, so validation and test meet unknown words as
// real input would. The sentences are padded after their end (train::pad_sequences) into a
// TensorDataset with their lengths; the DataLoader trims each batch to its longest sentence,
// and every model is given the lengths:
//
//   --model rnn (default): token ids (B, T) → Embedding + Dropout (B, T, E) → LSTM or GRU
//     (B, T, D·H) → the final state of each direction (B, D·H) → Dropout → Linear (B, 2)
//   --model conv1d-gru: … (B, T, E) → Conv1d "same" + ReLU (B, H, T) → MaxPool1d(2)
//     (B, H, ⌈T/2⌉) → GRU (its final state, B, H) → Dropout → Linear (B, 2)
//   --model transformer: … (B, T, E) → + sinusoidal positions → 2 pre-norm Transformer
//     encoder layers (4 heads) → mean over each sentence's words (B, E) → Dropout → Linear
//
// train::fit trains it; a best-only ModelCheckpoint keeps the model of the epoch with the
// best validation accuracy, which is tested once at the end. Test accuracy is reported beside
// the majority-class baseline (always answering the test split's most frequent label); the
// program exits with 1 unless it is at least --margin (default 20 %) above it, i.e. 60 %
// against a 50 % baseline.
//
//   build/release/examples/sentiment [--model rnn|conv1d-gru|transformer] [--cell lstm|gru]
//                                    [--bidirectional] [--optim adam|rmsprop] ...
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <xgrad/xgrad.hpp>

#include "common/run_summary.hpp"

using namespace xgrad;

#ifdef XGRAD_HAVE_ONNX
#include <xgrad/onnx.hpp>
#endif

#ifndef XGRAD_EXAMPLES_DATA_DIR
#define XGRAD_EXAMPLES_DATA_DIR "examples/data"
#endif

// One labelled sentence: its token ids in the training vocabulary and its label (1 positive).
struct Review {
  std::vector<std::string> words;
  std::vector<std::int64_t> ids;
  std::int64_t label = 0;
};

// Every labelled sentence of imdb.json, yelp.json and amazon.json; each file ends with an
// empty entry whose "class" is null, which is skipped.
std::vector<Review> load_reviews(const std::string& dir) {
  std::vector<Review> reviews;
  for (const char* name : {"imdb", "yelp", "amazon"}) {
    const train::Table t = train::read_json_records(dir + "/" + name + ".json", {"text", "class"});
    for (const auto& row : t.rows) {
      if (row[1].empty()) continue;  // the trailing {"text": "", "class": null}
      reviews.push_back({train::tokenize_words(row[0]), {}, std::stoll(row[1])});
    }
  }
  return reviews;
}

// The sentences `index` as a dataset: ids (N, T) padded with Vocabulary::pad after each
// sentence's end to the longest, labels (N), and each sentence's length (an empty sentence
// reads one <pad>).
train::TensorDataset make_dataset(const std::vector<Review>& reviews, const std::vector<std::int64_t>& index) {
  std::vector<std::vector<std::int64_t>> ids;
  std::vector<std::int64_t> labels;
  for (std::int64_t i : index) {
    ids.push_back(reviews[i].ids);
    labels.push_back(reviews[i].label);
  }
  auto [padded, lengths] =
      train::pad_sequences(ids, train::PadOptions().padding(train::Side::post).value(train::Vocabulary::pad));
  std::vector<std::int64_t> at_least_one = lengths.values();
  for (std::int64_t& n : at_least_one) n = std::max<std::int64_t>(1, n);
  return train::TensorDataset(padded, from_vector(labels, {static_cast<std::int64_t>(labels.size())}),
                              nn::Lengths(at_least_one, lengths.padding()));
}

// The recurrent layer named on the command line; every layer is an nn::Recurrent.
nn::Recurrent make_rnn(const std::string& cell, std::int64_t embed_dim, std::int64_t hidden, bool bidirectional) {
  if (cell == "lstm")
    return nn::LSTM(nn::LSTMOptions(embed_dim, hidden).batch_first(true).bidirectional(bidirectional));
  return nn::GRU(nn::GRUOptions(embed_dim, hidden).batch_first(true).bidirectional(bidirectional));
}

// Embedding (padding id 0) → the sequence model of --model → Linear to two logits.
struct SentimentNet : nn::Module {
  std::string model;
  nn::Embedding embed;
  nn::Dropout dropout;
  std::shared_ptr<nn::Recurrent> rnn;                         // rnn; the GRU of conv1d-gru
  std::shared_ptr<nn::Conv1d> conv;                           // conv1d-gru
  std::shared_ptr<nn::SinusoidalPositionalEncoding> position;  // transformer
  std::shared_ptr<nn::TransformerEncoder> encoder;            // transformer
  std::shared_ptr<nn::Linear> head;

  SentimentNet(std::int64_t vocab, std::int64_t embed_dim, std::int64_t hidden, const std::string& model,
               const std::string& cell, bool bidirectional, double p)
      : model(model), embed(nn::EmbeddingOptions(vocab, embed_dim).padding_idx(0)), dropout(p) {
    register_module("embed", embed);
    std::int64_t features = hidden;
    if (model == "rnn") {
      rnn = register_module("rnn", std::make_shared<nn::Recurrent>(make_rnn(cell, embed_dim, hidden, bidirectional)));
      features = (bidirectional ? 2 : 1) * hidden;
    } else if (model == "conv1d-gru") {
      conv = register_module("conv", std::make_shared<nn::Conv1d>(nn::Conv1dOptions(embed_dim, hidden, 5).padding("same")));
      rnn = register_module("rnn", std::make_shared<nn::Recurrent>(make_rnn("gru", hidden, hidden, false)));
    } else {
      position = register_module("position", std::make_shared<nn::SinusoidalPositionalEncoding>(
                                                 nn::PositionalEncodingOptions(embed_dim).max_len(1024).batch_first(true)));
      const auto layer = nn::TransformerEncoderLayerOptions(embed_dim, 4)
                             .dim_feedforward(2 * hidden)
                             .dropout(0.1)
                             .norm_first(true)
                             .batch_first(true);
      encoder = register_module("encoder", std::make_shared<nn::TransformerEncoder>(
                                               nn::TransformerEncoderOptions(layer, 2).final_norm(true)));
      features = embed_dim;
    }
    register_module("dropout", dropout);
    head = register_module("head", std::make_shared<nn::Linear>(features, 2));
  }

  // ids (B, T), lengths (B) → logits (B, 2).
  Tensor forward(const Tensor& ids, const nn::Lengths& lengths) {
    const Tensor words = dropout(embed(ids));  // (B, T, E)
    if (model == "transformer") {
      // Padded words are never attended to; the mean reads each sentence's own words.
      const Tensor h = (*encoder)((*position)(words), nn::EncoderArgs().lengths(lengths));  // (B, T, E)
      return (*head)(dropout(nn::global_avg_pool1d(h, lengths, 1)));
    }
    if (model == "conv1d-gru") {
      // ReLU outputs are ≥ 0, so zeroing the padded steps keeps every pool window that holds
      // a word exact: a sentence of n words has ⌈n / 2⌉ pooled steps.
      Tensor h = relu((*conv)(words.transpose(1, 2)));                       // (B, H, T)
      h = masked_fill(h, unsqueeze(lengths.padding_mask(h.size(2)), 1), 0.0);
      if (h.size(2) % 2 == 1) h = cat({h, zeros({h.size(0), h.size(1), 1}, h.dtype())}, 2);  // ⌈T / 2⌉ windows
      h = nn::max_pool1d(h, 2);                                                 // (B, H, ⌈T / 2⌉)
      std::vector<std::int64_t> halves;
      for (std::int64_t n : lengths.values()) halves.push_back((n + 1) / 2);
      const nn::Lengths pooled(halves, lengths.padding());
      const nn::RecurrentState state = (*rnn)(h.transpose(1, 2), {}, pooled).state;  // (B, T', H) in
      return (*head)(dropout(rnn->final_hidden(state)));
    }
    const nn::RecurrentState state = (*rnn)(words, {}, lengths).state;
    // (B, D·H): every direction's final h, each having read the whole sentence (the reverse
    // one ends at the first word).
    return (*head)(dropout(rnn->final_hidden(state)));
  }
};

int main(int argc, char** argv) {
  std::string data_dir = std::string(XGRAD_EXAMPLES_DATA_DIR) + "/sentiment";
  std::string model_kind = "rnn", cell = "lstm", optimizer = "adam", out_dir = "runs/sentiment", json_path;
  bool bidirectional = false;
  std::int64_t embed_dim = 64, hidden = 64, epochs = 10, batch = 32, min_count = 2;
  double lr = 3e-3, p_dropout = 0.3, margin = 0.2;
  std::uint64_t seed = 0;
  CLI::App app{"Classify review sentences (IMDb, Yelp, Amazon) as positive or negative with an LSTM or GRU, a convnet and a GRU, or a Transformer"};
  app.add_option("--data-dir", data_dir, "directory holding imdb.json, yelp.json and amazon.json")->capture_default_str();
  app.add_option("--model", model_kind, "sequence model")
      ->check(CLI::IsMember({"rnn", "conv1d-gru", "transformer"}))
      ->capture_default_str();
  app.add_option("--cell", cell, "recurrent cell of --model rnn")->check(CLI::IsMember({"lstm", "gru"}))->capture_default_str();
  app.add_flag("--bidirectional", bidirectional, "read each sentence in both directions");
  app.add_option("--embed", embed_dim, "word vector size")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--hidden", hidden, "hidden units per direction")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--epochs", epochs, "passes over the training sentences")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", batch, "sentences per batch")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--lr", lr, "learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--optim", optimizer, "optimizer")->check(CLI::IsMember({"adam", "rmsprop"}))->capture_default_str();
  app.add_option("--dropout", p_dropout, "dropout on the word vectors and before the classifier")
      ->check(CLI::Range(0.0, 0.99))->capture_default_str();
  app.add_option("--min-count", min_count, "training occurrences a word needs to enter the vocabulary")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--margin", margin, "how far above the majority-class baseline test accuracy must be (0.2: 20 %)")
      ->check(CLI::Range(0.0, 0.99))->capture_default_str();
  app.add_option("--seed", seed, "random seed (split, initialisation, shuffling, dropout)")->capture_default_str();
  app.add_option("--out", out_dir, "directory for metrics.csv (and PNG plots with gnuplot)")->capture_default_str();
  app.add_option("--json", json_path, "write the final metrics to this file as JSON");
  std::string export_path;
#ifdef XGRAD_HAVE_ONNX
  app.add_option("--export", export_path, "write the trained classifier as ONNX (inputs: word ids and lengths; "
                 "docs/deployment.md)");
#endif
  CLI11_PARSE(app, argc, argv);
  manual_seed(seed);

  // Data: a seeded 70 / 15 / 15 split; the vocabulary comes from the training part only.
  std::vector<Review> reviews = load_reviews(data_dir);
  const auto split = train::random_split(static_cast<std::int64_t>(reviews.size()), {0.70, 0.15, 0.15}, seed);
  const std::vector<std::int64_t>&train_idx = split[0], &val_idx = split[1], &test_idx = split[2];
  std::vector<std::vector<std::string>> train_words;
  for (std::int64_t i : train_idx) train_words.push_back(reviews[i].words);
  const train::Vocabulary vocab = train::Vocabulary::build(train_words, min_count);
  for (Review& r : reviews) r.ids = vocab.encode(r.words);
  std::int64_t test_positive = 0;
  for (std::int64_t i : test_idx) test_positive += reviews[i].label;
  const auto n_test = static_cast<std::int64_t>(test_idx.size());
  const double baseline = static_cast<double>(std::max(test_positive, n_test - test_positive)) / n_test;
  fmt::print("{} sentences: train {} / val {} / test {}; vocabulary {} words (seen >= {} times in training)\n",
             reviews.size(), train_idx.size(), val_idx.size(), test_idx.size(), vocab.size(), min_count);

  const train::DataLoader train_loader(make_dataset(reviews, train_idx),
                                      train::LoaderOptions().batch_size(batch).shuffle(true).seed(seed));
  const train::DataLoader val_loader(make_dataset(reviews, val_idx), train::LoaderOptions().batch_size(256));
  const train::DataLoader test_loader(make_dataset(reviews, test_idx), train::LoaderOptions().batch_size(256));

  SentimentNet model(vocab.size(), embed_dim, hidden, model_kind, cell, bidirectional, p_dropout);
  fmt::print("model {}: {} parameters\n", model_kind, model.num_parameters());
  std::unique_ptr<optim::Optimizer> opt;
  if (optimizer == "adam") opt = std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(lr));
  else opt = std::make_unique<optim::RMSprop>(model.parameters(), optim::RMSpropOptions(lr));

  // Training: fit shows a progress bar per epoch with the validation metrics; the model of
  // the best validation accuracy is kept in best.safetensors.
  std::filesystem::create_directories(out_dir);
  const std::string csv = out_dir + "/metrics.csv", best_path = out_dir + "/best.safetensors";
  const auto forward = [&](const train::Batch& b) { return model.forward(b.inputs, b.lengths); };
  const auto loss = [](const Tensor& logits, const Tensor& labels) { return nn::cross_entropy(logits, labels); };
  auto best = std::make_shared<train::ModelCheckpoint>(best_path, "val_accuracy");
  const train::History history = train::fit(
      model, forward, loss, *opt, train_loader,
      train::FitOptions().epochs(epochs).validation(&val_loader).metrics({"accuracy"}).clip_grad_norm(5.0).callbacks(
          {best, std::make_shared<train::CsvLog>(csv), std::make_shared<train::TerminateOnNaN>()}));
  const std::vector<double> train_loss = history.values("loss"), val_acc = history.values("val_accuracy");
  if (!std::isfinite(train_loss.back())) {
    fmt::print(stderr, "the loss diverged; try a smaller --lr\n");
    return 1;
  }
  double seconds = 0;
  for (double t : history.values("seconds")) seconds += t;
  const std::int64_t best_epoch = best->saved_epochs().back();

  // Test: held out until now, on the model of the best validation epoch.
  model.load(best_path);
  const train::Logs test = train::evaluate(model, forward, loss, test_loader, {"accuracy"});
  fmt::print("trained in {}; best validation accuracy {:.1f} % after epoch {} (saved as {})\n",
             train::format_duration(seconds), 100 * val_acc[best_epoch - 1], best_epoch, best_path);
  fmt::print("test accuracy {:.1f} % ({} sentences)   majority-class baseline {:.1f} %\n", 100 * test.at("accuracy"),
             n_test, 100 * baseline);

  // metrics.csv (CsvLog): epoch, accuracy, loss, seconds, val_accuracy, val_loss.
  const auto plot = train::PlotOptions().xlabel("epoch").points(true);
  if (train::plot_csv(csv, out_dir + "/loss.png", train::PlotOptions(plot).title("cross entropy").y_columns({3, 6})) &&
      train::plot_csv(csv, out_dir + "/accuracy.png", train::PlotOptions(plot).title("accuracy").y_columns({2, 5})))
    fmt::print("wrote {0}/metrics.csv, {0}/loss.png and {0}/accuracy.png\n", out_dir);
  else
    fmt::print("wrote {}/metrics.csv; {}\n", out_dir, train::gnuplot_notice());

#ifdef XGRAD_HAVE_ONNX
  if (!export_path.empty()) {
    // Padded word ids (B, T) and each sentence's length (B): batch and sentence length stay
    // dynamic (example sizes 3 and 5, so the exporter tells them apart).
    model.eval();
    onnx::export_model(model,
                       [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{model.forward(in[0], in[1])}; },
                       {randint(1, static_cast<std::int64_t>(vocab.size()), {3, 5}),
                        from_vector(std::vector<std::int64_t>{5, 3, 1}, {3})},
                       export_path,
                       onnx::ExportOptions().input_names({"ids", "lengths"}).output_names({"logits"})
                           .dynamic_axes({{0, 0, "batch"}, {0, 1, "words"}, {1, 0, "batch"}}));
    fmt::print("wrote {} (ONNX: ids (batch, words) and lengths (batch), int64 → logits (batch, 2))\n", export_path);
  }
#endif

  examples::RunSummary config, summary;
  config.set("model", model_kind).set("cell", cell).set("bidirectional", bidirectional).set("embed", embed_dim).set("hidden", hidden)
      .set("epochs", epochs).set("batch", batch).set("lr", lr).set("optim", optimizer).set("dropout", p_dropout)
      .set("min_count", min_count).set("seed", seed);
  summary.set("loss_first", train_loss.front()).set("loss_last", train_loss.back())
      .set("val_acc", val_acc[best_epoch - 1]).set("best_epoch", best_epoch)
      .set("test_acc", test.at("accuracy")).set("test_loss", test.at("loss")).set("baseline_acc", baseline)
      .set("test_sentences", n_test).set("train_sentences", train_idx.size()).set("vocab_size", vocab.size())
      .set("train_seconds", seconds).set("parameters", model.num_parameters()).set("config", config);
  summary.check("test_acc", test.at("accuracy"), "baseline_acc", baseline, train::Mode::max, margin);
  for (const auto& line : summary.check_lines()) fmt::print("{}\n", line);
  if (!json_path.empty()) summary.write(json_path);
  if (!summary.passed()) {
    fmt::print(stderr, "the classifier is not {:g} % above the majority-class baseline\n", 100 * margin);
    return 1;
  }
  return 0;
}

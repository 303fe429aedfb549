// Classifies review sentences as positive or negative with a recurrent network, on the UCI
// "Sentiment Labelled Sentences" (examples/data/README.md): 1 000 sentences each from IMDb,
// Yelp and Amazon, half of them positive.
//
// A seeded random split (train / validation / test = 70 / 15 / 15 %); the word vocabulary
// is built from the training sentences only, so validation and test meet unknown words as
// real input would. Each batch is padded to its longest sentence and the recurrent layer is
// given the lengths:
//
//   token ids (B, T) → Embedding + Dropout (B, T, E) → LSTM or GRU (B, T, D·H) → the output
//   after each sentence's last word (B, D·H) → Dropout → Linear (B, 2) → cross entropy
//
// The model of the epoch with the best validation accuracy is kept (early stopping) and
// tested once at the end. Test accuracy is reported beside the majority-class baseline
// (always answering the test split's most frequent label).
//
//   build/release/examples/sentiment [--cell lstm|gru] [--bidirectional] [--optim adam|rmsprop] ...
#include <algorithm>
#include <chrono>
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

// A batch padded to its longest sentence: ids (B, T) with Vocabulary::pad after each
// sentence's end, labels (B), and each sentence's length for the recurrent layer.
struct Batch {
  Tensor ids, labels;
  std::vector<std::int64_t> lengths;
};

Batch make_batch(const std::vector<Review>& reviews, const std::vector<std::int64_t>& index) {
  const auto b = static_cast<std::int64_t>(index.size());
  std::int64_t t_max = 1;
  for (std::int64_t i : index) t_max = std::max<std::int64_t>(t_max, reviews[i].ids.size());
  std::vector<std::int64_t> ids(b * t_max, train::Vocabulary::pad), labels, lengths;
  for (std::int64_t r = 0; r < b; ++r) {
    const Review& review = reviews[index[r]];
    std::copy(review.ids.begin(), review.ids.end(), ids.begin() + r * t_max);
    labels.push_back(review.label);
    lengths.push_back(std::max<std::int64_t>(1, review.ids.size()));  // an empty sentence reads one <pad>
  }
  return {from_vector(ids, {b, t_max}), from_vector(labels, {b}), lengths};
}

// The recurrent layer named on the command line; every layer is an nn::Recurrent.
nn::Recurrent make_rnn(const std::string& cell, std::int64_t embed_dim, std::int64_t hidden, bool bidirectional) {
  if (cell == "lstm")
    return nn::LSTM(nn::LSTMOptions(embed_dim, hidden).batch_first(true).bidirectional(bidirectional));
  return nn::GRU(nn::GRUOptions(embed_dim, hidden).batch_first(true).bidirectional(bidirectional));
}

// Embedding (padding id 0) → LSTM or GRU, optionally bidirectional → Linear to two logits.
struct SentimentNet : nn::Module {
  std::int64_t hidden;
  bool bidirectional;
  nn::Embedding embed;
  nn::Recurrent rnn;
  nn::Dropout dropout;
  nn::Linear head;

  SentimentNet(std::int64_t vocab, std::int64_t embed_dim, std::int64_t hidden, const std::string& cell, bool bidirectional,
               double p)
      : hidden(hidden),
        bidirectional(bidirectional),
        embed(nn::EmbeddingOptions(vocab, embed_dim).padding_idx(0)),
        rnn(make_rnn(cell, embed_dim, hidden, bidirectional)),
        dropout(p),
        head((bidirectional ? 2 : 1) * hidden, 2) {
    register_module("embed", embed);
    register_module("rnn", rnn);
    register_module("dropout", dropout);
    register_module("head", head);
  }

  // ids (B, T), lengths (B) → logits (B, 2).
  Tensor forward(const Tensor& ids, const std::vector<std::int64_t>& lengths) {
    const Tensor words = dropout(embed(ids));                            // (B, T, E)
    const Tensor out = rnn(words, {}, lengths).output;                   // (B, T, D·H), zeros past each end
    Tensor summary = nn::last_step(out, lengths, /*batch_first=*/true);  // (B, D·H)
    if (bidirectional) {
      // The forward direction has read the whole sentence at its last word; the reverse one,
      // which starts at the last word and runs back, has read it all at the first word.
      summary = cat({summary.narrow(1, 0, hidden), out.select(1, 0).narrow(1, hidden, hidden)}, 1);
    }
    return head(dropout(summary));
  }
};

struct Score {
  double loss = 0, accuracy = 0;
};

// Mean cross entropy and accuracy over the sentences `index`, in evaluation mode.
Score evaluate(SentimentNet& model, const std::vector<Review>& reviews, const std::vector<std::int64_t>& index) {
  NoGradGuard no_grad;
  model.eval();
  Score s;
  for (const auto& idx : train::BatchSampler(index, 256).epoch(0)) {
    const Batch b = make_batch(reviews, idx);
    const Tensor logits = model.forward(b.ids, b.lengths);
    s.loss += nn::cross_entropy(logits, b.labels).item() * static_cast<double>(idx.size());
    s.accuracy += eq(logits.argmax(1), b.labels).sum().item();
  }
  model.train();
  s.loss /= static_cast<double>(index.size());
  s.accuracy /= static_cast<double>(index.size());
  return s;
}

int main(int argc, char** argv) {
  std::string data_dir = std::string(XGRAD_EXAMPLES_DATA_DIR) + "/sentiment";
  std::string cell = "lstm", optimizer = "adam", out_dir = "runs/sentiment", json_path;
  bool bidirectional = false;
  std::int64_t embed_dim = 64, hidden = 64, epochs = 10, batch = 32, min_count = 2;
  double lr = 3e-3, p_dropout = 0.3;
  std::uint64_t seed = 0;
  CLI::App app{"Classify review sentences (IMDb, Yelp, Amazon) as positive or negative with an LSTM or GRU"};
  app.add_option("--data-dir", data_dir, "directory holding imdb.json, yelp.json and amazon.json")->capture_default_str();
  app.add_option("--cell", cell, "recurrent cell")->check(CLI::IsMember({"lstm", "gru"}))->capture_default_str();
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
  app.add_option("--seed", seed, "random seed (split, initialisation, shuffling, dropout)")->capture_default_str();
  app.add_option("--out", out_dir, "directory for metrics.csv (and PNG plots with gnuplot)")->capture_default_str();
  app.add_option("--json", json_path, "write the final metrics to this file as JSON");
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

  SentimentNet model(vocab.size(), embed_dim, hidden, cell, bidirectional, p_dropout);
  std::unique_ptr<optim::Optimizer> opt;
  if (optimizer == "adam") opt = std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(lr));
  else opt = std::make_unique<optim::RMSprop>(model.parameters(), optim::RMSpropOptions(lr));

  // Training: one progress bar per epoch, finished with the validation metrics.
  std::filesystem::create_directories(out_dir);
  const std::string csv = out_dir + "/metrics.csv";
  train::CsvLogger log(csv, {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"});
  train::BatchSampler batches(train_idx, batch, /*shuffle=*/true, seed);
  const std::string best_path = out_dir + "/best.safetensors";
  double loss_first = 0, loss_last = 0, best_val_acc = -1;
  std::int64_t best_epoch = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t epoch = 1; epoch <= epochs; ++epoch) {
    train::ProgressBar bar(fmt::format("epoch {}/{}", epoch, epochs), batches.num_batches());
    for (const auto& idx : batches.epoch(epoch)) {
      const Batch b = make_batch(reviews, idx);
      const Tensor logits = model.forward(b.ids, b.lengths);
      Tensor loss = nn::cross_entropy(logits, b.labels);
      opt->zero_grad();
      loss.backward();
      nn::clip_grad_norm(model.parameters(), 5.0);
      opt->step();
      const double correct = eq(logits.argmax(1), b.labels).sum().item();
      bar.update(static_cast<std::int64_t>(idx.size()), {{"loss", loss.item()}, {"acc", correct / idx.size()}});
    }
    const Score val = evaluate(model, reviews, val_idx);
    bar.finish({{"val_loss", val.loss}, {"val_acc", val.accuracy}});
    const double train_loss = bar.mean("loss");
    if (epoch == 1) loss_first = train_loss;
    loss_last = train_loss;
    log.log_metrics({{"epoch", static_cast<double>(epoch)}, {"train_loss", train_loss}, {"train_acc", bar.mean("acc")},
                     {"val_loss", val.loss}, {"val_acc", val.accuracy}});
    if (!std::isfinite(train_loss)) {
      fmt::print(stderr, "the loss diverged; try a smaller --lr\n");
      return 1;
    }
    if (val.accuracy > best_val_acc) {  // early stopping: keep the model that validates best
      best_val_acc = val.accuracy;
      best_epoch = epoch;
      model.save(best_path);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Test: held out until now, on the model of the best validation epoch.
  model.load(best_path);
  const Score test = evaluate(model, reviews, test_idx);
  fmt::print("trained in {:.1f} s; best validation accuracy {:.1f} % after epoch {} (saved as {})\n", seconds,
             100 * best_val_acc, best_epoch, best_path);
  fmt::print("test accuracy {:.1f} % ({} sentences)   majority-class baseline {:.1f} %\n", 100 * test.accuracy, n_test,
             100 * baseline);

  const auto plot = train::PlotOptions().xlabel("epoch").points(true);
  if (train::plot_csv(csv, out_dir + "/loss.png", train::PlotOptions(plot).title("cross entropy").y_columns({2, 4})) &&
      train::plot_csv(csv, out_dir + "/accuracy.png", train::PlotOptions(plot).title("accuracy").y_columns({3, 5})))
    fmt::print("wrote {0}/metrics.csv, {0}/loss.png and {0}/accuracy.png\n", out_dir);
  else
    fmt::print("wrote {}/metrics.csv; {}\n", out_dir, train::gnuplot_notice());

  if (!json_path.empty()) {
    const nlohmann::json config = {{"cell", cell},         {"bidirectional", bidirectional}, {"embed", embed_dim},
                                   {"hidden", hidden},     {"epochs", epochs},               {"batch", batch},
                                   {"lr", lr},             {"optim", optimizer},             {"dropout", p_dropout},
                                   {"min_count", min_count}, {"seed", seed}};
    const nlohmann::json j = {{"loss_first", loss_first},             {"loss_last", loss_last},
                              {"val_acc", best_val_acc},              {"best_epoch", best_epoch},
                              {"test_acc", test.accuracy},            {"test_loss", test.loss},
                              {"baseline_acc", baseline},             {"test_sentences", n_test},
                              {"train_sentences", train_idx.size()},  {"vocab_size", vocab.size()},
                              {"train_seconds", seconds},             {"config", config}};
    write_file_atomic(json_path, j.dump(2) + "\n");
  }
  return 0;
}

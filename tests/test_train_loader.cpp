// train's data pipeline and metrics: Keras's pad_sequences, TensorDataset / DataLoader
// (seeded order, drop_last, lengths and trimming), validation_split, sample_categorical, one_hot, comparisons
// with a number, and the streaming metrics against hand-computed values.
#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <set>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

std::vector<std::vector<std::int64_t>> rows(const Tensor& t) {
  std::vector<std::vector<std::int64_t>> out;
  const auto v = t.to_vector<std::int64_t>();
  for (std::int64_t i = 0; i < t.size(0); ++i)
    out.emplace_back(v.begin() + i * t.size(1), v.begin() + (i + 1) * t.size(1));
  return out;
}

using Rows = std::vector<std::vector<std::int64_t>>;

}  // namespace

TEST_CASE("pad_sequences follows Keras's documented examples for every padding and truncating side") {
  const Rows seq = {{1}, {2, 3}, {4, 5, 6}};
  using train::PadOptions;
  using train::Side;
  // The examples of keras.utils.pad_sequences' documentation.
  const auto padded = [](const Rows& r, const train::PadOptions& o = {}) { return train::pad_sequences(r, o).padded; };
  CHECK(rows(padded(seq)) == Rows{{0, 0, 1}, {0, 2, 3}, {4, 5, 6}});
  CHECK(rows(padded(seq, PadOptions().value(-1))) == Rows{{-1, -1, 1}, {-1, 2, 3}, {4, 5, 6}});
  CHECK(rows(padded(seq, PadOptions().padding(Side::post))) == Rows{{1, 0, 0}, {2, 3, 0}, {4, 5, 6}});
  CHECK(rows(padded(seq, PadOptions().maxlen(2))) == Rows{{0, 1}, {2, 3}, {5, 6}});
  // The other combinations, by the same rules.
  CHECK(rows(padded(seq, PadOptions().maxlen(2).truncating(Side::post))) == Rows{{0, 1}, {2, 3}, {4, 5}});
  CHECK(rows(padded(seq, PadOptions().maxlen(2).padding(Side::post))) == Rows{{1, 0}, {2, 3}, {5, 6}});
  CHECK(rows(padded(seq, PadOptions().maxlen(2).padding(Side::post).truncating(Side::post))) ==
        Rows{{1, 0}, {2, 3}, {4, 5}});
  CHECK(rows(padded({{}, {7}}, PadOptions().maxlen(3))) == Rows{{0, 0, 0}, {0, 0, 7}});
  CHECK(padded(seq).dtype() == DType::i64);
  // The lengths come with the padding side: the valid ids of a pre-padded row are its last.
  const nn::Lengths pre = train::pad_sequences(seq, PadOptions().maxlen(2)).lengths;
  CHECK(pre.values() == std::vector<std::int64_t>{1, 2, 2});
  CHECK(pre.padding() == Side::pre);
  CHECK(train::pad_sequences(seq, PadOptions().padding(Side::post)).lengths.padding() == Side::post);
  CHECK(train::sequence_lengths(seq, PadOptions().maxlen(2)).values() == pre.values());
  CHECK(train::pad_sequences({{}, {7}}).lengths.values() == std::vector<std::int64_t>{0, 1});
  CHECK_THROWS_WITH_AS(train::pad_sequences(seq, PadOptions().maxlen(-1)), "pad_sequences: maxlen must be >= 0, got -1",
                       Error);
}

TEST_CASE("DataLoader: seeded per-epoch order, drop_last, and sequence batches trimmed to their longest") {
  const Rows seq = {{1, 2, 3, 4, 5}, {6}, {7, 8}, {9, 10, 11}, {12, 13}};
  const auto [ids, lengths] = train::pad_sequences(seq, train::PadOptions().padding(train::Side::post));  // (5, 5)
  const Tensor labels = from_vector(std::vector<std::int64_t>{0, 1, 0, 1, 1}, {5});
  train::TensorDataset data(ids, labels, lengths);
  train::DataLoader loader(data, train::LoaderOptions().batch_size(2).shuffle(true).seed(3));
  CHECK(loader.num_batches() == 3);
  std::set<std::int64_t> seen;
  std::vector<std::vector<std::int64_t>> order0;
  for (const train::Batch& b : loader.epoch(0)) {
    order0.push_back(b.indices);
    std::int64_t longest = 0;
    for (std::size_t k = 0; k < b.indices.size(); ++k) {
      const std::int64_t i = b.indices[k];
      seen.insert(i);
      const auto len = static_cast<std::int64_t>(seq[static_cast<std::size_t>(i)].size());
      CHECK(b.lengths.values()[k] == len);
      longest = std::max(longest, len);
      CHECK(b.targets.to_vector<std::int64_t>()[k] == labels.to_vector<std::int64_t>()[static_cast<std::size_t>(i)]);
    }
    CHECK(b.inputs.shape() == Shape{b.size(), longest});  // trimmed to the batch's longest
    // The rows are the dataset's, cut at `longest`.
    for (std::size_t k = 0; k < b.indices.size(); ++k)
      CHECK(b.inputs.select(0, static_cast<std::int64_t>(k)).to_vector<std::int64_t>() ==
            ids.select(0, b.indices[k]).narrow(0, 0, longest).to_vector<std::int64_t>());
  }
  CHECK(seen.size() == 5);  // every sample once per epoch
  // The same (seed, epoch) gives the same batches; another epoch another order.
  std::vector<std::vector<std::int64_t>> again, next;
  for (const train::Batch& b : loader.epoch(0)) again.push_back(b.indices);
  for (const train::Batch& b : loader.epoch(1)) next.push_back(b.indices);
  CHECK(again == order0);
  CHECK(next != order0);
  // drop_last: only full batches; no lengths: none given, no trimming.
  train::DataLoader full(train::TensorDataset(ids, labels), train::LoaderOptions().batch_size(2).drop_last(true));
  CHECK(full.num_batches() == 2);
  CHECK(full.num_samples() == 4);
  for (const train::Batch& b : full.epoch(0)) {
    CHECK(b.size() == 2);
    CHECK_FALSE(b.lengths.given());
    CHECK(b.inputs.shape() == Shape{2, 5});
  }
  // A custom sampler decides the batches (a distributed one will).
  struct Evens : train::Sampler {
    std::vector<std::vector<std::int64_t>> epoch(std::int64_t) const override { return {{0, 2}, {4}}; }
    std::int64_t num_batches() const override { return 2; }
    std::int64_t num_samples() const override { return 3; }
  };
  train::DataLoader evens(data, std::make_shared<Evens>());
  std::vector<std::int64_t> got;
  for (const train::Batch& b : evens.epoch(0)) got.insert(got.end(), b.indices.begin(), b.indices.end());
  CHECK(got == std::vector<std::int64_t>{0, 2, 4});
  // Mismatched parts are named.
  CHECK_THROWS_WITH_AS(train::TensorDataset(ids, zeros({4})), "TensorDataset: 5 inputs but targets of shape (4)", Error);
  CHECK_THROWS_WITH_AS(train::TensorDataset(ids, labels, {1, 2}), "TensorDataset: 5 inputs but 2 lengths", Error);
  CHECK_THROWS_WITH_AS(train::TensorDataset(ids, labels, {1, 2, 3, 4, 6}),
                       "TensorDataset: length 6 of sample 4 is outside [0, 5]", Error);
  CHECK_THROWS_WITH_AS(train::DataLoader(data, train::LoaderOptions().batch_size(0)),
                       "DataLoader: batch_size must be positive, got 0", Error);
}

TEST_CASE("validation_split: the last fraction validates in order, the rest keeps the loader's options") {
  const Tensor x = reshape(arange(0, 10), {10, 1});
  const train::DataLoader loader(train::TensorDataset(x, x),
                                 train::LoaderOptions().batch_size(3).shuffle(true).seed(4).drop_last(true));
  auto [train_part, val_part] = train::validation_split(loader, 0.25);  // floor(2.5) = 2 validate
  std::vector<std::int64_t> seen;
  for (const train::Batch& b : val_part.epoch(5)) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  CHECK(seen == std::vector<std::int64_t>{8, 9});
  CHECK(train_part.num_samples() == 6);  // 8 samples, batches of 3, the last one dropped
  // The first 8 samples, shuffled by (seed, epoch) and batched as the loader's options say.
  const train::BatchSampler expected(std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7}, 3, true, 4, true);
  std::vector<std::vector<std::int64_t>> batches;
  for (const train::Batch& b : train_part.epoch(1)) batches.push_back(b.indices);
  CHECK(batches == expected.epoch(1));
  CHECK_THROWS_WITH_AS(train::validation_split(loader, 1.0), "validation_split: the fraction must be in (0, 1), got 1", Error);
  CHECK_THROWS_WITH_AS(train::validation_split(loader, 0.05), "validation_split 0.05 of 10 samples leaves an empty part", Error);
  nn::Linear model(1, 1);
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.1));
  auto mse = [](const Tensor& p, const Tensor& y) { return nn::mse_loss(p, y); };
  CHECK_THROWS_WITH_AS(train::fit(model, mse, opt, loader, train::FitOptions().verbose(false).validation_split(0.05)),
                       "fit: validation_split 0.05 of 10 samples leaves an empty part", Error);
}

TEST_CASE("sample_categorical draws from softmax(logits / temperature), seeded") {
  const Tensor logits = tensor({0.0, std::log(2.0), std::log(5.0)});  // probabilities 1/8, 2/8, 5/8
  manual_seed(1);
  const Tensor first = train::sample_categorical(logits);
  manual_seed(1);
  CHECK(train::sample_categorical(logits).item<std::int64_t>() == first.item<std::int64_t>());
  // 8000 rows at once: frequencies within 5 standard deviations of 1/8, 2/8, 5/8.
  const Tensor draws = train::sample_categorical(logits.unsqueeze(0).expand({8000, 3}));
  CHECK(draws.shape() == Shape{8000});
  std::vector<double> counts(3, 0.0);
  for (std::int64_t d : draws.to_vector<std::int64_t>()) counts[static_cast<std::size_t>(d)] += 1;
  const std::vector<double> p = {1.0 / 8, 2.0 / 8, 5.0 / 8};
  for (std::size_t c = 0; c < 3; ++c)
    CHECK(std::abs(counts[c] / 8000 - p[c]) < 5 * std::sqrt(p[c] * (1 - p[c]) / 8000));
  // A cold temperature is argmax; a hot one spreads.
  CHECK(train::sample_categorical(logits, 1e-3).item<std::int64_t>() == 2);
  CHECK_THROWS_WITH_AS(train::sample_categorical(logits, 0.0), doctest::Contains("temperature must be a positive"), Error);
  CHECK_THROWS_WITH_AS(train::sample_categorical(tensor({1.0, NAN})), doctest::Contains("holds NaN"), Error);
}

TEST_CASE("one_hot and comparisons with a number") {
  const Tensor ids = from_vector(std::vector<std::int64_t>{2, 0, 1}, {3});
  CHECK(nn::one_hot(ids, 3).to_vector<float>() == std::vector<float>{0, 0, 1, 1, 0, 0, 0, 1, 0});
  CHECK(nn::one_hot(ids.reshape({3, 1}), 4).shape() == Shape{3, 1, 4});
  CHECK_THROWS_WITH_AS(nn::one_hot(ids, 2), "one_hot: id 2 is outside [0, 2)", Error);
  const Tensor t = tensor({-1.0, 0.0, 2.5});
  CHECK((t > 0.0).to_vector<bool>() == std::vector<bool>{false, false, true});
  CHECK((t >= 0.0).to_vector<bool>() == std::vector<bool>{false, true, true});
  CHECK((t < 0.0).to_vector<bool>() == std::vector<bool>{true, false, false});
  CHECK((t <= 0.0).to_vector<bool>() == std::vector<bool>{true, true, false});
  CHECK(eq(t, 2.5).to_vector<bool>() == std::vector<bool>{false, false, true});
  CHECK(ne(ids, 0.0).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(gt(ids, 0.0).dtype() == DType::b8);
}

TEST_CASE("metrics stream over batches of any size and match hand-computed values") {
  // Accuracy: argmax of (B, C) against ids. 3 right of 5 over two batches of 2 and 3.
  train::Accuracy acc;
  acc.update(tensor({0.1, 0.9, 0.8, 0.2}, {2, 2}), from_vector(std::vector<std::int64_t>{1, 1}, {2}));  // 1 of 2
  acc.update(tensor({2.0, 1.0, 0.0, 3.0, 5.0, 4.0}, {3, 2}), from_vector(std::vector<std::int64_t>{0, 1, 0}, {3}));  // 3 of 3
  CHECK(acc.value() == doctest::Approx(4.0 / 5.0));
  CHECK(acc.name() == "accuracy");
  // Binary accuracy from logits (σ > 0.5 ⇔ logit > 0) and from probabilities.
  train::BinaryAccuracy bin;
  bin.update(tensor({2.0, -1.0, 0.5, -3.0}, {4, 1}), tensor({1.0, 1.0, 1.0, 0.0}));  // right: 1st, 3rd, 4th
  CHECK(bin.value() == doctest::Approx(0.75));
  train::BinaryAccuracy probs(/*from_logits=*/false, 0.7);
  probs.update(tensor({0.8, 0.6}), from_vector(std::vector<std::int64_t>{1, 1}, {2}));
  CHECK(probs.value() == doctest::Approx(0.5));
  // MAE and RMSE over every element of the epoch, not a mean of batch values.
  train::MeanAbsoluteError mae;
  train::RootMeanSquaredError rmse;
  mae.update(tensor({1.0, 2.0}), tensor({0.0, 0.0}));
  mae.update(tensor({4.0}), tensor({0.0}));
  rmse.update(tensor({1.0, 2.0}), tensor({0.0, 0.0}));
  rmse.update(tensor({4.0}), tensor({0.0}));
  CHECK(mae.value() == doctest::Approx(7.0 / 3.0));
  CHECK(rmse.value() == doctest::Approx(std::sqrt(21.0 / 3.0)));
  // Bits per character: uniform logits over 4 classes are 2 bits.
  train::BitsPerCharacter bpc;
  bpc.update(zeros({2, 3, 4}), zeros({2, 3}, DType::i64));
  CHECK(bpc.value() == doctest::Approx(2.0));
  // Sums from elsewhere (another process) add; reset starts over; an empty metric throws.
  train::MeanAbsoluteError other;
  other.update(tensor({3.0}), tensor({0.0}));
  mae.add(other.sum(), other.count());
  CHECK(mae.value() == doctest::Approx(10.0 / 4.0));
  mae.reset();
  CHECK_THROWS_WITH_AS(mae.value(), "mae: no batch was added since the last reset()", Error);
  CHECK_THROWS_WITH_AS(acc.update(zeros({2, 3}), zeros({3}, DType::i64)), doctest::Contains("accuracy: expected"), Error);
}

TEST_CASE("pad_sequences and sequence_lengths: a size that overflows or memory cannot hold is an Error naming it") {
  using train::PadOptions;
  const Rows seq = {{1}, {2, 3}, {4, 5, 6}};
  CHECK_THROWS_WITH_AS(train::pad_sequences(seq, PadOptions().maxlen(std::int64_t{1} << 62)),
                       "pad_sequences: sequences × maxlen = 3 × 4611686018427387904, more than an int64 can count", Error);
  CHECK_THROWS_WITH_AS(train::pad_sequences({{1}}, PadOptions().maxlen(std::int64_t{1} << 62)),
                       doctest::Contains("pad_sequences: empty: shape (1, 4611686018427387904) of int64 needs more bytes"), Error);
  CHECK_THROWS_WITH_AS(train::pad_sequences({{1}}, PadOptions().maxlen(std::int64_t{1} << 50)),
                       doctest::Contains("pad_sequences: empty: cannot allocate 9007199254740992 bytes"), Error);
  CHECK(train::pad_sequences({}, PadOptions().maxlen(std::int64_t{1} << 62)).padded.shape() == Shape{0, std::int64_t{1} << 62});
  CHECK_THROWS_WITH_AS(train::sequence_lengths(seq, PadOptions().maxlen(-1)), "sequence_lengths: maxlen must be >= 0, got -1", Error);
  CHECK(train::sequence_lengths(seq, PadOptions().maxlen(0)).values() == std::vector<std::int64_t>{1, 2, 3});
}

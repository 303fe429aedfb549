// The padding side travels with the lengths: pre-padded batches (Keras's default) and
// post-padded ones (PyTorch's) give every consumer of lengths the same per-sequence result.
#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <xgrad/xgrad.hpp>

#include "rnn_test_util.hpp"

using namespace xgrad;
using rnn_test::max_abs_diff;

namespace {

// Sequence b of a post-padded (T, B, F) or (B, T, F) batch moved to the end of its row, or
// back: index arithmetic only, so the comparison does not rely on the code under test.
Tensor move_to_side(const Tensor& x, const std::vector<std::int64_t>& lengths, bool batch_first, bool to_pre) {
  const std::int64_t time_dim = batch_first ? 1 : 0;
  const std::int64_t T = x.size(time_dim), B = x.size(1 - time_dim), F = x.size(2);
  std::vector<std::int64_t> rows(static_cast<std::size_t>(T * B));
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t shift = T - lengths[static_cast<std::size_t>(b)];
    for (std::int64_t t = 0; t < T; ++t) {
      // Row t of sequence b in the result takes row src of the same sequence.
      const std::int64_t src = to_pre ? (t - shift + T) % T : (t + shift) % T;
      const auto at = [&](std::int64_t step) { return batch_first ? b * T + step : step * B + b; };
      rows[static_cast<std::size_t>(at(t))] = at(src);
    }
  }
  const Shape shape = x.shape();
  return reshape(index_select(reshape(x, {T * B, F}), 0, from_vector(rows, {T * B})), shape);
}

using Make = std::function<nn::Recurrent(std::int64_t layers, bool bidirectional, bool batch_first)>;

}  // namespace

TEST_CASE("a recurrent layer gives a pre-padded batch the outputs and final states of the post-padded one") {
  const std::int64_t I = 3, H = 4, T = 6;
  const std::vector<std::int64_t> lengths = {6, 2, 4, 1, 5};
  const std::int64_t B = static_cast<std::int64_t>(lengths.size());
  const std::vector<std::pair<std::string, Make>> layers = {
      {"RNN", [&](std::int64_t l, bool bi, bool bf) -> nn::Recurrent {
         return nn::RNN(nn::RNNOptions(I, H).num_layers(l).bidirectional(bi).batch_first(bf));
       }},
      {"LSTM", [&](std::int64_t l, bool bi, bool bf) -> nn::Recurrent {
         return nn::LSTM(nn::LSTMOptions(I, H).num_layers(l).bidirectional(bi).batch_first(bf));
       }},
      {"GRU", [&](std::int64_t l, bool bi, bool bf) -> nn::Recurrent {
         return nn::GRU(nn::GRUOptions(I, H).num_layers(l).bidirectional(bi).batch_first(bf));
       }},
  };
  for (const auto& [name, make] : layers)
    for (const std::int64_t num_layers : {1, 2})
      for (const bool bidirectional : {false, true})
        for (const bool batch_first : {false, true}) {
          CAPTURE(name);
          CAPTURE(num_layers);
          CAPTURE(bidirectional);
          CAPTURE(batch_first);
          manual_seed(7);
          nn::Recurrent rnn = make(num_layers, bidirectional, batch_first);
          rnn.to(DType::f64);
          const Shape shape = batch_first ? Shape{B, T, I} : Shape{T, B, I};
          const Tensor post = randn(shape, DType::f64).requires_grad_();
          const Tensor pre = move_to_side(post.detach(), lengths, batch_first, true).requires_grad_();
          const auto [out_post, state_post] = rnn(post, {}, nn::Lengths(lengths, nn::Side::post));
          const auto [out_pre, state_pre] = rnn(pre, {}, nn::Lengths(lengths, nn::Side::pre));
          CHECK(max_abs_diff(move_to_side(out_pre, lengths, batch_first, false), out_post) <= 1e-12);
          REQUIRE(state_pre.size() == state_post.size());
          for (std::size_t k = 0; k < state_pre.size(); ++k) CHECK(max_abs_diff(state_pre[k], state_post[k]) <= 1e-12);
          // The same gradients reach the valid steps; none reach the padding.
          Tensor weights = randn(out_post.shape(), DType::f64);
          ((out_post * weights).sum() + state_post.h().sum()).backward();
          ((out_pre * move_to_side(weights, lengths, batch_first, true)).sum() + state_pre.h().sum()).backward();
          CHECK(max_abs_diff(move_to_side(pre.grad(), lengths, batch_first, false), post.grad()) <= 1e-12);
        }
}

TEST_CASE("pre-padding: the padding is never read, whatever it holds") {
  nn::GRU gru(nn::GRUOptions(2, 3).batch_first(true));
  gru.to(DType::f64);
  const std::vector<std::int64_t> lengths = {4, 2};
  Tensor x = randn({2, 4, 2}, DType::f64);
  Tensor poisoned = x.detach().clone();
  poisoned.select(0, 1).narrow(0, 0, 2).fill_(NAN);  // sequence 1's padding: its first 2 steps
  const auto clean = gru(x, {}, nn::Lengths(lengths, nn::Side::pre));
  const auto dirty = gru(poisoned, {}, nn::Lengths(lengths, nn::Side::pre));
  CHECK(max_abs_diff(clean.output, dirty.output) == 0.0);
  CHECK(max_abs_diff(clean.state.h(), dirty.state.h()) == 0.0);
  CHECK(dirty.output.select(0, 1).narrow(0, 0, 2).abs().sum().item<double>() == 0.0);  // zeros at the padding
}

TEST_CASE("Keras's default pre-padding reaches the layer's valid steps through pad_sequences and the loader") {
  // The case that trained on the padding zeros and never saw tokens 9 and 3.
  const std::vector<std::vector<std::int64_t>> seq = {{5, 6, 7, 8}, {9, 3}};
  const auto [ids, lengths] = train::pad_sequences(seq);  // Keras's default: padding pre
  CHECK(ids.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, 6, 7, 8, 0, 0, 9, 3});
  CHECK(lengths.padding() == nn::Side::pre);
  manual_seed(3);
  nn::Embedding embedding(10, 3);
  nn::GRU gru(nn::GRUOptions(3, 4).batch_first(true));
  const auto run = [&](const Tensor& batch_ids, const nn::Lengths& batch_lengths) {
    return gru(embedding(batch_ids), {}, batch_lengths).state.h();
  };
  const auto [post_ids, post_lengths] = train::pad_sequences(seq, train::PadOptions().padding(train::Side::post));
  const Tensor h_pre = run(ids, lengths), h_post = run(post_ids, post_lengths);
  CHECK(max_abs_diff(h_pre, h_post) <= 1e-6);
  // Sequence 1 alone: its final state is that of the batch.
  const Tensor h_alone = run(from_vector(std::vector<std::int64_t>{9, 3}, {1, 2}), {});
  CHECK(max_abs_diff(h_pre.select(1, 1), h_alone.select(1, 0)) <= 1e-6);

  // A batch of the short sequence alone is trimmed to its last columns, which hold 9 and 3.
  train::DataLoader loader(train::TensorDataset(train::pad_sequences(seq), Tensor()), train::LoaderOptions().batch_size(1));
  const train::Batch b = loader.batch({1});
  CHECK(b.inputs.to_vector<std::int64_t>() == std::vector<std::int64_t>{9, 3});
  CHECK(b.lengths.padding() == nn::Side::pre);
  CHECK(b.lengths.values() == std::vector<std::int64_t>{2});
}

TEST_CASE("last_step with pre-padded lengths is every sequence's last step") {
  const Tensor out = arange(0.0, 12.0, 1.0, DType::f64).reshape({2, 3, 2});  // (B, T, F)
  const Tensor pre = nn::last_step(out, nn::Lengths({3, 1}, nn::Side::pre), true);
  CHECK(pre.to_vector<double>() == std::vector<double>{4, 5, 10, 11});
  const Tensor post = nn::last_step(out, nn::Lengths({3, 1}, nn::Side::post), true);
  CHECK(post.to_vector<double>() == std::vector<double>{4, 5, 6, 7});
  CHECK_THROWS_WITH_AS(nn::last_step(out, nn::Lengths({3, 0}, nn::Side::pre), true),
                       doctest::Contains("length 0 of sequence 1"), Error);
}

TEST_CASE("lengths from a floating-point tensor must be whole numbers an int64 holds") {
  CHECK(nn::Lengths(tensor({3, 1})).values() == std::vector<std::int64_t>{3, 1});
  for (const double bad : {2.5, double(NAN), double(INFINITY), 1e30}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(nn::Lengths(tensor({3, bad}, DType::f64)), doctest::Contains("is not a whole number"), Error);
  }
}

// The sequence layers beyond recurrence, apart from PyTorch parity (test_seq_parity.cpp):
// gradcheck in f64 of every layer in each configuration, the padded-batch rule (a sequence
// gives the same result in a padded batch as alone), masks that never leak NaN, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <xgrad/nn/attention.hpp>
#include <xgrad/nn/transformer.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Writes `value` at every padded step of x (time along `time_dim`, batch along `batch_dim`).
void poison(Tensor& x, const nn::Lengths& lengths, std::int64_t time_dim, std::int64_t batch_dim, double value) {
  NoGradGuard no_grad;
  const std::int64_t T = x.size(time_dim);
  const std::vector<bool> pad = lengths.padding_mask(T).to_vector<bool>();
  for (std::int64_t b = 0; b < lengths.size(); ++b)
    for (std::int64_t t = 0; t < T; ++t)
      if (pad[static_cast<std::size_t>(b * T + t)]) x.select(batch_dim, b).select(time_dim - (time_dim > batch_dim), t).fill_(value);
}

bool all_finite(const Tensor& t) { return t.defined() && !has_nonfinite(t); }

}  // namespace

TEST_CASE("gradcheck: Conv1d w.r.t. input, weight and bias in each configuration") {
  manual_seed(5);
  struct Case {
    const char* what;
    nn::Conv1dOptions options;
  };
  const std::vector<Case> cases = {
      {"base", nn::Conv1dOptions(3, 4, 3)},
      {"stride 2, padding 1", nn::Conv1dOptions(3, 4, 3).stride(2).padding(1)},
      {"dilation 2", nn::Conv1dOptions(3, 2, 2).dilation(2)},
      {"groups 3", nn::Conv1dOptions(3, 6, 2).groups(3)},
      {"same, even kernel", nn::Conv1dOptions(3, 2, 4).padding("same")},
      {"same, dilation 2", nn::Conv1dOptions(3, 2, 3).padding("same").dilation(2)},
      {"no bias", nn::Conv1dOptions(3, 2, 3).bias(false)},
      {"causal, stride 2, dilation 2", nn::Conv1dOptions(3, 2, 3).padding("causal").stride(2).dilation(2)},
      {"channels last, groups 3, causal", nn::Conv1dOptions(3, 6, 2).groups(3).padding("causal").channels_last(true)},
      {"channels last, stride 2, padding 1", nn::Conv1dOptions(3, 4, 3).stride(2).padding(1).channels_last(true)},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    nn::Conv1d conv(c.options);
    conv.to(DType::f64);
    const Tensor x = randn(c.options.channels_last() ? Shape{2, 7, 3} : Shape{2, 3, 7}, DType::f64).requires_grad_();
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return conv(in[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.message());
    auto p = nn::gradcheck(conv, [&] { return conv(x.detach()); });
    CHECK_MESSAGE(p.ok, p.message());
  }
}

TEST_CASE("gradcheck: MaxPool1d, AvgPool1d and the global poolings with lengths") {
  manual_seed(6);
  const Tensor x = randn({2, 3, 8}, DType::f64).requires_grad_();
  auto check = [&](const char* what, const std::function<Tensor(const Tensor&)>& fn) {
    CAPTURE(what);
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return fn(in[0]); }, {x},
                       GradcheckOptions().allow_zero_gradient(true));
    CHECK_MESSAGE(r.ok, r.message());
  };
  // Overlapping windows (stride < kernel) accumulate the gradient of a step used twice.
  check("max k3 s1 p1", [](const Tensor& t) { return nn::max_pool1d(t, nn::Pool1dOptions(3).stride(1).padding(1)); });
  check("max k2", [](const Tensor& t) { return nn::max_pool1d(t, 2); });
  check("avg k3 s2 p1", [](const Tensor& t) { return nn::avg_pool1d(t, nn::Pool1dOptions(3).stride(2).padding(1)); });
  check("avg k3 s1 p1 exclude pad", [](const Tensor& t) {
    return nn::avg_pool1d(t, nn::Pool1dOptions(3).stride(1).padding(1).count_include_pad(false));
  });
  const nn::Lengths post({8, 3}), pre(std::vector<std::int64_t>{5, 1}, nn::Side::pre);
  check("global max post", [&](const Tensor& t) { return nn::global_max_pool1d(t, post); });
  check("global avg pre", [&](const Tensor& t) { return nn::global_avg_pool1d(t, pre); });
  check("global avg (N, L, C)", [&](const Tensor& t) { return nn::global_avg_pool1d(t.transpose(1, 2), post, 1); });
}

TEST_CASE("global pooling: a padded batch gives each sequence its result alone, NaN and Inf in the padding") {
  manual_seed(7);
  const Tensor a = randn({3, 6}), b = randn({3, 2});  // (C, L) sequences of 6 and 2 steps
  for (nn::Side side : {nn::Side::post, nn::Side::pre}) {
    // Channels-first batch: pad along L, on the given side.
    auto padded = nn::pad_sequences({a.t(), b.t(), zeros({0, 3})}, true, kNaN, side);  // (3, 6, 3) NLC
    Tensor x = padded.padded.transpose(1, 2).contiguous().requires_grad_();              // (3, 3, 6) NCL
    poison(x, padded.lengths, 2, 0, kInf);
    const Tensor mx = nn::global_max_pool1d(x, padded.lengths);
    const Tensor av = nn::global_avg_pool1d(x, padded.lengths);
    CHECK(allclose(mx.select(0, 0), max(a, 1).first));
    CHECK(allclose(mx.select(0, 1), max(b, 1).first));
    CHECK(allclose(mx.select(0, 2), zeros({3})));  // length 0
    CHECK(allclose(av.select(0, 0), mean(a, {1})));
    CHECK(allclose(av.select(0, 1), mean(b, {1})));
    CHECK(allclose(av.select(0, 2), zeros({3})));
    sum(mx + av).backward();
    CHECK(all_finite(x.grad()));
    // Padded steps get no gradient.
    const Tensor pad = unsqueeze(padded.lengths.padding_mask(6), 1);  // (3, 1, 6)
    CHECK(sum(abs(where(pad, x.grad(), zeros({}, x.dtype())))).item() == 0.0);
  }
}

TEST_CASE("gradcheck: scaled_dot_product_attention w.r.t. query, key and value, with each kind of mask") {
  manual_seed(8);
  const Tensor q = randn({2, 3, 4}, DType::f64).requires_grad_(), k = randn({2, 5, 4}, DType::f64).requires_grad_(),
               v = randn({2, 5, 3}, DType::f64).requires_grad_();
  Tensor allowed = rand({3, 5}) > 0.3;
  allowed = where(unsqueeze(eq(arange(5), 0.0), 0), ones({}, DType::b8), allowed);  // every row has a key
  Tensor dead_row = allowed.clone();
  dead_row.select(0, 1).fill_(0.0);  // query 1 may attend to nothing
  struct Case {
    const char* what;
    Tensor mask;
    bool causal;
  };
  for (const Case& c : {Case{"none", Tensor(), false}, Case{"bool", allowed, false},
                        Case{"float", randn({3, 5}, DType::f64), false}, Case{"causal", Tensor(), true},
                        Case{"dead row", dead_row, false}, Case{"bool and causal", allowed, true}}) {
    CAPTURE(c.what);
    auto r = gradcheck(
        [&](const std::vector<Tensor>& in) { return nn::scaled_dot_product_attention(in[0], in[1], in[2], c.mask, 0.0, c.causal); },
        {q, k, v});
    CHECK_MESSAGE(r.ok, r.message());
  }
}

TEST_CASE("gradcheck: MultiheadAttention w.r.t. inputs and every parameter") {
  manual_seed(9);
  struct Case {
    const char* what;
    nn::MultiheadAttentionOptions options;
    bool self;
  };
  for (const Case& c : {Case{"self, 2 heads", nn::MultiheadAttentionOptions(4, 2), true},
                        Case{"cross, kdim 3, vdim 5, batch_first", nn::MultiheadAttentionOptions(4, 4).kdim(3).vdim(5).batch_first(true), false},
                        Case{"no bias", nn::MultiheadAttentionOptions(4, 1).bias(false), false}}) {
    CAPTURE(c.what);
    nn::MultiheadAttention mha(c.options);
    mha.to(DType::f64);
    const auto& o = mha.options();
    auto shape = [&](std::int64_t T, std::int64_t F) { return o.batch_first() ? Shape{2, T, F} : Shape{T, 2, F}; };
    const Tensor q = randn(shape(3, 4), DType::f64).requires_grad_();
    const Tensor k = c.self ? q : randn(shape(5, o.kdim()), DType::f64).requires_grad_();
    const Tensor v = c.self ? q : randn(shape(5, o.vdim()), DType::f64).requires_grad_();
    const nn::Lengths lengths({3, 2});
    auto args = c.self ? nn::AttentionArgs().lengths(lengths).query_lengths(lengths) : nn::AttentionArgs();
    auto both = [&](const Tensor& a, const Tensor& b, const Tensor& cc) {
      auto r = mha(a, b, cc, args);
      return cat({flatten(r.output), flatten(r.weights)});
    };
    std::vector<Tensor> inputs = c.self ? std::vector<Tensor>{q} : std::vector<Tensor>{q, k, v};
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return c.self ? both(in[0], in[0], in[0]) : both(in[0], in[1], in[2]); },
                       inputs, GradcheckOptions().allow_zero_gradient(true));
    CHECK_MESSAGE(r.ok, r.message());
    auto p = nn::gradcheck(mha, [&] { return both(q.detach(), k.detach(), v.detach()); });
    CHECK_MESSAGE(p.ok, p.message());
  }
}

TEST_CASE("gradcheck: TransformerEncoderLayer (post- and pre-norm, relu and gelu) and TransformerEncoder") {
  manual_seed(10);
  for (bool norm_first : {false, true}) {
    CAPTURE(norm_first);
    nn::TransformerEncoderLayer layer(nn::TransformerEncoderLayerOptions(4, 2)
                                          .dim_feedforward(6)
                                          .dropout(0.0)
                                          .norm_first(norm_first)
                                          .activation(norm_first ? nn::TransformerActivation::gelu
                                                                 : nn::TransformerActivation::relu));
    layer.to(DType::f64);
    const Tensor x = randn({3, 2, 4}, DType::f64).requires_grad_();
    const auto args = nn::EncoderArgs().lengths(nn::Lengths(std::vector<std::int64_t>{3, 2}, nn::Side::pre)).is_causal(true);
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return layer(in[0], args); }, {x});
    CHECK_MESSAGE(r.ok, r.message());
    auto p = nn::gradcheck(layer, [&] { return layer(x.detach(), args); });
    CHECK_MESSAGE(p.ok, p.message());
  }
  nn::TransformerEncoder encoder(
      nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(5).dropout(0.0).batch_first(true), 2)
          .final_norm(true));
  encoder.to(DType::f64);
  const Tensor x = randn({2, 3, 4}, DType::f64);
  auto p = nn::gradcheck(encoder, [&] { return encoder(x, nn::EncoderArgs().lengths({3, 1})); });
  CHECK_MESSAGE(p.ok, p.message());
  nn::LearnedPositionalEmbedding pos(nn::PositionalEncodingOptions(4).max_len(5));
  pos.to(DType::f64);
  auto q = nn::gradcheck(pos, [&] { return pos(x.transpose(0, 1)); }, GradcheckOptions().allow_zero_gradient(true));
  CHECK_MESSAGE(q.ok, q.message());
}

TEST_CASE("attention and the encoder: a padded batch gives each sequence its result alone; padding never leaks") {
  manual_seed(11);
  const Tensor a = randn({4, 4}), b = randn({2, 4});  // (T, E) sequences of 4 and 2 steps
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(4, 2));
  nn::TransformerEncoder encoder(nn::TransformerEncoderOptions(
      nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(8).dropout(0.0), 2).final_norm(true));
  for (nn::Side side : {nn::Side::post, nn::Side::pre}) {
    for (double poison_value : {kNaN, kInf}) {
      CAPTURE(poison_value);
      auto padded = nn::pad_sequences({a, b, zeros({0, 4})}, false, poison_value, side);  // (4, 3, 4), lengths 4, 2, 0
      Tensor x = padded.padded.clone().requires_grad_();
      const nn::Lengths& lengths = padded.lengths;
      const std::int64_t first_b = lengths.first_step(1, 4);

      mha.zero_grad();
      encoder.zero_grad();
      auto r = mha(x, x, x, nn::AttentionArgs().lengths(lengths).query_lengths(lengths));
      const Tensor enc = encoder(x, nn::EncoderArgs().lengths(lengths));
      // Each sequence alone (unbatched).
      const Tensor alone_a = mha(a, a, a).output, alone_b = mha(b, b, b).output;
      CHECK(allclose(r.output.select(1, 0), alone_a, 1e-5, 1e-6));
      CHECK(allclose(narrow(r.output.select(1, 1), 0, first_b, 2), alone_b, 1e-5, 1e-6));
      CHECK(allclose(r.output.select(1, 2), zeros({4, 4})));  // length 0: zeros
      CHECK(allclose(narrow(enc.select(1, 1), 0, first_b, 2), encoder(b), 1e-5, 1e-5));
      CHECK(allclose(enc.select(1, 0), encoder(a), 1e-5, 1e-5));
      CHECK(allclose(enc.select(1, 2), zeros({4, 4})));
      CHECK(all_finite(r.output));
      CHECK(all_finite(r.weights));
      CHECK(all_finite(enc));
      // Weights of valid queries sum to 1 over the valid keys; padded keys get none.
      CHECK(allclose(sum(r.weights.select(0, 1), {1}).narrow(0, first_b, 2), ones({2})));
      sum(r.output * r.output + enc).backward();
      CHECK(all_finite(x.grad()));
      for (const auto& [name, p] : mha.named_parameters()) CHECK_MESSAGE(all_finite(p.grad()), name);
      for (const auto& [name, p] : encoder.named_parameters()) CHECK_MESSAGE(all_finite(p.grad()), name);
      // Padded steps get no gradient.
      const Tensor pad = unsqueeze(lengths.padding_mask(4).t(), 2);  // (T, B, 1)
      CHECK(sum(abs(where(pad, x.grad(), zeros({})))).item() == 0.0);
    }
  }
}

TEST_CASE("attention: a fully masked row and NaN behind a key_padding_mask leak no NaN") {
  manual_seed(12);
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(4, 2));
  Tensor x = randn({3, 2, 4});
  {
    NoGradGuard no_grad;
    x.select(0, 2).select(0, 1).fill_(kNaN);  // step 2 of sequence 1, masked below
  }
  x.requires_grad_();
  Tensor kpm = zeros({2, 3}, DType::b8);
  kpm.select(0, 1).select(0, 2).fill_(1.0);
  Tensor attn_mask = zeros({3, 3}, DType::b8);
  attn_mask.select(0, 0).fill_(1.0);  // query 0 may attend to nothing
  // x as the key and value only: query rows are the caller's, and a NaN query row is theirs.
  const Tensor query = randn({3, 2, 4}).requires_grad_();
  auto r = mha(query, x, x, nn::AttentionArgs().key_padding_mask(kpm).attn_mask(attn_mask));
  CHECK(all_finite(r.output));
  CHECK(allclose(r.weights.select(1, 0), zeros({2, 3})));  // the dead row attends to nothing
  sum(r.output).backward();
  CHECK(all_finite(x.grad()));
  CHECK(all_finite(query.grad()));
  for (const auto& [name, p] : mha.named_parameters()) CHECK_MESSAGE(all_finite(p.grad()), name);
}

TEST_CASE("positional encodings: the sinusoidal table, learned weights by name, and shapes") {
  nn::SinusoidalPositionalEncoding pe(nn::PositionalEncodingOptions(6).max_len(10));
  CHECK(pe.state_dict().empty());  // a derived table, not state
  const Tensor y = pe(zeros({3, 2, 6}));  // (T, N, E): every batch member gets pe[t]
  CHECK(y.at({1, 0, 0}) == doctest::Approx(std::sin(1.0)));
  CHECK(y.at({1, 1, 1}) == doctest::Approx(std::cos(1.0)));
  CHECK(y.at({2, 0, 2}) == doctest::Approx(std::sin(2.0 / std::pow(10000.0, 2.0 / 6.0))));
  CHECK(y.at({2, 1, 5}) == doctest::Approx(std::cos(2.0 / std::pow(10000.0, 4.0 / 6.0))));
  nn::LearnedPositionalEmbedding pos(nn::PositionalEncodingOptions(6).max_len(10).batch_first(true));
  CHECK(pos.named_parameters().at(0).first == "weight");
  CHECK(allclose(pos(zeros({2, 3, 6})).select(0, 1), narrow(pos.weight, 0, 0, 3)));
  CHECK_THROWS_WITH_AS(pos(zeros({2, 11, 6})), doctest::Contains("more than max_len 10"), Error);
}

TEST_CASE("sequence layers refuse bad arguments, naming them") {
  CHECK_THROWS_WITH_AS(nn::Conv1d(nn::Conv1dOptions(4, 6, 3).groups(4)), doctest::Contains("divisible by groups=4"), Error);
  CHECK_THROWS_WITH_AS(nn::Conv1d(nn::Conv1dOptions(4, 6, 3).padding("same").stride(2)), doctest::Contains("stride 1"), Error);
  CHECK_THROWS_WITH_AS(nn::Conv1dOptions(4, 6, 3).padding("full"), doctest::Contains("\"full\""), Error);
  CHECK_THROWS_WITH_AS(nn::Conv1dOptions(4, 6, 3).padding(-1), doctest::Contains("non-negative"), Error);
  nn::Conv1d conv(nn::Conv1dOptions(4, 6, 3));
  CHECK_THROWS_WITH_AS(conv(randn({2, 5, 9})), doctest::Contains("(2, 5, 9)"), Error);
  CHECK_THROWS_WITH_AS(conv(randn({2, 4, 2})), doctest::Contains("fewer than the kernel's span 3"), Error);
  CHECK_THROWS_WITH_AS(nn::MaxPool1d(nn::Pool1dOptions(2).padding(2)), doctest::Contains("kernel_size / 2"), Error);
  CHECK_THROWS_WITH_AS(nn::global_max_pool1d(randn({2, 3, 4}), {4, 5}), doctest::Contains("length 5 of sequence 1"), Error);
  CHECK_THROWS_WITH_AS(nn::MultiheadAttention(nn::MultiheadAttentionOptions(6, 4)), doctest::Contains("divisible by num_heads"), Error);
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(4, 2));
  const Tensor x = randn({3, 2, 4});
  CHECK_THROWS_WITH_AS(mha(x, x, x, nn::AttentionArgs().attn_mask(zeros({3, 4}, DType::b8))),
                       doctest::Contains("attn_mask must be b8 or float32 of shape (3, 3)"), Error);
  CHECK_THROWS_WITH_AS(mha(x, x, x, nn::AttentionArgs().key_padding_mask(zeros({3, 3}, DType::b8))),
                       doctest::Contains("key_padding_mask"), Error);
  CHECK_THROWS_WITH_AS(mha(x, x, x, nn::AttentionArgs().lengths({3})), doctest::Contains("1 lengths for a batch of 2"), Error);
  CHECK_THROWS_WITH_AS(mha(x, randn({3, 2, 5}), x), doctest::Contains("key must be float32 with 4 features"), Error);
  CHECK_THROWS_WITH_AS(nn::scaled_dot_product_attention(randn({2, 3}), randn({4, 5}), randn({4, 5})),
                       doctest::Contains("do not fit together"), Error);
  nn::TransformerEncoderLayer layer(nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(8));
  CHECK_THROWS_WITH_AS(layer(randn({3, 2, 5})), doctest::Contains("(3, 2, 5)"), Error);
}

TEST_CASE("sequence layers: PyTorch's state-dict keys, repr, and dropout only in training") {
  nn::TransformerEncoder encoder(nn::TransformerEncoderOptions(
      nn::TransformerEncoderLayerOptions(4, 2).dim_feedforward(6).dropout(0.5), 2).final_norm(true));
  std::vector<std::string> keys;
  for (const auto& [name, t] : encoder.state_dict()) keys.push_back(name);
  REQUIRE(keys.size() == 2 * 12 + 2);
  CHECK(keys[0] == "layers.0.self_attn.in_proj_weight");
  CHECK(keys[1] == "layers.0.self_attn.in_proj_bias");
  CHECK(keys[2] == "layers.0.self_attn.out_proj.weight");
  CHECK(keys[4] == "layers.0.linear1.weight");
  CHECK(keys[6] == "layers.0.linear2.weight");
  CHECK(keys[8] == "layers.0.norm1.weight");
  CHECK(keys[12] == "layers.1.self_attn.in_proj_weight");
  CHECK(keys[24] == "norm.weight");
  const std::string repr = encoder.repr();
  CHECK(repr.find("(layers): ModuleList(") != std::string::npos);
  CHECK(repr.find("(self_attn): MultiheadAttention(\n        embed_dim=4, num_heads=2, dropout=0.5\n") != std::string::npos);
  CHECK(nn::Conv1d(nn::Conv1dOptions(4, 8, 3).padding("same").groups(2)).extra_repr() ==
        "4, 8, kernel_size=3, stride=1, padding=same, groups=2");

  manual_seed(13);
  const Tensor x = randn({3, 2, 4});
  encoder.eval();
  CHECK(allclose(encoder(x), encoder(x)));  // eval: no dropout, deterministic
  encoder.train();
  CHECK_FALSE(allclose(encoder(x), encoder(x)));  // training: attention and feed-forward dropout
}

TEST_CASE("scaled_dot_product_attention: a key shared by batch members is zeroed only when none reads it") {
  manual_seed(14);
  const Tensor q = randn({2, 3, 4}), k = randn({5, 4}), v = randn({5, 2});  // k, v shared by both members
  Tensor allowed = ones({2, 3, 5}, DType::b8);
  allowed.select(0, 0).narrow(1, 4, 1).fill_(0.0);  // member 0 never reads key 4; member 1 does
  const Tensor both = nn::scaled_dot_product_attention(q, k, v, allowed);
  for (std::int64_t b = 0; b < 2; ++b) {
    const Tensor alone = nn::scaled_dot_product_attention(q.select(0, b), k, v, allowed.select(0, b));
    CHECK(allclose(both.select(0, b), alone, 1e-5, 1e-6));
  }
  // Member 1 reads key 4, so its value must count: the output differs from dropping the key.
  const Tensor without = nn::scaled_dot_product_attention(q.select(0, 1), k.narrow(0, 0, 4), v.narrow(0, 0, 4));
  CHECK_FALSE(allclose(both.select(0, 1), without, 1e-3, 1e-4));
}

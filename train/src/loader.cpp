// pad_sequences, TensorDataset, DataLoader, validation_split and sample_categorical.
#include <xgrad/train/loader.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/ops.hpp>

#include "checked.hpp"

namespace xgrad::train {

// --- pad_sequences -------------------------------------------------------------------------------

namespace {

std::int64_t longest(const std::vector<std::vector<std::int64_t>>& sequences) {
  std::size_t n = 0;
  for (const auto& s : sequences) n = std::max(n, s.size());
  return static_cast<std::int64_t>(n);
}

}  // namespace

nn::PaddedSequences pad_sequences(const std::vector<std::vector<std::int64_t>>& sequences,
                                  const PadOptions& options) {
  if (options.maxlen() < 0) throw Error(fmt::format("pad_sequences: maxlen must be >= 0, got {}", options.maxlen()));
  const std::int64_t N = static_cast<std::int64_t>(sequences.size());
  const std::int64_t T = options.maxlen() > 0 ? options.maxlen() : longest(sequences);
  // Sized through core's checked allocation, as every tensor is: an overflowing N × T or a
  // request memory cannot hold is an Error naming it, never a wrapped size or std::bad_alloc.
  const std::int64_t count = checked_mul(N, T, "pad_sequences: sequences × maxlen");
  Tensor padded;
  try {
    padded = empty({N, T}, DType::i64);
  } catch (const Error& e) {
    throw Error(std::string("pad_sequences: ") + e.what());
  }
  std::int64_t* out = padded.mutable_data<std::int64_t>();
  std::fill_n(out, count, options.value());
  for (std::int64_t i = 0; i < N; ++i) {
    const auto& s = sequences[static_cast<std::size_t>(i)];
    const auto n = static_cast<std::int64_t>(s.size());
    const std::int64_t kept = std::min(n, T);
    // Truncating pre keeps the last `kept` ids, post the first.
    const auto first = s.begin() + (options.truncating() == Side::pre ? n - kept : 0);
    // Padding pre puts them at the end of the row, post at its start.
    const std::int64_t at = i * T + (options.padding() == Side::pre ? T - kept : 0);
    std::copy(first, first + kept, out + at);
  }
  return {padded, sequence_lengths(sequences, options)};
}

nn::Lengths sequence_lengths(const std::vector<std::vector<std::int64_t>>& sequences, const PadOptions& options) {
  if (options.maxlen() < 0)
    throw Error(fmt::format("sequence_lengths: maxlen must be >= 0, got {}", options.maxlen()));
  std::vector<std::int64_t> out;
  out.reserve(sequences.size());
  for (const auto& s : sequences) {
    const auto n = static_cast<std::int64_t>(s.size());
    out.push_back(options.maxlen() > 0 ? std::min(n, options.maxlen()) : n);
  }
  return nn::Lengths(std::move(out), options.padding());
}

// --- TensorDataset and DataLoader -------------------------------------------------------------------

TensorDataset::TensorDataset(nn::PaddedSequences sequences, Tensor targets_)
    : TensorDataset(std::move(sequences.padded), std::move(targets_), std::move(sequences.lengths)) {}

TensorDataset::TensorDataset(Tensor inputs_, Tensor targets_, nn::Lengths lengths_)
    : inputs(std::move(inputs_)), targets(std::move(targets_)), lengths(std::move(lengths_)) {
  if (!inputs.defined() || inputs.dim() == 0)
    throw Error("TensorDataset: inputs must be a tensor with a sample dimension (dimension 0)");
  const std::int64_t n = inputs.size(0);
  if (targets.defined() && (targets.dim() == 0 || targets.size(0) != n))
    throw Error(fmt::format("TensorDataset: {} inputs but targets of shape {}", n, shape_str(targets.shape())));
  if (!lengths.given()) return;
  if (lengths.size() != n) throw Error(fmt::format("TensorDataset: {} inputs but {} lengths", n, lengths.size()));
  if (inputs.dim() < 2)
    throw Error(fmt::format("TensorDataset: lengths need sequences (N, T, ...), got inputs of shape {}",
                            shape_str(inputs.shape())));
  const std::vector<std::int64_t>& len = lengths.values();
  for (std::size_t i = 0; i < len.size(); ++i)
    if (len[i] < 0 || len[i] > inputs.size(1))
      throw Error(fmt::format("TensorDataset: length {} of sample {} is outside [0, {}]", len[i], i, inputs.size(1)));
}

DataLoader::DataLoader(TensorDataset dataset, const LoaderOptions& options)
    : DataLoader(std::move(dataset), nullptr, options) {}

DataLoader::DataLoader(TensorDataset dataset, std::shared_ptr<const Sampler> sampler, const LoaderOptions& options)
    : dataset_(std::move(dataset)), sampler_(std::move(sampler)), options_(options) {
  if (options.batch_size() <= 0)
    throw Error(fmt::format("DataLoader: batch_size must be positive, got {}", options.batch_size()));
  if (!sampler_)
    sampler_ = std::make_shared<BatchSampler>(dataset_.size(), options.batch_size(), options.shuffle(), options.seed(),
                                              options.drop_last());
}

Batch DataLoader::batch(const std::vector<std::int64_t>& indices) const {
  NoGradGuard no_grad;  // a batch is data, not part of any graph
  Batch b;
  b.indices = indices;
  const Tensor index = from_vector(indices, {static_cast<std::int64_t>(indices.size())});
  b.inputs = index_select(dataset_.inputs, 0, index);
  if (dataset_.targets.defined()) b.targets = index_select(dataset_.targets, 0, index);
  if (!dataset_.lengths.given()) return b;
  for (std::int64_t i : indices)
    if (i < 0 || i >= dataset_.size())
      throw Error(fmt::format("DataLoader: sample {} is outside the dataset of {}", i, dataset_.size()));
  b.lengths = dataset_.lengths.select(indices);
  const std::vector<std::int64_t>& lengths = b.lengths.values();
  if (options_.trim() && !lengths.empty()) {
    // Only columns that are padding in every sequence go: the last ones when padded after,
    // the first ones when padded before.
    const std::int64_t T = b.inputs.size(1);
    const std::int64_t longest_len = std::max<std::int64_t>(1, *std::max_element(lengths.begin(), lengths.end()));
    const std::int64_t start = b.lengths.padding() == nn::Side::post ? 0 : T - longest_len;
    if (longest_len < T) b.inputs = narrow(b.inputs, 1, start, longest_len).contiguous();
  }
  return b;
}

SplitLoaders validation_split(const DataLoader& loader, double fraction) {
  if (!(fraction > 0.0 && fraction < 1.0))
    throw Error(fmt::format("validation_split: the fraction must be in (0, 1), got {}", fraction));
  const std::int64_t n = loader.dataset().size();
  const auto n_val = static_cast<std::int64_t>(std::floor(static_cast<double>(n) * fraction));
  if (n_val == 0 || n_val == n)
    throw Error(fmt::format("validation_split {} of {} samples leaves an empty part", fraction, n));
  std::vector<std::int64_t> first(static_cast<std::size_t>(n - n_val)), last(static_cast<std::size_t>(n_val));
  std::iota(first.begin(), first.end(), 0);
  std::iota(last.begin(), last.end(), n - n_val);
  const LoaderOptions& o = loader.options();
  return {DataLoader(loader.dataset(), std::make_shared<BatchSampler>(first, o.batch_size(), o.shuffle(), o.seed(), o.drop_last()), o),
          DataLoader(loader.dataset(), std::make_shared<BatchSampler>(last, o.batch_size(), false, 0, false), o)};
}

// --- sampling ------------------------------------------------------------------------------------------

Tensor sample_categorical(const Tensor& logits, double temperature) {
  if (!logits.defined() || logits.dim() < 1 || logits.dim() > 2 || !is_floating(logits.dtype()))
    throw Error("sample_categorical: expected floating-point logits of shape (C) or (B, C), got " +
                (logits.defined() ? shape_str(logits.shape()) + " " + std::string(dtype_name(logits.dtype()))
                                  : std::string("an undefined tensor")));
  if (!(temperature > 0.0) || !std::isfinite(temperature))
    throw Error(fmt::format("sample_categorical: temperature must be a positive number, got {}", temperature));
  NoGradGuard no_grad;
  const Tensor rows = logits.dim() == 1 ? unsqueeze(logits, 0) : logits;
  const std::int64_t B = rows.size(0), C = rows.size(1);
  if (C == 0) throw Error("sample_categorical: no classes to draw from");
  const std::vector<double> z = rows.to(DType::f64).to_vector<double>();
  const std::vector<double> u = rand({B}, DType::f64).to_vector<double>();
  std::vector<std::int64_t> out(static_cast<std::size_t>(B));
  std::vector<double> cumulative(static_cast<std::size_t>(C));
  for (std::int64_t b = 0; b < B; ++b) {
    const double* row = z.data() + b * C;
    for (std::int64_t c = 0; c < C; ++c)
      if (std::isnan(row[c])) throw Error(fmt::format("sample_categorical: row {} of the logits holds NaN", b));
    const double top = *std::max_element(row, row + C);
    if (top == -INFINITY) throw Error(fmt::format("sample_categorical: every logit of row {} is -inf", b));
    double total = 0.0;
    for (std::int64_t c = 0; c < C; ++c) cumulative[static_cast<std::size_t>(c)] = total += std::exp((row[c] - top) / temperature);
    const double target = u[static_cast<std::size_t>(b)] * total;
    const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), target);
    out[static_cast<std::size_t>(b)] = std::min<std::int64_t>(it - cumulative.begin(), C - 1);
  }
  const Tensor ids = from_vector(out, {B});
  return logits.dim() == 1 ? squeeze(ids, 0) : ids;
}

}  // namespace xgrad::train

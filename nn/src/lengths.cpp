// Lengths: the valid lengths of a padded batch and the side of its padding.
#include <xgrad/nn/lengths.hpp>

#include <cmath>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad::nn {

Lengths::Lengths(const Tensor& lengths, Side padding)
    : given_(lengths.defined()), padding_(padding), source_(lengths) {
  if (!lengths.defined()) return;
  if (lengths.dim() != 1)
    throw Error("lengths: expected a 1-D tensor (one length per sequence), got shape " + shape_str(lengths.shape()));
  if (lengths.dtype() == DType::i64) {
    values_ = lengths.to_vector<std::int64_t>();
    return;
  }
  if (!is_floating(lengths.dtype()))
    throw Error(fmt::format("lengths: expected an int64 tensor, got {}", dtype_name(lengths.dtype())));
  for (double v : lengths.to_vector<double>()) {
    // Whole and within int64 (NaN fails the first test, ±Inf and 1e30 the second).
    if (v != std::floor(v) || !(std::abs(v) < 9.2e18)) throw Error(fmt::format("lengths: {} is not a whole number", v));
    values_.push_back(static_cast<std::int64_t>(v));
  }
}

Lengths::Lengths(std::vector<std::int64_t> lengths, Side padding)
    : values_(std::move(lengths)), given_(true), padding_(padding) {}

std::int64_t Lengths::first_step(std::int64_t b, std::int64_t steps) const {
  return padding_ == Side::post ? 0 : steps - values_[static_cast<std::size_t>(b)];
}

Lengths Lengths::select(const std::vector<std::int64_t>& indices) const {
  if (!given_) return {};
  std::vector<std::int64_t> out;
  out.reserve(indices.size());
  for (std::int64_t i : indices) {
    if (i < 0 || i >= size())
      throw Error(fmt::format("lengths: sequence {} is outside the {} given", i, size()));
    out.push_back(values_[static_cast<std::size_t>(i)]);
  }
  return Lengths(std::move(out), padding_);
}

Tensor Lengths::tensor() const { return given_ ? from_vector(values_, {size()}) : Tensor(); }

Tensor Lengths::padding_mask(std::int64_t steps) const {
  if (!given_) throw Error("lengths: padding_mask needs lengths (none were given)");
  check("lengths: padding_mask", size(), steps);
  std::vector<bool> pad(static_cast<std::size_t>(size() * steps), true);
  for (std::int64_t b = 0; b < size(); ++b) {
    const std::int64_t first = first_step(b, steps);
    for (std::int64_t t = first; t < first + values_[static_cast<std::size_t>(b)]; ++t)
      pad[static_cast<std::size_t>(b * steps + t)] = false;
  }
  return from_vector(pad, {size(), steps});
}

void Lengths::check(const char* what, std::int64_t batch, std::int64_t steps, std::int64_t min_length) const {
  if (size() != batch)
    throw Error(fmt::format("{}: got {} lengths for a batch of {} sequences", what, size(), batch));
  for (std::size_t b = 0; b < values_.size(); ++b)
    if (values_[b] < min_length || values_[b] > steps)
      throw Error(fmt::format("{}: length {} of sequence {} is outside [{}, {}] (the input has {} steps)", what,
                              values_[b], b, min_length, steps, steps));
}

}  // namespace xgrad::nn

/// Fuzz target: `train::pad_sequences`, `train::sequence_lengths` and a `DataLoader` over the
/// padded ids, on random sequences, maxlen (small, negative or near the int64 limit), sides,
/// pad values, batch sizes, shuffling, drop_last and trimming. Each result that loads is
/// checked against a plain reference of the same rules; any mismatch aborts (a finding).
///
/// Input bytes, read in order (missing bytes read as 0): the sequence count (byte % 9), each
/// sequence's length (byte % 13) and ids (int8 each), a maxlen selector and its bytes, the
/// sides, the pad value (int8 or an extreme), the batch size selector, and the loader flags.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/train/loader.hpp>

#include "fuzz_target.hpp"

namespace {

using Rows = std::vector<std::vector<std::int64_t>>;
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min(), kMax = std::numeric_limits<std::int64_t>::max();

struct Reader {
  const std::uint8_t* data;
  std::size_t size, at = 0;
  std::uint8_t byte() { return at < size ? data[at++] : 0; }
  std::int64_t int64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | byte();
    return static_cast<std::int64_t>(v);
  }
};

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_padding: %s\n", what);
  std::abort();
}

// A maxlen: mostly small (what training uses), sometimes negative or huge (which must be
// refused or fail to allocate with an xgrad::Error, never wrap).
std::int64_t read_maxlen(Reader& in) {
  switch (in.byte() % 8) {
    case 0: return 0;
    case 1: return -static_cast<std::int64_t>(in.byte()) - 1;
    case 2: return kMax - in.byte();
    case 3: return kMin + in.byte();
    case 4: return (std::int64_t{1} << (45 + in.byte() % 18)) + in.byte();  // >= 2^45: no memory holds it
    default: return in.byte() % 20;
  }
}

std::int64_t read_value(Reader& in) {
  switch (in.byte() % 6) {
    case 0: return kMin;
    case 1: return kMax;
    default: return static_cast<std::int8_t>(in.byte());
  }
}

std::int64_t read_batch_size(Reader& in) {
  switch (in.byte() % 6) {
    case 0: return -static_cast<std::int64_t>(in.byte());  // 0 or negative: refused
    case 1: return kMax - in.byte();
    default: return in.byte() % 10 + 1;
  }
}

// pad_sequences' rules, written out plainly.
Rows reference_pad(const Rows& seqs, std::int64_t maxlen, bool pad_pre, bool trunc_pre, std::int64_t value) {
  std::int64_t T = maxlen;
  if (T == 0)
    for (const auto& s : seqs) T = std::max<std::int64_t>(T, static_cast<std::int64_t>(s.size()));
  Rows out;
  for (const auto& s : seqs) {
    std::vector<std::int64_t> kept = s;
    if (static_cast<std::int64_t>(kept.size()) > T)
      kept = trunc_pre ? std::vector<std::int64_t>(s.end() - T, s.end()) : std::vector<std::int64_t>(s.begin(), s.begin() + T);
    std::vector<std::int64_t> row(static_cast<std::size_t>(T) - kept.size(), value);
    row.insert(pad_pre ? row.end() : row.begin(), kept.begin(), kept.end());
    out.push_back(row);
  }
  return out;
}

// Checks every batch of two epochs against the dataset: each sample once per epoch (all of
// them unless drop_last), batches no larger than batch_size, inputs the samples' rows, lengths
// the samples' lengths, and trimmed to the longest of them.
void check_loader(const xgrad::train::DataLoader& loader, const Rows& padded, const std::vector<std::int64_t>& lengths,
                  bool pad_pre) {
  const auto n = static_cast<std::int64_t>(padded.size());
  const xgrad::train::LoaderOptions& o = loader.options();
  for (std::int64_t e = 0; e < 2; ++e) {
    std::vector<int> seen(padded.size(), 0);
    std::int64_t batches = 0;
    for (const xgrad::train::Batch& b : loader.epoch(e)) {
      ++batches;
      if (b.size() == 0 || b.size() > o.batch_size()) finding("a batch is empty or larger than batch_size");
      if (o.drop_last() && b.size() != o.batch_size()) finding("drop_last kept a short batch");
      std::int64_t longest = 0;
      for (std::int64_t i : b.indices) {
        if (i < 0 || i >= n) finding("a batch index is outside the dataset");
        ++seen[static_cast<std::size_t>(i)];
        longest = std::max(longest, lengths[static_cast<std::size_t>(i)]);
      }
      const std::int64_t T = padded.empty() ? 0 : static_cast<std::int64_t>(padded[0].size());
      const std::int64_t width = o.trim() ? std::min(T, std::max<std::int64_t>(1, longest)) : T;
      if (b.inputs.dim() != 2 || b.inputs.size(0) != b.size() || b.inputs.size(1) != width) finding("a batch has the wrong shape");
      const std::vector<std::int64_t> ids = b.inputs.contiguous().to_vector<std::int64_t>();
      for (std::size_t r = 0; r < b.indices.size(); ++r) {
        const auto& row = padded[static_cast<std::size_t>(b.indices[r])];
        // Trimming keeps the first columns of post-padded rows, the last of pre-padded ones.
        const auto kept = pad_pre ? row.end() - width : row.begin();
        if (!std::equal(kept, kept + width, ids.begin() + static_cast<std::ptrdiff_t>(r) * width))
          finding("a batch row is not its sample's ids");
        if (b.lengths.values()[r] != lengths[static_cast<std::size_t>(b.indices[r])]) finding("a batch length is wrong");
        if ((b.lengths.padding() == xgrad::nn::Side::pre) != pad_pre) finding("a batch's lengths lost the padding side");
        if (b.targets.to_vector<std::int64_t>()[r] != b.indices[r]) finding("a batch target is not its sample's");
      }
    }
    if (batches != loader.num_batches()) finding("num_batches differs from the batches of an epoch");
    const std::int64_t expected_batches = o.drop_last() ? n / o.batch_size() : n / o.batch_size() + (n % o.batch_size() != 0);
    if (batches != expected_batches) finding("the batch count is not ceil (or floor, with drop_last) of n / batch_size");
    for (int count : seen)
      if (count > 1 || (!o.drop_last() && count != 1)) finding("a sample appears twice, or never, in an epoch");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace xgrad;
  Reader in{data, size};
  Rows seqs(in.byte() % 9);
  for (auto& s : seqs) {
    s.resize(in.byte() % 13);
    for (auto& id : s) id = static_cast<std::int8_t>(in.byte());
  }
  const std::int64_t maxlen = read_maxlen(in);
  const std::uint8_t sides = in.byte();
  const bool pad_pre = sides & 1, trunc_pre = sides & 2;
  const std::int64_t value = read_value(in);
  const auto options = train::PadOptions()
                           .maxlen(maxlen)
                           .padding(pad_pre ? train::Side::pre : train::Side::post)
                           .truncating(trunc_pre ? train::Side::pre : train::Side::post)
                           .value(value);

  std::vector<std::int64_t> lengths;
  bool have_lengths = false;
  fuzz::expect_xgrad_errors_only("sequence_lengths", [&] {
    const nn::Lengths got = train::sequence_lengths(seqs, options);
    if (got.padding() != options.padding()) finding("sequence_lengths lost the padding side");
    lengths = got.values();
    have_lengths = true;
  });
  if (have_lengths != (maxlen >= 0)) finding("sequence_lengths accepts a maxlen iff it is >= 0: it did not");
  Tensor ids;
  fuzz::expect_xgrad_errors_only("pad_sequences", [&] {
    nn::PaddedSequences padded = train::pad_sequences(seqs, options);
    if (padded.lengths.values() != lengths || padded.lengths.padding() != options.padding())
      finding("pad_sequences' lengths differ from sequence_lengths'");
    ids = padded.padded;
  });
  if (maxlen < 0 && ids.defined()) finding("pad_sequences accepted a negative maxlen");
  if (!ids.defined()) return 0;
  if (!have_lengths) finding("pad_sequences accepted a maxlen that sequence_lengths refused");
  const std::int64_t T = ids.size(1);
  if (T > 64) {
    // Only a huge maxlen over no sequences allocates nothing; anything else that large must fail.
    if (!seqs.empty()) finding("pad_sequences returned an impossibly large tensor");
    return 0;
  }
  const Rows expected = reference_pad(seqs, maxlen, pad_pre, trunc_pre, value);
  if (ids.dtype() != DType::i64 || ids.dim() != 2 || ids.size(0) != static_cast<std::int64_t>(seqs.size()))
    finding("pad_sequences returned the wrong shape or dtype");
  const std::vector<std::int64_t> flat = ids.to_vector<std::int64_t>();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (static_cast<std::int64_t>(expected[i].size()) != T) finding("pad_sequences' row length differs from the reference");
    if (!std::equal(expected[i].begin(), expected[i].end(), flat.begin() + static_cast<std::ptrdiff_t>(i) * T))
      finding("pad_sequences differs from the reference");
  }
  for (std::size_t i = 0; i < seqs.size(); ++i)
    if (lengths[i] != std::min<std::int64_t>(static_cast<std::int64_t>(seqs[i].size()), T))
      finding("sequence_lengths is not min(size, maxlen)");

  // A loader over the padded ids, with the sequences' lengths and their indices as targets.
  if (seqs.empty() || T == 0) return 0;  // a dataset needs samples, and lengths a time dimension
  const std::int64_t batch_size = read_batch_size(in);
  const std::uint8_t flags = in.byte();
  const auto loader_options = train::LoaderOptions()
                                  .batch_size(batch_size)
                                  .shuffle(flags & 1)
                                  .seed(in.byte())
                                  .drop_last(flags & 2)
                                  .trim(flags & 4);
  std::vector<std::int64_t> order(seqs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int64_t>(i);
  const Tensor targets = from_vector(order, {static_cast<std::int64_t>(order.size())});
  fuzz::expect_xgrad_errors_only("DataLoader", [&] {
    const train::DataLoader loader(train::TensorDataset(ids, targets, nn::Lengths(lengths, options.padding())),
                                   loader_options);
    if (batch_size <= 0) finding("DataLoader accepted a batch size <= 0");
    check_loader(loader, expected, lengths, pad_pre);
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  auto write = [&](const char* name, const std::vector<std::uint8_t>& bytes) {
    std::ofstream(dir + "/" + name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                             static_cast<std::streamsize>(bytes.size()));
  };
  // 3 sequences (1, 2, 3 ids), maxlen selector 5 → 2, both sides pre, value 0; batch 2, shuffled.
  write("keras_example", {3, 1, 1, 2, 2, 3, 3, 4, 5, 6, 5, 2, 3, 2, 0, 2, 1, 1, 7});
  // Post padding and truncating, the longest length, pad value -1, batch 1, drop_last, trim.
  write("post_longest", {4, 0, 3, 9, 8, 7, 1, 5, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 2, 255, 2, 0, 6, 0});
  // A maxlen near INT64_MAX, and one of 2^45: errors, not crashes.
  write("huge_maxlen", {2, 1, 1, 1, 2, 2, 0});
  write("unallocatable_maxlen", {1, 3, 1, 2, 3, 4, 0, 0, 0, 2});
  // A negative maxlen: both functions refuse it.
  write("negative_maxlen", {2, 1, 1, 1, 2, 1, 4});
  // No sequences and a huge maxlen: an empty (0, maxlen) tensor.
  write("no_sequences", {0, 2, 0});
  // A batch size near INT64_MAX: one batch holding every sample.
  write("huge_batch", {5, 1, 1, 1, 2, 1, 3, 1, 4, 1, 5, 0, 1, 2, 1, 1, 0, 7, 1});
}

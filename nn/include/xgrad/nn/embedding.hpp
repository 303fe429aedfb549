#pragma once
/// \file
/// Embedding: a lookup table of vectors indexed by i64 ids.
#include <cstdint>
#include <optional>
#include <string>

#include <xgrad/core/options.hpp>
#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Options of Embedding: the table size is required, padding_idx optional.
/// Example: `nn::Embedding emb(nn::EmbeddingOptions(100, 16).padding_idx(0));`
struct EmbeddingOptions {
  /// A table of `num_embeddings` vectors of `embedding_dim` elements.
  EmbeddingOptions(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  /// Number of rows (ids 0 … num_embeddings-1).
  XGRAD_ARG(std::int64_t, num_embeddings);
  /// Length of each vector.
  XGRAD_ARG(std::int64_t, embedding_dim);
  /// The row for this id starts at zero and never receives a gradient (negative counts
  /// from the end, as PyTorch).
  XGRAD_ARG(std::optional<std::int64_t>, padding_idx);
};

/// Maps i64 ids of any shape (...) to vectors: (...) → (..., embedding_dim).
///
/// Parameter `weight` (num_embeddings, embedding_dim), initialised N(0, 1) with the
/// padding_idx row zeroed, as PyTorch. The padding row receives no gradient; its output is
/// whatever the row holds.
///
/// Example:
///
///     nn::Embedding emb(nn::EmbeddingOptions(100, 16).padding_idx(0));
///     Tensor v = emb(tensor({3, 0, 7}, DType::i64));   // (3, 16); row 1 is zeros
class Embedding : public UnaryModule {
 public:
  /// A table as `options` describe, initialised N(0, 1) with the padding row zeroed.
  explicit Embedding(const EmbeddingOptions& options);
  /// A table of `num_embeddings` vectors of `embedding_dim`, without padding_idx.
  Embedding(std::int64_t num_embeddings, std::int64_t embedding_dim)
      : Embedding(EmbeddingOptions(num_embeddings, embedding_dim)) {}

  /// ids (...) of dtype i64 → (..., embedding_dim). Throws for an id out of range.
  Tensor forward(const Tensor& ids) override;
  /// Draws N(0, 1) again and zeroes the padding row.
  void reset_parameters();
  std::string extra_repr() const override;
  /// The options, padding_idx normalised to [0, num_embeddings).
  const EmbeddingOptions& options() const { return options_; }

  Tensor weight;  ///< (num_embeddings, embedding_dim)

 private:
  EmbeddingOptions options_;  // padding_idx normalised to [0, num_embeddings)
};

}  // namespace xgrad::nn

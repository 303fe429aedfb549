#include <xgrad/nn/embedding.hpp>

#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/nn/init.hpp>

namespace xgrad::nn {

Embedding::Embedding(const EmbeddingOptions& options) : options_(options) {
  const std::int64_t n = options.num_embeddings(), d = options.embedding_dim();
  if (n < 0 || d < 0)
    throw Error("Embedding: sizes must be non-negative, got num_embeddings=" + std::to_string(n) +
                ", embedding_dim=" + std::to_string(d));
  if (auto p = options.padding_idx()) {
    if (*p >= n || *p < -n)
      throw Error("Embedding: padding_idx " + std::to_string(*p) + " must be within num_embeddings " + std::to_string(n));
    options_.padding_idx(*p < 0 ? *p + n : *p);
  }
  weight = register_parameter("weight", empty({n, d}));
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (auto p = options_.padding_idx()) {
    NoGradGuard no_grad;
    weight.select(0, *p).zero_();  // a view: the write reaches the weight
  }
}

Tensor Embedding::forward(const Tensor& ids) {
  if (!ids.defined() || ids.dtype() != DType::i64)
    throw Error("Embedding: ids must be int64, got " +
                (ids.defined() ? std::string(dtype_name(ids.dtype())) : std::string("an undefined tensor")));
  Shape out_shape = ids.shape();
  out_shape.push_back(options_.embedding_dim());
  Tensor rows = index_select(weight, 0, ids.reshape({-1}));  // (n_ids, D)
  if (auto p = options_.padding_idx()) {
    // Padding positions take the row's value from a detached copy, so no gradient reaches it.
    Tensor is_pad = eq(ids.reshape({-1, 1}), full({}, static_cast<double>(*p), DType::i64));  // (n_ids, 1)
    rows = where(is_pad, weight.detach().select(0, *p), rows);
  }
  return rows.reshape(out_shape);
}

std::string Embedding::extra_repr() const {
  std::string s = std::to_string(options_.num_embeddings()) + ", " + std::to_string(options_.embedding_dim());
  if (auto p = options_.padding_idx()) s += ", padding_idx=" + std::to_string(*p);
  return s;
}

}  // namespace xgrad::nn

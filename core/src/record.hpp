#pragma once
// Private to core: recording. How an op enters the graph: core's own forms of record_op
// (which take the tensors backward reads, so only those are version-checked), the TensorList
// that passes inputs without copying handles, and grad mode as core's own code sees it
// (any_requires_grad, EnableGradGuard). The public record_op (extension.hpp) and these share
// one implementation, record.cpp.
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "node.hpp"

namespace xgrad {

// The inputs (or saved tensors) of an op being recorded, as a braced list or a vector, copying
// neither: a braced std::initializer_list<Tensor> copied every handle (two atomic operations
// each, four to six per op).
class TensorList {
 public:
  struct Ref {
    Ref(const Tensor& t) : tensor(&t) {}
    const Tensor* tensor;
  };
  TensorList() = default;
  // A view, like std::span: only ever a parameter, so the braced list's array (which lives to
  // the end of the caller's full-expression) outlives it. GCC warns on any such capture.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
#endif
  TensorList(std::initializer_list<Ref> refs) : refs_(refs.begin()), size_(refs.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  TensorList(const std::vector<Tensor>& tensors) : tensors_(tensors.data()), size_(tensors.size()) {}
  TensorList(std::span<const Tensor> tensors) : tensors_(tensors.data()), size_(tensors.size()) {}

  std::size_t size() const { return size_; }
  const Tensor& operator[](std::size_t i) const { return refs_ ? *refs_[i].tensor : tensors_[i]; }
  struct Iterator {
    const TensorList* list;
    std::size_t i;
    const Tensor& operator*() const { return (*list)[i]; }
    Iterator& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return i != other.i; }
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, size_}; }

 private:
  const Ref* refs_ = nullptr;
  const Tensor* tensors_ = nullptr;
  std::size_t size_ = 0;
};

// Core's own forms of record_op take the tensors backward reads (`saved`, the tensors its
// closure captured; undefined ones are skipped): only they are version-checked, as PyTorch
// checks only what an op saved. The public record_op checks every input and output.
Tensor record_unary(std::string name, TensorList inputs, Tensor output, UnaryBackwardFn backward, TensorList saved);
// A template so that a closure matches it exactly, ahead of the public overload taking a
// std::function (the braced lists convert equally well to either).
template <class F>
Tensor record_op(std::string name, TensorList inputs, Tensor output, F&& backward, TensorList saved) {
  return record_unary(std::move(name), inputs, std::move(output), UnaryBackwardFn(std::forward<F>(backward)), saved);
}
std::vector<Tensor> record_op(std::string name, TensorList inputs, std::vector<Tensor> outputs,
                              BackwardFn backward, std::initializer_list<Tensor> saved);
// record_op for a single-output op with a SinkBackwardFn (core's GEMM ops).
Tensor record_op_into(std::string name, TensorList inputs, Tensor output, SinkBackwardFn backward, TensorList saved);

// Turns grad mode on for its lifetime (core's own graph surgery runs under it).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

// True when an op on these inputs must be recorded.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

}  // namespace xgrad

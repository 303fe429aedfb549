#pragma once
/// \file Tensor: a cheap value handle to shared storage plus its autograd metadata.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/dtype.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

class TensorImpl;

/// An n-dimensional array of `f32`, `f64`, `i64` or `b8` elements, stored contiguously in
/// row-major order, that records the operations applied to it when it requires grad.
///
/// Copies alias: `Tensor b = a;` refers to the same data and the same gradient, as in
/// PyTorch. `clone()` copies the data; `detach()` shares the data but leaves the graph.
///
/// Example:
///     Tensor w = randn({3, 4}).requires_grad_();
///     Tensor loss = tanh(matmul(randn({5, 3}), w)).sum();
///     loss.backward();               // w.grad() now holds d loss / d w, shape (3, 4)
class Tensor {
 public:
  /// An undefined tensor (no data); `defined()` is false.
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  /// Extent of dimension `d`; negative `d` counts from the end.
  std::int64_t size(std::int64_t d) const;
  std::int64_t dim() const;
  std::int64_t numel() const;
  DType dtype() const;

  // --- element access -----------------------------------------------------------------
  /// The value of a one-element tensor, converted to double.
  double item() const;
  /// The value of a one-element tensor, converted to T (float, double, int64_t, int or
  /// bool) directly from the stored type, so large int64 values stay exact.
  template <class T>
  T item() const;
  /// The element at a full index (negative entries count from the end), as double.
  double at(const std::vector<std::int64_t>& index) const;
  /// All elements in row-major order, converted to T (float, double, int64_t or bool).
  template <class T>
  std::vector<T> to_vector() const;
  /// Raw pointer to the contiguous elements; throws unless T matches dtype().
  template <class T>
  T* data();
  template <class T>
  const T* data() const;

  // --- copies and conversions ---------------------------------------------------------
  /// A new tensor with its own copy of the data; differentiable.
  Tensor clone() const;
  /// The same data, cut out of the graph: no grad_fn, requires_grad false.
  Tensor detach() const;
  /// Converts to another dtype (differentiable between f32 and f64).
  Tensor to(DType dtype) const;
  /// Tensors are always contiguous; returns *this. Kept for PyTorch familiarity.
  Tensor contiguous() const { return *this; }

  // --- autograd ------------------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf tensor as a parameter whose gradient is accumulated in `grad()`.
  /// Only floating-point tensors can require grad. Returns *this for chaining.
  Tensor& requires_grad_(bool requires_grad = true);
  /// True for tensors created by the user rather than by a recorded op.
  bool is_leaf() const;
  /// The accumulated gradient (undefined until a backward pass reaches this tensor).
  Tensor grad() const;
  /// Replaces the gradient (undefined clears it). Shape and dtype must match.
  void set_grad(const Tensor& grad);
  /// Clears the gradient: undefined if `set_to_none`, else filled with zeros.
  void zero_grad(bool set_to_none = true);
  /// Name of the op that produced this tensor ("mul", "matmul", ...); "" for leaves.
  std::string grad_fn_name() const;
  /// Reverse-mode differentiation from this tensor. `seed` is d(something)/d(this); it may be
  /// omitted for one-element tensors (taken as 1). Gradients accumulate into the `grad()` of
  /// every leaf that requires grad. The graph is freed unless `retain_graph`.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;

  // --- in-place updates (for optimizers; not recorded in the graph) --------------------
  // They throw when grad mode is on and the tensor requires grad: wrap them in NoGradGuard.
  /// this += alpha * other (other broadcast to this shape).
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  /// this *= other (broadcast).
  Tensor& mul_(const Tensor& other);
  /// this *= value.
  Tensor& mul_(double value);
  /// Copies other's values (broadcast, converted to this dtype).
  Tensor& copy_(const Tensor& other);
  /// Sets every element to value.
  Tensor& fill_(double value);
  /// Makes this handle (and every copy of it) refer to `source`'s data, shape and dtype,
  /// keeping its identity, requires_grad and registration (as PyTorch's `p.data = source`).
  /// Used by Module::to(dtype) and load_state_dict. Only for leaves; drops the gradient.
  void set_data(const Tensor& source);
  Tensor& zero_() { return fill_(0.0); }

  // --- method forms of common ops (see ops.hpp for the documentation) ------------------
  Tensor sum() const;
  Tensor sum(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const { return reshape(shape); }
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor squeeze(std::int64_t dim) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;
  Tensor permute(const std::vector<std::int64_t>& dims) const;
  Tensor expand(const Shape& shape) const;
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  Tensor select(std::int64_t dim, std::int64_t index) const;
  Tensor index_select(std::int64_t dim, const Tensor& index) const;
  Tensor gather(std::int64_t dim, const Tensor& index) const;
  std::vector<Tensor> chunk(std::int64_t chunks, std::int64_t dim = 0) const;
  std::vector<Tensor> split(std::int64_t split_size, std::int64_t dim = 0) const;
  std::vector<Tensor> unbind(std::int64_t dim = 0) const;
  Tensor masked_fill(const Tensor& mask, double value) const;
  Tensor matmul(const Tensor& other) const;
  Tensor pow(double exponent) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor sigmoid() const;
  Tensor tanh() const;
  Tensor relu() const;
  Tensor softmax(std::int64_t dim) const;
  Tensor log_softmax(std::int64_t dim) const;
  Tensor argmax(std::int64_t dim, bool keepdim = false) const;

  /// Shared implementation (for core internals and the extension API).
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace xgrad

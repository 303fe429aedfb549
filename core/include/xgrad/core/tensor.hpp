#pragma once
/// \file
/// Tensor: a cheap value handle to shared storage plus its autograd metadata.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <xgrad/core/dtype.hpp>
#include <xgrad/core/error.hpp>

namespace xgrad {

class TensorImpl;
struct HookList;

/// Returned by Tensor::register_hook; `remove()` unregisters the hook.
class HookHandle {
 public:
  /// A handle to no hook; `remove()` does nothing.
  HookHandle() = default;
  /// The handle of hook `id` in `list` (made by register_hook, not by users).
  HookHandle(std::weak_ptr<HookList> list, std::uint64_t id) : list_(std::move(list)), id_(id) {}
  /// Unregisters the hook; a no-op when it was removed already or its tensor is gone.
  void remove();

 private:
  std::weak_ptr<HookList> list_;
  std::uint64_t id_ = 0;
};

/// An n-dimensional array of `f32`, `f64`, `i64` or `b8` elements, as PyTorch's: a storage
/// (the bytes), an offset into it, sizes and strides. View ops (reshape where the strides
/// allow, view, narrow, slice, select, transpose, permute, t, expand, squeeze, unsqueeze,
/// unbind, chunk, split, flatten) return tensors that share their input's storage, so a write
/// through a view reaches the base. Every write bumps the storage's version counter, and
/// backward refuses a tensor it saved that was modified since (its gradient would be wrong).
///
/// Copies alias: `Tensor b = a;` refers to the same data and the same gradient, as in
/// PyTorch. `clone()` copies the data; `detach()` shares the data but leaves the graph.
///
/// Example:
///
///     Tensor w = randn({3, 4}).requires_grad_();
///     Tensor loss = tanh(matmul(randn({5, 3}), w)).sum();
///     loss.backward();               // w.grad() now holds d loss / d w, shape (3, 4)
class Tensor {
 public:
  /// An undefined tensor (no data); `defined()` is false.
  Tensor() = default;
  /// A handle to `impl` (for core internals and the extension API).
  explicit Tensor(std::shared_ptr<TensorImpl> impl);

  /// False for a default-constructed tensor, which has no data, shape or dtype.
  bool defined() const { return impl_ != nullptr; }
  /// The extent of every dimension, outermost first; {} for a 0-d tensor.
  const Shape& shape() const;
  /// Extent of dimension `d`; negative `d` counts from the end.
  std::int64_t size(std::int64_t d) const;
  /// The number of dimensions (0 for a scalar).
  std::int64_t dim() const;
  /// The number of elements, the product of shape() (1 for a 0-d tensor).
  std::int64_t numel() const;
  /// The element type.
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
  /// The first element, for reading; throws unless T matches dtype() and the tensor is
  /// contiguous (call contiguous() first: a strided tensor's elements are not consecutive).
  template <class T>
  const T* data() const;
  /// The first element, for writing: as data(), and bumps the storage's version counter, so
  /// backward refuses a graph that saved this tensor before the write.
  template <class T>
  T* mutable_data();

  // --- layout --------------------------------------------------------------------------
  /// Elements to step in the storage per index of each dimension.
  const std::vector<std::int64_t>& strides() const;
  /// strides() of dimension `d`; negative `d` counts from the end.
  std::int64_t stride(std::int64_t d) const;
  /// Position of the first element in the storage, in elements.
  std::int64_t storage_offset() const;
  /// True when the elements are dense and in row-major order (extent-1 dims ignored).
  bool is_contiguous() const;
  /// True when this tensor was made by a view op and shares its base's storage.
  bool is_view() const;
  /// True when both tensors use one storage (a view and its base, two views of one base).
  bool shares_storage(const Tensor& other) const;
  /// The storage's version counter: how many writes it has seen.
  std::uint64_t version() const;

  // --- copies and conversions ---------------------------------------------------------
  /// A new tensor with its own copy of the data; differentiable.
  Tensor clone() const;
  /// The same data, cut out of the graph: no grad_fn, requires_grad false.
  Tensor detach() const;
  /// Converts to another dtype (differentiable between f32 and f64).
  Tensor to(DType dtype) const;
  /// *this when contiguous, else a contiguous copy (differentiable, as clone()).
  Tensor contiguous() const;

  // --- autograd ------------------------------------------------------------------------
  /// True for a leaf marked with requires_grad_() and for any result of a recorded op.
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
  /// Keeps this non-leaf tensor's gradient in grad() after backward (leaves always keep it).
  void retain_grad();
  /// True after retain_grad() on a non-leaf tensor.
  bool retains_grad() const;
  /// Calls `hook(grad)` when this tensor's gradient is complete during backward, before it
  /// is used or accumulated; a defined return value replaces the gradient (same shape and
  /// dtype), an undefined one keeps it. On a leaf the hook sees the sum over all its uses.
  /// Example: `w.register_hook([](const Tensor& g) { return clamp(g, -1.0, 1.0); });`
  HookHandle register_hook(std::function<Tensor(const Tensor& grad)> hook);
  /// Calls `hook(leaf)` each time a backward pass has finished accumulating this leaf's
  /// gradient into grad(), i.e. once its gradient for the pass is complete (PyTorch's
  /// `register_post_accumulate_grad_hook`). Leaves that require grad only. Data-parallel
  /// training starts a gradient's allreduce here, while backward goes on.
  HookHandle register_post_accumulate_grad_hook(std::function<void(const Tensor& leaf)> hook);
  /// Reverse-mode differentiation from this tensor. `seed` is d(something)/d(this); it may be
  /// omitted for one-element tensors (taken as 1). Gradients accumulate into the `grad()` of
  /// every leaf that requires grad. The graph is freed unless `retain_graph`.
  void backward(const Tensor& seed = Tensor(), bool retain_graph = false) const;

  // --- in-place updates -----------------------------------------------------------------
  // They write into this tensor's elements (through a view: into its base) and bump the
  // version counter. Under grad mode they are recorded as PyTorch's are: the tensor (and, for
  // a view, its base) takes the op's result as its new history. Refused, as in PyTorch: a
  // leaf that requires grad or a view of one (wrap optimizer-style updates in NoGradGuard), a
  // view from split/chunk/unbind or made under no-grad when grad is needed, and a tensor
  // whose elements overlap in memory or might (an expanded one, an as_strided view whose
  // strides are not provably disjoint); fill_ accepts those. An int64 tensor refuses a NaN,
  // infinite or out-of-range value.
  /// this += alpha * other (other broadcast to this shape).
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  /// this -= alpha * other.
  Tensor& sub_(const Tensor& other, double alpha = 1.0);
  /// this *= other (broadcast).
  Tensor& mul_(const Tensor& other);
  /// this *= value.
  Tensor& mul_(double value);
  /// this /= other (broadcast).
  Tensor& div_(const Tensor& other);
  /// this /= value.
  Tensor& div_(double value);
  /// Copies other's values (broadcast, converted to this dtype).
  Tensor& copy_(const Tensor& other);
  /// Sets every element to value.
  Tensor& fill_(double value);
  /// Sets every element to 0.
  Tensor& zero_() { return fill_(0.0); }
  /// Makes this handle (and every copy of it) refer to `source`'s data, shape and dtype,
  /// keeping its identity, requires_grad and registration (as PyTorch's `p.data = source`).
  /// Used by Module::to(dtype) and load_state_dict. Only for leaves; drops the gradient and
  /// bumps the old storage's version (graphs that saved the old data refuse backward).
  void set_data(const Tensor& source);

  // --- method forms of common ops (see ops.hpp for the documentation) ------------------
  /// `x.op(args...)` is the free function `op(x, args...)` of <xgrad/core/ops.hpp>, with the
  /// same shapes, views and gradient. Example: `Tensor y = x.reshape({B, -1}).relu().sum();`
  ///@{
  Tensor sum() const;
  Tensor sum(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<std::int64_t>& dims, bool keepdim = false) const;
  Tensor reshape(const Shape& shape) const;
  /// Same elements in a new shape, always sharing storage; throws where the strides do not
  /// allow it (reshape() copies instead).
  Tensor view(const Shape& shape) const;
  Tensor as_strided(const Shape& shape, const std::vector<std::int64_t>& strides, std::int64_t storage_offset) const;
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
  ///@}

  /// Shared implementation (for core internals and the extension API).
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace xgrad

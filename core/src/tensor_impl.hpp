#pragma once
// Private to core: the tensor. A Tensor handle points at a TensorImpl: a storage with offset,
// shape and strides (the geometry), and the autograd state a tensor carries (requires_grad,
// grad, grad_fn and output_nr, a leaf's hooks, and, for a view, its base). Everything that
// makes, reads or recycles a TensorImpl starts here; the node its grad_fn points at is in
// node.hpp, the views' autograd in views.hpp, and strided access to its elements in
// strided.hpp.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <xgrad/core/tensor.hpp>

#include "storage.hpp"

namespace xgrad {

class Node;
struct HookList;

// How a view relates to its base, for autograd (PyTorch's CreationMeta).
enum class ViewKind : std::uint8_t {
  differentiable,  // made in grad mode by a single-output view op
  multi_output,    // one of several views returned by split / chunk / unbind
  no_grad,         // made while grad mode was off
};

// The row-major strides of a shape, in elements.
Shape contiguous_strides(const Shape& shape);
// The same, into `strides` (reusing its capacity).
void contiguous_strides(const Shape& shape, Shape& strides);

class TensorImpl {
 public:
  // A contiguous tensor over the whole of `storage`.
  TensorImpl(std::shared_ptr<Storage> storage, Shape shape, DType dtype)
      : storage(std::move(storage)), shape(std::move(shape)), dtype(dtype),
        numel(shape_numel(this->shape)), strides(contiguous_strides(this->shape)) {}
  // Any geometry over `storage` (a view); the caller has checked the bounds.
  TensorImpl(std::shared_ptr<Storage> storage, Shape shape, Shape strides, std::int64_t offset, DType dtype)
      : storage(std::move(storage)), shape(std::move(shape)), dtype(dtype), numel(shape_numel(this->shape)),
        strides(std::move(strides)), offset(offset) {
    update_contiguous();
  }

  // The first element, for kernels that read or write densely: throws unless contiguous
  // (a kernel that forgot to call dense() fails loudly instead of reading the wrong elements).
  template <class T>
  T* data() const {
    if (!contiguous) not_contiguous();
    return reinterpret_cast<T*>(storage->data) + offset;
  }
  // The first element, whatever the layout (strided kernels).
  template <class T>
  T* raw() const { return reinterpret_cast<T*>(storage->data) + offset; }
  std::byte* raw_bytes() const { return storage->data + offset * static_cast<std::int64_t>(dtype_size(dtype)); }

  void update_contiguous();
  [[noreturn]] void not_contiguous() const;

  // Back to a blank tensor, keeping the capacity of shape and strides, for new_impl's cache.
  // Releases everything the tensor held (which may free a graph). A field added to TensorImpl
  // must be reset here too.
  void reset_for_reuse() {
    storage.reset();
    grad_fn.reset();
    output_nr = 0;
    requires_grad = false;
    grad = Tensor();
    hooks.reset();
    view_base.reset();
    view_kind = ViewKind::differentiable;
    view_version = 0;
  }

  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype;
  std::int64_t numel;
  Shape strides;             // in elements, one per dimension
  std::int64_t offset = 0;   // of the first element, in elements of the storage
  bool contiguous = true;    // row-major and dense (extent-1 dimensions' strides ignored)

  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::uint32_t output_nr = 0;    // which output of grad_fn this is
  Tensor grad;
  std::shared_ptr<HookList> hooks;  // a leaf's hooks (a non-leaf's live on its grad_fn)

  // Set when this tensor is a view: the tensor at the root of the chain of views (never a
  // view itself), how this view was made, and the storage version its grad_fn belongs to.
  std::shared_ptr<TensorImpl> view_base;
  ViewKind view_kind = ViewKind::differentiable;
  std::uint64_t view_version = 0;
};

// A new TensorImpl (no autograd state) over `storage`: contiguous with `shape`, or with any
// geometry (a view; the caller has checked the bounds). Taken from a per-thread cache of
// released ones when it can: their shape and strides keep their capacity, so the tensor
// costs no allocation (storage.cpp says why, beside the other pools).
std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype);
std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                                     std::int64_t offset, DType dtype);

// Shorthand used throughout core.
inline TensorImpl& impl_of(const Tensor& t) { return *t.impl(); }

// A new contiguous tensor with uninitialised data; `op` names the caller in errors.
Tensor make_empty(const Shape& shape, DType dtype, const char* op = "empty");

// True when nobody else can observe `t` and it owns its whole storage densely, so it may be
// updated in place (or kept as a leaf's gradient).
inline bool exclusively_owned(const Tensor& t) {
  const TensorImpl& im = impl_of(t);
  return t.impl().use_count() == 1 && im.storage.use_count() == 1 && im.contiguous &&
         static_cast<std::size_t>(im.numel) * dtype_size(im.dtype) == im.storage->nbytes;
}

}  // namespace xgrad

#pragma once
// Private to core: views and their autograd (PyTorch's model). A view shares its base's
// storage and remembers the base at the root of its chain; an in-place write through a view
// rewrites the base's history (copy_slices), and every other view of that base follows it
// lazily, the next time its grad_fn is read (sync_grad_fn). The geometry a view reads is
// strided.hpp's.
#include <cstdint>
#include <vector>

#include "record.hpp"

namespace xgrad {

// Brings a view's grad_fn up to date after an in-place write to its storage (the base's
// history was rewritten): the view becomes an as_strided view of its base's new history.
// Cheap when nothing changed; called wherever a tensor's grad_fn is about to be used.
void refresh_view(TensorImpl& t);
// refresh_view when due: after a write to the storage, or for a view made before its base
// required grad.
inline void sync_grad_fn(TensorImpl& t) {
  if (t.view_base && (t.view_version != t.storage->version || t.view_base->storage != t.storage ||
                      (!t.grad_fn && t.view_kind == ViewKind::differentiable && t.view_base->requires_grad)))
    refresh_view(t);
}

// After an in-place op wrote `result` (computed out of place, recorded) into `self`: self
// takes result's place in the graph; through a view, the base's history is rewritten
// (copy_slices) and the view becomes as_strided of the base's new history.
void rebase_history(const Tensor& self, const Tensor& result, const char* op);
// Throws (naming `op`) unless a write through the view `view` could rewrite its base's history:
// checked before the write, so a refused write changes nothing.
void check_rebase(const TensorImpl& view, const char* op);

// A view of `base` with the given geometry (offset and strides in elements of the storage),
// recorded in the graph under `name` with `backward`, and linked to base's root for autograd
// through in-place writes.
Tensor make_view(const Tensor& base, Shape shape, Shape strides, std::int64_t offset);
Tensor record_view(const char* name, const Tensor& base, Tensor view, UnaryBackwardFn backward);
std::vector<Tensor> record_views(const char* name, const Tensor& base, std::vector<Tensor> views, BackwardFn backward);

}  // namespace xgrad

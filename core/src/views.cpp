// Views with their autograd (PyTorch's model: a view shares its base's storage; an in-place
// write through a view rewrites the base's history, and other views of the base follow it
// lazily): make_view, as_strided, refresh_view and rebase_history.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <string>

#include "kernels.hpp"

namespace xgrad {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, std::int64_t offset) {
  const TensorImpl& b = impl_of(base);
  auto v = new_impl(b.storage, shape, strides, offset, b.dtype);
  v->view_base = b.view_base ? b.view_base : base.impl();
  v->view_kind = !is_grad_enabled() ? ViewKind::no_grad : b.view_base ? b.view_kind : ViewKind::differentiable;
  v->view_version = b.storage->version;
  return Tensor(std::move(v));
}

Tensor record_view(const char* name, const Tensor& base, Tensor view, UnaryBackwardFn backward) {
  if (!any_requires_grad({&base})) return view;
  return record_op(name, {base}, std::move(view), std::move(backward), {});
}

std::vector<Tensor> record_views(const char* name, const Tensor& base, std::vector<Tensor> views, BackwardFn backward) {
  if (is_grad_enabled())
    for (Tensor& v : views) impl_of(v).view_kind = ViewKind::multi_output;
  if (!any_requires_grad({&base})) return views;
  return record_op(name, {base}, std::move(views), std::move(backward), {});
}

namespace {
// The geometry of `view` inside a contiguous tensor shaped like its base (gradients of the
// base are made contiguous); autograd through in-place writes needs it.
struct RelativeGeometry {
  Shape strides;
  std::int64_t offset;
};
RelativeGeometry relative_to_base(const TensorImpl& base, const TensorImpl& view, const char* op) {
  if (!base.contiguous)
    throw Error(std::string(op) + ": autograd through a view of a non-contiguous tensor of shape " +
                shape_str(base.shape) + " (strides " + shape_str(base.strides) +
                ") is not supported; make the base contiguous() before taking the view");
  // Every element of the view must lie inside the base, or its gradient has nowhere to go.
  const Reach reach = geometry_reach(view.shape, view.strides, view.offset - base.offset, op);
  const std::int64_t lo = reach.lo, hi = reach.hi;
  if (view.storage != base.storage || (view.numel > 0 && (lo < 0 || hi >= base.numel)))
    throw Error(std::string(op) + ": a view of shape " + shape_str(view.shape) + " reaches outside the tensor of shape " +
                shape_str(base.shape) + " it is differentiated through; take it from that tensor's own elements");
  return {view.strides, view.offset - base.offset};
}

// A TensorImpl that looks at `geometry` inside `t`'s storage (t contiguous).
TensorImpl region_of(const Tensor& t, const Shape& shape, const RelativeGeometry& g) {
  const TensorImpl& im = impl_of(t);
  return TensorImpl(im.storage, shape, g.strides, im.offset + g.offset, im.dtype);
}

// Records `view = as_strided(base)`: its gradient lands in the view's elements of the base.
Tensor record_as_strided(const Tensor& base, Tensor view) {
  const RelativeGeometry geometry = relative_to_base(impl_of(base), impl_of(view), "as_strided");
  return record_op("as_strided", {base}, std::move(view),
                   [base_shape = base.shape(), geometry](const Tensor& g) {
                     return Grads{scatter_into_zeros(g, base_shape, geometry.strides, geometry.offset)};
                   },
                   {});
}

}  // namespace

Tensor as_strided(const Tensor& a, const Shape& shape, const Shape& strides, std::int64_t storage_offset) {
  require_defined(a, "as_strided");
  const TensorImpl& im = impl_of(a);
  if (shape.size() != strides.size())
    throw Error("as_strided: shape " + shape_str(shape) + " and strides " + shape_str(strides) +
                " have different lengths");
  check_shape(shape, "as_strided");
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (strides[i] < 0)
      throw Error("as_strided: negative stride in strides " + shape_str(strides) + " for shape " + shape_str(shape));
  const std::int64_t capacity = static_cast<std::int64_t>(im.storage->nbytes / dtype_size(im.dtype));
  const std::string where = "as_strided: shape " + shape_str(shape) + ", strides " + shape_str(strides) + " and offset " +
                            std::to_string(storage_offset);
  if (storage_offset < 0) throw Error(where + ": negative offset");
  // An empty view reads nothing, but its offset must still lie within the storage (PyTorch's rule).
  const bool empty = shape_numel(shape) == 0;
  if (empty && storage_offset > capacity)
    throw Error(where + " start past the end of a storage of " + std::to_string(capacity) + " elements");
  const Reach reach = geometry_reach(shape, strides, storage_offset, "as_strided");
  if (!empty && reach.hi >= capacity)
    throw Error(where + " reach element " + std::to_string(reach.hi) + " of a storage of " + std::to_string(capacity) +
                " elements");
  Tensor view = make_view(a, shape, strides, storage_offset);
  if (!any_requires_grad({&a})) return view;
  return record_as_strided(a, std::move(view));
}

namespace {
// retain_grad() follows the tensor when an in-place op gives it a new grad_fn, as in PyTorch.
void carry_retain(TensorImpl& t, const std::shared_ptr<Node>& old_fn, std::uint32_t old_nr) {
  if (!old_fn || !t.grad_fn || old_fn == t.grad_fn || old_nr >= old_fn->hooks.size() || !old_fn->hooks[old_nr]) return;
  HookList& old_list = *old_fn->hooks[old_nr];
  if (old_list.retain.lock().get() != &t) return;
  Node& node = *t.grad_fn;
  if (node.hooks.size() < node.outputs.size()) node.hooks.resize(node.outputs.size());
  auto& list = node.hooks[t.output_nr];
  if (!list) list = std::make_shared<HookList>();
  list->retain = old_list.retain;
  old_list.retain.reset();
}
}  // namespace

void check_rebase(const TensorImpl& view, const char* op) {
  if (view.view_base) (void)relative_to_base(*view.view_base, view, op);
}

void refresh_view(TensorImpl& t) {
  t.view_version = t.storage->version;
  if (t.view_base->storage != t.storage) {
    // The base took other data (set_data): this tensor is no longer a view of it.
    t.view_base.reset();
    return;
  }
  if (t.view_kind == ViewKind::no_grad || !t.view_base->requires_grad) return;
  if (t.view_kind == ViewKind::multi_output)
    throw Error("a view returned by split, chunk or unbind is used after its base (or another view of it) was "
                "modified in place; such views cannot follow the base's new history. clone() the pieces, or "
                "take them again after the write");
  EnableGradGuard grad_on;
  Tensor fresh(make_pooled<TensorImpl>(t.storage, t.shape, t.strides, t.offset, t.dtype));
  fresh = record_as_strided(Tensor(t.view_base), std::move(fresh));
  const std::shared_ptr<Node> old_fn = t.grad_fn;
  const std::uint32_t old_nr = t.output_nr;
  t.grad_fn = impl_of(fresh).grad_fn;
  t.output_nr = 0;
  t.requires_grad = true;
  carry_retain(t, old_fn, old_nr);
}

void rebase_history(const Tensor& self, const Tensor& result, const char* op) {
  TensorImpl& s = impl_of(self);
  EnableGradGuard grad_on;
  if (!s.view_base) {
    // self's new value is `result`: it takes result's place in the graph.
    const std::shared_ptr<Node> old_fn = s.grad_fn;
    const std::uint32_t old_nr = s.output_nr;
    s.grad_fn = impl_of(result).grad_fn;
    s.output_nr = impl_of(result).output_nr;
    s.requires_grad = true;
    carry_retain(s, old_fn, old_nr);
    s.view_version = s.storage->version;
    return;
  }
  // Through a view: the base's new value is its old value with the view's elements replaced
  // by `result` (PyTorch's CopySlices). The view then reads the base's new history.
  const std::shared_ptr<TensorImpl> base = s.view_base;
  const RelativeGeometry geometry = relative_to_base(*base, s, op);
  Tensor marker(make_pooled<TensorImpl>(base->storage, base->shape, base->strides, base->offset, base->dtype));
  marker = record_op("copy_slices", {Tensor(base), result}, std::move(marker),
                     [shape = s.shape, geometry](const Tensor& g) {
                       Tensor g_base = dense(g).clone();
                       TensorImpl hole = region_of(g_base, shape, geometry);
                       Tensor g_view = make_empty(shape, g.dtype());
                       copy_elements(hole, impl_of(g_view));
                       dispatch_all(hole.dtype, [&]<class T>() {
                         T* p = hole.raw<T>();
                         for_each_offset(hole.shape, hole.strides, [&](std::int64_t o) { p[o] = T(0); });
                       });
                       return Grads{g_base, g_view};
                     },
                     {});
  base->grad_fn = impl_of(marker).grad_fn;
  base->output_nr = 0;
  base->requires_grad = true;
  refresh_view(s);
}

}  // namespace xgrad

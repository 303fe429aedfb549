// Strided tensors: the geometry helpers, dense copies, and views with their autograd
// (PyTorch's model: a view shares its base's storage; an in-place write through a view
// rewrites the base's history, and other views of the base follow it lazily).
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <algorithm>
#include <cstring>

#include "kernels.hpp"

namespace xgrad {

namespace {
// Same-size elements moved as raw words: copying needs no arithmetic, and bool is a byte.
template <class F>
void dispatch_size(std::size_t size, F&& f) {
  switch (size) {
    case 1: f.template operator()<std::uint8_t>(); break;
    case 4: f.template operator()<std::uint32_t>(); break;
    default: f.template operator()<std::uint64_t>(); break;
  }
}
}  // namespace

void contiguous_strides(const Shape& shape, Shape& st) {
  st.assign(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;)
    if (__builtin_mul_overflow(st[i], std::max<std::int64_t>(shape[i], 1), &st[i - 1]))
      throw Error("shape " + shape_str(shape) + ": its strides overflow an int64");
}

Shape contiguous_strides(const Shape& shape) {
  Shape st;
  contiguous_strides(shape, st);
  return st;
}

void TensorImpl::update_contiguous() {
  contiguous = true;
  if (numel == 0) return;
  std::int64_t expected = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    if (shape[i] == 1) continue;
    if (strides[i] != expected) {
      contiguous = false;
      return;
    }
    expected *= shape[i];
  }
}

void TensorImpl::not_contiguous() const {
  throw Error("internal error: a dense kernel was given a non-contiguous tensor of shape " + shape_str(shape) +
              " and strides " + shape_str(strides));
}

Tensor dense(const Tensor& t) {
  const TensorImpl& im = impl_of(t);
  if (im.contiguous) return t;
  Tensor out = make_empty(im.shape, im.dtype);
  copy_elements(im, impl_of(out));
  return out;
}

Tensor compact(const Tensor& t) {
  const TensorImpl& im = impl_of(t);
  if (im.contiguous) return t;
  Shape shape = im.shape;
  bool expanded = false;
  for (std::size_t d = 0; d < shape.size(); ++d)
    if (im.strides[d] == 0 && shape[d] > 1) {
      shape[d] = 1;
      expanded = true;
    }
  if (expanded) {
    auto source = make_pooled<TensorImpl>(im.storage, std::move(shape), im.strides, im.offset, im.dtype);
    if (source->contiguous) return Tensor(std::move(source));
  }
  return dense(t);
}

void copy_elements(const TensorImpl& src, TensorImpl& dst) {
  if (src.shape != dst.shape)
    throw Error("copy: internal shape mismatch " + shape_str(src.shape) + " vs " + shape_str(dst.shape));
  if (src.dtype == dst.dtype) {
    if (src.contiguous && dst.contiguous) {
      std::memmove(dst.raw_bytes(), src.raw_bytes(), static_cast<std::size_t>(src.numel) * dtype_size(src.dtype));
      return;
    }
    const std::size_t rank = dst.shape.size(), elem = dtype_size(src.dtype);
    if (rank > 0 && (dst.shape.back() == 1 || (dst.strides.back() == 1 && src.strides.back() == 1))) {
      // Rows that are dense on both sides (a narrow, a chunk, a slice of a batch): memcpy each.
      const Shape outer(dst.shape.begin(), dst.shape.end() - 1);
      const Shape outer_d(dst.strides.begin(), dst.strides.end() - 1), outer_s(src.strides.begin(), src.strides.end() - 1);
      const std::size_t row = static_cast<std::size_t>(dst.shape.back()) * elem;
      std::byte* d = dst.raw_bytes();
      const std::byte* s = src.raw_bytes();
      for_each_offset2(outer, outer_d, outer_s, [&](std::int64_t od, std::int64_t os) {
        std::memmove(d + od * static_cast<std::int64_t>(elem), s + os * static_cast<std::int64_t>(elem), row);
      });
      return;
    }
    dispatch_size(elem, [&]<class W>() {
      const W* s = src.raw<W>();
      W* d = dst.raw<W>();
      for_each_offset2(dst.shape, dst.strides, src.strides, [&](std::int64_t od, std::int64_t os) { d[od] = s[os]; });
    });
    return;
  }
  dispatch_all(src.dtype, [&]<class S>() {
    dispatch_all(dst.dtype, [&]<class D>() {
      const S* s = src.raw<S>();
      D* d = dst.raw<D>();
      for_each_offset2(dst.shape, dst.strides, src.strides,
                       [&](std::int64_t od, std::int64_t os) { d[od] = convert_element<D>(s[os], "to"); });
    });
  });
}

Tensor scatter_into_zeros(const Tensor& g, const Shape& in_shape, const Shape& strides, std::int64_t offset) {
  Tensor out = zeros(in_shape, g.dtype());
  TensorImpl region(impl_of(out).storage, g.shape(), strides, offset, g.dtype());
  add_elements(impl_of(g), region);
  return out;
}

void add_elements(const TensorImpl& src, TensorImpl& dst) {
  dispatch_numeric(dst.dtype, "add", [&]<class T>() {
    const T* s = src.raw<T>();
    T* d = dst.raw<T>();
    for_each_offset2(dst.shape, dst.strides, src.strides, [&](std::int64_t od, std::int64_t os) { d[od] += s[os]; });
  });
}

Reach geometry_reach(const Shape& shape, const Shape& strides, std::int64_t offset, const char* op) {
  Reach r{offset, offset};
  for (std::int64_t e : shape)
    if (e == 0) return r;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    std::int64_t step = 0;
    // A user's geometry (as_strided) is arbitrary: (extent - 1) * stride, and its sum with the
    // offset, can wrap around to a small in-bounds number that a bounds check would accept.
    if (__builtin_mul_overflow(shape[d] - 1, strides[d], &step) ||
        __builtin_add_overflow(step < 0 ? r.lo : r.hi, step, step < 0 ? &r.lo : &r.hi))
      throw Error(std::string(op) + ": shape " + shape_str(shape) + ", strides " + shape_str(strides) + " and offset " +
                  std::to_string(offset) + " reach past the int64 range of element positions (overflow)");
  }
  return r;
}

// PyTorch's has_internal_overlap answers Yes only for a stride of 0 and lets every other
// layout through (TooHard); an as_strided view whose elements overlap with non-zero strides
// then gave order-dependent writes. Here a layout is accepted only when it provably has no
// overlap: with the dimensions of extent > 1 sorted by stride, each stride must exceed the
// farthest reach of all the smaller-stride dimensions together, Σ (extent - 1) · stride
// (extent-1 dimensions never move the position). Anything else overlaps or might: refused.
Overlap internal_overlap(const TensorImpl& t) {
  if (t.contiguous || t.numel <= 1) return Overlap::no;
  SmallVector<std::pair<std::int64_t, std::int64_t>, 6> dims;  // (stride, extent)
  for (std::size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] == 1) continue;
    if (t.strides[d] == 0) return Overlap::yes;
    dims.push_back({t.strides[d] < 0 ? -t.strides[d] : t.strides[d], t.shape[d]});
  }
  std::sort(dims.begin(), dims.end());
  std::int64_t reach = 0;  // within the geometry's checked span (geometry_reach), so no overflow
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0 && dims[i].first == dims[i - 1].first) return Overlap::yes;  // (1, 0) and (0, 1) meet
    if (dims[i].first <= reach) return Overlap::too_hard;
    reach += (dims[i].second - 1) * dims[i].first;
  }
  return Overlap::no;
}

bool has_internal_overlap(const TensorImpl& t) { return internal_overlap(t) != Overlap::no; }

void require_no_overlap(const TensorImpl& t, const char* op) {
  const Overlap overlap = internal_overlap(t);
  if (overlap == Overlap::no) return;
  const std::string layout = " of shape " + shape_str(t.shape) + " (strides " + shape_str(t.strides) + ")";
  if (overlap == Overlap::yes)
    throw Error(std::string(op) + ": more than one element of the written-to tensor" + layout +
                " refers to a single memory location (an expanded or overlapping view); clone() it before writing to it");
  throw Error(std::string(op) + ": the elements of the written-to tensor" + layout +
              " may share memory locations (more than one element could refer to a single memory location, and "
              "the result would depend on the order of the writes); clone() it before writing to it");
}

// --- views ------------------------------------------------------------------------------------

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

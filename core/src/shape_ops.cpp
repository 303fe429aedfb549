// Shape primitives. reshape (where strides allow), permute, expand, narrow, select and split
// return views that share their input's storage, as PyTorch's do; cat copies.
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <optional>

#include <unistd.h>

#include <xgrad/core/autograd.hpp>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

namespace {

// The strides that let `shape` view the elements of (old_shape, old_strides) in the same
// order, or nothing when no view can (PyTorch's computeStride): dimensions can be merged only
// where they are laid out contiguously with each other.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape) {
  if (old_shape.empty()) return Shape(shape.size(), 1);
  if (shape_numel(old_shape) == 0) return contiguous_strides(shape);
  Shape strides(shape.size());
  std::int64_t view_d = static_cast<std::int64_t>(shape.size()) - 1;
  std::int64_t chunk_base_stride = old_strides.back(), tensor_numel = 1, view_numel = 1;
  for (std::int64_t d = static_cast<std::int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    // The products below are real element steps, except past a chunk's last element or for
    // an extent-1 dim of the view (whose stride never moves the position), where they may
    // overflow for an as_strided view's huge strides: checked there.
    std::int64_t chunk_end = 0;
    const bool end_overflows = __builtin_mul_overflow(tensor_numel, chunk_base_stride, &chunk_end);
    if (d == 0 || (old_shape[d - 1] != 1 && (end_overflows || old_strides[d - 1] != chunk_end))) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        if (__builtin_mul_overflow(view_numel, chunk_base_stride, &strides[view_d])) strides[view_d] = chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

// `shape` with one extent possibly -1, resolved against `numel` elements; throws naming op.
Shape infer_shape(const Tensor& a, const Shape& shape, const char* op) {
  Shape target = shape;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      if (infer >= 0) throw Error(std::string(op) + ": only one extent can be -1, got " + shape_str(shape));
      infer = static_cast<std::int64_t>(i);
    } else if (target[i] < 0) {
      throw Error(std::string(op) + ": invalid extent in " + shape_str(shape));
    } else if (__builtin_mul_overflow(known, target[i], &known)) {
      throw Error(std::string(op) + ": shape " + shape_str(shape) + " has more elements than an int64 can count");
    }
  }
  if (infer >= 0 && known != 0 && a.numel() % known == 0) target[infer] = a.numel() / known;
  if (shape_numel(target) != a.numel() || (infer >= 0 && known == 0))
    throw Error(std::string(op) + ": cannot reshape " + shape_str(a.shape()) + " (" + std::to_string(a.numel()) +
                " elements) into " + shape_str(shape));
  check_shape(target, op);  // an empty tensor's extents may still overflow its strides
  return target;
}

// A view of a with a new shape and strides at a's offset, recorded as "reshape" (squeeze,
// unsqueeze and flatten are reshapes too).
Tensor reshape_view(const Tensor& a, Shape shape, Shape strides) {
  Tensor out = make_view(a, std::move(shape), std::move(strides), impl_of(a).offset);
  return record_view("reshape", a, std::move(out),
                     [in_shape = a.shape()](const Tensor& g) { return Grads{reshape(g, in_shape)}; });
}

// Concatenates along `dim` into a new contiguous tensor (no graph). Shapes are checked.
Tensor cat_kernel(const std::vector<Tensor>& parts, std::int64_t dim, const Shape& out_shape) {
  Tensor out = make_empty(out_shape, parts[0].dtype());
  const TensorImpl& o = impl_of(out);
  std::int64_t col = 0;  // running position along dim
  for (const Tensor& p : parts) {
    TensorImpl region(o.storage, p.shape(), o.strides, col * o.strides[dim], o.dtype);
    copy_elements(impl_of(p), region);
    col += p.shape()[dim];
  }
  return out;
}

// A list for the sizes of `count` pieces of `a`, or an error naming `op` when the pieces could
// not fit in this machine's memory (each is a tensor object): unbinding an empty [2^40, 0]
// tensor asks for 2^40 views. Checked before allocating, as an oversized request is not
// always a catchable std::bad_alloc (a sanitizer's allocator aborts instead).
std::vector<std::int64_t> piece_sizes(std::int64_t count, const char* op, const Tensor& a) {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
  const double memory = pages > 0 && page_size > 0 ? static_cast<double>(pages) * static_cast<double>(page_size) : 0x1p40;
  const double need = static_cast<double>(count) * static_cast<double>(sizeof(TensorImpl) + sizeof(Tensor));
  if (need > memory)
    throw Error(std::string(op) + ": cannot allocate " + std::to_string(count) + " views of a tensor of shape " +
                shape_str(a.shape()) + " (about " + std::to_string(static_cast<std::int64_t>(need)) +
                " bytes, more than the machine's memory)");
  return std::vector<std::int64_t>(static_cast<std::size_t>(count));
}

// Views of pieces of `sizes` along `dim`; with `drop_dim` (unbind) that dimension is removed.
std::vector<Tensor> split_views(const Tensor& a, const std::vector<std::int64_t>& sizes, std::int64_t dim, bool drop_dim) {
  const TensorImpl& im = impl_of(a);
  std::vector<Tensor> parts;
  parts.reserve(sizes.size());
  std::int64_t col = 0;
  for (std::int64_t size : sizes) {
    Shape shape = im.shape, strides = im.strides;
    shape[dim] = size;
    if (drop_dim) {
      shape.erase(shape.begin() + dim);
      strides.erase(strides.begin() + dim);
    }
    // An empty piece keeps the offset, as narrow's does: at the end of a dim with an
    // as_strided stride, col · stride need not fit an int64.
    const bool any = size > 0 && im.numel > 0;
    parts.push_back(make_view(a, std::move(shape), std::move(strides), im.offset + (any ? col * im.strides[dim] : 0)));
    col += size;
  }
  if (trace::tracing()) trace::annotate("split", {{"dim", dim}, {"drop_dim", std::int64_t{drop_dim}}});
  parts = record_views("split", a, std::move(parts), [dim, in_shape = a.shape(), sizes, drop_dim](const std::vector<Tensor>& g) {
    if (!drop_dim) return Grads{cat_kernel(g, dim, in_shape)};
    std::vector<Tensor> pieces;
    pieces.reserve(g.size());
    for (const Tensor& gi : g) pieces.push_back(unsqueeze(gi, dim));
    return Grads{cat_kernel(pieces, dim, in_shape)};
  });
  // The engine gathers the pieces' gradients into one buffer as they arrive (Node::Gather);
  // the backward above serves when a hook must see a piece's gradient on its own.
  if (!parts.empty() && impl_of(parts[0]).grad_fn) {
    auto gather = std::make_unique<Node::Gather>();
    gather->input_shape = a.shape();
    gather->dtype = a.dtype();
    const Shape in_strides = contiguous_strides(a.shape());
    std::int64_t col = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      Node::Window w{parts[i].shape(), in_strides, col * in_strides[dim]};
      if (drop_dim) w.strides.erase(w.strides.begin() + dim);
      gather->windows.push_back(std::move(w));
      col += sizes[i];
    }
    impl_of(parts[0]).grad_fn->gather = std::move(gather);
  }
  return parts;
}

}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  require_defined(a, "reshape");
  Shape target = infer_shape(a, shape, "reshape");
  if (target == a.shape()) return a;
  if (auto strides = view_strides(a.shape(), a.strides(), target)) return reshape_view(a, std::move(target), std::move(*strides));
  // No view can: as PyTorch, a contiguous copy (recorded as clone) in the new shape. The copy
  // is nobody else's, so the result is a plain tensor, not a view.
  Tensor c = a.contiguous();
  Tensor out(make_pooled<TensorImpl>(impl_of(c).storage, target, impl_of(c).dtype));
  return record_view("reshape", c, std::move(out),
                     [in_shape = c.shape()](const Tensor& g) { return Grads{reshape(g, in_shape)}; });
}

Tensor Tensor::view(const Shape& shape) const {
  require_defined(*this, "view");
  Shape target = infer_shape(*this, shape, "view");
  auto strides = view_strides(this->shape(), this->strides(), target);
  if (!strides)
    throw Error("view: the shape " + shape_str(target) + " is not compatible with the input's shape " +
                shape_str(this->shape()) + " and strides " + shape_str(this->strides()) +
                " (at least one dimension spans two non-adjacent ranges of memory); use reshape(), which copies");
  if (target == this->shape()) return *this;
  return reshape_view(*this, std::move(target), std::move(*strides));
}

Tensor flatten(const Tensor& a, std::int64_t start_dim, std::int64_t end_dim) {
  require_defined(a, "flatten");
  if (a.dim() == 0) return reshape(a, {1});
  start_dim = wrap_dim(start_dim, a.dim(), "flatten");
  end_dim = wrap_dim(end_dim, a.dim(), "flatten");
  if (start_dim > end_dim) throw Error("flatten: start_dim " + std::to_string(start_dim) + " is after end_dim " + std::to_string(end_dim));
  Shape s(a.shape().begin(), a.shape().begin() + start_dim);
  std::int64_t merged = 1;
  for (std::int64_t d = start_dim; d <= end_dim; ++d) merged *= a.shape()[d];
  s.push_back(merged);
  s.insert(s.end(), a.shape().begin() + end_dim + 1, a.shape().end());
  return reshape(a, s);
}

Tensor squeeze(const Tensor& a, std::int64_t dim) {
  require_defined(a, "squeeze");
  if (a.dim() == 0) return a;
  dim = wrap_dim(dim, a.dim(), "squeeze");
  if (a.shape()[dim] != 1) return a;  // as PyTorch: squeezing a non-1 dimension is a no-op
  Shape s = a.shape(), st = a.strides();
  s.erase(s.begin() + dim);
  st.erase(st.begin() + dim);
  return reshape_view(a, std::move(s), std::move(st));
}

Tensor squeeze(const Tensor& a) {
  require_defined(a, "squeeze");
  Shape s, st;
  for (std::int64_t d = 0; d < a.dim(); ++d)
    if (a.shape()[d] != 1) {
      s.push_back(a.shape()[d]);
      st.push_back(a.strides()[d]);
    }
  if (s.size() == a.shape().size()) return a;
  return reshape_view(a, std::move(s), std::move(st));
}

Tensor unsqueeze(const Tensor& a, std::int64_t dim) {
  require_defined(a, "unsqueeze");
  dim = wrap_dim(dim, a.dim() + 1, "unsqueeze");
  Shape s = a.shape(), st = a.strides();
  // PyTorch's stride for the new extent-1 dim, which never moves the position: any value
  // serves, so where the product overflows (an as_strided view's huge stride) it is st[dim].
  std::int64_t stride = 1;
  if (dim < a.dim() && __builtin_mul_overflow(s[dim], st[dim], &stride)) stride = st[dim];
  s.insert(s.begin() + dim, 1);
  st.insert(st.begin() + dim, stride);
  return reshape_view(a, std::move(s), std::move(st));
}

Tensor Tensor::contiguous() const {
  require_defined(*this, "contiguous");
  return impl_->contiguous ? *this : clone();
}

Tensor permute(const Tensor& a, const std::vector<std::int64_t>& dims) {
  require_defined(a, "permute");
  const std::int64_t rank = a.dim();
  if (static_cast<std::int64_t>(dims.size()) != rank)
    throw Error("permute: " + std::to_string(dims.size()) + " dims given for a tensor of shape " + shape_str(a.shape()));
  std::vector<std::int64_t> perm(rank);
  std::vector<bool> seen(rank, false);
  for (std::int64_t i = 0; i < rank; ++i) {
    perm[i] = wrap_dim(dims[i], rank, "permute");
    if (seen[perm[i]]) throw Error("permute: dim " + std::to_string(dims[i]) + " appears twice");
    seen[perm[i]] = true;
  }
  bool identity = true;
  for (std::int64_t i = 0; i < rank; ++i) identity = identity && perm[i] == i;
  if (identity) return a;

  Shape out_shape(rank), strides(rank);
  for (std::int64_t i = 0; i < rank; ++i) {
    out_shape[i] = a.shape()[perm[i]];
    strides[i] = a.strides()[perm[i]];
  }
  Tensor out = make_view(a, std::move(out_shape), std::move(strides), impl_of(a).offset);
  std::vector<std::int64_t> inverse(rank);
  for (std::int64_t i = 0; i < rank; ++i) inverse[perm[i]] = i;
  if (trace::tracing()) trace::annotate("permute", {{"perm", perm}});
  return record_view("permute", a, std::move(out), [inverse](const Tensor& g) { return Grads{permute(g, inverse)}; });
}

Tensor transpose(const Tensor& a, std::int64_t dim0, std::int64_t dim1) {
  require_defined(a, "transpose");
  if (a.dim() < 2 && dim0 == dim1) return a;
  std::vector<std::int64_t> dims(a.dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[wrap_dim(dim0, a.dim(), "transpose")], dims[wrap_dim(dim1, a.dim(), "transpose")]);
  return permute(a, dims);
}

Tensor expand(const Tensor& a, const Shape& shape) {
  require_defined(a, "expand");
  const std::size_t rank = shape.size();
  if (rank < a.shape().size())
    throw Error("expand: cannot expand " + shape_str(a.shape()) + " to fewer dimensions " + shape_str(shape));
  const std::size_t lead = rank - a.shape().size();
  Shape out_shape(rank), strides(rank, 0);
  for (std::size_t i = 0; i < rank; ++i) {
    if (i < lead) {
      if (shape[i] < 0) throw Error("expand: -1 is not allowed for a new leading dimension in " + shape_str(shape));
      out_shape[i] = shape[i];
      continue;
    }
    std::int64_t have = a.shape()[i - lead], want = shape[i] == -1 ? have : shape[i];
    if (have != want && have != 1)
      throw Error("expand: cannot expand " + shape_str(a.shape()) + " to " + shape_str(shape));
    out_shape[i] = want;
    strides[i] = have == 1 && want != 1 ? 0 : a.strides()[i - lead];
  }
  if (out_shape == a.shape()) return a;
  check_shape(out_shape, "expand");
  Tensor out = make_view(a, std::move(out_shape), std::move(strides), impl_of(a).offset);
  return record_view("expand", a, std::move(out), [in_shape = a.shape()](const Tensor& g) { return Grads{sum_to(g, in_shape)}; });
}

Tensor narrow(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t length) {
  require_defined(a, "narrow");
  if (a.dim() == 0) throw Error("narrow: cannot narrow a 0-d tensor");
  dim = wrap_dim(dim, a.dim(), "narrow");
  const std::int64_t n = a.shape()[dim];
  if (start < 0) start += n;
  if (start < 0 || length < 0 || start + length > n)
    throw Error("narrow: range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                ") is out of bounds for dimension " + std::to_string(dim) + " with size " + std::to_string(n));
  if (start == 0 && length == n) return a;
  Shape shape = a.shape();
  shape[dim] = length;
  // An empty result addresses no element, and keeps the offset: past the last element, or in
  // a tensor empty in another dim, start · stride need not fit an int64 (as_strided strides).
  const std::int64_t offset = impl_of(a).offset + (length > 0 && a.numel() > 0 ? start * a.strides()[dim] : 0);
  Tensor out = make_view(a, std::move(shape), a.strides(), offset);
  if (trace::tracing()) trace::annotate("narrow", {{"dim", dim}, {"start", start}});
  return record_view("narrow", a, std::move(out), [in_shape = a.shape(), dim, start](const Tensor& g) {
    const Shape in_strides = contiguous_strides(in_shape);
    return Grads{scatter_into_zeros(g, in_shape, in_strides, start * in_strides[dim])};
  });
}

Tensor slice(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t end) {
  require_defined(a, "slice");
  dim = wrap_dim(dim, a.dim(), "slice");
  const std::int64_t n = a.shape()[dim];
  auto clampi = [n](std::int64_t i) { return std::clamp(i < 0 ? i + n : i, std::int64_t{0}, n); };
  start = clampi(start);
  end = std::max(start, clampi(end));
  return narrow(a, dim, start, end - start);
}

Tensor select(const Tensor& a, std::int64_t dim, std::int64_t index) {
  require_defined(a, "select");
  if (a.dim() == 0) throw Error("select: cannot select from a 0-d tensor");
  dim = wrap_dim(dim, a.dim(), "select");
  const std::int64_t n = a.shape()[dim];
  if (index < -n || index >= n)
    throw Error("select: index " + std::to_string(index) + " is out of range for dimension " + std::to_string(dim) +
                " with size " + std::to_string(n));
  if (index < 0) index += n;
  Shape shape = a.shape(), strides = a.strides();
  const std::int64_t offset = impl_of(a).offset + (a.numel() > 0 ? index * strides[dim] : 0);  // as narrow's
  shape.erase(shape.begin() + dim);
  strides.erase(strides.begin() + dim);
  Tensor out = make_view(a, std::move(shape), std::move(strides), offset);
  if (trace::tracing()) trace::annotate("select", {{"dim", dim}, {"index", index}});
  return record_view("select", a, std::move(out), [in_shape = a.shape(), dim, index](const Tensor& g) {
    Shape in_strides = contiguous_strides(in_shape);
    const std::int64_t offset = index * in_strides[dim];
    in_strides.erase(in_strides.begin() + dim);
    return Grads{scatter_into_zeros(g, in_shape, in_strides, offset)};
  });
}

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) throw Error("cat: expects a non-empty list of tensors");
  const Tensor& first = tensors[0];
  require_defined(first, "cat");
  if (first.dim() == 0) throw Error("cat: zero-dimensional tensors cannot be concatenated");
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape out_shape = first.shape();
  out_shape[dim] = 0;
  std::vector<std::int64_t> sizes;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    require_same_dtype(first, t, "cat");
    bool ok = t.dim() == first.dim();
    for (std::int64_t d = 0; ok && d < first.dim(); ++d) ok = d == dim || t.shape()[d] == first.shape()[d];
    if (!ok)
      throw Error("cat: tensor " + std::to_string(i) + " has shape " + shape_str(t.shape()) +
                  ", expected " + shape_str(first.shape()) + " except along dim " + std::to_string(dim));
    if (__builtin_add_overflow(out_shape[dim], t.shape()[dim], &out_shape[dim]))
      throw Error("cat: the extents along dim " + std::to_string(dim) + " add up to more than an int64 can count");
    sizes.push_back(t.shape()[dim]);
  }
  Tensor out = cat_kernel(tensors, dim, out_shape);
  bool needed = false;
  for (const Tensor& t : tensors) needed = needed || any_requires_grad({&t});
  if (!needed) return out;
  if (trace::tracing()) trace::annotate("cat", {{"dim", dim}});
  return record_op("cat", TensorList(tensors), out, [sizes, dim](const Tensor& g) {
    NoGradGuard no_grad;  // the pieces are plain views of g
    return split(g, sizes, dim);
  }, {});
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) throw Error("stack: expects a non-empty list of tensors");
  dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].shape() != tensors[0].shape())
      throw Error("stack: tensor " + std::to_string(i) + " has shape " + shape_str(tensors[i].shape()) +
                  ", expected " + shape_str(tensors[0].shape()));
    parts.push_back(unsqueeze(tensors[i], dim));
  }
  return cat(parts, dim);
}

std::vector<Tensor> split(const Tensor& a, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
  require_defined(a, "split");
  if (a.dim() == 0) throw Error("split: cannot split a 0-d tensor");
  dim = wrap_dim(dim, a.dim(), "split");
  std::int64_t total = 0;
  for (auto s : sizes) {
    if (s < 0) throw Error("split: negative size " + std::to_string(s));
    total += s;
  }
  if (total != a.shape()[dim])
    throw Error("split: sizes sum to " + std::to_string(total) + " but dimension " + std::to_string(dim) +
                " of " + shape_str(a.shape()) + " has size " + std::to_string(a.shape()[dim]));
  return split_views(a, sizes, dim, /*drop_dim=*/false);
}

std::vector<Tensor> split(const Tensor& a, std::int64_t split_size, std::int64_t dim) {
  require_defined(a, "split");
  if (split_size <= 0) throw Error("split: split_size must be positive, got " + std::to_string(split_size));
  const std::int64_t n = a.size(dim);
  const std::int64_t count = n == 0 ? 1 : n / split_size + (n % split_size != 0);
  std::vector<std::int64_t> sizes = piece_sizes(count, "split", a);
  for (std::int64_t i = 0; i < count; ++i) sizes[i] = std::min(split_size, n - i * split_size);
  return split(a, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& a, std::int64_t chunks, std::int64_t dim) {
  require_defined(a, "chunk");
  if (chunks <= 0) throw Error("chunk: number of chunks must be positive, got " + std::to_string(chunks));
  const std::int64_t n = a.size(dim);
  return split(a, std::max<std::int64_t>(1, (n + chunks - 1) / chunks), dim);
}

std::vector<Tensor> unbind(const Tensor& a, std::int64_t dim) {
  require_defined(a, "unbind");
  dim = wrap_dim(dim, a.dim(), "unbind");
  std::vector<std::int64_t> sizes = piece_sizes(a.shape()[dim], "unbind", a);
  std::fill(sizes.begin(), sizes.end(), 1);
  return split_views(a, sizes, dim, /*drop_dim=*/true);
}

}  // namespace xgrad

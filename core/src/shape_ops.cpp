// Shape primitives (reshape, permute, expand, narrow, cat, split) and the shape ops composed
// from them. All tensors are contiguous: reshape shares storage, the others copy.
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <cstring>
#include <numeric>

#include "kernels.hpp"

namespace xgrad {

namespace {

using Grads = std::vector<Tensor>;

// dst (contiguous, out_shape) ← src read with per-dimension element strides (0 = broadcast).
// Walks the output in order with an odometer over the index; shared by permute and expand.
template <class E>
void strided_copy(const E* src, E* dst, const Shape& out_shape, const std::vector<std::int64_t>& strides) {
  const std::int64_t total = shape_numel(out_shape);
  const std::size_t rank = out_shape.size();
  if (total == 0) return;
  if (rank == 0) {
    dst[0] = src[0];
    return;
  }
  std::vector<std::int64_t> idx(rank, 0);
  const std::int64_t last = out_shape[rank - 1], last_stride = strides[rank - 1];
  std::int64_t offset = 0;
  for (std::int64_t i = 0; i < total; i += last) {
    for (std::int64_t j = 0; j < last; ++j) dst[i + j] = src[offset + j * last_stride];
    for (std::size_t d = rank - 1; d-- > 0;) {  // advance the odometer over the outer dims
      offset += strides[d];
      if (++idx[d] < out_shape[d]) break;
      offset -= strides[d] * out_shape[d];
      idx[d] = 0;
    }
  }
}

void strided_copy_bytes(const Tensor& src, Tensor& dst, const std::vector<std::int64_t>& strides) {
  const void* s = impl_of(src).storage->data;
  void* d = impl_of(dst).storage->data;
  switch (dtype_size(src.dtype())) {
    case 1: strided_copy(static_cast<const std::uint8_t*>(s), static_cast<std::uint8_t*>(d), dst.shape(), strides); break;
    case 4: strided_copy(static_cast<const std::uint32_t*>(s), static_cast<std::uint32_t*>(d), dst.shape(), strides); break;
    default: strided_copy(static_cast<const std::uint64_t*>(s), static_cast<std::uint64_t*>(d), dst.shape(), strides); break;
  }
}

std::vector<std::int64_t> contiguous_strides(const Shape& shape) {
  std::vector<std::int64_t> st(shape.size(), 1);
  for (std::size_t i = shape.size(); i-- > 1;) st[i - 1] = st[i] * shape[i];
  return st;
}

// Concatenates along `dim` (bytes-level; no graph). Shapes are already checked.
Tensor cat_kernel(const std::vector<Tensor>& parts, std::int64_t dim, const Shape& out_shape) {
  Tensor out = make_empty(out_shape, parts[0].dtype());
  const std::size_t elem = dtype_size(out.dtype());
  const AxisSplit s = split_at(out_shape, dim);
  auto* dst = impl_of(out).storage->data;
  std::int64_t col = 0;  // running position along dim
  for (const Tensor& p : parts) {
    const std::int64_t block = p.shape()[dim] * s.inner;
    const auto* src = impl_of(p).storage->data;
    for (std::int64_t o = 0; o < s.outer; ++o)
      std::memcpy(dst + (o * s.n * s.inner + col * s.inner) * elem, src + o * block * elem, block * elem);
    col += p.shape()[dim];
  }
  return out;
}

// Pieces of `sizes` along `dim` (bytes-level; no graph).
std::vector<Tensor> split_kernel(const Tensor& a, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
  const std::size_t elem = dtype_size(a.dtype());
  const AxisSplit s = split_at(a.shape(), dim);
  const auto* src = impl_of(a).storage->data;
  std::vector<Tensor> parts;
  parts.reserve(sizes.size());
  std::int64_t col = 0;
  for (std::int64_t size : sizes) {
    Shape ps = a.shape();
    ps[dim] = size;
    Tensor p = make_empty(ps, a.dtype());
    const std::int64_t block = size * s.inner;
    auto* dst = impl_of(p).storage->data;
    for (std::int64_t o = 0; o < s.outer; ++o)
      std::memcpy(dst + o * block * elem, src + (o * s.n * s.inner + col * s.inner) * elem, block * elem);
    col += size;
    parts.push_back(std::move(p));
  }
  return parts;
}

}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  require_defined(a, "reshape");
  Shape target = shape;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      if (infer >= 0) throw Error("reshape: only one extent can be -1, got " + shape_str(shape));
      infer = static_cast<std::int64_t>(i);
    } else if (target[i] < 0) {
      throw Error("reshape: invalid extent in " + shape_str(shape));
    } else {
      known *= target[i];
    }
  }
  if (infer >= 0 && known != 0 && a.numel() % known == 0) target[infer] = a.numel() / known;
  if (shape_numel(target) != a.numel() || (infer >= 0 && known == 0))
    throw Error("reshape: cannot reshape " + shape_str(a.shape()) + " (" + std::to_string(a.numel()) +
                " elements) into " + shape_str(shape));
  if (target == a.shape()) return a;
  // A view: same storage, new shape.
  Tensor out(std::make_shared<TensorImpl>(impl_of(a).storage, target, a.dtype()));
  if (!any_requires_grad({&a})) return out;
  return record_op("reshape", {a}, out, [in_shape = a.shape()](const Tensor& g) { return Grads{reshape(g, in_shape)}; });
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
  Shape s = a.shape();
  s.erase(s.begin() + dim);
  return reshape(a, s);
}

Tensor squeeze(const Tensor& a) {
  require_defined(a, "squeeze");
  Shape s;
  for (auto e : a.shape())
    if (e != 1) s.push_back(e);
  return reshape(a, s);
}

Tensor unsqueeze(const Tensor& a, std::int64_t dim) {
  require_defined(a, "unsqueeze");
  dim = wrap_dim(dim, a.dim() + 1, "unsqueeze");
  Shape s = a.shape();
  s.insert(s.begin() + dim, 1);
  return reshape(a, s);
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

  const auto in_strides = contiguous_strides(a.shape());
  Shape out_shape(rank);
  std::vector<std::int64_t> strides(rank);
  for (std::int64_t i = 0; i < rank; ++i) {
    out_shape[i] = a.shape()[perm[i]];
    strides[i] = in_strides[perm[i]];
  }
  Tensor out = make_empty(out_shape, a.dtype());
  strided_copy_bytes(a, out, strides);
  if (!any_requires_grad({&a})) return out;
  std::vector<std::int64_t> inverse(rank);
  for (std::int64_t i = 0; i < rank; ++i) inverse[perm[i]] = i;
  return record_op("permute", {a}, out, [inverse](const Tensor& g) { return Grads{permute(g, inverse)}; });
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
  const auto in_strides = contiguous_strides(a.shape());
  Shape out_shape(rank);
  std::vector<std::int64_t> strides(rank, 0);
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
    strides[i] = have == 1 ? 0 : in_strides[i - lead];
  }
  if (out_shape == a.shape()) return a;
  Tensor out = make_empty(out_shape, a.dtype());
  strided_copy_bytes(a, out, strides);
  if (!any_requires_grad({&a})) return out;
  return record_op("expand", {a}, out, [in_shape = a.shape()](const Tensor& g) { return Grads{sum_to(g, in_shape)}; });
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
  Tensor out = split_kernel(a, {start, length, n - start - length}, dim)[1];
  if (!any_requires_grad({&a})) return out;
  return record_op("narrow", {a}, out, [in_shape = a.shape(), dim, start, n](const Tensor& g) {
    // The gradient is g in the window and zero elsewhere.
    Shape before = in_shape, after = in_shape;
    before[dim] = start;
    after[dim] = n - start - g.shape()[dim];
    return Grads{cat_kernel({zeros(before, g.dtype()), g, zeros(after, g.dtype())}, dim, in_shape)};
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
  return squeeze(narrow(a, dim, index < 0 ? index + n : index, 1), dim);
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
    out_shape[dim] += t.shape()[dim];
    sizes.push_back(t.shape()[dim]);
  }
  Tensor out = cat_kernel(tensors, dim, out_shape);
  bool needed = false;
  for (const Tensor& t : tensors) needed = needed || any_requires_grad({&t});
  if (!needed) return out;
  return record_op("cat", tensors, out, [sizes, dim](const Tensor& g) { return split_kernel(g, sizes, dim); });
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
  std::vector<Tensor> parts = split_kernel(a, sizes, dim);
  if (!any_requires_grad({&a})) return parts;
  return record_op("split", {a}, std::move(parts), [dim, in_shape = a.shape()](const std::vector<Tensor>& g) {
    return Grads{cat_kernel(g, dim, in_shape)};
  });
}

std::vector<Tensor> split(const Tensor& a, std::int64_t split_size, std::int64_t dim) {
  require_defined(a, "split");
  if (split_size <= 0) throw Error("split: split_size must be positive, got " + std::to_string(split_size));
  const std::int64_t n = a.size(dim);
  std::vector<std::int64_t> sizes;
  for (std::int64_t start = 0; start < n; start += split_size) sizes.push_back(std::min(split_size, n - start));
  if (sizes.empty()) sizes.push_back(0);
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
  std::vector<Tensor> parts = split(a, std::vector<std::int64_t>(a.shape()[dim], 1), dim);
  for (Tensor& p : parts) p = squeeze(p, dim);
  return parts;
}

}  // namespace xgrad

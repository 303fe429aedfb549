// Strided tensors: dense copies, elementwise copy / add / scatter between any two layouts,
// a geometry's reach and its internal overlap (strided.hpp). Views are views.cpp.
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

}  // namespace xgrad

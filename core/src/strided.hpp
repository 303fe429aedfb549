#pragma once
// Private to core: strided access. A tensor's elements lie at offset + sum(index * stride) in
// its storage; these helpers copy, add and scatter between any two geometries, make a
// contiguous tensor for kernels that read densely, check a geometry's reach for int64
// overflow and whether its elements overlap, and walk every element's offsets without
// recursion (for_each_offsets). Kernels that read densely use dense() and kernels.hpp.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor_impl.hpp"

namespace xgrad {

// `t` itself when contiguous, else a contiguous copy (not recorded): for kernels that read
// densely. Cheap and allocation-free in the common, contiguous case.
Tensor dense(const Tensor& t);
// For kernels that broadcast: an expanded view (stride 0) as the contiguous tensor it expands,
// with extent 1 in the broadcast dimensions, so broadcasting costs no copy; any other
// non-contiguous tensor as a dense copy.
Tensor compact(const Tensor& t);
// Copies src's elements into dst's (same shape; any layouts; dtypes converted). Elementwise
// in row-major order, so an overlapping dst (stride 0) keeps the last write.
void copy_elements(const TensorImpl& src, TensorImpl& dst);
// A zero tensor of `in_shape` with g added at the elements of a view of it (g's shape, the
// view's strides and offset inside a contiguous tensor of in_shape): the backward of narrow,
// select and as_strided. Elements the view reaches twice accumulate.
Tensor scatter_into_zeros(const Tensor& g, const Shape& in_shape, const Shape& strides, std::int64_t offset);
// dst[i] += src[i] over dst's elements, any layouts (same shape and dtype); a dst position
// reached twice (stride 0) accumulates both.
void add_elements(const TensorImpl& src, TensorImpl& dst);
// The lowest and highest storage positions (in elements) a geometry reaches: the offset plus,
// per dimension, (extent - 1) * stride on the side of the stride's sign; an empty geometry
// reaches only its offset. Every size × stride and offset sum of the strided code is computed
// here, overflow-checked: a sum past int64 throws an Error naming `op` and the geometry.
struct Reach {
  std::int64_t lo, hi;
};
Reach geometry_reach(const Shape& shape, const Shape& strides, std::int64_t offset, const char* op);
// Whether two elements of t share one memory location: no (provably), yes (a stride of 0 over
// an extent > 1, or two dimensions with one stride), or too_hard (the layout is not provably
// free of overlap: as PyTorch's MemOverlap::TooHard, but refused for writes).
enum class Overlap { no, yes, too_hard };
Overlap internal_overlap(const TensorImpl& t);
// True unless t provably has no two elements at one memory location.
bool has_internal_overlap(const TensorImpl& t);
// Throws "<op>: ... " unless t can be written elementwise without overlapping itself (writes
// to a layout that overlaps or might are refused, by name).
void require_no_overlap(const TensorImpl& t, const char* op);

// Calls f(offsets) with the offsets (in elements, from each first element) of every element
// of N geometries of one shape, in row-major order. Iterative: an odometer over the outer
// dimensions and a plain loop over the last.
template <std::size_t N, class F>
void for_each_offsets(const Shape& shape, const std::array<const Shape*, N>& strides, F&& f) {
  const std::size_t rank = shape.size();
  std::array<std::int64_t, N> o{};
  if (rank == 0) {
    f(o);
    return;
  }
  for (auto e : shape)
    if (e == 0) return;
  std::vector<std::int64_t> index(rank, 0);
  std::array<std::int64_t, N> last_stride;
  for (std::size_t k = 0; k < N; ++k) last_stride[k] = (*strides[k])[rank - 1];
  const std::int64_t last = shape[rank - 1];
  // Offsets never step past the last element of a dimension: every one computed is an element's
  // own, inside the range geometry_reach checked (as_strided may pair an extent of 1 with a
  // stride near INT64_MAX, which one more step would overflow).
  for (;;) {
    std::array<std::int64_t, N> p = o;
    for (std::int64_t j = 0;;) {
      f(p);
      if (++j == last) break;
      for (std::size_t k = 0; k < N; ++k) p[k] += last_stride[k];
    }
    std::size_t d = rank - 1;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++index[d] < shape[d]) {
        for (std::size_t k = 0; k < N; ++k) o[k] += (*strides[k])[d];
        break;
      }
      for (std::size_t k = 0; k < N; ++k) o[k] -= (*strides[k])[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}
template <class F>
void for_each_offset2(const Shape& shape, const Shape& sa, const Shape& sb, F&& f) {
  for_each_offsets<2>(shape, {&sa, &sb}, [&](const std::array<std::int64_t, 2>& o) { f(o[0], o[1]); });
}
template <class F>
void for_each_offset(const Shape& shape, const Shape& strides, F&& f) {
  for_each_offsets<1>(shape, {&strides}, [&](const std::array<std::int64_t, 1>& o) { f(o[0]); });
}

}  // namespace xgrad

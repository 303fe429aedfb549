// The tensor's geometry: row-major strides and the contiguity flag. Making a tensor
// (new_impl, make_empty) is memory, with the pools in storage.cpp.
#include <algorithm>
#include <string>

#include "tensor_impl.hpp"

namespace xgrad {

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

}  // namespace xgrad

#pragma once
// Private to core: the checks every op makes on its arguments before it touches memory:
// shapes that fit an int64, dims in range, dtypes, defined tensors, and float-to-integer
// conversions that C++ would leave undefined. Each throws an xgrad::Error naming the op and
// the offending value, so a user mistake is never a crash; keeping them in one place keeps
// the messages alike.
#include <cstdint>
#include <limits>
#include <type_traits>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// Throws, naming `op` and the shape, unless every extent is >= 0 and the product of the
/// extents (zeros counted as 1, so an empty tensor's strides fit too) fits in an int64.
/// Every shape a tensor is made with or viewed as passes this once.
void check_shape(const Shape& shape, const char* op);

// Converting a floating-point number that an integer type cannot hold (NaN, ±Inf, 1e30) is
// undefined behaviour in C++ (it wrote INT64_MIN): every float-to-integer conversion in core
// goes through these. True when `value` can become an element of `dtype`: always for the
// floating dtypes and bool, for int64 a value inside its range (truncated toward zero).
inline bool fits_dtype(double value, DType dtype) {
  return dtype != DType::i64 || (value >= -0x1p63 && value < 0x1p63);
}
// Throws "<op>: the value V does not fit an int64 tensor ..." unless fits_dtype(value, dtype).
void require_fits(double value, DType dtype, const char* op);
[[noreturn]] void conversion_error(double value, const char* from, const char* to, const char* op);
// static_cast<D>(v) for one element, throwing (naming `op`) where a floating v does not fit an
// integer D.
template <class D, class S>
D convert_element(S v, const char* op) {
  if constexpr (std::is_integral_v<D> && !std::is_same_v<D, bool> && std::is_floating_point_v<S>) {
    constexpr double bound = static_cast<double>(std::uint64_t{1} << std::numeric_limits<D>::digits);
    if (!(static_cast<double>(v) >= -bound && static_cast<double>(v) < bound))
      conversion_error(static_cast<double>(v), std::is_same_v<S, float> ? "float32" : "float64",
                       std::is_same_v<D, std::int64_t> ? "int64" : "int32", op);
  }
  return static_cast<D>(v);
}

// Normalises a possibly negative dim for a tensor of rank `rank`; throws naming `op`.
// With `scalar_ok`, a 0-d tensor accepts dim 0 and -1 (for reductions and softmax).
std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, const char* op, bool scalar_ok = false);

// Throws "<op>: expected a floating-point tensor, got int64" unless `t` is f32 or f64.
void require_floating(const Tensor& t, const char* op);
// Throws unless a and b share one dtype.
void require_same_dtype(const Tensor& a, const Tensor& b, const char* op);
// Throws "<op>: undefined tensor" for default-constructed tensors.
void require_defined(const Tensor& t, const char* op);

}  // namespace xgrad

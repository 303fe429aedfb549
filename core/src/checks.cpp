// The argument checks of checks.hpp: each throws an Error naming the op and the value.
#include <algorithm>
#include <string>

#include <fmt/format.h>

#include "checks.hpp"

namespace xgrad {

void check_shape(const Shape& shape, const char* op) {
  std::int64_t span = 1;
  for (auto e : shape) {
    if (e < 0) throw Error(std::string(op) + ": negative extent in shape " + shape_str(shape));
    if (__builtin_mul_overflow(span, std::max<std::int64_t>(e, 1), &span))
      throw Error(std::string(op) + ": shape " + shape_str(shape) + " has more elements than an int64 can count");
  }
}

std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, const char* op, bool scalar_ok) {
  // Reductions and softmax accept dim 0 / -1 on a 0-d tensor, as PyTorch does; ops that index
  // a dimension do not.
  const std::int64_t r = rank == 0 && scalar_ok ? 1 : rank;
  if (dim < -r || dim >= r)
    throw Error(std::string(op) + ": dim " + std::to_string(dim) + " is out of range for a tensor of rank " +
                std::to_string(rank));
  return dim < 0 ? dim + r : dim;
}

void require_fits(double value, DType dtype, const char* op) {
  if (!fits_dtype(value, dtype))
    throw Error(std::string(op) + ": the value " + fmt::format("{}", value) + " does not fit a " +
                std::string(dtype_name(dtype)) + " tensor (an int64 holds finite values in [-2^63, 2^63))");
}

void conversion_error(double value, const char* from, const char* to, const char* op) {
  throw Error(std::string(op) + ": the " + from + " value " + fmt::format("{}", value) + " cannot be converted to " + to +
              " (NaN, infinite or out of its range)");
}

void require_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw Error(std::string(op) + ": undefined tensor");
}

void require_floating(const Tensor& t, const char* op) {
  require_defined(t, op);
  if (!is_floating(t.dtype()))
    throw Error(std::string(op) + ": expected a floating-point tensor, got " +
                std::string(dtype_name(t.dtype())));
}

void require_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  require_defined(a, op);
  require_defined(b, op);
  if (a.dtype() != b.dtype())
    throw Error(std::string(op) + ": dtype mismatch, " + std::string(dtype_name(a.dtype())) + " vs " +
                std::string(dtype_name(b.dtype())));
}

}  // namespace xgrad

#pragma once
/// \file
/// Element types and shapes: the plain C++ vocabulary of xgrad's public API.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace xgrad {

/// Element type of a tensor.
/// - `f32`: the default, for training.
/// - `f64`: for precision work and gradcheck.
/// - `i64`: indices and labels; never differentiable.
/// - `b8`: booleans, the result of comparisons; never differentiable.
enum class DType : std::uint8_t { f32, f64, i64, b8 };

/// PyTorch-style name: "float32", "float64", "int64", "bool".
std::string_view dtype_name(DType dtype);
/// Bytes per element.
std::size_t dtype_size(DType dtype);
/// True for f32 and f64, the dtypes that can require grad.
bool is_floating(DType dtype);

/// A tensor shape: one extent per dimension; `{}` is a 0-d scalar.
using Shape = std::vector<std::int64_t>;

/// "(3, 4)"; "()" for a scalar.
std::string shape_str(const Shape& shape);
/// Product of the extents (1 for a scalar); throws `Error` naming the shape when it overflows.
std::int64_t shape_numel(const Shape& shape);

}  // namespace xgrad

#pragma once
/// \file
/// Creating tensors: from values, constant fills, ranges and seeded random draws.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// A 1-D tensor of `values`, converted to `dtype`.
/// Example: `Tensor v = tensor({1, 2, 3});`
Tensor tensor(std::initializer_list<double> values, DType dtype = DType::f32);
/// A tensor of `values` laid out in row-major order with `shape`.
/// Example: `Tensor m = tensor({1, 2, 3, 4}, {2, 2}, DType::f64);`
Tensor tensor(std::initializer_list<double> values, const Shape& shape, DType dtype = DType::f32);
/// A 0-d tensor holding `value`.
Tensor scalar(double value, DType dtype = DType::f32);
/// Tensors from vectors, keeping the element type: float → f32, double → f64,
/// int64_t → i64, bool → b8 (vector<bool> is copied element by element). `values` holds
/// numel(shape) elements in row-major order.
/// Example: `Tensor x = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});`
///@{
Tensor from_vector(const std::vector<float>& values, const Shape& shape);
Tensor from_vector(const std::vector<double>& values, const Shape& shape);
Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape);
Tensor from_vector(const std::vector<bool>& values, const Shape& shape);
///@}

Tensor empty(const Shape& shape, DType dtype = DType::f32);  ///< uninitialised values
/// All zeros. Example: `Tensor h0 = zeros({2, 8, 64});`
Tensor zeros(const Shape& shape, DType dtype = DType::f32);
/// All ones.
Tensor ones(const Shape& shape, DType dtype = DType::f32);
/// Every element `value`. Example: `Tensor mask = full({4, 10}, -1e9);`
Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
/// 0, 1, ..., end-1 as i64.
Tensor arange(std::int64_t end);
/// start, start+step, ... below end (above end for negative step).
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32);
/// n×m identity (m = n when omitted).
Tensor eye(std::int64_t n, std::int64_t m = -1, DType dtype = DType::f32);

/// Seeds the generator behind every random call below; the same seed gives the same draws.
void manual_seed(std::uint64_t seed);
/// The generator's whole state as text (PyTorch's `get_rng_state`): saved in a checkpoint, it
/// lets a resumed run draw exactly what the uninterrupted run would have drawn.
std::string rng_state();
/// Restores a state returned by `rng_state()`; throws when `state` is not one.
void set_rng_state(const std::string& state);
/// Uniform in [0, 1).
Tensor rand(const Shape& shape, DType dtype = DType::f32);
/// Uniform in [low, high).
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32);
/// Standard normal.
Tensor randn(const Shape& shape, DType dtype = DType::f32);
/// Integers uniform in [low, high), as i64.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape);
/// Bernoulli(p) draws as 0/1 in `dtype` (for dropout masks).
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32);

/// As `empty`, `zeros`, `ones`, `full`, `rand` and `randn` with t's shape and dtype (a new
/// tensor that does not require grad). Example: `Tensor g = zeros_like(w);`
///@{
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
Tensor rand_like(const Tensor& t);
Tensor randn_like(const Tensor& t);
///@}

}  // namespace xgrad

#pragma once
/// \file
/// The ops. A small, closed set of primitives has its own forward and backward;
/// everything else is composed from them.
///
/// The primitives are listed once, in `primitives()` (core/src/primitives.cpp): name, family
/// and forward rule. A core op that records a name missing from it throws, docs/tensors.md's
/// table is checked against it, and every entry is gradchecked (tests/test_gradcheck.cpp).
///
/// Not differentiable: eq, ne, lt, le, gt, ge (→ b8), argmax / argmin (→ i64).
/// Composed (no backward of their own): mean, var, squeeze, unsqueeze, flatten, transpose,
/// chunk, unbind, stack, masked_fill, the 1-D forms of matmul, and the operators. The shape
/// ops return views that share storage where PyTorch's do (see Tensor).
///
/// Binary ops broadcast with numpy's rules and need operands of one dtype; a scalar operand
/// takes the tensor's dtype. Negative `dim` counts from the end.
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// One row of the primitive table above.
struct PrimitiveInfo {
  std::string_view name;     ///< the name a recorded node carries, e.g. "matmul"
  std::string_view family;   ///< its group in the table, e.g. "arithmetic", "shape"
  std::string_view forward;  ///< the forward rule in one line, e.g. "a + b"
};
/// The primitive table, in the order above; a recorded node's name is one of these names.
std::span<const PrimitiveInfo> primitives();

// --- arithmetic (broadcasting) ---------------------------------------------------------
/// a + b, a − b, a · b and a / b elementwise, broadcast; the result has the broadcast shape.
/// Example: `Tensor y = add(x, bias);   // (B, H) + (H) → (B, H)`
///@{
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
///@}
/// −a, elementwise.
Tensor neg(const Tensor& a);
/// a ^ exponent, elementwise.
Tensor pow(const Tensor& a, double exponent);
/// a ^ b, elementwise with broadcasting (a > 0 where b's gradient is needed).
Tensor pow(const Tensor& a, const Tensor& b);

/// start + weight·(end − start), elementwise with broadcasting (torch.lerp's formula), in one
/// pass each way: a GRU's new state n + z·(h − n) is lerp(n, h, z). As in PyTorch, backward
/// keeps only what it reads: the weight for start's and end's gradients (a scalar weight as a
/// number), start and end only when the weight requires grad.
Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight);
/// lerp with a number for the weight.
Tensor lerp(const Tensor& start, const Tensor& end, double weight);

/// The arithmetic ops as operators: add, sub, mul, div and neg; a number operand takes the
/// tensor's dtype. Example: `Tensor y = 2.0 * x + b;`
///@{
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
///@}

// --- unary math and activations ----------------------------------------------------------
/// eˣ, ln x (natural log), √x and |x|, elementwise; the shape is kept.
/// Example: `Tensor std = sqrt(var(x, {1}) + 1e-5);`
///@{
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor abs(const Tensor& a);
///@}
/// Limits every element to [lo, hi]; the gradient is 1 inside, 0 where clamped.
Tensor clamp(const Tensor& a, double lo, double hi);
/// 1 / (1 + e⁻ˣ), elementwise (a gate's activation).
Tensor sigmoid(const Tensor& a);
/// Hyperbolic tangent, elementwise.
Tensor tanh(const Tensor& a);
/// max(x, 0), elementwise; the gradient at 0 is 0, as PyTorch's.
Tensor relu(const Tensor& a);
/// x for x ≥ 0, negative_slope · x below, elementwise.
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
/// Exact GELU, a·Φ(a), as PyTorch's default.
Tensor gelu(const Tensor& a);
/// ln(1 + e^a), computed without overflow.
Tensor softplus(const Tensor& a);

// --- matmul -------------------------------------------------------------------------------
/// Matrix product with numpy/PyTorch semantics:
/// - (n, k) × (k, m) → (n, m); 1-D operands are a row (left) or a column (right) vector
///   and that dimension is dropped from the result: (k) × (k) → scalar.
/// - (..., n, k) × (..., k, m) → (..., n, m), batch dimensions broadcast.
/// Runs on CBLAS GEMM; gradients use transpose flags, never transposed copies.
/// Example: `matmul(randn({8, 5, 3}), randn({3, 4}))  // (8, 5, 4)`
Tensor matmul(const Tensor& a, const Tensor& b);

/// y = x·wᵀ + b, the affine map of nn::Linear and of the recurrent cells, as one GEMM that
/// reads w transposed in place (no transposed copy) and starts from b (no separate add):
/// x (..., in), w (out, in), b undefined or broadcastable to (..., out) → (..., out).
/// b is a bias (out) or, in a recurrent step, a whole (B, out) term such as the projected
/// input of that step. In backward, a gradient that already has an accumulated value (a
/// weight reused at every time step) is added into it by the GEMM.
/// Example: `linear(randn({8, 4}), randn({3, 4}), zeros({3}))  // (8, 3)`
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});

// --- shape ------------------------------------------------------------------------------
/// Same elements in a new shape; one extent may be -1 (inferred).
Tensor reshape(const Tensor& a, const Shape& shape);
/// Merges dims start_dim..end_dim into one.
Tensor flatten(const Tensor& a, std::int64_t start_dim = 0, std::int64_t end_dim = -1);
/// Removes dimension `dim`, which must have extent 1.
Tensor squeeze(const Tensor& a, std::int64_t dim);
/// Removes every dimension of extent 1.
Tensor squeeze(const Tensor& a);
/// Inserts a dimension of extent 1 at `dim` (0..a.dim()).
Tensor unsqueeze(const Tensor& a, std::int64_t dim);
/// Reorders dimensions: out.shape[i] = a.shape[dims[i]].
Tensor permute(const Tensor& a, const std::vector<std::int64_t>& dims);
/// Swaps two dimensions.
Tensor transpose(const Tensor& a, std::int64_t dim0, std::int64_t dim1);
/// Broadcasts to `shape` (new leading dims allowed; -1 keeps an extent).
Tensor expand(const Tensor& a, const Shape& shape);
/// Elements [start, start + length) along `dim`.
Tensor narrow(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t length);
/// Elements [start, end) along `dim`; negative start / end count from the end, and both
/// are clamped to the extent, as Python slicing `a[start:end]`.
Tensor slice(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t end);
/// The slice at `index` along `dim`, with that dimension removed.
Tensor select(const Tensor& a, std::int64_t dim, std::int64_t index);
/// A view of a's storage with any geometry: element i of the result is storage element
/// `storage_offset + Σ i_d·strides[d]` (as torch.as_strided). Bounds are checked against the
/// storage, with every product and sum checked for int64 overflow; extents, strides and the
/// offset must be >= 0. Its gradient lands in those elements of a (a must be contiguous to
/// differentiate). Writing through a view whose elements overlap is refused (clone() it).
Tensor as_strided(const Tensor& a, const Shape& shape, const std::vector<std::int64_t>& strides,
                  std::int64_t storage_offset);
/// Joins tensors of equal shape except along `dim`.
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
/// Joins tensors of equal shape along a new dimension `dim`.
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
/// Pieces of `sizes[i]` elements along `dim` (sizes sum to the extent); one graph node.
std::vector<Tensor> split(const Tensor& a, const std::vector<std::int64_t>& sizes,
                          std::int64_t dim = 0);
/// Pieces of `split_size` elements along `dim` (the last may be smaller).
std::vector<Tensor> split(const Tensor& a, std::int64_t split_size, std::int64_t dim = 0);
/// `chunks` pieces of equal size along `dim` (as PyTorch: ceil(n / chunks) each).
std::vector<Tensor> chunk(const Tensor& a, std::int64_t chunks, std::int64_t dim = 0);
/// Every slice along `dim`, that dimension removed. One split node, so taking all time
/// steps of a (T, B, H) tensor costs O(T) in backward, not O(T²).
std::vector<Tensor> unbind(const Tensor& a, std::int64_t dim = 0);

// --- indexing and masking --------------------------------------------------------------------
/// Slices of `a` at the i64 `index` positions along `dim` (an embedding lookup is
/// `index_select(weight, 0, ids)`). Backward scatter-adds, so repeated indices accumulate.
Tensor index_select(const Tensor& a, std::int64_t dim, const Tensor& index);
/// out[i][j][k] = a[index[i][j][k]][j][k] for dim 0 (and likewise for other dims); `index`
/// has a's rank and sizes no larger than a's outside `dim`.
Tensor gather(const Tensor& a, std::int64_t dim, const Tensor& index);
/// Elementwise `cond ? a : b`, broadcast; cond is b8 (or any dtype, nonzero = true).
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// `a` with `value` where mask is true (mask broadcast to a's shape).
Tensor masked_fill(const Tensor& a, const Tensor& mask, double value);

// --- comparisons (b8 results, not differentiable) ----------------------------------------------
/// a == b, a != b, a < b, a <= b, a > b, a >= b elementwise, broadcast, as a b8 tensor.
/// Example: `double acc = eq(argmax(logits, 1), labels).to(DType::f64).mean().item();`
///@{
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
///@}
/// The comparisons with a number (cast to a's dtype, as the arithmetic operators do), and
/// as operators. Example: `Tensor positive = logits > 0.0;  Tensor mask = gt(ids, 0.0);`
///@{
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);
Tensor operator<(const Tensor& a, double b);
Tensor operator<=(const Tensor& a, double b);
Tensor operator>(const Tensor& a, double b);
Tensor operator>=(const Tensor& a, double b);
///@}

// --- reductions -----------------------------------------------------------------------------
/// Sum of all elements (0-d). b8 and i64 tensors sum to i64.
Tensor sum(const Tensor& a);
/// Sum over `dims`; with keepdim they stay as extent 1.
Tensor sum(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);
/// Mean of all elements (0-d), for floating dtypes.
Tensor mean(const Tensor& a);
/// Mean over `dims`; with keepdim they stay as extent 1.
/// Example: `Tensor per_row = mean(x, {1});   // (B, H) → (B)`
Tensor mean(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);
/// Variance over `dims` (unbiased by default, as PyTorch).
Tensor var(const Tensor& a, const std::vector<std::int64_t>& dims, bool unbiased = true,
           bool keepdim = false);
/// Σ (a − b)² over every element (0-d), for operands of one shape and dtype: mse_loss's sum,
/// in one pass forward (keeping a − b when a gradient is needed) and one backward, where the
/// composed (a − b)² and sum take three each.
Tensor sum_squared_difference(const Tensor& a, const Tensor& b);
/// Largest element (0-d); the gradient goes to the first maximal element.
Tensor max(const Tensor& a);
/// Smallest element (0-d); the gradient goes to the first minimal element.
Tensor min(const Tensor& a);
/// Largest values along `dim` and their i64 indices (first occurrence), as torch.max(a, dim).
std::pair<Tensor, Tensor> max(const Tensor& a, std::int64_t dim, bool keepdim = false);
/// Smallest values along `dim` and their i64 indices (first occurrence), as torch.min(a, dim).
std::pair<Tensor, Tensor> min(const Tensor& a, std::int64_t dim, bool keepdim = false);
/// The i64 index of the largest (argmax) or smallest (argmin) value along `dim`, the first
/// when several tie; not differentiable. Example: `Tensor predicted = argmax(logits, 1);`
///@{
Tensor argmax(const Tensor& a, std::int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& a, std::int64_t dim, bool keepdim = false);
///@}
/// ln Σ exp(a) over `dims`, shifted by the maximum so that it never overflows.
Tensor logsumexp(const Tensor& a, const std::vector<std::int64_t>& dims, bool keepdim = false);

// --- softmax ----------------------------------------------------------------------------------
/// exp(a) / Σ exp(a) along `dim`, fused and stable.
Tensor softmax(const Tensor& a, std::int64_t dim);
/// a - logsumexp(a) along `dim`, fused and stable.
Tensor log_softmax(const Tensor& a, std::int64_t dim);

// --- utilities ----------------------------------------------------------------------------------
/// True when shapes match and |a - b| <= atol + rtol·|b| everywhere.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);
/// The numpy broadcast of two shapes; throws naming `op` when they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op = "broadcast");
/// `grad` summed over broadcast dimensions down to `shape` (the one unbroadcast helper).
Tensor sum_to(const Tensor& grad, const Shape& shape);
/// True when some element is NaN or ±Inf.
bool has_nonfinite(const Tensor& a);

}  // namespace xgrad

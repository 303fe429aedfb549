// The primitive table: the one list of primitives (ops.hpp points here; the table in docs/tensors.md and
// the gradcheck coverage are tested against it).
#include <xgrad/core/ops.hpp>

#include <array>

namespace xgrad {

namespace {
constexpr std::array<PrimitiveInfo, 42> table{{
    {"add", "arithmetic", "a + b (broadcast)"},
    {"sub", "arithmetic", "a - b (broadcast)"},
    {"mul", "arithmetic", "a * b (broadcast)"},
    {"div", "arithmetic", "a / b (broadcast)"},
    {"neg", "arithmetic", "-a"},
    {"pow", "arithmetic", "a ^ scalar"},
    {"pow_tensor", "arithmetic", "a ^ b (broadcast)"},
    {"lerp", "arithmetic", "start + weight * (end - start) (broadcast)"},
    {"exp", "unary", "e^a"},
    {"log", "unary", "ln a"},
    {"sqrt", "unary", "sqrt(a)"},
    {"abs", "unary", "|a|"},
    {"clamp", "unary", "min(max(a, lo), hi)"},
    {"sigmoid", "unary", "1 / (1 + e^-a)"},
    {"tanh", "unary", "tanh a"},
    {"relu", "unary", "max(a, 0)"},
    {"leaky_relu", "unary", "a if a > 0 else slope * a"},
    {"gelu", "unary", "a * Phi(a) (exact, erf)"},
    {"softplus", "unary", "ln(1 + e^a), stable"},
    {"to", "unary", "dtype conversion f32 <-> f64"},
    {"clone", "unary", "copy"},
    {"matmul", "matmul", "(..., n, k) x (..., k, m), CBLAS"},
    {"linear", "matmul", "x w^T + b in one GEMM (b broadcast)"},
    {"reshape", "shape", "same elements, new shape"},
    {"permute", "shape", "reorders dimensions"},
    {"expand", "shape", "broadcasts to a larger shape"},
    {"narrow", "shape", "a slice [start, start+length) along dim (a view)"},
    {"select", "shape", "the slice at index along dim, dim removed (a view)"},
    {"as_strided", "shape", "any geometry over the input's storage (a view)"},
    {"copy_slices", "shape", "an in-place write through a view, in its base's history"},
    {"cat", "shape", "concatenation along dim"},
    {"split", "shape", "pieces along dim (one node, many outputs)"},
    {"index_select", "index", "slices picked by i64 indices along dim"},
    {"gather", "index", "out[i][j] = a[index[i][j]][j] (dim 0)"},
    {"where", "index", "cond ? a : b (broadcast)"},
    {"sum", "reduction", "over dims, keepdim"},
    {"max", "reduction", "values (and indices) along a dim"},
    {"min", "reduction", "values (and indices) along a dim"},
    {"logsumexp", "reduction", "ln sum e^a along dims, stable"},
    {"sum_squared_difference", "reduction", "sum of (a - b)^2, one pass (mse_loss)"},
    {"softmax", "softmax", "fused, stable"},
    {"log_softmax", "softmax", "fused, stable"},
}};
}  // namespace

std::span<const PrimitiveInfo> primitives() { return table; }

}  // namespace xgrad

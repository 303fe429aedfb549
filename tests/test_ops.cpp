// Forward values of every op in ops.hpp, against numbers computed by hand. Gradients are
// checked in test_gradcheck.cpp.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "tensor_approx.hpp"

#include <cmath>
#include <cstdint>
#include <ostream>
#include <vector>

using namespace xgrad;

using namespace xgrad_test;

// --- arithmetic ---------------------------------------------------------------------------------

TEST_CASE("add, sub, mul and div work elementwise") {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({5, 6, 7, 8}, {2, 2});
  CHECK(a + b == approx(tensor({6, 8, 10, 12}, {2, 2})));
  CHECK(b - a == approx(tensor({4, 4, 4, 4}, {2, 2})));
  CHECK(a * b == approx(tensor({5, 12, 21, 32}, {2, 2})));
  CHECK(b / a == approx(tensor({5, 3, 7.0 / 3.0, 2}, {2, 2})));
  CHECK(add(a, b) == approx(a + b));
  CHECK(div(b, a) == approx(b / a));
}

TEST_CASE("add broadcasts a row over every row of a matrix") {
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(m + tensor({10, 20, 30}) == approx(tensor({11, 22, 33, 14, 25, 36}, {2, 3})));
}

TEST_CASE("mul broadcasts a column against a row into a matrix") {
  Tensor col = tensor({1, 2}, {2, 1});
  Tensor row = tensor({10, 20, 30}, {1, 3});
  CHECK(col * row == approx(tensor({10, 20, 30, 20, 40, 60}, {2, 3})));
}

TEST_CASE("a number works as either operand and takes the tensor's dtype") {
  Tensor x = tensor({1, 2, 4});
  CHECK(x + 1 == approx(tensor({2, 3, 5})));
  CHECK(1 + x == approx(tensor({2, 3, 5})));
  CHECK(x - 1 == approx(tensor({0, 1, 3})));
  CHECK(10 - x == approx(tensor({9, 8, 6})));
  CHECK(x * 2 == approx(tensor({2, 4, 8})));
  CHECK(2 * x == approx(tensor({2, 4, 8})));
  CHECK(x / 2 == approx(tensor({0.5, 1, 2})));
  CHECK(8 / x == approx(tensor({8, 4, 2})));
  CHECK((tensor({1.5}, DType::f64) * 2).dtype() == DType::f64);
  Tensor i = arange(3) + 1;
  CHECK(i.dtype() == DType::i64);
  CHECK(i.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 2, 3});
}

TEST_CASE("a 0-d tensor broadcasts against any shape") {
  CHECK(tensor({1, 2, 3}, {3, 1}) * scalar(2) == approx(tensor({2, 4, 6}, {3, 1})));
}

TEST_CASE("neg and unary minus flip the sign") {
  CHECK(neg(tensor({1, -2, 0})) == approx(tensor({-1, 2, 0})));
  CHECK(-tensor({3, -4}) == approx(tensor({-3, 4})));
}

TEST_CASE("pow raises to a number, or elementwise to a broadcast tensor") {
  CHECK(pow(tensor({1, 2, 3}), 2) == approx(tensor({1, 4, 9})));
  CHECK(tensor({4, 9}).pow(0.5) == approx(tensor({2, 3})));
  CHECK(pow(tensor({2, 3}), tensor({3, 2})) == approx(tensor({8, 9})));
  CHECK(pow(tensor({2}), tensor({0, 1, 2, -1})) == approx(tensor({1, 2, 4, 0.5})));
}

// --- unary math and activations -----------------------------------------------------------------

TEST_CASE("exp, log, sqrt and abs compute their elementwise functions") {
  CHECK(exp(tensor({0, 1, -1})) == approx(tensor({1, M_E, 1 / M_E})));
  CHECK(log(tensor({1, M_E * M_E, 0.5})) == approx(tensor({0, 2, -M_LN2})));
  CHECK(sqrt(tensor({4, 2.25, 0})) == approx(tensor({2, 1.5, 0})));
  CHECK(abs(tensor({-3, 0, 2.5})) == approx(tensor({3, 0, 2.5})));
  CHECK(tensor({1}).exp().log().item() == doctest::Approx(1));
}

TEST_CASE("clamp limits every element to [lo, hi]") {
  CHECK(clamp(tensor({-2, -1, 0.5, 1, 3}), -1, 1) == approx(tensor({-1, -1, 0.5, 1, 1})));
}

TEST_CASE("sigmoid and tanh squash to (0, 1) and (-1, 1)") {
  CHECK(sigmoid(tensor({0, 2, -2})) == approx(tensor({0.5, 0.8807970779778823, 0.11920292202211755})));
  CHECK(tanh(tensor({0, 1, -0.5})) == approx(tensor({0, 0.7615941559557649, -0.46211715726000974})));
  // Saturated inputs give exact limits, not NaN.
  CHECK(sigmoid(tensor({-100, 100})) == approx(tensor({0, 1})));
  CHECK(tanh(tensor({-100, 100})) == approx(tensor({-1, 1})));
}

TEST_CASE("relu zeroes negatives; leaky_relu scales them by the slope") {
  CHECK(relu(tensor({-1, 0, 2})) == approx(tensor({0, 0, 2})));
  CHECK(leaky_relu(tensor({-2, 3})) == approx(tensor({-0.02, 3})));
  CHECK(leaky_relu(tensor({-2, 3}), 0.2) == approx(tensor({-0.4, 3})));
}

TEST_CASE("gelu is the exact x·Φ(x)") {
  Tensor y = gelu(tensor({-1, 0, 1, 2}, DType::f64));
  Tensor expected = tensor({-0.15865525393145707, 0, 0.8413447460685429, 1.9544997361036416}, DType::f64);
  CHECK(y == approx(expected, 1e-12, 1e-12));
}

TEST_CASE("softplus is ln(1 + e^x) without overflow or NaN") {
  CHECK(softplus(tensor({0, 1, -1})) ==
        approx(tensor({M_LN2, 1.3132616875182228, 0.31326168751822286})));
  CHECK(softplus(tensor({100})).item() == 100);
  CHECK(softplus(tensor({1000})).item() == 1000);  // e^1000 would overflow

  double tiny = softplus(tensor({-100}, DType::f64)).item();
  CHECK(tiny > 0);
  CHECK(tiny / 3.720075976020836e-44 == doctest::Approx(1.0));  // = e^-100, not 0 or NaN
  double tiny32 = softplus(tensor({-100})).item();
  CHECK(tiny32 >= 0);
  CHECK(tiny32 < 1e-40);
}

// --- matmul ---------------------------------------------------------------------------------------

TEST_CASE("matmul multiplies two matrices") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor({7, 8, 9, 10, 11, 12}, {3, 2});
  CHECK(matmul(a, b) == approx(tensor({58, 64, 139, 154}, {2, 2})));
  CHECK(a.matmul(b) == approx(matmul(a, b)));
}

TEST_CASE("matmul of two vectors is their dot product, a 0-d tensor") {
  Tensor d = matmul(tensor({1, 2, 3}), tensor({4, 5, 6}));
  CHECK(d.shape() == Shape{});
  CHECK(d.item() == 32);
}

TEST_CASE("matmul treats a left vector as a row and a right vector as a column") {
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(matmul(tensor({1, 2}), m) == approx(tensor({9, 12, 15})));  // (2) x (2, 3) -> (3)
  CHECK(matmul(m, tensor({1, 0, -1})) == approx(tensor({-2, -2})));  // (2, 3) x (3) -> (2)
  Tensor batched = matmul(tensor({1, 1}), ones({4, 2, 3}));          // (2) x (4, 2, 3) -> (4, 3)
  CHECK(batched == approx(full({4, 3}, 2)));
}

TEST_CASE("matmul(x, w.t()) gives w a gradient laid out as w, equal to linear's") {
  // The transposed operand's gradient is computed in its own layout, so w's arrives row-major
  // with no transposing copy: bit for bit what linear(x, w), the same product, computes.
  for (const Shape& xs : {Shape{6, 4}, Shape{2, 3, 4}}) {
    CAPTURE(shape_str(xs));
    manual_seed(5);
    const Tensor x0 = randn(xs), w0 = randn({5, 4}), g = randn([&] { Shape s = xs; s.back() = 5; return s; }());
    Tensor x1 = x0.clone().requires_grad_(), w1 = w0.clone().requires_grad_();
    Tensor x2 = x0.clone().requires_grad_(), w2 = w0.clone().requires_grad_();
    Tensor w1t = w1.t();
    std::vector<std::int64_t> arrived;  // the strides of the gradient w1t receives
    w1t.register_hook([&](const Tensor& gt) {
      arrived = gt.strides();
      return Tensor();
    });
    matmul(x1, w1t).backward(g);
    linear(x2, w2).backward(g);
    CHECK(arrived == w1t.strides());  // (1, 4): computed in the operand's own layout
    CHECK(w1.grad().is_contiguous());
    CHECK(w1.grad().shape() == Shape{5, 4});
    CHECK(w1.grad().to_vector<float>() == w2.grad().to_vector<float>());
    CHECK(x1.grad().to_vector<float>() == x2.grad().to_vector<float>());
  }
}

TEST_CASE("matmul(u.t(), w) gives u a gradient laid out as u") {
  manual_seed(6);
  const Tensor u0 = randn({4, 6}), w = randn({4, 5}), g = randn({6, 5});
  Tensor u = u0.clone().requires_grad_();
  Tensor ut = u.t();
  std::vector<std::int64_t> arrived;
  ut.register_hook([&](const Tensor& gt) {
    arrived = gt.strides();
    return Tensor();
  });
  matmul(ut, w).backward(g);
  CHECK(arrived == ut.strides());  // (1, 6)
  CHECK(u.grad().is_contiguous());
  CHECK(u.grad().to_vector<float>() == matmul(w, g.t()).to_vector<float>());  // dU = W · Gᵀ
}

TEST_CASE("matmul multiplies a batch of matrices by one matrix") {
  // (2, 3, 4) x (4, 5): every row of the batch dotted with ones is its row sum, 16r + 6.
  Tensor a = arange(0.0, 24.0).reshape({2, 3, 4});
  Tensor c = matmul(a, ones({4, 5}));
  CHECK(c.shape() == Shape{2, 3, 5});
  CHECK(c.at({0, 0, 0}) == 6);
  CHECK(c.at({0, 1, 3}) == 22);
  CHECK(c.at({1, 2, 4}) == 86);
}

TEST_CASE("matmul multiplies matching batches pairwise") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
  Tensor b = tensor({1, 0, 0, 1, 0, 1, 1, 0}, {2, 2, 2});  // identity, then a column swap
  CHECK(matmul(a, b) == approx(tensor({1, 2, 3, 4, 6, 5, 8, 7}, {2, 2, 2})));
  // (3, 4) x (2, 4, 5): the matrix is shared by both batches.
  Tensor shared = matmul(ones({3, 4}), arange(0.0, 40.0).reshape({2, 4, 5}));
  CHECK(shared.shape() == Shape{2, 3, 5});
  CHECK(shared.at({1, 0, 0}) == 20 + 25 + 30 + 35);
}

TEST_CASE("matmul broadcasts batch dimensions") {
  manual_seed(0);
  Tensor a = randn({2, 1, 3, 4}, DType::f64);
  Tensor b = randn({5, 4, 2}, DType::f64);
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 5, 3, 2});
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 5; ++j) {
      Tensor expected = matmul(a.select(0, i).squeeze(0), b.select(0, j));  // (3, 4) x (4, 2)
      CHECK(c.select(0, i).select(0, j) == approx(expected, 1e-12));
    }
}

// --- shape ------------------------------------------------------------------------------------------

TEST_CASE("reshape keeps row-major order and infers one -1 extent") {
  Tensor a = arange(0.0, 6.0);
  CHECK(a.reshape({-1, 2}) == approx(tensor({0, 1, 2, 3, 4, 5}, {3, 2})));
  CHECK(reshape(a, {2, -1}).shape() == Shape{2, 3});
  CHECK(reshape(a, {1, 6, 1}).shape() == Shape{1, 6, 1});
}

TEST_CASE("flatten merges a range of dimensions") {
  Tensor x = zeros({2, 3, 4});
  CHECK(x.flatten().shape() == Shape{24});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(flatten(x, 0, 1).shape() == Shape{6, 4});
  CHECK(scalar(1).flatten().shape() == Shape{1});
}

TEST_CASE("squeeze removes extent-1 dimensions; unsqueeze inserts one") {
  Tensor x = zeros({1, 3, 1});
  CHECK(squeeze(x, 0).shape() == Shape{3, 1});
  CHECK(x.squeeze(-1).shape() == Shape{1, 3});
  CHECK(squeeze(x).shape() == Shape{3});
  CHECK(squeeze(x, 1).shape() == Shape{1, 3, 1});  // extent 3: left alone, as PyTorch
  Tensor v = tensor({1, 2, 3});
  CHECK(v.unsqueeze(0).shape() == Shape{1, 3});
  CHECK(unsqueeze(v, -1).shape() == Shape{3, 1});
}

TEST_CASE("transpose and t swap two dimensions") {
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(m.t() == approx(tensor({1, 4, 2, 5, 3, 6}, {3, 2})));
  CHECK(transpose(m, 0, 1) == approx(m.t()));
  Tensor x = arange(0.0, 24.0).reshape({2, 3, 4});
  Tensor y = x.transpose(-1, 0);  // (4, 3, 2), y[k][j][i] = x[i][j][k]
  CHECK(y.shape() == Shape{4, 3, 2});
  CHECK(y.at({3, 1, 0}) == x.at({0, 1, 3}));
  CHECK(y.at({1, 2, 1}) == 21);
}

TEST_CASE("permute reorders dimensions") {
  Tensor x = arange(0.0, 24.0).reshape({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});  // p[k][i][j] = x[i][j][k] = 12i + 4j + k
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.at({3, 1, 2}) == 23);
  CHECK(p.at({1, 0, 2}) == 9);
  CHECK(permute(x, {0, 1, 2}) == approx(x));
}

TEST_CASE("expand repeats extent-1 dimensions and adds leading ones") {
  CHECK(tensor({1, 2, 3}).expand({2, 3}) == approx(tensor({1, 2, 3, 1, 2, 3}, {2, 3})));
  CHECK(expand(tensor({1, 2}, {2, 1}), {-1, 3}) == approx(tensor({1, 1, 1, 2, 2, 2}, {2, 3})));
}

TEST_CASE("narrow and slice take a range; negative positions count from the end") {
  Tensor x = arange(0.0, 10.0);
  CHECK(narrow(x, 0, 2, 3) == approx(tensor({2, 3, 4})));
  CHECK(x.narrow(0, -3, 2) == approx(tensor({7, 8})));
  CHECK(slice(x, 0, -3, 10) == approx(tensor({7, 8, 9})));
  CHECK(slice(x, 0, 1, -7) == approx(tensor({1, 2})));
  CHECK(slice(x, 0, 8, 100) == approx(tensor({8, 9})));  // clamped, like Python's x[8:100]
  CHECK(slice(x, 0, 5, 2).numel() == 0);

  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(narrow(m, 1, 1, 2) == approx(tensor({2, 3, 5, 6}, {2, 2})));
  CHECK(slice(m, -1, 0, -1) == approx(tensor({1, 2, 4, 5}, {2, 2})));
}

TEST_CASE("select takes one index along a dimension and removes it") {
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(m.select(0, 1) == approx(tensor({4, 5, 6})));
  CHECK(select(m, 1, -1) == approx(tensor({3, 6})));
  CHECK(select(tensor({7, 8}), 0, 1).shape() == Shape{});
}

TEST_CASE("cat joins along an existing dimension; stack along a new one") {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({5, 6}, {1, 2});
  CHECK(cat({a, b}) == approx(tensor({1, 2, 3, 4, 5, 6}, {3, 2})));
  CHECK(cat({a, b.t()}, -1) == approx(tensor({1, 2, 5, 3, 4, 6}, {2, 3})));

  Tensor u = tensor({1, 2}), v = tensor({3, 4});
  CHECK(stack({u, v}) == approx(tensor({1, 2, 3, 4}, {2, 2})));
  CHECK(stack({u, v}, 1) == approx(tensor({1, 3, 2, 4}, {2, 2})));
}

TEST_CASE("split cuts pieces of a given size, the last one possibly smaller") {
  Tensor x = arange(0.0, 5.0);
  auto pieces = split(x, 2);
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[0] == approx(tensor({0, 1})));
  CHECK(pieces[1] == approx(tensor({2, 3})));
  CHECK(pieces[2] == approx(tensor({4})));

  auto sized = split(x, std::vector<std::int64_t>{1, 4});
  REQUIRE(sized.size() == 2);
  CHECK(sized[1] == approx(tensor({1, 2, 3, 4})));

  auto cols = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).split(2, 1);
  REQUIRE(cols.size() == 2);
  CHECK(cols[1] == approx(tensor({3, 6}, {2, 1})));
}

TEST_CASE("chunk cuts ceil(n / chunks) elements per piece, as PyTorch") {
  auto c = chunk(arange(0.0, 5.0), 3);
  REQUIRE(c.size() == 3);
  CHECK(c[0] == approx(tensor({0, 1})));
  CHECK(c[2] == approx(tensor({4})));
  CHECK(arange(0.0, 6.0).chunk(4).size() == 3);  // pieces of 2: three of them, not four
  auto gates = ones({2, 8}).chunk(4, 1);          // the LSTM split into i, f, g, o
  REQUIRE(gates.size() == 4);
  CHECK(gates[3].shape() == Shape{2, 2});
}

TEST_CASE("unbind returns every slice along a dimension") {
  auto cols = unbind(tensor({1, 2, 3, 4, 5, 6}, {2, 3}), 1);
  REQUIRE(cols.size() == 3);
  CHECK(cols[0] == approx(tensor({1, 4})));
  CHECK(cols[2] == approx(tensor({3, 6})));
  CHECK(tensor({1, 2, 3, 4}, {2, 2}).unbind()[1] == approx(tensor({3, 4})));
}

// --- indexing and masking ------------------------------------------------------------------------

TEST_CASE("index_select picks rows, repeated indices included") {
  Tensor weight = tensor({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  Tensor ids = tensor({3, 0, 3}, DType::i64);
  CHECK(index_select(weight, 0, ids) == approx(tensor({30, 31, 0, 1, 30, 31}, {3, 2})));
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(m.index_select(1, tensor({2, 0}, DType::i64)) == approx(tensor({3, 1, 6, 4}, {2, 2})));
}

TEST_CASE("index_select with a 2-D index is an embedding lookup: (batch, time) -> (batch, time, dim)") {
  Tensor weight = tensor({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  Tensor ids = tensor({1, 2, 3, 1}, {2, 2}, DType::i64);
  CHECK(index_select(weight, 0, ids) == approx(tensor({10, 11, 20, 21, 30, 31, 10, 11}, {2, 2, 2})));
}

TEST_CASE("gather picks one element per position along a dimension") {
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  // dim 1: out[i][j] = a[i][index[i][j]], e.g. the score of each row's target class.
  CHECK(gather(a, 1, tensor({2, 0}, {2, 1}, DType::i64)) == approx(tensor({3, 4}, {2, 1})));
  // dim 0: out[i][j] = a[index[i][j]][j]
  CHECK(a.gather(0, tensor({1, 0, 1}, {1, 3}, DType::i64)) == approx(tensor({4, 2, 6}, {1, 3})));
}

TEST_CASE("where picks from a where cond is true, else from b, broadcasting all three") {
  Tensor a = tensor({1, 2, 3}), b = tensor({10, 20, 30});
  CHECK(where(tensor({1, 0, 1}, DType::b8), a, b) == approx(tensor({1, 20, 3})));
  CHECK(where(tensor({1, 0}, {2, 1}, DType::b8), ones({2, 3}), scalar(0)) ==
        approx(tensor({1, 1, 1, 0, 0, 0}, {2, 3})));
  // Any dtype works as the condition: nonzero is true.
  CHECK(where(tensor({0, 2.5, -1}), a, b) == approx(tensor({10, 2, 3})));
}

TEST_CASE("masked_fill writes a value where the (broadcast) mask is true") {
  Tensor x = tensor({1, 2, 3, 4}, {2, 2});
  CHECK(masked_fill(x, gt(x, scalar(2)), -1) == approx(tensor({1, 2, -1, -1}, {2, 2})));
  CHECK(x.masked_fill(tensor({1, 0}, DType::b8), 0) == approx(tensor({0, 2, 0, 4}, {2, 2})));
  Tensor scores = masked_fill(zeros({2}), tensor({0, 1}, DType::b8), -INFINITY);
  CHECK(std::isinf(scores.at({1})));
  CHECK(scores.at({0}) == 0);
}

TEST_CASE("comparisons give bool tensors") {
  Tensor a = tensor({1, 2, 3}), b = tensor({3, 2, 1});
  CHECK(eq(a, b).dtype() == DType::b8);
  CHECK(eq(a, b).to_vector<bool>() == std::vector<bool>{false, true, false});
  CHECK(ne(a, b).to_vector<bool>() == std::vector<bool>{true, false, true});
  CHECK(lt(a, b).to_vector<bool>() == std::vector<bool>{true, false, false});
  CHECK(le(a, b).to_vector<bool>() == std::vector<bool>{true, true, false});
  CHECK(gt(a, b).to_vector<bool>() == std::vector<bool>{false, false, true});
  CHECK(ge(a, b).to_vector<bool>() == std::vector<bool>{false, true, true});
  CHECK(gt(a, scalar(1.5)).to_vector<bool>() == std::vector<bool>{false, true, true});
}

// --- reductions ---------------------------------------------------------------------------------

TEST_CASE("sum reduces all dimensions, one, or several, optionally keeping them") {
  Tensor x = arange(0.0, 24.0).reshape({2, 3, 4});  // x[i][j][k] = 12i + 4j + k
  CHECK(x.sum().shape() == Shape{});
  CHECK(x.sum().item() == 276);
  CHECK(sum(x, {1}) == approx(tensor({12, 15, 18, 21, 48, 51, 54, 57}, {2, 4})));
  CHECK(sum(x, {-1}, true) == approx(tensor({6, 22, 38, 54, 70, 86}, {2, 3, 1})));
  CHECK(sum(x, {0, 2}) == approx(tensor({60, 92, 124})));
  CHECK(x.sum({2, 0}, true) == approx(tensor({60, 92, 124}, {1, 3, 1})));
}

TEST_CASE("sum of bool or int64 tensors counts in int64") {
  Tensor hits = sum(eq(tensor({1, 2, 3, 4}), tensor({1, 0, 3, 4})));
  CHECK(hits.dtype() == DType::i64);
  CHECK(hits.item() == 3);
  CHECK(arange(5).sum().item<std::int64_t>() == 10);
}

TEST_CASE("mean averages over all dimensions or the ones given") {
  Tensor x = arange(0.0, 24.0).reshape({2, 3, 4});
  CHECK(x.mean().item() == doctest::Approx(11.5));
  CHECK(mean(x, {1}) == approx(tensor({4, 5, 6, 7, 16, 17, 18, 19}, {2, 4})));
  CHECK(x.mean({0, 1}, true).shape() == Shape{1, 1, 4});
}

TEST_CASE("var is unbiased by default, as PyTorch") {
  Tensor x = tensor({1, 2, 3, 4});
  CHECK(var(x, {0}).item() == doctest::Approx(5.0 / 3.0));
  CHECK(var(x, {0}, false).item() == doctest::Approx(1.25));
  CHECK(var(tensor({1, 3, 2, 6}, {2, 2}), {1}) == approx(tensor({2, 8})));
  CHECK(var(tensor({1, 3, 2, 6}, {2, 2}), {1}, true, true).shape() == Shape{2, 1});
}

TEST_CASE("max and min along a dim return values and first-occurrence indices") {
  Tensor x = tensor({1, 5, 5, 7, 2, 7}, {2, 3});
  auto [vmax, imax] = max(x, 1);
  CHECK(vmax == approx(tensor({5, 7})));
  CHECK(imax.dtype() == DType::i64);
  CHECK(imax.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 0});
  auto [vmin, imin] = min(x, 1);
  CHECK(vmin == approx(tensor({1, 2})));
  CHECK(imin.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1});
  auto [v0, i0] = max(x, 0, true);
  CHECK(v0 == approx(tensor({7, 5, 7}, {1, 3})));
  CHECK(i0.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 0, 1});
}

TEST_CASE("max and min of a whole tensor are 0-d") {
  Tensor x = tensor({3, -1, 4, 1, -5, 9}, {2, 3});
  CHECK(max(x).shape() == Shape{});
  CHECK(max(x).item() == 9);
  CHECK(min(x).item() == -5);
}

TEST_CASE("argmax and argmin give int64 positions, first on ties") {
  Tensor x = tensor({1, 5, 5, 7, 2, 7}, {2, 3});
  CHECK(x.argmax(1).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 0});
  CHECK(argmax(x, 1, true).shape() == Shape{2, 1});
  CHECK(argmin(x, 0).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 0});
}

TEST_CASE("logsumexp is ln Σ e^x, stable for large and -inf inputs") {
  CHECK(logsumexp(tensor({1, 2, 3}, DType::f64), {0}).item() == doctest::Approx(3.4076059644443806));
  // e^1000 overflows; the shifted form does not.
  CHECK(logsumexp(tensor({1000, 1000}, DType::f64), {0}).item() == doctest::Approx(1000 + M_LN2));
  CHECK(logsumexp(tensor({0, 0, 1000, -1000}, {2, 2}, DType::f64), {1}) ==
        approx(tensor({M_LN2, 1000}, DType::f64)));
  CHECK(logsumexp(ones({2, 3}), {1}, true).shape() == Shape{2, 1});
  double all_masked = logsumexp(tensor({-INFINITY, -INFINITY}), {0}).item();
  CHECK(std::isinf(all_masked));
  CHECK(all_masked < 0);
}

TEST_CASE("softmax rows are probabilities summing to 1") {
  Tensor p = softmax(tensor({1, 2, 3}), 0);
  CHECK(p == approx(tensor({0.09003057317038046, 0.24472847105479767, 0.6652409557748219})));
  Tensor rows = softmax(tensor({1, 2, 3, 0, 0, 0}, {2, 3}), 1);
  CHECK(rows.sum({1}) == approx(tensor({1, 1})));
  CHECK(rows.select(0, 1) == approx(full({3}, 1.0 / 3.0)));
  Tensor cols = tensor({1, 2, 3, 0, 0, 0}, {2, 3}).softmax(0);
  CHECK(cols.sum({0}) == approx(tensor({1, 1, 1})));
}

TEST_CASE("softmax is stable for large inputs") {
  Tensor p = softmax(tensor({1000, 1001, 1002}), -1);
  CHECK_FALSE(has_nonfinite(p));
  CHECK(p == approx(tensor({0.09003057317038046, 0.24472847105479767, 0.6652409557748219})));
}

TEST_CASE("softmax over the last axis of f32 rows agrees with f64, at every row length, with -inf") {
  // f32 rows along the last axis take a vectorised path; each length from 1 to 40 covers
  // rows shorter than a SIMD batch, whole batches and a tail.
  for (std::int64_t n = 1; n <= 40; ++n) {
    manual_seed(n);
    Tensor x64 = randn({3, n}, DType::f64) * 4.0;
    if (n > 1) {
      x64.select(0, 1).select(0, n - 1).fill_(-INFINITY);  // a masked key
      x64.select(0, 2).fill_(-INFINITY);
      x64.select(0, 2).select(0, 0).fill_(1.0);  // one key left
    }
    Tensor p = softmax(x64.to(DType::f32), -1);
    CHECK_FALSE(has_nonfinite(p));
    CHECK(p.to(DType::f64) == approx(softmax(x64, -1), 1e-5, 1e-7));
  }
}

TEST_CASE("log_softmax is x - logsumexp(x), finite where softmax underflows") {
  CHECK(log_softmax(tensor({1, 2, 3}, DType::f64), 0) ==
        approx(tensor({-2.4076059644443806, -1.4076059644443806, -0.4076059644443806}, DType::f64)));
  // softmax of -1000 next to 0 is 0 (log would be -inf); log_softmax stays exact.
  CHECK(log_softmax(tensor({0, -1000}, DType::f64), 0) == approx(tensor({0, -1000}, DType::f64)));
  Tensor rows = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).log_softmax(1);
  CHECK(rows.exp().sum({1}) == approx(tensor({1, 1})));
}

// --- utilities ------------------------------------------------------------------------------------

TEST_CASE("allclose compares shapes and values within rtol and atol") {
  CHECK(allclose(tensor({1, 2}), tensor({1.000001, 2})));
  CHECK_FALSE(allclose(tensor({1, 2}), tensor({1.01, 2})));
  CHECK_FALSE(allclose(tensor({1, 2}), tensor({1, 2}, {1, 2})));  // same values, other shape
  CHECK(allclose(tensor({100}), tensor({101}), 0.02));
  CHECK_FALSE(allclose(tensor({100}), tensor({101})));
  CHECK(allclose(tensor({0}), tensor({1e-3}), 0, 1e-2));
  CHECK_FALSE(allclose(tensor({NAN}), tensor({NAN})));
}

TEST_CASE("broadcast_shapes follows numpy's rules") {
  CHECK(broadcast_shapes({2, 1, 3}, {4, 1}) == Shape{2, 4, 3});
  CHECK(broadcast_shapes({}, {3}) == Shape{3});
  CHECK(broadcast_shapes({5, 1}, {5, 1}) == Shape{5, 1});
}

TEST_CASE("sum_to sums a broadcast gradient back to the operand's shape") {
  CHECK(sum_to(ones({2, 3, 4}), {3, 1}) == approx(full({3, 1}, 8)));
  CHECK(sum_to(arange(0.0, 6.0).reshape({2, 3}), {3}) == approx(tensor({3, 5, 7})));
  CHECK(sum_to(arange(0.0, 6.0).reshape({2, 3}), {2, 1}) == approx(tensor({3, 12}, {2, 1})));
  CHECK(sum_to(ones({2, 3}), {}).item() == 6);
  CHECK(sum_to(ones({2, 3}), {2, 3}) == approx(ones({2, 3})));
}

TEST_CASE("has_nonfinite spots NaN and infinities") {
  CHECK_FALSE(has_nonfinite(tensor({1, 2})));
  CHECK(has_nonfinite(tensor({1, NAN})));
  CHECK(has_nonfinite(log(tensor({0}))));
}

// --- strided operands read in place ---------------------------------------------------------------

TEST_CASE("elementwise ops on column blocks, rows and broadcast biases equal the same ops on dense copies") {
  // Column blocks of a wide matrix (a gate chunk: every row dense, rows apart) and rows
  // broadcast over them (a bias) are read in place when rows are long; narrow ones are copied.
  for (const std::int64_t cols : {3, 64, 70}) {
    for (DType dtype : {DType::f32, DType::f64}) {
      CAPTURE(cols);
      const Tensor wide = uniform({9, 3 * cols + 5}, -2.0, 2.0, dtype);
      const Tensor a = narrow(wide, 1, 1, cols), b = narrow(wide, 1, cols + 3, cols);  // (9, cols) views
      const Tensor ad = a.contiguous(), bd = b.contiguous();
      const Tensor bias = uniform({cols}, -1.0, 1.0, dtype), row = reshape(bias, {1, cols});
      REQUIRE_FALSE(a.is_contiguous());
      CHECK(sigmoid(a) == approx(sigmoid(ad)));
      CHECK(tanh(b) == approx(tanh(bd)));
      CHECK(exp(a) == approx(exp(ad)));
      CHECK(a + b == approx(ad + bd));
      CHECK(a - bd == approx(ad - bd));
      CHECK(ad * b == approx(ad * bd));
      CHECK(a / (b * b + 1.0) == approx(ad / (bd * bd + 1.0)));
      CHECK(a + bias == approx(ad + bias));
      CHECK(row - a == approx(row - ad));
      CHECK(a * expand(row, {9, cols}) == approx(ad * bias));
      CHECK(lt(a, b).to_vector<double>() == lt(ad, bd).to_vector<double>());
      // A strided row as the broadcast operand: every other element of a longer vector.
      const Tensor every_other = narrow(reshape(uniform({2 * cols}, -1.0, 1.0, dtype), {cols, 2}), 1, 0, 1);
      const Tensor strided_bias = reshape(every_other, {cols});
      CHECK(a + strided_bias == approx(ad + strided_bias.contiguous()));
    }
  }
}

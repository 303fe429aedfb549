// Common mistakes throw xgrad::Error with a message that names the op and the offending
// shapes, dtypes or indices, never crash.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

// --- shapes -------------------------------------------------------------------------------------

TEST_CASE("matmul with mismatched inner dimensions names both shapes") {
  CHECK_THROWS_WITH_AS(matmul(ones({3, 4}), ones({5, 6})), "matmul: cannot multiply (3, 4) by (5, 6)", Error);
  CHECK_THROWS_WITH_AS(matmul(ones({3}), ones({4})), "matmul: cannot multiply (3) by (4)", Error);
  CHECK_THROWS_WITH_AS(matmul(ones({3}), ones({4, 2})), "matmul: cannot multiply (3) by (4, 2)", Error);
  CHECK_THROWS_WITH_AS(matmul(ones({2, 3, 4}), ones({2, 5, 6})), "matmul: cannot multiply (2, 3, 4) by (2, 5, 6)",
                       Error);
}

TEST_CASE("matmul with batch dimensions that do not broadcast throws") {
  CHECK_THROWS_WITH_AS(matmul(ones({2, 3, 4}), ones({3, 4, 5})), doctest::Contains("matmul: "), Error);
}

TEST_CASE("matmul of a 0-d tensor throws") {
  CHECK_THROWS_WITH_AS(matmul(scalar(2), ones({2})), doctest::Contains("matmul: both operands need at least one"),
                       Error);
}

TEST_CASE("binary ops on shapes that do not broadcast name both shapes") {
  CHECK_THROWS_WITH_AS(add(ones({2, 3}), ones({4})), "add: shapes (2, 3) and (4) cannot be broadcast", Error);
  CHECK_THROWS_WITH_AS(ones({2, 3}) * ones({3, 2}), "mul: shapes (2, 3) and (3, 2) cannot be broadcast", Error);
  CHECK_THROWS_WITH_AS(where(tensor({1, 0}, DType::b8), ones({3}), ones({3})),
                       "where: shapes (2) and (3) cannot be broadcast", Error);
  CHECK_THROWS_WITH_AS(broadcast_shapes({2}, {3}, "my_op"), "my_op: shapes (2) and (3) cannot be broadcast", Error);
}

TEST_CASE("reshape to a different number of elements names both shapes") {
  CHECK_THROWS_WITH_AS(ones({2, 3}).reshape({4, 2}), "reshape: cannot reshape (2, 3) (6 elements) into (4, 2)",
                       Error);
  CHECK_THROWS_WITH_AS(ones({2, 3}).reshape({4, -1}), "reshape: cannot reshape (2, 3) (6 elements) into (4, -1)",
                       Error);
  CHECK_THROWS_WITH_AS(ones({6}).reshape({-1, -1}), doctest::Contains("reshape: only one extent can be -1"), Error);
}

TEST_CASE("expand to an incompatible shape names both shapes") {
  CHECK_THROWS_WITH_AS(ones({3}).expand({2, 4}), "expand: cannot expand (3) to (2, 4)", Error);
}

TEST_CASE("a dim out of range names the op, the dim and the rank") {
  Tensor x = ones({2, 3});
  CHECK_THROWS_WITH_AS(sum(x, {2}), "sum: dim 2 is out of range for a tensor of rank 2", Error);
  CHECK_THROWS_WITH_AS(softmax(x, -3), "softmax: dim -3 is out of range for a tensor of rank 2", Error);
  CHECK_THROWS_WITH_AS(x.size(2), "size: dim 2 is out of range for a tensor of rank 2", Error);
  CHECK_THROWS_WITH_AS(x.transpose(0, 5), "transpose: dim 5 is out of range for a tensor of rank 2", Error);
  CHECK_THROWS_WITH_AS(cat({x, x}, 2), "cat: dim 2 is out of range for a tensor of rank 2", Error);
}

TEST_CASE("select and narrow out of range name the index and the size") {
  Tensor x = ones({2, 3});
  CHECK_THROWS_WITH_AS(x.select(1, 3), "select: index 3 is out of range for dimension 1 with size 3", Error);
  CHECK_THROWS_WITH_AS(x.select(0, -3), "select: index -3 is out of range for dimension 0 with size 2", Error);
  CHECK_THROWS_WITH_AS(x.narrow(1, 2, 2), "narrow: range [2, 4) is out of bounds for dimension 1 with size 3",
                       Error);
}

TEST_CASE("cat of tensors that differ outside the joined dim names the offending shape") {
  CHECK_THROWS_WITH_AS(cat({ones({2, 3}), ones({2, 4})}, 0),
                       "cat: tensor 1 has shape (2, 4), expected (2, 3) except along dim 0", Error);
  CHECK_THROWS_WITH_AS(stack({ones({2}), ones({3})}), "stack: tensor 1 has shape (3), expected (2)", Error);
  CHECK_THROWS_WITH_AS(cat({}), "cat: expects a non-empty list of tensors", Error);
}

TEST_CASE("split sizes that do not add up to the extent throw") {
  CHECK_THROWS_WITH_AS(split(ones({5}), std::vector<std::int64_t>{2, 2}),
                       "split: sizes sum to 4 but dimension 0 of (5) has size 5", Error);
  CHECK_THROWS_WITH_AS(chunk(ones({5}), 0), "chunk: number of chunks must be positive, got 0", Error);
}

// --- indices --------------------------------------------------------------------------------------

TEST_CASE("index_select with an index out of range names it and the size") {
  Tensor weight = ones({4, 2});
  CHECK_THROWS_WITH_AS(index_select(weight, 0, tensor({1, 4}, DType::i64)),
                       "index_select: index 4 is out of range for dimension 0 with size 4", Error);
  CHECK_THROWS_WITH_AS(index_select(weight, 0, tensor({-1}, DType::i64)),
                       "index_select: index -1 is out of range for dimension 0 with size 4", Error);
}

TEST_CASE("index_select and gather need int64 indices") {
  CHECK_THROWS_WITH_AS(index_select(ones({4, 2}), 0, tensor({1, 2})),
                       "index_select: indices must be int64, got float32", Error);
  CHECK_THROWS_WITH_AS(gather(ones({2, 3}), 1, ones({2, 1})), "gather: indices must be int64, got float32", Error);
}

TEST_CASE("gather with an index of another rank names both shapes") {
  CHECK_THROWS_WITH_AS(gather(ones({2, 3}), 1, tensor({0, 1}, DType::i64)),
                       "gather: index of shape (2) needs the rank of the input (2, 3)", Error);
  CHECK_THROWS_WITH_AS(gather(ones({2, 3}), 1, tensor({3, 0}, {2, 1}, DType::i64)),
                       "gather: index 3 is out of range for dimension 1 with size 3", Error);
}

TEST_CASE("at out of range names the index, the dimension and its size") {
  Tensor v = tensor({1, 2, 3});
  CHECK_THROWS_WITH_AS(v.at({3}), "at: index 3 is out of range for dimension 0 with size 3", Error);
  CHECK_THROWS_WITH_AS(v.at({-4}), "at: index -4 is out of range for dimension 0 with size 3", Error);
  CHECK_THROWS_WITH_AS(v.at({0, 0}), "at: index has 2 entries for a tensor of shape (3)", Error);
}

TEST_CASE("item on a tensor of several elements names its shape") {
  CHECK_THROWS_WITH_AS(tensor({1, 2, 3}).item(), "item: only one-element tensors can be converted, got shape (3)",
                       Error);
}

// --- dtypes ---------------------------------------------------------------------------------------

TEST_CASE("mixing dtypes in a binary op names both dtypes") {
  CHECK_THROWS_WITH_AS(ones({2}) + ones({2}, DType::f64), "add: dtype mismatch, float32 vs float64", Error);
  CHECK_THROWS_WITH_AS(matmul(ones({2, 2}), ones({2, 2}, DType::f64)), "matmul: dtype mismatch, float32 vs float64",
                       Error);
  CHECK_THROWS_WITH_AS(cat({ones({2}), ones({2}, DType::i64)}), "cat: dtype mismatch, float32 vs int64", Error);
}

TEST_CASE("floating-point ops reject int64 tensors") {
  CHECK_THROWS_WITH_AS(log(arange(3)), "log: expected a floating-point tensor, got int64", Error);
  CHECK_THROWS_WITH_AS(arange(3).mean(), "mean: expected a floating-point tensor, got int64", Error);
  CHECK_THROWS_WITH_AS(matmul(arange(4).reshape({2, 2}), arange(4).reshape({2, 2})),
                       "matmul: expected a floating-point tensor, got int64", Error);
}

TEST_CASE("data<T> with the wrong element type names both dtypes") {
  CHECK_THROWS_WITH_AS(ones({2}).data<double>(), "data: tensor has dtype float32, asked for float64", Error);
}

TEST_CASE("creating a tensor from too few values names the count and the shape") {
  CHECK_THROWS_WITH_AS(tensor({1, 2, 3}, {2, 2}), "tensor: 3 values do not fill shape (2, 2)", Error);
  CHECK_THROWS_WITH_AS(from_vector(std::vector<double>{1, 2}, {3}), "from_vector: 2 values do not fill shape (3)",
                       Error);
  CHECK_THROWS_WITH_AS(zeros({2, -1}), doctest::Contains("negative extent in shape (2, -1)"), Error);
}

// --- autograd ---------------------------------------------------------------------------------------

TEST_CASE("requires_grad_ on an int64 tensor throws") {
  CHECK_THROWS_WITH_AS(arange(3).requires_grad_(),
                       "requires_grad_: only floating-point tensors can require grad, got int64", Error);
}

TEST_CASE("backward without a seed needs a one-element tensor") {
  Tensor x = ones({3}).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_THROWS_WITH_AS(y.backward(),
                       "backward: an implicit seed needs a one-element tensor, got shape (3); pass a seed of the "
                       "same shape",
                       Error);
  CHECK_NOTHROW(y.backward(ones({3})));
}

TEST_CASE("backward with a seed of the wrong shape names both shapes") {
  Tensor x = ones({3}).requires_grad_();
  CHECK_THROWS_WITH_AS((x * 2.0).backward(ones({2})),
                       "backward: seed of shape (2) and dtype float32 for a tensor of shape (3) and dtype float32",
                       Error);
}

TEST_CASE("backward on a tensor that does not require grad throws") {
  CHECK_THROWS_WITH_AS(ones({2}).sum().backward(),
                       "backward: tensor of shape () does not require grad (no input of its graph requires grad)",
                       Error);
}

TEST_CASE("a second backward through a freed graph throws") {
  Tensor x = ones({2}).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("was already freed by an earlier backward()"), Error);
}

TEST_CASE("in-place updates of a leaf that requires grad (or a view of one) need NoGradGuard") {
  Tensor w = ones({2}).requires_grad_();
  CHECK_THROWS_WITH_AS(w.add_(ones({2})),
                       "add_: a leaf tensor that requires grad is being modified in place while grad mode is on; wrap "
                       "the update in NoGradGuard (as optimizers do)",
                       Error);
  CHECK_THROWS_WITH_AS(w.fill_(0), doctest::Contains("fill_: a leaf tensor that requires grad"), Error);
  CHECK_THROWS_WITH_AS(w.narrow(0, 1, 1).fill_(0), doctest::Contains("fill_: a view of a leaf tensor that requires grad"), Error);
  NoGradGuard no_grad;
  CHECK_NOTHROW(w.add_(ones({2})));
}

TEST_CASE("an in-place update that would change the shape throws") {
  CHECK_THROWS_WITH_AS(ones({3}).add_(ones({2, 3})), "add_: cannot broadcast (2, 3) into (3)", Error);
}

TEST_CASE("set_grad with the wrong shape names both shapes") {
  Tensor w = ones({2}).requires_grad_();
  CHECK_THROWS_WITH_AS(w.set_grad(ones({3})), doctest::Contains("set_grad: gradient of shape (3)"), Error);
}

// --- undefined tensors --------------------------------------------------------------------------------

TEST_CASE("using an undefined tensor names the op instead of crashing") {
  Tensor u;
  CHECK_FALSE(u.defined());
  CHECK_THROWS_WITH_AS(add(u, ones({2})), "add: undefined tensor", Error);
  CHECK_THROWS_WITH_AS(exp(u), "exp: undefined tensor", Error);
  CHECK_THROWS_WITH_AS(matmul(ones({2, 2}), u), "matmul: undefined tensor", Error);
  CHECK_THROWS_WITH_AS(u.shape(), "shape: undefined tensor", Error);
  CHECK_THROWS_WITH_AS(u.backward(), "backward: undefined tensor", Error);
  CHECK_THROWS_WITH_AS(u.item(), doctest::Contains("undefined tensor"), Error);
}

TEST_CASE("dimension-indexing ops reject 0-d tensors instead of reading past the shape") {
  Tensor s = scalar(1.0);
  CHECK_THROWS_WITH_AS(s.size(0), doctest::Contains("size: dim 0 is out of range for a tensor of rank 0"), Error);
  CHECK_THROWS_AS(split(s, 1), Error);
  CHECK_THROWS_AS(chunk(s, 2), Error);
  CHECK_THROWS_AS(unbind(s), Error);
  CHECK_THROWS_AS(transpose(s, 0, -1), Error);
  CHECK_THROWS_AS(gather(s, 0, scalar(0, DType::i64)), Error);
  // Reductions and softmax accept dim 0 of a scalar, as PyTorch does.
  CHECK(sum(s, {0}).item() == 1.0);
  CHECK(softmax(s, -1).item() == 1.0);
}

TEST_CASE("matmul names both operands when batch dimensions do not broadcast") {
  CHECK_THROWS_WITH_AS(matmul(ones({2, 3, 4}), ones({3, 4, 5})),
                       doctest::Contains("matmul: cannot multiply (2, 3, 4) by (3, 4, 5)"), Error);
}

TEST_CASE("a fractional number with an integer tensor is an error, not a silent truncation") {
  CHECK_THROWS_WITH_AS(arange(3) * 2.5, doctest::Contains("mul: the number 2.5 would be truncated"), Error);
  CHECK((arange(3) * 2.0).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 2, 4});
}

TEST_CASE("creation functions name themselves in shape errors") {
  CHECK_THROWS_WITH_AS(zeros({2, -1}), doctest::Contains("zeros: negative extent in shape (2, -1)"), Error);
  CHECK_THROWS_WITH_AS(eye(-2), doctest::Contains("eye: negative size -2"), Error);
  CHECK_THROWS_WITH_AS(arange(0.0, 1e20), doctest::Contains("arange:"), Error);
}

// Every way a shape can overflow: each row must throw an xgrad::Error naming the op and the
// shape, never wrap around to a small buffer (a heap overflow), throw std::bad_alloc or hang.
TEST_CASE("shape and size overflow table: an xgrad::Error naming the op and the shape, for every entry") {
  constexpr std::int64_t k31 = std::int64_t{1} << 31, k40 = std::int64_t{1} << 40, k62 = std::int64_t{1} << 62;
  const Tensor one = ones({1, 1});
  struct Row {
    const char* what;
    std::function<void()> run;
    const char* message;
  };
  const std::vector<Row> table = {
      {"randn, count wraps to 0", [] { randn({k31, k31, 4}); },
       "randn: shape (2147483648, 2147483648, 4) has more elements than an int64 can count"},
      {"zeros, count overflows", [] { zeros({k62, 4}); }, "zeros: shape (4611686018427387904, 4) has more elements"},
      {"rand, count overflows", [] { rand({k40, k40}); }, "rand: shape (1099511627776, 1099511627776) has more elements"},
      {"bernoulli, count overflows", [] { bernoulli({k40, k40}, 0.5); }, "bernoulli: shape (1099511627776, 1099511627776)"},
      {"randint, count overflows", [] { randint(0, 5, {k40, k40}); }, "randint: shape (1099511627776, 1099511627776)"},
      {"empty f64, bytes overflow", [] { empty({k62}, DType::f64); }, "empty: shape (4611686018427387904) of float64 needs more bytes"},
      {"full i64, bytes overflow", [] { full({k62}, 1.0, DType::i64); }, "full: shape (4611686018427387904) of int64 needs more bytes"},
      {"zeros, beyond the address space", [] { zeros({std::int64_t{1} << 50}); }, "zeros: cannot allocate 4503599627370496 bytes for a tensor of shape (1125899906842624)"},
      {"zeros, empty but its strides overflow", [] { zeros({0, k40, k40}); }, "zeros: shape (0, 1099511627776, 1099511627776) has more elements"},
      {"negative extent", [] { ones({3, -2}); }, "ones: negative extent in shape (3, -2)"},
      {"expand to an overflowing shape", [&] { one.expand({k40, k40}); }, "expand: shape (1099511627776, 1099511627776) has more elements"},
      {"reshape, extents overflow", [] { zeros({4}).reshape({k62, 8}); }, "reshape: shape (4611686018427387904, 8) has more elements"},
      {"reshape, empty but strides overflow", [] { zeros({0}).reshape({0, k40, k40}); }, "reshape: shape (0, 1099511627776, 1099511627776) has more elements"},
      {"view with -1, known extents overflow", [] { zeros({4}).view({-1, k62, 4}); }, "view: shape (-1, 4611686018427387904, 4) has more elements"},
      {"cat, extents add up past int64", [&] { cat({one.expand({k62, 1}), one.expand({k62, 1})}, 0); }, "cat: the extents along dim 0 add up"},
      {"elementwise op on a huge expanded tensor", [&] { (one.expand({k40, 4}) + 1.0).numel(); }, "cannot allocate"},
      {"matmul whose output overflows", [&] { matmul(one.expand({k40, 1}), one.expand({1, k40})); }, "matmul: shape (1099511627776, 1099511627776) has more elements"},
      {"sum of a huge expanded tensor", [&] { one.expand({k62, 1}).sum(); }, "shape (4611686018427387904, 1) of float32 needs more bytes"},
      {"from_vector, shape overflows", [] { from_vector(std::vector<float>{1, 2}, {k62, 4}); }, "from_vector: shape (4611686018427387904, 4) has more elements"},
  };
  for (const Row& row : table) {
    CAPTURE(row.what);
    CHECK_THROWS_WITH_AS(row.run(), doctest::Contains(row.message), Error);
  }
}

// Converting NaN, ±Inf or a number beyond int64's range to an integer is undefined behaviour
// (it wrote INT64_MIN): every float-to-int64 conversion refuses them, naming the value and dtype.
TEST_CASE("a NaN, infinite or out-of-range number never becomes an int64 element") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const Tensor i = arange(4);
  const Tensor mask = tensor({1.0, 0.0, 1.0, 0.0}).to(DType::b8);
  for (const double v : {nan, inf, -inf, 1e30, -1e19, 0x1p63}) {
    CAPTURE(v);
    CHECK_THROWS_WITH_AS(full({3}, v, DType::i64), doctest::Contains("full: the value"), Error);
    CHECK_THROWS_WITH_AS(full({3}, v, DType::i64), doctest::Contains("does not fit a int64 tensor"), Error);
    CHECK_THROWS_WITH_AS(full_like(i, v), doctest::Contains("full: the value"), Error);
    CHECK_THROWS_WITH_AS(scalar(v, DType::i64), doctest::Contains("int64"), Error);
    CHECK_THROWS_WITH_AS(tensor({1.0, v}, DType::i64), doctest::Contains("tensor: the float64 value"), Error);
    CHECK_THROWS_WITH_AS(masked_fill(i, mask, v), doctest::Contains("masked_fill: the value"), Error);
    CHECK_THROWS_WITH_AS(i.clone().fill_(v), doctest::Contains("fill_: the value"), Error);
    CHECK_THROWS_WITH_AS(i + v, doctest::Contains("add: the value"), Error);
    CHECK_THROWS_WITH_AS(i * v, doctest::Contains("mul: the value"), Error);
    CHECK_THROWS_WITH_AS(i.clone().add_(i, v), doctest::Contains("add_: the value"), Error);
    CHECK_THROWS_WITH_AS(tensor({1.0, v}).to(DType::i64), doctest::Contains("to: the"), Error);
    CHECK_THROWS_WITH_AS(i.clone().copy_(tensor({v, v, v, v}, DType::f64)), doctest::Contains("cannot be converted to int64"), Error);
    CHECK_THROWS_WITH_AS(tensor({v}).item<std::int64_t>(), doctest::Contains("item: the"), Error);
    CHECK_THROWS_WITH_AS(tensor({v}).to_vector<std::int64_t>(), doctest::Contains("to_vector: the"), Error);
  }
  // In range they convert (truncated toward zero), and a float tensor takes any value.
  CHECK(full({2}, -0x1p63, DType::i64).to_vector<std::int64_t>() == std::vector<std::int64_t>(2, std::numeric_limits<std::int64_t>::min()));
  CHECK(tensor({2.9, -2.9}).to(DType::i64).to_vector<std::int64_t>() == std::vector<std::int64_t>{2, -2});
  CHECK(std::isnan(full({1}, nan).item()));
  CHECK(masked_fill(i.to(DType::f32), mask, -inf).to_vector<float>()[0] == -std::numeric_limits<float>::infinity());
  CHECK_THROWS_WITH_AS(tensor({1e10}).item<int>(), doctest::Contains("cannot be converted to int32"), Error);
}

// A tensor with no elements costs nothing, whatever its other extents: a 74-byte file can
// declare [2^40, 0, 0]. Every op on it is O(1) in its sizes (an op that looped over the
// outer extent, or made an [N, 1, 1] intermediate, hung or ran out of memory); a result that
// really has N elements is an Error naming the allocation.
TEST_CASE("ops on an empty tensor with a huge outer extent are O(1) in its sizes") {
  constexpr std::int64_t N = std::int64_t{1} << 40;
  const Tensor e = zeros({N, 0, 0});
  CHECK(e.numel() == 0);
  auto empty_of = [](const Tensor& t, const Shape& shape) { return t.shape() == shape && t.numel() == 0; };
  // reductions
  CHECK(e.sum().item() == 0.0);
  CHECK(empty_of(e.sum({0}), {0, 0}));
  CHECK(empty_of(e.sum({1}), {N, 0}));
  CHECK(empty_of(e.sum({2}, true), {N, 0, 1}));
  CHECK(e.sum({0, 1, 2}, true).shape() == Shape{1, 1, 1});
  CHECK(empty_of(e.mean({0}), {0, 0}));
  CHECK(empty_of(var(e, {0}), {0, 0}));
  CHECK(empty_of(logsumexp(e, {0}), {0, 0}));
  CHECK(empty_of(max(e, 0).first, {0, 0}));
  CHECK(empty_of(argmax(e, 0), {0, 0}));
  CHECK(sum(e.to(DType::i64)).item() == 0.0);
  // A result with N elements is honest work, refused as an allocation it cannot make.
  CHECK_THROWS_WITH_AS(e.sum({1, 2}), doctest::Contains("cannot allocate"), Error);
  CHECK_THROWS_WITH_AS(max(e, 2), doctest::Contains("max: cannot reduce dimension 2 of size 0"), Error);
  CHECK_THROWS_WITH_AS(e.mean(), doctest::Contains("mean: cannot average over an empty dimension"), Error);
  // elementwise, broadcasting, comparisons, unary
  CHECK(empty_of(e + 1.0, {N, 0, 0}));
  CHECK(empty_of(e * e, {N, 0, 0}));
  CHECK(empty_of(e + ones({1, 0}), {N, 0, 0}));
  CHECK(empty_of(e + zeros({N, 1, 0}), {N, 0, 0}));
  CHECK(empty_of(exp(e), {N, 0, 0}));
  CHECK(empty_of(tanh(sigmoid(relu(e))), {N, 0, 0}));
  CHECK(empty_of(clamp(e, -1.0, 1.0), {N, 0, 0}));
  CHECK(empty_of(e > 0.0, {N, 0, 0}));
  CHECK(empty_of(where(e > 0.0, e, e), {N, 0, 0}));
  CHECK(empty_of(masked_fill(e, e > 0.0, 1.0), {N, 0, 0}));
  CHECK(empty_of(e.to(DType::f64), {N, 0, 0}));
  CHECK(empty_of(lerp(e, e, 0.5), {N, 0, 0}));
  CHECK(sum_squared_difference(e, e).item() == 0.0);
  // matmul: batched over N empty matrices
  CHECK(empty_of(matmul(e, ones({0, 3})), {N, 0, 3}));
  CHECK(empty_of(matmul(e, e), {N, 0, 0}));
  CHECK(empty_of(matmul(zeros({N, 2, 0}), zeros({0, 0})), {N, 2, 0}));
  CHECK_THROWS_WITH_AS(matmul(zeros({N, 2, 0}), zeros({0, 3})), doctest::Contains("cannot allocate"), Error);
  // softmax
  CHECK(empty_of(softmax(e, 0), {N, 0, 0}));
  CHECK(empty_of(log_softmax(e, 2), {N, 0, 0}));
  // shape ops
  CHECK(empty_of(e.contiguous(), {N, 0, 0}));
  CHECK(empty_of(e.clone(), {N, 0, 0}));
  CHECK(empty_of(e.transpose(0, 2).contiguous(), {0, 0, N}));
  CHECK(empty_of(e.permute({1, 0, 2}).reshape({0, N}), {0, N}));
  CHECK(empty_of(e.flatten(), {0}));
  CHECK(empty_of(cat({e, e}, 0), {2 * N, 0, 0}));
  CHECK(empty_of(cat({e, e}, 2), {N, 0, 0}));
  CHECK(empty_of(stack({e, e}, 1), {N, 2, 0, 0}));
  CHECK(empty_of(e.narrow(0, 5, N - 5), {N - 5, 0, 0}));
  CHECK(empty_of(e.select(0, N - 1), {0, 0}));
  CHECK(e.chunk(4, 0).size() == 4);
  CHECK(e.unbind(1).empty());
  CHECK_THROWS_AS(e.unbind(0), Error);  // N results: refused, not a vector of 2^40 tensors
  // index ops
  CHECK(empty_of(index_select(e, 0, tensor({0.0, 7.0}, DType::i64)), {2, 0, 0}));
  CHECK(empty_of(index_select(e, 1, zeros({0}, DType::i64)), {N, 0, 0}));
  CHECK(empty_of(gather(e, 2, zeros({N, 0, 0}, DType::i64)), {N, 0, 0}));
  // printing names the shape
  CHECK(to_string(e).find("1099511627776") != std::string::npos);
  // backward through all of it
  Tensor w = zeros({N, 0, 0}).requires_grad_();
  (softmax(w * 2.0 + 1.0, 0).sum() + matmul(w, ones({0, 2})).sum() + cat({w, w}, 0).sum() + w.narrow(0, 1, 3).sum()).backward();
  CHECK(empty_of(w.grad(), {N, 0, 0}));
}

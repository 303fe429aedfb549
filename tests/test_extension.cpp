// Defining primitives outside core with <xgrad/core/extension.hpp>: they record into the
// graph like built-in ops, and gradcheck verifies them.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

// softsign(x) = x / (1 + |x|); d/dx = 1 / (1 + |x|)^2. Forward on detached data, backward
// captures only the detached denominator.
Tensor softsign(const Tensor& x) {
  Tensor d = 1.0 + abs(x.detach());
  return record_op("softsign", {x}, x.detach() / d,
                   [d](const Tensor& g) { return std::vector<Tensor>{g / (d * d)}; });
}

// hypot(a, b) = sqrt(a² + b²), broadcasting: the engine sums gradients back to each shape.
Tensor hypot(const Tensor& a, const Tensor& b) {
  Tensor x = a.detach(), y = b.detach();
  Tensor out = sqrt(x * x + y * y), r = out.detach();  // capture a detached handle, never the output
  return record_op("hypot", {a, b}, out, [x, y, r](const Tensor& g) {
    return std::vector<Tensor>{g * x / r, g * y / r};
  });
}

// Two outputs from one node: the elementwise smaller and larger of a and b.
std::pair<Tensor, Tensor> minmax(const Tensor& a, const Tensor& b) {
  Tensor a_smaller = le(a.detach(), b.detach());
  Tensor lo = where(a_smaller, a.detach(), b.detach()), hi = where(a_smaller, b.detach(), a.detach());
  auto outs = record_op("minmax", {a, b}, {lo, hi}, [a_smaller](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{where(a_smaller, g[0], g[1]), where(a_smaller, g[1], g[0])};
  });
  return {outs[0], outs[1]};
}

}  // namespace

TEST_CASE("a user-defined primitive passes gradcheck") {
  manual_seed(3);
  auto r = gradcheck([](auto& x) { return softsign(x[0]); }, {randn({3, 4}, DType::f64).requires_grad_()});
  CHECK_MESSAGE(r.ok, r.message());
}

TEST_CASE("a user-defined primitive records a named node and works inside a larger graph") {
  manual_seed(4);
  Tensor w = randn({3, 2}, DType::f64).requires_grad_();
  Tensor x = randn({5, 3}, DType::f64);
  Tensor h = softsign(matmul(x, w));
  CHECK(h.grad_fn_name() == "softsign");
  (h * h).sum().backward();
  Tensor custom = w.grad().clone();

  // The same function composed from built-in ops must give the same gradient.
  w.zero_grad();
  Tensor z = matmul(x, w);
  Tensor h2 = z / (1.0 + abs(z));
  (h2 * h2).sum().backward();
  CHECK(allclose(custom, w.grad(), 1e-12, 1e-12));
  CHECK(allclose(h, h2.detach(), 1e-12, 1e-12));
}

TEST_CASE("a user-defined primitive may return broadcast gradients") {
  manual_seed(5);
  auto r = gradcheck([](auto& x) { return hypot(x[0], x[1]); },
                     {randn({2, 3}, DType::f64).requires_grad_(), randn({3}, DType::f64).requires_grad_()});
  CHECK_MESSAGE(r.ok, r.message());
}

TEST_CASE("a user-defined primitive with two outputs") {
  manual_seed(6);
  auto r = gradcheck([](auto& x) {
    auto [lo, hi] = minmax(x[0], x[1]);
    return lo * 2.0 + hi * 3.0;
  }, {randn({4}, DType::f64).requires_grad_(), randn({4}, DType::f64).requires_grad_()});
  CHECK_MESSAGE(r.ok, r.message());
  Tensor a = tensor({1, 5}).requires_grad_(), b = tensor({3, 2}).requires_grad_();
  auto [lo, hi] = minmax(a, b);
  CHECK(lo.to_vector<double>() == std::vector<double>{1, 2});
  (hi * 10.0).sum().backward();  // only `hi` is used: `lo` contributes zeros
  CHECK(a.grad().to_vector<double>() == std::vector<double>{0, 10});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{10, 0});
}

TEST_CASE("nothing is recorded when no input requires grad or grad mode is off") {
  Tensor x = randn({3});
  CHECK(softsign(x).grad_fn_name().empty());
  Tensor p = randn({3}).requires_grad_();
  NoGradGuard guard;
  CHECK_FALSE(softsign(p).requires_grad());
}

TEST_CASE("a backward returning the wrong number of gradients is a clear error") {
  Tensor x = randn({3}).requires_grad_();
  Tensor y = record_op("broken", {x}, x.detach() * 2.0,
                       [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("backward of 'broken' returned 2 gradients for 1 inputs"), Error);
}

TEST_CASE("a backward returning a gradient of the wrong shape is a clear error") {
  Tensor x = randn({3}).requires_grad_();
  Tensor y = record_op("misshapen", {x}, x.detach() * 2.0,
                       [](const Tensor& g) { return std::vector<Tensor>{ones({4}, g.dtype())}; });
  CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("backward of 'misshapen': gradient of shape (4)"), Error);
}

TEST_CASE("a saved tensor written in place is refused even after its own handle is gone") {
  // The backward reads h's data through a detached handle of its own; h itself goes out of
  // scope, and another detached handle writes the shared storage. The version check follows
  // the storage, so backward refuses instead of returning 2·(h + 10).
  Tensor a = tensor({1.0, 2.0, 3.0}).requires_grad_(true);
  Tensor y, other;
  {
    const Tensor h = a * 1.0;
    const Tensor hd = h.detach();
    y = record_op("square", {h}, hd * hd, [hd](const Tensor& g) { return std::vector<Tensor>{2.0 * g * hd}; }, {h});
    other = h.detach();
  }
  {
    NoGradGuard no_grad;
    other.add_(tensor({10.0, 10.0, 10.0}));
  }
  CHECK_THROWS_WITH(y.sum().backward(), doctest::Contains("was modified by an in-place operation"));
}

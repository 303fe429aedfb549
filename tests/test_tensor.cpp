// Tensor basics: creation, seeded random draws, element access, copies and views, in-place
// updates, and printing.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "tensor_approx.hpp"

#include <cmath>
#include <cstdint>
#include <ostream>
#include <sstream>
#include <vector>

using namespace xgrad;

using namespace xgrad_test;

// --- creation -----------------------------------------------------------------------------

TEST_CASE("tensor makes a 1-D float32 tensor, or any shape filled in row-major order") {
  Tensor v = tensor({1, 2, 3});
  CHECK(v.shape() == Shape{3});
  CHECK(v.dtype() == DType::f32);

  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  CHECK(m.shape() == Shape{2, 3});
  CHECK(m.dtype() == DType::f64);
  CHECK(m.at({1, 0}) == 4);
  CHECK(m.at({0, 2}) == 3);
}

TEST_CASE("scalar makes a 0-d tensor holding one value") {
  Tensor s = scalar(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.shape() == Shape{});
  CHECK(s.numel() == 1);
  CHECK(s.item() == 2.5);
  CHECK(scalar(7, DType::i64).item<std::int64_t>() == 7);
}

TEST_CASE("from_vector keeps the element type of the vector") {
  Tensor f = from_vector(std::vector<float>{1.5f, -2.0f}, {2});
  CHECK(f.dtype() == DType::f32);
  CHECK(f.at({1}) == -2.0);

  Tensor d = from_vector(std::vector<double>{0.1, 0.2, 0.3, 0.4}, {2, 2});
  CHECK(d.dtype() == DType::f64);
  CHECK(d.at({1, 1}) == 0.4);  // exact: no round trip through float

  Tensor i = from_vector(std::vector<std::int64_t>{5, -6, 7}, {3});
  CHECK(i.dtype() == DType::i64);
  CHECK(i.to_vector<std::int64_t>() == std::vector<std::int64_t>{5, -6, 7});

  Tensor b = from_vector(std::vector<bool>{true, false, true}, {3, 1});
  CHECK(b.dtype() == DType::b8);
  CHECK(b.shape() == Shape{3, 1});
  CHECK(b.to_vector<bool>() == std::vector<bool>{true, false, true});
}

TEST_CASE("zeros, ones and full fill a shape; empty only allocates it") {
  CHECK(zeros({2, 3}) == approx(tensor({0, 0, 0, 0, 0, 0}, {2, 3})));
  Tensor o = ones({2}, DType::i64);
  CHECK(o.dtype() == DType::i64);
  CHECK(o.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 1});
  CHECK(full({2, 2}, 7.5, DType::f64) == approx(tensor({7.5, 7.5, 7.5, 7.5}, {2, 2})));

  Tensor e = empty({4, 5}, DType::f64);
  CHECK(e.shape() == Shape{4, 5});
  CHECK(e.dtype() == DType::f64);
}

TEST_CASE("arange(n) counts 0..n-1 as int64") {
  Tensor r = arange(5);
  CHECK(r.dtype() == DType::i64);
  CHECK(r.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 2, 3, 4});
}

TEST_CASE("arange(start, end, step) stops before end, counting up or down") {
  CHECK(arange(1.0, 2.0, 0.25) == approx(tensor({1.0, 1.25, 1.5, 1.75})));
  CHECK(arange(3.0, 0.0, -1.0) == approx(tensor({3, 2, 1})));
  Tensor tenths = arange(0.0, 1.0, 0.1, DType::f64);
  CHECK(tenths.dtype() == DType::f64);
  CHECK(tenths.numel() == 10);
  CHECK(tenths.at({9}) == doctest::Approx(0.9));
}

TEST_CASE("eye makes an identity matrix, rectangular when m is given") {
  CHECK(eye(3) == approx(tensor({1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3})));
  Tensor r = eye(2, 3, DType::f64);
  CHECK(r.dtype() == DType::f64);
  CHECK(r == approx(tensor({1, 0, 0, 0, 1, 0}, {2, 3})));
}

TEST_CASE("the _like factories take shape and dtype from a prototype") {
  Tensor proto = tensor({9, 9, 9, 9, 9, 9}, {2, 3}, DType::f64);
  for (const Tensor& t : {zeros_like(proto), ones_like(proto), full_like(proto, 3), empty_like(proto),
                          rand_like(proto), randn_like(proto)}) {
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.dtype() == DType::f64);
  }
  CHECK(zeros_like(proto).sum().item() == 0);
  CHECK(ones_like(proto).sum().item() == 6);
  CHECK(full_like(proto, 3).sum().item() == 18);
}

// --- random draws ---------------------------------------------------------------------------

TEST_CASE("rand draws uniformly from [0, 1)") {
  manual_seed(1);
  Tensor r = rand({10000});
  CHECK(min(r).item() >= 0.0);
  CHECK(max(r).item() < 1.0);
  CHECK(r.mean().item() == doctest::Approx(0.5).epsilon(0.02));
  CHECK(max(r).item() > 0.99);  // the whole interval is covered
  CHECK(min(r).item() < 0.01);
}

TEST_CASE("uniform draws from [low, high)") {
  manual_seed(1);
  Tensor u = uniform({10000}, -2.0, 3.0, DType::f64);
  CHECK(u.dtype() == DType::f64);
  CHECK(min(u).item() >= -2.0);
  CHECK(max(u).item() < 3.0);
  CHECK(u.mean().item() == doctest::Approx(0.5).epsilon(0.1));
}

TEST_CASE("randn draws with mean 0 and standard deviation 1") {
  manual_seed(2);
  Tensor z = randn({10000});
  // Standard errors on 10 000 draws: 0.01 for the mean, about 0.007 for the std.
  CHECK(std::abs(z.mean().item()) < 0.05);
  CHECK(std::sqrt(var(z, {0}).item()) == doctest::Approx(1.0).epsilon(0.05));
}

TEST_CASE("randint draws every integer of [low, high) and nothing outside it") {
  manual_seed(3);
  Tensor r = randint(-2, 3, {1000});
  CHECK(r.dtype() == DType::i64);
  CHECK(min(r).item() == -2);
  CHECK(max(r).item() == 2);
}

TEST_CASE("bernoulli draws ones at rate p and zeros otherwise") {
  manual_seed(4);
  Tensor b = bernoulli({10000}, 0.3);
  CHECK(b.mean().item() == doctest::Approx(0.3).epsilon(0.1));
  CHECK((b * (1.0 - b)).sum().item() == 0);  // every draw is 0 or 1
  CHECK(bernoulli({100}, 0.0).sum().item() == 0);
  CHECK(bernoulli({100}, 1.0).sum().item() == 100);
}

TEST_CASE("manual_seed makes random draws reproducible") {
  manual_seed(42);
  Tensor a = randn({5});
  Tensor ia = randint(0, 1000, {5});
  manual_seed(42);
  Tensor b = randn({5});
  Tensor ib = randint(0, 1000, {5});
  CHECK(a == approx(b, 0, 0));
  CHECK(ia == approx(ib, 0, 0));

  manual_seed(43);
  CHECK_FALSE(allclose(randn({5}), a));
}

// --- element access ---------------------------------------------------------------------------

TEST_CASE("shape, dim, numel and size describe a tensor") {
  Tensor t = zeros({2, 3, 4});
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.dim() == 3);
  CHECK(t.numel() == 24);
  CHECK(t.size(0) == 2);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  CHECK(t.dtype() == DType::f32);
  CHECK(dtype_name(t.dtype()) == "float32");
}

TEST_CASE("item reads the value of a one-element tensor") {
  CHECK(tensor({4.5}).item() == 4.5);
  CHECK(tensor({1, 2, 3}).sum().item<float>() == 6.0f);
  CHECK(scalar(-3, DType::i64).item<std::int64_t>() == -3);
  CHECK(tensor({1}, DType::b8).item<bool>());
}

TEST_CASE("at reads one element; negative indices count from the end") {
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(m.at({0, 0}) == 1);
  CHECK(m.at({1, 2}) == 6);
  CHECK(m.at({-1, -1}) == 6);
  CHECK(m.at({-2, 1}) == 2);
  CHECK(scalar(8).at({}) == 8);
}

TEST_CASE("to_vector converts every element to the requested type") {
  Tensor x = tensor({1.75, -2.5, 0});
  CHECK(x.to_vector<double>() == std::vector<double>{1.75, -2.5, 0});
  CHECK(x.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, -2, 0});  // truncates toward 0
  CHECK(x.to_vector<bool>() == std::vector<bool>{true, true, false});
  CHECK(arange(3).to_vector<float>() == std::vector<float>{0, 1, 2});
}

TEST_CASE("data gives the raw row-major elements for the matching type; mutable_data bumps the version") {
  Tensor t = tensor({1, 2, 3, 4}, {2, 2});
  CHECK(t.data<float>()[2] == 3.0f);
  CHECK(t.version() == 0);
  float* p = t.mutable_data<float>();
  CHECK(t.version() == 1);
  p[3] = 40.0f;
  CHECK(t.at({1, 1}) == 40);
  CHECK_THROWS_WITH_AS(t.t().data<float>(), doctest::Contains("not contiguous"), Error);
  CHECK(arange(3).data<std::int64_t>()[2] == 2);
}

// --- copies, conversions and views --------------------------------------------------------------

TEST_CASE("copying a Tensor handle aliases the same data") {
  Tensor a = tensor({1, 2, 3});
  Tensor b = a;
  b.fill_(5);
  CHECK(a == approx(tensor({5, 5, 5})));
}

TEST_CASE("clone copies the data, so the copy changes independently") {
  Tensor a = tensor({1, 2, 3});
  Tensor b = a.clone();
  b.fill_(0);
  CHECK(a == approx(tensor({1, 2, 3})));
  CHECK(b == approx(tensor({0, 0, 0})));
}

TEST_CASE("detach shares the data but leaves the graph") {
  Tensor w = tensor({1, 2}).requires_grad_();
  Tensor y = w * 3.0;
  CHECK(y.grad_fn_name() == "mul");

  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.grad_fn_name() == "");
  CHECK(d == approx(tensor({3, 6})));

  w.detach().fill_(7);  // writes through to w without touching the graph
  CHECK(w == approx(tensor({7, 7})));
  CHECK(w.requires_grad());
}

TEST_CASE("to converts the dtype, and back again without loss") {
  Tensor x = tensor({1.5, -2.25, 3});
  Tensor d = x.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  CHECK(d.to_vector<double>() == std::vector<double>{1.5, -2.25, 3});
  Tensor back = d.to(DType::f32);
  CHECK(back.dtype() == DType::f32);
  CHECK(back == approx(x, 0, 0));

  Tensor i = x.to(DType::i64);
  CHECK(i.dtype() == DType::i64);
  CHECK(i.to_vector<std::int64_t>() == std::vector<std::int64_t>{1, -2, 3});
}

TEST_CASE("contiguous keeps the values of a transposed tensor") {
  Tensor m = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor c = m.t().contiguous();
  CHECK(c == approx(tensor({1, 4, 2, 5, 3, 6}, {3, 2})));
}

TEST_CASE("reshape and view return views that share storage") {
  Tensor a = arange(0.0, 6.0);
  Tensor v = a.reshape({2, 3});
  CHECK(v.shape() == Shape{2, 3});
  CHECK(v.data<float>() == a.data<float>());
  v.mul_(2.0);
  CHECK(a == approx(tensor({0, 2, 4, 6, 8, 10})));
  CHECK(a.view({3, -1}).shape() == Shape{3, 2});
}

// --- in-place updates -----------------------------------------------------------------------------

TEST_CASE("add_ adds alpha times a tensor, broadcast to this shape") {
  Tensor x = zeros({2, 3});
  x.add_(tensor({1, 2, 3}));
  x.add_(ones({2, 3}), 0.5);
  CHECK(x == approx(tensor({1.5, 2.5, 3.5, 1.5, 2.5, 3.5}, {2, 3})));
}

TEST_CASE("mul_ multiplies by a broadcast tensor or by a number") {
  Tensor x = tensor({1, 2, 3, 4}, {2, 2});
  x.mul_(tensor({10, 100}, {2, 1}));
  CHECK(x == approx(tensor({10, 20, 300, 400}, {2, 2})));
  x.mul_(0.5);
  CHECK(x == approx(tensor({5, 10, 150, 200}, {2, 2})));
}

TEST_CASE("copy_ overwrites values, converting to this tensor's dtype") {
  Tensor x = zeros({2, 2});
  x.copy_(tensor({1, 2, 3, 4}, {2, 2}, DType::f64));
  CHECK(x.dtype() == DType::f32);
  CHECK(x == approx(tensor({1, 2, 3, 4}, {2, 2})));
}

TEST_CASE("copy_ broadcasts a smaller source to this shape") {
  Tensor x = zeros({2, 2});
  x.copy_(tensor({1, 2}));
  CHECK(x == approx(tensor({1, 2, 1, 2}, {2, 2})));
  x.copy_(tensor({5}, DType::f64));
  CHECK(x == approx(full({2, 2}, 5)));
}

TEST_CASE("fill_ and zero_ set every element") {
  Tensor x = ones({3}, DType::i64);
  x.fill_(4);
  CHECK(x.to_vector<std::int64_t>() == std::vector<std::int64_t>{4, 4, 4});
  x.zero_();
  CHECK(x.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 0, 0});
}

TEST_CASE("a parameter is updated in place under NoGradGuard") {
  Tensor w = ones({2}).requires_grad_();
  {
    NoGradGuard no_grad;
    w.add_(tensor({1, 2}), -0.1);
  }
  CHECK(w == approx(tensor({0.9, 0.8})));
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
}

// --- printing ---------------------------------------------------------------------------------------

TEST_CASE("a float32 matrix prints like PyTorch, one row per line") {
  CHECK(fmt::format("{}", tensor({1, 2, 3, 4}, {2, 2})) ==
        "tensor([[1.0000, 2.0000],\n"
        "        [3.0000, 4.0000]])");
  CHECK(fmt::format("{}", tensor({1.5, -2.25, 3, 4}, {2, 2})) ==
        "tensor([[ 1.5000, -2.2500],\n"
        "        [ 3.0000,  4.0000]])");
}

TEST_CASE("operator<< prints the same text as fmt") {
  Tensor t = tensor({1, 2, 3, 4}, {2, 2});
  std::ostringstream os;
  os << t;
  CHECK(os.str() == fmt::format("{}", t));
  CHECK(os.str() == to_string(t));
}

TEST_CASE("a 0-d tensor prints its value without brackets") {
  CHECK(fmt::format("{}", scalar(3.5)) == "tensor(3.5000)");
  CHECK(fmt::format("{}", scalar(7, DType::i64)) == "tensor(7, dtype=int64)");
}

TEST_CASE("int64 and bool tensors print their values and dtype") {
  CHECK(fmt::format("{}", tensor({1, -20, 300}, DType::i64)) == "tensor([  1, -20, 300], dtype=int64)");
  CHECK(fmt::format("{}", tensor({1, 0, 1}, DType::b8)) == "tensor([ true, false,  true], dtype=bool)");
}

TEST_CASE("a float64 tensor shows dtype=float64") {
  CHECK(fmt::format("{}", tensor({1, 2}, DType::f64)) == "tensor([1.0000, 2.0000], dtype=float64)");
}

TEST_CASE("a tensor that requires grad says so; one made by an op names its grad_fn") {
  Tensor x = tensor({1, 2}).requires_grad_();
  CHECK(fmt::format("{}", x) == "tensor([1.0000, 2.0000], requires_grad=true)");
  CHECK(fmt::format("{}", x * x) == "tensor([1.0000, 4.0000], grad_fn=<mul>)");
}

TEST_CASE("very small, very large and non-finite values print sensibly") {
  CHECK(fmt::format("{}", tensor({1e-5, 1})) == "tensor([1.0000e-05, 1.0000e+00])");
  CHECK(fmt::format("{}", tensor({NAN, INFINITY, -INFINITY, 1})) == "tensor([   nan,    inf,   -inf, 1.0000])");
  CHECK(fmt::format("{}", zeros({0, 3})) == "tensor([], shape=(0, 3))");
  CHECK(fmt::format("{}", Tensor()) == "tensor(undefined)");
}

TEST_CASE("a tensor of more than 1000 elements is summarised with ... and shows its shape") {
  CHECK(fmt::format("{}", arange(2000)) ==
        "tensor([   0,    1,    2, ..., 1997, 1998, 1999], shape=(2000), dtype=int64)");
  CHECK(fmt::format("{}", arange(0.0, 2000.0).reshape({2, 1000})) ==
        "tensor([[   0.0000,    1.0000,    2.0000, ...,  997.0000,  998.0000,  999.0000],\n"
        "        [1000.0000, 1001.0000, 1002.0000, ..., 1997.0000, 1998.0000, 1999.0000]], shape=(2, 1000))");
  // 1000 elements are still printed in full.
  CHECK(fmt::format("{}", arange(1000)).find("...") == std::string::npos);
}

TEST_CASE("int64 values stay exact through item and printing") {
  const std::int64_t big = 9007199254740993;  // 2^53 + 1: not representable as a double
  Tensor t = from_vector(std::vector<std::int64_t>{big}, {1});
  CHECK(t.item<std::int64_t>() == big);
  CHECK(fmt::format("{}", t) == "tensor([9007199254740993], dtype=int64)");
}

TEST_CASE("relu keeps NaN, as PyTorch does") {
  Tensor y = relu(tensor({std::nan(""), -1.0, 2.0}));
  CHECK(std::isnan(y.at({0})));
  CHECK(y.at({1}) == 0.0);
}

// The engine's behaviour: accumulation, reuse, diamonds, retain_graph, no_grad, detach,
// anomaly mode, a 100 000-op chain, and freeing the graph.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tensor_approx.hpp"

using namespace xgrad;
using xgrad_test::approx;

namespace {
std::vector<double> values(const Tensor& t) { return t.to_vector<double>(); }
}  // namespace

TEST_CASE("a tensor used twice gets the sum of both gradients") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  (x * x).sum().backward();
  CHECK(values(x.grad()) == std::vector<double>{2, 4, 6});
}

TEST_CASE("gradients meet at a diamond") {
  // y = 2x; z = y·y + 3y  →  dz/dx = (2y + 3)·2 = 8x + 6
  Tensor x = tensor({1.0, -1.0}, DType::f64).requires_grad_();
  Tensor y = x * 2.0;
  Tensor z = (y * y + y * 3.0).sum();
  z.backward();
  CHECK(values(x.grad()) == std::vector<double>{14, -2});
}

TEST_CASE("a weight reused across time steps accumulates its gradient") {
  // h_t = w·h_{t-1}, h_0 = 1, three steps: h_3 = w^3, d/dw = 3w^2
  Tensor w = scalar(2.0, DType::f64).requires_grad_();
  Tensor h = scalar(1.0, DType::f64);
  for (int t = 0; t < 3; ++t) h = w * h;
  h.backward();
  CHECK(w.grad().item() == doctest::Approx(12.0));
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor x = tensor({1, 2}).requires_grad_();
  (x * 3.0).sum().backward();
  (x * 3.0).sum().backward();
  CHECK(values(x.grad()) == std::vector<double>{6, 6});
  x.zero_grad(/*set_to_none=*/false);
  CHECK(values(x.grad()) == std::vector<double>{0, 0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a gradient handle held by the user is not changed by later backward calls") {
  Tensor x = tensor({1, 2}).requires_grad_();
  (x * 3.0).sum().backward();
  Tensor first = x.grad().clone();
  (x * 3.0).sum().backward();
  CHECK(values(first) == std::vector<double>{3, 3});
  CHECK(values(x.grad()) == std::vector<double>{6, 6});
}

TEST_CASE("backward with a seed differentiates a non-scalar output") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor y = x * x;
  y.backward(tensor({1, 0, 2}));
  CHECK(values(x.grad()) == std::vector<double>{2, 0, 12});
}

TEST_CASE("retain_graph allows a second backward; without it the graph is freed") {
  Tensor x = tensor({1, 2}).requires_grad_();
  Tensor y = (exp(x) * x).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  std::vector<double> once = values(x.grad());
  y.backward();
  for (std::size_t i = 0; i < once.size(); ++i) CHECK(x.grad().at({(std::int64_t)i}) == doctest::Approx(2 * once[i]));
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), Error);
}

TEST_CASE("requires_grad, is_leaf and grad_fn describe the graph") {
  Tensor a = randn({2}).requires_grad_();
  Tensor b = randn({2});
  Tensor c = a * b;
  CHECK(a.is_leaf());
  CHECK(a.requires_grad());
  CHECK_FALSE(b.requires_grad());
  CHECK_FALSE(c.is_leaf());
  CHECK(c.requires_grad());
  CHECK(c.grad_fn_name() == "mul");
  CHECK((b * b).grad_fn_name().empty());  // nothing requires grad: nothing recorded
  CHECK(a.grad_fn_name().empty());
}

TEST_CASE("NoGradGuard records nothing and restores grad mode") {
  Tensor a = randn({2}).requires_grad_();
  {
    NoGradGuard guard;
    CHECK_FALSE(is_grad_enabled());
    Tensor c = a * 2.0;
    CHECK_FALSE(c.requires_grad());
    CHECK(c.is_leaf());
  }
  CHECK(is_grad_enabled());
  CHECK((a * 2.0).requires_grad());
}

TEST_CASE("detach stops the gradient but shares the data") {
  Tensor x = tensor({1, 2}).requires_grad_();
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  (x * d).sum().backward();  // d is a constant: the gradient is d, not 2x
  CHECK(values(x.grad()) == std::vector<double>{1, 2});
  {
    NoGradGuard guard;
    d.fill_(5.0);
  }
  CHECK(values(x) == std::vector<double>{5, 5});
}

TEST_CASE("integer tensors never require grad") {
  Tensor i = arange(3);
  CHECK_THROWS_AS(i.requires_grad_(), Error);
}

TEST_CASE("unused outputs of a multi-output op get zero gradient") {
  Tensor x = tensor({1, 2, 3, 4}).requires_grad_();
  auto parts = chunk(x, 2);
  (parts[1] * 2.0).sum().backward();
  CHECK(values(x.grad()) == std::vector<double>{0, 0, 2, 2});
}

TEST_CASE("a chunk of an unbound slice gathers its gradient in the slice's window, with the same result") {
  // x (3, 2, 6) → unbind → chunk each (2, 6) slice in three: a GRU step's projection. Each
  // chunk node gathers into the unbind's buffer directly when it is its slice's only consumer.
  // Slice 2 has a second consumer, so its chunk must not gather in place: its gradient may
  // arrive before or after the chunk's, depending on where it joins the loss.
  for (const bool other_first : {false, true}) {
  CAPTURE(other_first);
  Tensor x = arange(0, 36, 1, DType::f64).reshape({3, 2, 6}).requires_grad_();
  std::vector<Tensor> steps = unbind(x, 0);
  Tensor loss = zeros({}, DType::f64);
  if (other_first) loss = loss + (steps[2] * 10.0).sum();
  for (std::size_t t = 0; t < steps.size(); ++t) {
    std::vector<Tensor> parts = chunk(steps[t], 3, 1);  // (2, 2) each
    loss = loss + (parts[0] * parts[1]).sum() * static_cast<double>(t + 1);  // parts[2] unused: zeros
  }
  if (!other_first) loss = loss + (steps[2] * 10.0).sum();
  loss.backward();
  // d/d part0 = part1·(t+1), d/d part1 = part0·(t+1), part2 0; slice 2 also gets 10 everywhere.
  std::vector<double> expected(36);
  for (int t = 0; t < 3; ++t)
    for (int b = 0; b < 2; ++b)
      for (int j = 0; j < 6; ++j) {
        const int i = t * 12 + b * 6 + j;
        double g = j < 2 ? (i + 2) * (t + 1.0) : j < 4 ? (i - 2) * (t + 1.0) : 0.0;
        if (t == 2) g += 10.0;
        expected[static_cast<std::size_t>(i)] = g;
      }
  CHECK(values(x.grad()) == expected);
  }
  // The second consumer's gradient arriving between the chunk's two: the chunk has begun
  // filling its buffer when the slice's other gradient comes. (Gathering in place here would
  // lose that gradient: it would be added to a window the chunk then overwrites.)
  {
    Tensor w = arange(0, 8, 1, DType::f64).reshape({2, 4}).requires_grad_();
    std::vector<Tensor> rows = unbind(w, 0);
    std::vector<Tensor> halves = chunk(rows[1], 2, 0);
    Tensor l = halves[0].sum() + (rows[1] * 10.0).sum() + (halves[1] * 3.0).sum();
    l.backward();
    CHECK(values(w.grad()) == std::vector<double>{0, 0, 0, 0, 11, 11, 13, 13});
  }
  // Again, with the graph kept: the second pass accumulates the same gradient once more.
  Tensor y = arange(0, 12, 1, DType::f64).reshape({2, 6}).requires_grad_();
  Tensor z = stack({y, y * 2.0}, 0);  // (2, 2, 6)
  Tensor l = zeros({}, DType::f64);
  for (const Tensor& s : unbind(z, 0)) l = l + chunk(s, 2, 1)[1].sum();
  l.backward({}, true);
  l.backward();
  std::vector<double> twice(12);
  for (int i = 0; i < 12; ++i) twice[static_cast<std::size_t>(i)] = i % 6 >= 3 ? 2 * 3.0 : 0.0;
  CHECK(values(y.grad()) == twice);
}

TEST_CASE("a 100 000-op chain builds, differentiates and frees without recursion") {
  Tensor x = scalar(0.5, DType::f64).requires_grad_();
  std::weak_ptr<TensorImpl> leaf = x.impl();
  {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0;
    y.backward();
    CHECK(x.grad().item() == doctest::Approx(1.0));
  }
  {
    // Destroyed without backward: teardown alone must not recurse either.
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = tanh(y) + 0.0;
    CHECK(y.grad_fn_name() == "add");
  }
  x = Tensor();
  CHECK(leaf.expired());  // no node of either graph still holds the leaf: nothing leaked
}

TEST_CASE("a graph with a saved output does not keep itself alive") {
  // exp saves its output; a cycle node → output → node would leak the leaf.
  std::weak_ptr<TensorImpl> leaf;
  {
    Tensor x = randn({3}).requires_grad_();
    leaf = x.impl();
    Tensor y = exp(sigmoid(tanh(x)));
    (void)y;
  }
  CHECK(leaf.expired());
}

TEST_CASE("anomaly mode names the op that produced NaN in forward") {
  Tensor x = tensor({-1.0}).requires_grad_();
  CHECK_NOTHROW(log(x));  // off by default: NaN flows silently, as in PyTorch
  AnomalyGuard anomaly;
  CHECK(is_anomaly_enabled());
  CHECK_THROWS_WITH_AS(log(x), doctest::Contains("anomaly: op 'log'"), Error);
}

TEST_CASE("anomaly mode names the backward that produced Inf") {
  Tensor x = tensor({0.0}).requires_grad_();
  Tensor y = sqrt(x).sum();  // forward is finite; d sqrt / dx at 0 is inf
  AnomalyGuard anomaly;
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("backward of 'sqrt'"), Error);
}

TEST_CASE("anomaly mode is off again after its guard") {
  { AnomalyGuard anomaly; }
  CHECK_FALSE(is_anomaly_enabled());
}

TEST_CASE("in-place updates under NoGradGuard implement an SGD step") {
  Tensor w = tensor({1.0, -2.0}).requires_grad_();
  (w * w).sum().backward();  // grad = 2w
  {
    NoGradGuard guard;
    w.add_(w.grad(), -0.25);  // w ← w − 0.25·2w = w/2
  }
  CHECK(values(w) == std::vector<double>{0.5, -1.0});
  CHECK(w.is_leaf());
}

TEST_CASE("backward of a leaf accumulates the seed into its own gradient") {
  Tensor x = tensor({1, 2}).requires_grad_();
  x.backward(tensor({3, 4}));
  CHECK(values(x.grad()) == std::vector<double>{3, 4});
}

TEST_CASE("gradients through broadcasting are summed back to each operand's shape") {
  Tensor a = ones({2, 3}).requires_grad_();
  Tensor b = ones({3}).requires_grad_();
  Tensor c = ones({2, 1}).requires_grad_();
  (a * b * c).sum().backward();
  CHECK(b.grad().shape() == Shape{3});
  CHECK(values(b.grad()) == std::vector<double>{2, 2, 2});
  CHECK(c.grad().shape() == Shape{2, 1});
  CHECK(values(c.grad()) == std::vector<double>{3, 3});
}

TEST_CASE("backward refuses data that was modified in place after the op used it") {
  Tensor w = tensor({2.0}).requires_grad_();
  Tensor y = (w * w).sum();
  {
    NoGradGuard guard;
    w.add_(tensor({10.0}));  // y's graph saved w = 2; its gradient would now be wrong
  }
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains(
      "backward of 'mul': a tensor it saved for the gradient (its input 0, of shape (1) and dtype float32) was "
      "modified by an in-place operation after the op ran (version 1, expected 0)"), Error);
  // Modifying a tensor after backward, as an optimizer step does, is fine.
  Tensor z = (w * w).sum();
  z.backward();
  CHECK(w.grad().item() == doctest::Approx(24.0));
}

// --- gradient hooks and retain_grad ----------------------------------------------------------------

TEST_CASE("retain_grad keeps a non-leaf's gradient, accumulating over backward calls") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = x * 3.0;
  CHECK_FALSE(y.retains_grad());
  y.retain_grad();
  CHECK(y.retains_grad());
  Tensor loss = (y * y).sum();
  loss.backward(Tensor(), /*retain_graph=*/true);
  CHECK(y.grad() == approx(tensor({6.0, 12.0})));  // d(y²)/dy = 2y
  loss.backward();
  CHECK(y.grad() == approx(tensor({12.0, 24.0})));
  CHECK(x.grad() == approx(tensor({36.0, 72.0})));
  Tensor z = tensor({1.0}).requires_grad_();
  z.retain_grad();  // a leaf keeps its gradient anyway
  CHECK_THROWS_WITH_AS(tensor({1.0}).retain_grad(), doctest::Contains("does not require grad"), Error);
}

TEST_CASE("a hook on a non-leaf sees its complete gradient and can replace it") {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = x * 2.0;
  std::vector<float> seen;
  int calls = 0;
  y.register_hook([&](const Tensor& g) {
    ++calls;
    seen = g.to_vector<float>();
    return g * 10.0;
  });
  ((y * y).sum() + y.sum()).backward();  // y used twice: one call with the sum
  CHECK(calls == 1);
  CHECK(seen == std::vector<float>{5.0f, 9.0f});  // 2y + 1
  CHECK(x.grad() == approx(tensor({100.0, 180.0})));  // 10 · (2y + 1) · 2
}

TEST_CASE("a hook on a leaf runs once on the sum over its uses, before accumulation; remove() stops it") {
  Tensor w = tensor({1.0, 1.0}).requires_grad_();
  int calls = 0;
  HookHandle h = w.register_hook([&](const Tensor& g) {
    ++calls;
    CHECK(g == approx(tensor({5.0, 5.0})));
    return Tensor();  // keep it
  });
  ((w * 2.0).sum() + (w * 3.0).sum()).backward();
  CHECK(calls == 1);
  CHECK(w.grad() == approx(tensor({5.0, 5.0})));
  h.remove();
  (w * 2.0).sum().backward();
  CHECK(calls == 1);
  CHECK(w.grad() == approx(tensor({7.0, 7.0})));
}

TEST_CASE("user code inside backward that writes to a saved tensor is refused, not a wrong gradient") {
  // A hook on z = exp(x) scaling z in place: exp's backward reads z, so x.grad would be 100x.
  {
    Tensor x = tensor({0.5, 1.0}, DType::f64).requires_grad_();
    Tensor z = exp(x);
    Tensor* zp = &z;  // not captured by value: the hook lives in z's node, a cycle
    z.register_hook([zp](const Tensor& g) {
      zp->mul_(100.0);
      return g;
    });
    CHECK_THROWS_WITH_AS(z.sum().backward(), doctest::Contains("backward of 'exp'"), Error);
    CHECK_THROWS_WITH_AS(z.sum().backward(), doctest::Contains("modified by an in-place operation"), Error);
    CHECK_FALSE(x.grad().defined());
  }
  // The hook of a later tensor writing to what an earlier op saved (mul saved y).
  {
    Tensor x = tensor({2.0, 3.0}, DType::f64).requires_grad_();
    Tensor y = x * 1.0;
    Tensor w = y * y;
    Tensor v = w + 1.0;
    Tensor* yp = &y;
    v.register_hook([yp](const Tensor& g) {
      yp->add_(tensor({1.0, 1.0}, DType::f64));
      return g;
    });
    CHECK_THROWS_WITH_AS(v.sum().backward(), doctest::Contains("modified by an in-place operation"), Error);
  }
  // A leaf's hook runs in the middle of backward too: writing to a tensor a node still to run saved.
  {
    Tensor a = tensor({1.0, 2.0}, DType::f64).requires_grad_();
    Tensor b = tensor({3.0, 4.0}, DType::f64).requires_grad_();
    Tensor y = exp(b);
    Tensor loss = (a * 2.0).sum() * 0.0 + (y * y).sum();
    Tensor* yp = &y;
    a.register_hook([yp](const Tensor& g) {
      yp->mul_(2.0);
      return g;
    });
    // Whichever order the walk takes, the gradient of b is either computed before the write or refused.
    try {
      loss.backward();
      CHECK(b.grad() == approx(2.0 * exp(tensor({6.0, 8.0}, DType::f64))));
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("modified by an in-place operation") != std::string::npos);
    }
  }
  // A custom op's backward writing to a tensor another op saved.
  {
    Tensor x = tensor({0.5, 1.0}, DType::f64).requires_grad_();
    Tensor z = exp(x);
    Tensor zc = z;
    Tensor u = record_op("scribble", {z}, z.detach() * 1.0, [zc](const Tensor& g) mutable {
      zc.mul_(100.0);
      return std::vector<Tensor>{g};
    }, {});
    CHECK_THROWS_WITH_AS(u.sum().backward(), doctest::Contains("backward of 'exp'"), Error);
  }
  // retain_grad and a hook that only reads leave the gradient right.
  {
    Tensor x = tensor({0.5, 1.0}, DType::f64).requires_grad_();
    Tensor z = exp(x);
    z.retain_grad();
    z.register_hook([](const Tensor& g) { return g * 1.0; });
    z.sum().backward();
    CHECK(x.grad() == approx(exp(tensor({0.5, 1.0}, DType::f64))));
    CHECK(z.grad() == approx(tensor({1.0, 1.0}, DType::f64)));
  }
}

TEST_CASE("hooks refuse bad use with clear errors") {
  CHECK_THROWS_WITH_AS(tensor({1.0}).register_hook([](const Tensor& g) { return g; }),
                       doctest::Contains("register_hook: cannot register a hook on a tensor of shape (1) that does not require grad"),
                       Error);
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = x * 2.0;
  y.register_hook([](const Tensor&) { return tensor({1.0}); });
  CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("register_hook: a hook returned a gradient of shape (1)"), Error);
}

TEST_CASE("a post-accumulate hook runs once per backward, after the leaf's gradient is complete") {
  // w is used by linear at every "time step": from the second backward on, linear adds its
  // gradient straight into w.grad() (a sink); the hook must still run once, after the last.
  Tensor w = tensor({0.1, 0.2, 0.3, 0.4}, DType::f64).reshape({2, 2}).requires_grad_();
  Tensor unused = tensor({1.0}, DType::f64).requires_grad_();
  const Tensor x = tensor({1.0, -1.0, 0.5, 2.0}, DType::f64).reshape({2, 2});
  std::vector<Tensor> seen;
  std::vector<std::string> order;
  HookHandle h = w.register_post_accumulate_grad_hook([&](const Tensor& leaf) {
    order.push_back("hook");
    seen.push_back(leaf.grad().clone());
    queue_callback([&] { order.push_back("callback"); });
  });
  unused.register_post_accumulate_grad_hook([&](const Tensor&) { order.push_back("unused"); });
  auto loss = [&] {
    Tensor h1 = linear(x, w).tanh();
    Tensor h2 = linear(h1, w).tanh();
    return linear(h2, w).sum();
  };
  Tensor expected;
  {
    Tensor w2 = w.detach().clone().requires_grad_();
    Tensor h1 = linear(x, w2).tanh(), h2 = linear(h1, w2).tanh();
    linear(h2, w2).sum().backward();
    expected = w2.grad();
  }
  loss().backward();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == approx(expected));
  loss().backward();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1] == approx(expected * 2.0));
  CHECK(order == std::vector<std::string>{"hook", "callback", "hook", "callback"});
  h.remove();
  loss().backward();
  CHECK(seen.size() == 2);
  // Backward of the leaf itself runs its post hooks too.
  int calls = 0;
  unused.register_post_accumulate_grad_hook([&](const Tensor& leaf) { calls += static_cast<int>(leaf.grad().item()); });
  unused.backward(tensor({3.0}, DType::f64));
  CHECK(calls == 3);
}

TEST_CASE("post-accumulate hooks and queue_callback refuse bad use") {
  Tensor w = tensor({1.0, 2.0}).requires_grad_();
  CHECK_THROWS_WITH_AS((w * 2.0).register_post_accumulate_grad_hook([](const Tensor&) {}),
                       "register_post_accumulate_grad_hook: needs a leaf that requires grad, got a tensor of shape (2) made by 'mul'",
                       Error);
  CHECK_THROWS_WITH_AS(tensor({1.0}).register_post_accumulate_grad_hook([](const Tensor&) {}),
                       doctest::Contains("that does not require grad"), Error);
  CHECK_THROWS_WITH_AS(queue_callback([] {}), doctest::Contains("queue_callback: no backward pass is running"), Error);
  // A callback that throws ends backward with its exception; the next backward runs normally.
  HookHandle h = w.register_post_accumulate_grad_hook(
      [](const Tensor&) { queue_callback([] { throw Error("callback failed"); }); });
  CHECK_THROWS_WITH_AS((w * 2.0).sum().backward(), "callback failed", Error);
  h.remove();
  (w * 2.0).sum().backward();
  CHECK(w.grad() == approx(tensor({4.0, 4.0})));
}

// A graph held by a global tensor is destroyed at exit, after the engine's thread-locals: it
// must not touch them (a heap-use-after-free under ASan before).
namespace {
const Tensor global_graph = [] {
  Tensor w = tensor({1.0, 2.0}).requires_grad_();
  return ((w * 2.0).tanh() * w).sum();
}();
}  // namespace

TEST_CASE("a graph held by a global tensor is alive during the tests and torn down safely at exit") {
  CHECK(global_graph.requires_grad());
  CHECK(global_graph.grad_fn_name() == "sum");
}

// Every primitive, gradchecked in f64 against central differences, broadcasting included.
// The table below must name every primitive of `primitives()`: a new primitive without a
// gradcheck entry fails "every primitive has a gradcheck entry".
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>

using namespace xgrad;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Case {
  std::string primitive;  // the output's grad_fn must be this primitive
  std::string label;
  Fn fn;
  std::vector<Tensor> inputs;
  GradcheckOptions options = {};
};

constexpr DType f64 = DType::f64;

Tensor param(Tensor t) { return t.requires_grad_(); }
Tensor normal(const Shape& s) { return param(randn(s, f64)); }
// Positive values in [0.5, 1.5]: for log, sqrt, div denominators, pow bases.
Tensor positive(const Shape& s) { return param(rand(s, f64) + 0.5); }
// Values at least 0.2 away from 0: for abs, relu, leaky_relu kinks.
Tensor away_from_zero(const Shape& s) {
  Tensor u = rand(s, f64);
  return param(where(gt(u, full({}, 0.5, f64)), u + 0.2, u - 0.7));
}
std::vector<std::int64_t> v(std::initializer_list<std::int64_t> l) { return l; }

std::vector<Case> cases() {
  manual_seed(42);
  std::vector<Case> c;
  auto add = [&](std::string prim, std::string label, Fn fn, std::vector<Tensor> in, GradcheckOptions o = {}) {
    c.push_back({std::move(prim), std::move(label), std::move(fn), std::move(in), o});
  };
  // arithmetic, with broadcasting
  add("add", "same shape", [](auto& x) { return x[0] + x[1]; }, {normal({2, 3}), normal({2, 3})});
  add("add", "(2,3)+(3)", [](auto& x) { return x[0] + x[1]; }, {normal({2, 3}), normal({3})});
  add("add", "(2,1)+(1,3)", [](auto& x) { return x[0] + x[1]; }, {normal({2, 1}), normal({1, 3})});
  add("add", "0-d + (2,3)", [](auto& x) { return x[0] + x[1]; }, {normal({}), normal({2, 3})});
  add("sub", "(2,3)-(3)", [](auto& x) { return x[0] - x[1]; }, {normal({2, 3}), normal({3})});
  add("sub", "scalar - tensor", [](auto& x) { return 2.0 - x[0]; }, {normal({4})});
  add("mul", "same shape", [](auto& x) { return x[0] * x[1]; }, {normal({2, 3}), normal({2, 3})});
  add("mul", "(2,3)*(2,1)", [](auto& x) { return x[0] * x[1]; }, {normal({2, 3}), normal({2, 1})});
  add("mul", "x*x", [](auto& x) { return x[0] * x[0]; }, {normal({5})});
  add("mul", "only one operand requires grad", [](auto& x) { return x[0] * x[1]; }, {normal({3}), randn({3}, f64)});
  add("lerp", "same shape", [](auto& x) { return lerp(x[0], x[1], x[2]); },
      {normal({2, 3}), normal({2, 3}), param(rand({2, 3}, f64))});
  add("lerp", "weight (3) and start (2,1) broadcast", [](auto& x) { return lerp(x[0], x[1], x[2]); },
      {normal({2, 1}), normal({2, 3}), param(rand({3}, f64))});
  add("lerp", "only the weight requires grad", [](auto& x) { return lerp(x[0], x[1], x[2]); },
      {randn({4}, f64), randn({4}, f64), param(rand({4}, f64))});
  add("lerp", "scalar weight", [](auto& x) { return lerp(x[0], x[1], 0.3); }, {normal({2, 2}), normal({2, 2})});
  add("lerp", "one-element weight tensor", [](auto& x) { return lerp(x[0], x[1], x[2]); },
      {normal({2, 3}), normal({2, 3}), normal({1})});
  add("div", "(2,3)/(3)", [](auto& x) { return x[0] / x[1]; }, {normal({2, 3}), positive({3})});
  add("div", "scalar / tensor", [](auto& x) { return 1.0 / x[0]; }, {positive({4})});
  add("neg", "", [](auto& x) { return -x[0]; }, {normal({2, 2})});
  add("pow", "cube", [](auto& x) { return pow(x[0], 3.0); }, {normal({2, 3})});
  add("pow", "fractional", [](auto& x) { return pow(x[0], -1.5); }, {positive({4})});
  add("pow_tensor", "(2,3)^(3)", [](auto& x) { return pow(x[0], x[1]); }, {positive({2, 3}), normal({3})});
  // unary
  add("exp", "", [](auto& x) { return exp(x[0]); }, {normal({2, 3})});
  add("log", "", [](auto& x) { return log(x[0]); }, {positive({2, 3})});
  add("sqrt", "", [](auto& x) { return sqrt(x[0]); }, {positive({2, 3})});
  add("abs", "", [](auto& x) { return abs(x[0]); }, {away_from_zero({2, 3})});
  add("clamp", "inside and outside the bounds", [](auto& x) { return clamp(x[0], -0.5, 0.5); },
      {param(tensor({-1.0, -0.3, 0.2, 0.7, 1.3, -0.05}, f64))});
  add("sigmoid", "", [](auto& x) { return sigmoid(x[0]); }, {normal({2, 3})});
  add("tanh", "", [](auto& x) { return tanh(x[0]); }, {normal({2, 3})});
  // Both signs, always: random values may all fall on the flat side (they did once the
  // random stream before them changed).
  add("relu", "", [](auto& x) { return relu(x[0]); },
      {param(tensor({-1.2, 0.7, -0.3, 1.5, 0.4, -0.8}, {2, 3}, f64))});
  add("leaky_relu", "", [](auto& x) { return leaky_relu(x[0], 0.1); }, {away_from_zero({2, 3})});
  add("gelu", "", [](auto& x) { return gelu(x[0]); }, {normal({2, 3})});
  add("softplus", "including large magnitudes", [](auto& x) { return softplus(x[0]); },
      {param(tensor({-30.0, -2.0, 0.0, 0.5, 3.0, 30.0}, f64))});
  // f32 round trip: rounding to f32 needs a coarser step and tolerance.
  add("to", "f64 -> f32 -> f64", [](auto& x) { return x[0].to(DType::f32).to(f64); }, {normal({3})},
      GradcheckOptions().eps(1e-2).atol(1e-4));
  add("clone", "", [](auto& x) { return x[0].clone(); }, {normal({2, 3})});
  // matmul
  add("matmul", "2-D", [](auto& x) { return matmul(x[0], x[1]); }, {normal({3, 4}), normal({4, 2})});
  add("matmul", "3-D x 2-D (folded batch)", [](auto& x) { return matmul(x[0], x[1]); }, {normal({2, 3, 4}), normal({4, 5})});
  add("matmul", "2-D x transposed view (x · wᵀ)", [](auto& x) { return matmul(x[0], x[1].t()); },
      {normal({3, 4}), normal({5, 4})});
  add("matmul", "transposed view x 2-D (uᵀ · w)", [](auto& x) { return matmul(x[0].t(), x[1]); },
      {normal({4, 3}), normal({4, 2})});
  add("matmul", "3-D x transposed view (folded batch)", [](auto& x) { return matmul(x[0], x[1].t()); },
      {normal({2, 3, 4}), normal({5, 4})});
  add("matmul", "batched, broadcast batch", [](auto& x) { return matmul(x[0], x[1]); }, {normal({2, 1, 3, 4}), normal({3, 4, 2})});
  add("matmul", "2-D x 3-D", [](auto& x) { return matmul(x[0], x[1]); }, {normal({3, 4}), normal({2, 4, 2})});
  add("matmul", "1-D x 2-D", [](auto& x) { return matmul(x[0], x[1]); }, {normal({4}), normal({4, 3})});
  add("matmul", "2-D x 1-D", [](auto& x) { return matmul(x[0], x[1]); }, {normal({3, 4}), normal({4})});
  add("matmul", "1-D x 1-D", [](auto& x) { return matmul(x[0], x[1]); }, {normal({4}), normal({4})});
  add("linear", "(5,4) w (3,4) b (3)", [](auto& x) { return linear(x[0], x[1], x[2]); },
      {normal({5, 4}), normal({3, 4}), normal({3})});
  add("linear", "3-D input, no bias", [](auto& x) { return linear(x[0], x[1]); }, {normal({2, 3, 4}), normal({5, 4})});
  add("linear", "full (B, out) term as b", [](auto& x) { return linear(x[0], x[1], x[2]); },
      {normal({3, 4}), normal({2, 4}), normal({3, 2})});
  add("linear", "1-D input", [](auto& x) { return linear(x[0], x[1], x[2]); }, {normal({4}), normal({3, 4}), normal({3})});
  // A weight used twice: the second gradient is added into the first inside the GEMM.
  add("linear", "weight reused (gradient accumulated in the GEMM)",
      [](auto& x) { return linear(tanh(linear(x[0], x[1])), x[1], x[2]); },
      {normal({3, 4}), normal({4, 4}), normal({4})});
  // shape
  add("reshape", "", [](auto& x) { return reshape(x[0], {3, -1}); }, {normal({2, 3, 2})});
  add("permute", "", [](auto& x) { return permute(x[0], {2, 0, 1}); }, {normal({2, 3, 4})});
  add("permute", "transpose", [](auto& x) { return x[0].transpose(0, 1); }, {normal({3, 2})});
  add("expand", "(3,1) -> (2,3,4)", [](auto& x) { return expand(x[0], {2, 3, 4}); }, {normal({3, 1})});
  add("narrow", "", [](auto& x) { return narrow(x[0], 1, 1, 2); }, {normal({2, 4})});
  add("select", "", [](auto& x) { return select(x[0], 0, -1); }, {normal({3, 2})});
  add("select", "of a transposed view", [](auto& x) { return x[0].t().select(1, 1); }, {normal({3, 2})});
  add("narrow", "of a transposed view, then a strided kernel", [](auto& x) { return tanh(x[0].t().narrow(0, 1, 2)); }, {normal({2, 4})});
  add("as_strided", "overlapping windows accumulate", [](auto& x) { return x[0].as_strided({3, 2}, {1, 1}, 0); }, {normal({4})});
  add("as_strided", "offset and transposed strides", [](auto& x) { return as_strided(x[0], {2, 2}, {1, 3}, 1); }, {normal({2, 3})});
  add("copy_slices", "a view of a non-leaf written in place", [](auto& x) {
        Tensor y = x[0] * 1.0;
        y.narrow(1, 1, 2).mul_(x[1]);
        return y;
      }, {normal({2, 4}), normal({2})});
  add("copy_slices", "copy_ of a tensor into a select of a buffer", [](auto& x) {
        Tensor buf = zeros({3, 2}, DType::f64);
        buf.select(0, 1).copy_(x[0]);
        return buf * x[1];
      }, {normal({2}), normal({3, 2})});
  add("cat", "three along dim 1", [](auto& x) { return cat({x[0], x[1], x[2]}, 1); },
      {normal({2, 1}), normal({2, 3}), normal({2, 2})});
  add("cat", "stack", [](auto& x) { return stack({x[0], x[1]}, 1); }, {normal({2, 3}), normal({2, 3})});
  add("split", "one piece used, the other's gradient is zero", [](auto& x) { return split(x[0], v({1, 3}), 1)[1]; },
      {normal({2, 4})});
  add("split", "uneven chunks recombined", [](auto& x) {
        auto p = chunk(x[0], 3, 0);
        return p[0].sum() * 2.0 + p[2].sum() * 3.0 + (p[1] * p[1]).sum();
      }, {normal({5, 2})});
  add("split", "unbind", [](auto& x) {
        auto steps = unbind(x[0], 1);
        Tensor acc = steps[0];
        for (std::size_t t = 1; t < steps.size(); ++t) acc = tanh(acc + steps[t]);
        return acc;
      }, {normal({2, 4, 3})});
  // indexing
  add("index_select", "repeated indices accumulate", [](auto& x) { return index_select(x[0], 0, tensor({2, 0, 2, 1}, DType::i64)); },
      {normal({3, 2})});
  add("index_select", "2-D index along dim 1", [](auto& x) { return index_select(x[0], 1, tensor({0, 2, 2, 1}, {2, 2}, DType::i64)); },
      {normal({2, 3})});
  add("gather", "dim 1", [](auto& x) { return gather(x[0], 1, tensor({0, 0, 2, 1}, {2, 2}, DType::i64)); }, {normal({2, 3})});
  add("gather", "dim 0", [](auto& x) { return gather(x[0], 0, tensor({1, 0, 1}, {1, 3}, DType::i64)); }, {normal({2, 3})});
  add("where", "broadcast cond and operands", [](auto& x) {
        return where(tensor({1, 0, 1}, {3, 1}, DType::b8), x[0], x[1]);
      }, {normal({3, 4}), normal({4})});
  add("where", "masked_fill", [](auto& x) { return masked_fill(x[0], tensor({0, 1, 0}, DType::b8), 7.0); }, {normal({2, 3})});
  // reductions
  add("sum", "all", [](auto& x) { return sum(x[0]); }, {normal({2, 3})});
  add("sum", "dims {0, 2} keepdim", [](auto& x) { return sum(x[0], {0, 2}, true); }, {normal({2, 3, 4})});
  add("sum", "dim -1", [](auto& x) { return sum(x[0], {-1}); }, {normal({2, 3})});
  add("mul", "mean", [](auto& x) { return mean(x[0], {1}); }, {normal({2, 3})});
  add("mul", "var", [](auto& x) { return var(x[0], {1}); }, {normal({2, 4})});
  add("max", "along dim 1", [](auto& x) { return max(x[0], 1).first; }, {normal({3, 4})});
  add("max", "keepdim", [](auto& x) { return max(x[0], 0, true).first; }, {normal({3, 4})});
  add("max", "max of all", [](auto& x) { return max(x[0]); }, {normal({3, 4})});
  add("min", "along dim 0", [](auto& x) { return min(x[0], 0).first; }, {normal({3, 4})});
  add("sum_squared_difference", "both operands", [](auto& x) { return sum_squared_difference(x[0], x[1]); },
      {normal({3, 4}), normal({3, 4})});
  add("sum_squared_difference", "strided operand, one requires grad",
      [](auto& x) { return sum_squared_difference(transpose(x[0], 0, 1), x[1]); }, {normal({4, 3}), randn({3, 4}, f64)});
  add("sum_squared_difference", "over 32 elements (partial sums and a tail)",
      [](auto& x) { return sum_squared_difference(x[0], x[1]); }, {normal({5, 7}), normal({5, 7})});
  add("logsumexp", "dim 1", [](auto& x) { return logsumexp(x[0], {1}); }, {normal({3, 4})});
  add("logsumexp", "dims {0, 1} keepdim", [](auto& x) { return logsumexp(x[0], {0, 1}, true); }, {normal({2, 3, 2})});
  add("softmax", "dim 1", [](auto& x) { return softmax(x[0], 1); }, {normal({3, 4})});
  add("softmax", "dim 0 of 3-D", [](auto& x) { return softmax(x[0], 0); }, {normal({3, 2, 2})});
  add("log_softmax", "dim -1", [](auto& x) { return log_softmax(x[0], -1); }, {normal({3, 4})});
  add("log_softmax", "dim 1 of 3-D", [](auto& x) { return log_softmax(x[0], 1); }, {normal({2, 3, 2})});
  return c;
}

}  // namespace

TEST_CASE("every primitive has a gradcheck entry") {
  std::set<std::string> covered;
  for (const Case& c : cases()) covered.insert(c.primitive);
  for (const PrimitiveInfo& p : primitives()) CHECK_MESSAGE(covered.count(std::string(p.name)) == 1, p.name);
  for (const std::string& name : covered) {
    bool listed = false;
    for (const PrimitiveInfo& p : primitives()) listed = listed || p.name == name;
    CHECK_MESSAGE(listed, name << " is not in the primitive table");
  }
}

TEST_CASE("the first gradcheck case of each primitive applies it directly") {
  // Later cases may reach a primitive through a composition (mean, stack, unbind, ...).
  std::set<std::string> seen;
  for (const Case& c : cases()) {
    if (!seen.insert(c.primitive).second) continue;
    Tensor out = c.fn(c.inputs);
    CHECK_MESSAGE(out.grad_fn_name() == c.primitive, c.primitive << " / " << c.label);
  }
}

TEST_CASE("every primitive passes gradcheck in float64") {
  for (const Case& c : cases()) {
    CAPTURE(c.primitive);
    CAPTURE(c.label);
    GradcheckResult r = gradcheck(c.fn, c.inputs, c.options);
    CHECK_MESSAGE(r.ok, r.message());
  }
}

TEST_CASE("gradcheck catches a wrong backward") {
  // A deliberately wrong rule (d/dx x^2 claimed to be x) must fail and name the element.
  auto bad_square = [](const std::vector<Tensor>& x) {
    return record_op("bad_square", {x[0]}, x[0].detach() * x[0].detach(),
                     [s = x[0].detach()](const Tensor& g) { return std::vector<Tensor>{g * s}; });
  };
  GradcheckResult r = gradcheck(bad_square, {param(tensor({1.0, 2.0, 3.0}, f64))});
  CHECK_FALSE(r.ok);
  CHECK(r.input == 0);
  CHECK(r.element == 2);  // the largest error is at x = 3: analytic 3·w vs numeric 6·w
  CHECK(r.numeric == doctest::Approx(2.0 * r.analytic).epsilon(1e-6));
  CHECK(r.message().find("failed") != std::string::npos);
}

TEST_CASE("gradcheck requires float64 inputs") {
  CHECK_THROWS_AS(gradcheck([](auto& x) { return x[0] * 2.0; }, {randn({2}).requires_grad_()}), Error);
}

TEST_CASE("gradcheck fails when an input that requires grad gets an all-zero gradient, unless allowed") {
  Tensor x = randn({3}, DType::f64).requires_grad_(), y = randn({3}, DType::f64).requires_grad_();
  auto ignores_y = [](const std::vector<Tensor>& in) { return tanh(in[0]); };
  GradcheckResult r = gradcheck(ignores_y, {x, y});
  CHECK_FALSE(r.ok);
  CHECK(r.zero_input == 1);
  CHECK_MESSAGE(r.message().find("input 1 gets an all-zero gradient") != std::string::npos, r.message());
  CHECK(gradcheck(ignores_y, {x, y}, GradcheckOptions().allow_zero_gradient(true)).ok);
  // A function that ignores every input used to pass vacuously (0 vs 0).
  CHECK_FALSE(gradcheck([](const std::vector<Tensor>&) { return ones({2}, DType::f64); }, {x}).ok);
}

TEST_CASE("gradcheck_parameters and nn::gradcheck check parameters in place and restore their gradients") {
  nn::Linear layer(3, 2);
  layer.to(DType::f64);
  const Tensor x = randn({4, 3}, DType::f64);
  Tensor w = layer.parameters()[0];
  w.set_grad(full(w.shape(), 5.0, DType::f64));
  const std::vector<double> before = w.to_vector<double>();
  GradcheckResult r = nn::gradcheck(layer, [&] { return tanh(layer(x)); });
  CHECK_MESSAGE(r.ok, r.message());
  CHECK(w.to_vector<double>() == before);                 // every element put back
  CHECK(w.grad().to_vector<double>()[0] == 5.0);          // the caller's gradient restored
  // A wrong backward is caught: a parameter the function reads through a detach.
  GradcheckResult bad = gradcheck_parameters([&] { return x.matmul(w.detach().t()) * 1.0 + w.sum(); }, {w});
  CHECK_FALSE(bad.ok);
}

TEST_CASE("the primitive table of docs/tensors.md lists exactly primitives()") {
  std::ifstream readme(std::string(XGRAD_SOURCE_DIR) + "/docs/tensors.md");
  REQUIRE(readme);
  std::set<std::string> listed;
  std::string line;
  bool in_table = false;
  while (std::getline(readme, line)) {
    if (line.rfind("| family | primitives |", 0) == 0) in_table = true;
    else if (in_table && line.rfind("|", 0) != 0) break;
    else if (in_table && line.rfind("|---", 0) != 0) {
      // The primitives of a row are its backticked words after the family column.
      const std::size_t cells = line.find('|', 1);
      for (std::size_t i = line.find('`', cells); i != std::string::npos; i = line.find('`', i + 1)) {
        const std::size_t end = line.find('`', i + 1);
        const std::string word = line.substr(i + 1, end - i - 1);
        if (word.find(' ') == std::string::npos && word.find('(') == std::string::npos) listed.insert(word);
        i = end;
      }
    }
  }
  std::set<std::string> table;
  for (const PrimitiveInfo& p : primitives()) table.insert(std::string(p.name));
  CHECK(listed == table);
}

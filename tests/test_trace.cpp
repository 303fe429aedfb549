// Tracing (<xgrad/core/trace.hpp>): a tracer installed on a thread sees every primitive once,
// recorded or not, with its attributes; composites bracket what they run; in-place writes are
// reported; the tracer's own work is not.
#include <doctest/doctest.h>

#include <optional>
#include <thread>

#include <xgrad/core/trace.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

struct Log : trace::Tracer {
  std::vector<std::string> names;
  std::vector<trace::Attributes> attributes;
  std::vector<std::size_t> input_counts, output_counts;
  std::vector<std::string> in_place_ops;
  void primitive(const std::string& name, std::span<const Tensor> inputs, std::span<const Tensor> outputs,
                 const trace::Attributes& a) override {
    names.push_back(name);
    attributes.push_back(a);
    input_counts.push_back(inputs.size());
    output_counts.push_back(outputs.size());
    (void)exp(outputs[0].dtype() == DType::b8 ? zeros({1}) : outputs[0]);  // not seen: tracing is suspended
  }
  void in_place(const std::string& op, const Tensor&) override { in_place_ops.push_back(op); }
  void begin_composite(const std::string& kind, std::span<const Tensor>, const trace::Attributes&) override {
    names.push_back("begin " + kind);
  }
  void end_composite(const std::string& kind, std::span<const Tensor> outputs) override {
    names.push_back("end " + kind + (outputs.empty() ? " (threw)" : ""));
  }
};

}  // namespace

TEST_CASE("a tracer sees every primitive once, with or without grad, and its attributes") {
  Tensor x = randn({2, 3});
  Tensor w = randn({3, 3}).requires_grad_();
  for (bool grad : {true, false}) {
    CAPTURE(grad);
    Log log;
    {
      std::optional<NoGradGuard> no_grad;
      if (!grad) no_grad.emplace();
      trace::TracerGuard guard(log);
      Tensor y = narrow(softmax(matmul(x, w), 1), 1, 1, 2);
      (void)sum(y, {0}, true);
      Tensor mask = gt(y, 0.5);
      (void)where(mask, y, -y);
    }
    REQUIRE(log.names == std::vector<std::string>{"matmul", "softmax", "narrow", "sum", "gt", "neg", "where"});
    CHECK(trace::get<std::int64_t>(log.attributes[1], "dim", "softmax") == 1);
    CHECK(trace::get<std::int64_t>(log.attributes[2], "start", "narrow") == 1);
    CHECK(trace::get<std::vector<std::int64_t>>(log.attributes[3], "dims", "sum") == std::vector<std::int64_t>{0});
    CHECK(log.input_counts[6] == 3);  // where's condition is an input
  }
  CHECK(trace::active() == nullptr);
}

TEST_CASE("a missing or mistyped attribute names the op") {
  trace::Attributes a{{"dim", std::int64_t{1}}};
  CHECK_THROWS_WITH_AS(trace::get<double>(a, "dim", "softmax"), "softmax: attribute 'dim' has an unexpected type", Error);
  CHECK_THROWS_WITH_AS(trace::get<std::int64_t>(a, "start", "narrow"), "narrow: attribute 'start' is missing", Error);
}

TEST_CASE("composites bracket their primitives; a composite that throws ends without outputs") {
  Log log;
  trace::TracerGuard guard(log);
  {
    trace::Composite scope("block", {}, {});
    Tensor y = tanh(randn({2}));
    scope.finish({y});
  }
  try {
    trace::Composite scope("failing", {}, {});
    throw Error("boom");
  } catch (const Error&) {
  }
  CHECK(log.names == std::vector<std::string>{"begin block", "tanh", "end block", "begin failing", "end failing (threw)"});
}

TEST_CASE("in-place writes are reported; other threads and a removed tracer see nothing") {
  Log log;
  {
    trace::TracerGuard guard(log);
    Tensor y = zeros({3});
    y.add_(ones({3}));
    y.fill_(2.0);
    std::thread([] {
      CHECK(trace::active() == nullptr);
      (void)exp(ones({2}));
    }).join();
  }
  (void)exp(ones({2}));
  CHECK(log.in_place_ops == std::vector<std::string>{"add_", "fill_"});
  CHECK(log.names.empty());
}

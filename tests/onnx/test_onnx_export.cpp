// What xgrad::onnx::export_model writes (read back with ONNX's own protobuf classes) and what it
// refuses, by name. The numbers are checked against ONNX Runtime in test_onnx_ort.cpp.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include <doctest/doctest.h>

#include <onnx/onnx_pb.h>

#include <xgrad/onnx.hpp>
#include <xgrad/xgrad.hpp>

#include "../temp_dir.hpp"

using namespace xgrad;

namespace {

::onnx::ModelProto parse(const std::string& bytes) {
  ::onnx::ModelProto m;
  REQUIRE(m.ParseFromString(bytes));
  return m;
}

std::vector<std::string> op_types(const ::onnx::ModelProto& m) {
  std::vector<std::string> ops;
  for (const auto& n : m.graph().node()) ops.push_back(n.op_type());
  return ops;
}

std::size_t count(const std::vector<std::string>& v, const std::string& x) {
  return static_cast<std::size_t>(std::count(v.begin(), v.end(), x));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

xgrad::onnx::ExportForward recurrent_forward(nn::Recurrent& layer) {
  return [&layer](const std::vector<Tensor>& in) {
    auto [y, state] = layer(in[0]);
    return std::vector<Tensor>{y, state.h()};
  };
}

}  // namespace

TEST_CASE("every primitive of the table has an ONNX mapping, or a refusal that names it") {
  for (const PrimitiveInfo& p : primitives()) {
    CAPTURE(p.name);
    const bool refused = std::string(p.name) == "as_strided" || std::string(p.name) == "copy_slices";
    CHECK(xgrad::onnx::is_exportable(std::string(p.name)) == !refused);
  }
  CHECK_FALSE(xgrad::onnx::is_exportable("softsign"));  // a user-defined op
}

TEST_CASE("an LSTM exports as one ONNX LSTM op per layer, parameters as named initializers") {
  manual_seed(0);
  nn::LSTM lstm(nn::LSTMOptions(3, 5).num_layers(2).bidirectional(true));
  lstm.eval();
  const auto m = parse(xgrad::onnx::export_model_bytes(
      lstm, recurrent_forward(lstm), {randn({4, 2, 3})},
      xgrad::onnx::ExportOptions().input_names({"x"}).output_names({"y", "h"}).dynamic_axes({{0, 0, "sequence"}, {0, 1, "batch"}})));
  CHECK(m.opset_import(0).version() == 17);
  const auto ops = op_types(m);
  CHECK(count(ops, "LSTM") == 2);
  // Not unrolled: no per-step gate arithmetic.
  CHECK(count(ops, "Sigmoid") == 0);
  CHECK(count(ops, "Tanh") == 0);
  std::vector<std::string> initializers;
  for (const auto& i : m.graph().initializer()) initializers.push_back(i.name());
  for (const auto& [name, p] : lstm.named_parameters()) {
    CAPTURE(name);
    CHECK(count(initializers, name) == 1);
  }
  for (const auto& n : m.graph().node())
    if (n.op_type() == "LSTM")
      for (const auto& a : n.attribute())
        if (a.name() == "direction") CHECK(a.s() == "bidirectional");
  // Dynamic axes by name, on the input and the outputs.
  const auto& x = m.graph().input(0).type().tensor_type().shape();
  CHECK(x.dim(0).dim_param() == "sequence");
  CHECK(x.dim(1).dim_param() == "batch");
  CHECK(x.dim(2).dim_value() == 3);
  const auto& y = m.graph().output(0).type().tensor_type().shape();
  CHECK(y.dim(0).dim_param() == "sequence");
  CHECK(y.dim(1).dim_param() == "batch");
  CHECK(y.dim(2).dim_value() == 10);
  const auto& h = m.graph().output(1).type().tensor_type().shape();
  CHECK(h.dim(0).dim_value() == 4);
  CHECK(h.dim(1).dim_param() == "batch");
}

TEST_CASE("GRU exports with linear_before_reset from reset_after") {
  for (bool reset_after : {true, false}) {
    CAPTURE(reset_after);
    nn::GRU gru(nn::GRUOptions(3, 4).reset_after(reset_after));
    gru.eval();
    const auto m = parse(xgrad::onnx::export_model_bytes(gru, recurrent_forward(gru), {randn({4, 2, 3})}));
    int found = 0;
    for (const auto& n : m.graph().node())
      if (n.op_type() == "GRU")
        for (const auto& a : n.attribute())
          if (a.name() == "linear_before_reset") {
            CHECK(a.i() == (reset_after ? 1 : 0));
            ++found;
          }
    CHECK(found == 1);
  }
}

TEST_CASE("export writes a file that passes ONNX's checker with full shape inference") {
  xgrad_test::TempDir dir;
  nn::Linear linear(4, 3);
  linear.eval();
  const std::string path = dir.file("linear.onnx");
  xgrad::onnx::export_model(linear, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{softmax(linear(in[0]), 1)}; },
                     {randn({2, 4})}, path, xgrad::onnx::ExportOptions().dynamic_axes({{0, 0, "batch"}}));
  CHECK_NOTHROW(xgrad::onnx::check_model(path));
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  const auto m = parse(bytes.str());
  CHECK(m.graph().input(0).name() == "input0");
  CHECK(m.graph().output(0).name() == "output0");
  CHECK(m.graph().output(0).type().tensor_type().shape().dim(0).dim_param() == "batch");
}

TEST_CASE("check_model refuses what is not a valid model") {
  CHECK(error_of([] { xgrad::onnx::check_model_bytes("not a model"); }).starts_with("onnx check:"));
  CHECK(error_of([] { xgrad::onnx::check_model("/nonexistent/model.onnx"); }).find("cannot open") != std::string::npos);
  // A graph whose node reads a value nobody defines.
  ::onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type("Relu");
  n->add_input("missing");
  n->add_output("y");
  m.mutable_graph()->set_name("g");
  std::string bytes;
  m.SerializeToString(&bytes);
  CHECK(error_of([&] { xgrad::onnx::check_model_bytes(bytes); }).starts_with("onnx check:"));
}

TEST_CASE("a module in training mode is refused") {
  nn::Linear linear(4, 3);  // modules start in training mode
  const std::string e = error_of([&] {
    xgrad::onnx::export_model_bytes(linear, [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{linear(in[0])}; },
                             {randn({2, 4})});
  });
  CHECK(e.find("training mode") != std::string::npos);
  CHECK(e.find("eval()") != std::string::npos);
}

TEST_CASE("what ONNX cannot express is refused with a clear error") {
  SUBCASE("LSTM proj_size") {
    nn::LSTM lstm(nn::LSTMOptions(3, 5).proj_size(2));
    lstm.eval();
    const std::string e = error_of([&] { xgrad::onnx::export_model_bytes(lstm, recurrent_forward(lstm), {randn({4, 2, 3})}); });
    CHECK(e.find("proj_size=2") != std::string::npos);
  }
  SUBCASE("a recurrent layer in training mode inside a module in eval mode") {
    nn::GRU gru(nn::GRUOptions(3, 4).recurrent_dropout(0.2));
    gru.eval();
    nn::Sequential wrapper;  // in eval mode, while the layer it runs is in training mode
    wrapper.eval();
    gru.train();
    const std::string e = error_of([&] { xgrad::onnx::export_model_bytes(wrapper, recurrent_forward(gru), {randn({4, 2, 3})}); });
    CHECK(e.find("GRU layer is in training mode") != std::string::npos);
  }
  SUBCASE("a user cell with lengths") {
    struct Elman : nn::RecurrentCell {
      Tensor w_ih, w_hh;
      Elman(std::int64_t in, std::int64_t hidden) : RecurrentCell(in, {hidden}) {
        w_ih = register_parameter("weight_ih", randn({hidden, in}));
        w_hh = register_parameter("weight_hh", randn({hidden, hidden}));
      }
      Tensor project_input(const Tensor& x) override { return matmul(x, w_ih.t()); }
      nn::CellState step(const Tensor& xp, const nn::CellState& s) override { return {tanh(xp + matmul(s[0], w_hh.t()))}; }
      std::string type_name() const override { return "Elman"; }
    };
    nn::Recurrent rnn(nn::RecurrentOptions(3, 4), [](std::int64_t in, std::int64_t h) { return std::make_shared<Elman>(in, h); });
    rnn.eval();
    // Exported as Scan (test_onnx_ort.cpp runs it), with lengths too (a second scan input).
    const auto m = parse(xgrad::onnx::export_model_bytes(rnn, recurrent_forward(rnn), {randn({4, 2, 3})}));
    CHECK(count(op_types(m), "Scan") == 1);
    const auto ml = parse(xgrad::onnx::export_model_bytes(rnn, [&](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{rnn(in[0], {}, nn::Lengths(in[1])).output};
    }, {randn({4, 2, 3}), from_vector(std::vector<std::int64_t>{4, 2}, {2})}));
    CHECK(count(op_types(ml), "Scan") == 1);
  }
  SUBCASE("as_strided, by name") {
    nn::Linear linear(4, 3);
    linear.eval();
    const std::string e = error_of([&] {
      xgrad::onnx::export_model_bytes(linear, [&](const std::vector<Tensor>& in) {
        return std::vector<Tensor>{as_strided(linear(in[0]), {2, 2}, {1, 1}, 0)};
      }, {randn({2, 4})});
    });
    CHECK(e.find("primitive 'as_strided' has no ONNX mapping") != std::string::npos);
  }
  SUBCASE("a user-defined op, by name") {
    nn::Linear linear(4, 3);
    linear.eval();
    const std::string e = error_of([&] {
      xgrad::onnx::export_model_bytes(linear, [&](const std::vector<Tensor>& in) {
        Tensor y = linear(in[0]);
        return std::vector<Tensor>{record_op("softsign", {y}, y / (1.0 + abs(y)),
                                             [](const Tensor& g) { return std::vector<Tensor>{g}; })};
      }, {randn({2, 4})});
    });
    CHECK(e.find("primitive 'softsign' has no ONNX mapping") != std::string::npos);
  }
}

TEST_CASE("dynamic axes are checked") {
  nn::Linear linear(4, 3);
  linear.eval();
  auto forward = [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{linear(in[0] * in[1])}; };
  auto export_with = [&](std::vector<xgrad::onnx::DynamicAxis> axes) {
    return error_of([&] {
      xgrad::onnx::export_model_bytes(linear, forward, {randn({3, 4}), randn({3, 4})}, xgrad::onnx::ExportOptions().dynamic_axes(axes));
    });
  };
  CHECK(export_with({{2, 0, "batch"}}).find("names input 2") != std::string::npos);
  CHECK(export_with({{0, 5, "batch"}}).find("axis 5 of input 0") != std::string::npos);
  CHECK(export_with({{0, 0, "batch"}, {1, 1, "other"}}).find("example size") == std::string::npos);
  CHECK(export_with({{0, 0, "batch"}, {1, 0, "rows"}}).find("both have example size 3") != std::string::npos);
  CHECK(error_of([&] {
          xgrad::onnx::export_model_bytes(linear, forward, {randn({1, 4}), randn({1, 4})},
                                   xgrad::onnx::ExportOptions().dynamic_axes({{0, 0, "batch"}}));
        }).find("example size 1") != std::string::npos);
  CHECK(error_of([&] {
          xgrad::onnx::export_model_bytes(linear, forward, {randn({3, 4}), randn({3, 4})}, xgrad::onnx::ExportOptions().input_names({"x"}));
        }).find("1 input names given for 2 inputs") != std::string::npos);
}

TEST_CASE("a reshape that merges and splits dynamic axes stays dynamic") {
  nn::Linear linear(4, 2);
  linear.eval();
  // (B, T, 4) → (B·T, 4) → linear → (B, T, 2)
  auto forward = [&](const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    return std::vector<Tensor>{reshape(linear(reshape(x, {-1, 4})), {x.size(0), x.size(1), 2})};
  };
  const auto m = parse(xgrad::onnx::export_model_bytes(linear, forward, {randn({3, 5, 4})},
                                                xgrad::onnx::ExportOptions().dynamic_axes({{0, 0, "batch"}, {0, 1, "sequence"}})));
  const auto& y = m.graph().output(0).type().tensor_type().shape();
  CHECK(y.dim(0).dim_param() == "batch");
  CHECK(y.dim(1).dim_param() == "sequence");
  CHECK(y.dim(2).dim_value() == 2);
}

TEST_CASE("an in-place write into a traced tensor is refused; into a fresh one it is a constant") {
  nn::Linear linear(4, 3);
  linear.eval();
  const std::string e = error_of([&] {
    xgrad::onnx::export_model_bytes(linear, [&](const std::vector<Tensor>& in) {
      Tensor y = linear(in[0]);
      y.add_(in[0].sum({1}, true));
      return std::vector<Tensor>{y};
    }, {randn({2, 4})});
  });
  CHECK(e.find("in-place op 'add_'") != std::string::npos);
  CHECK_NOTHROW(xgrad::onnx::export_model_bytes(linear, [&](const std::vector<Tensor>& in) {
    Tensor bias = zeros({3});
    bias.fill_(0.5);
    return std::vector<Tensor>{linear(in[0]) + bias};
  }, {randn({2, 4})}));
}

TEST_CASE("a constant shaped like a dynamic axis is exported with a warning") {
  nn::Linear linear(4, 3);
  linear.eval();
  std::ostringstream captured;
  std::streambuf* saved = std::cerr.rdbuf(captured.rdbuf());
  xgrad::onnx::export_model_bytes(linear, [&](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{linear(in[0]) + ones({5, 3})};  // (5, 3) made from the example's batch size
  }, {randn({5, 4})}, xgrad::onnx::ExportOptions().dynamic_axes({{0, 0, "batch"}}));
  std::cerr.rdbuf(saved);
  CHECK(captured.str().find("shape (5, 3) made inside the forward is exported as a constant") != std::string::npos);
  CHECK(captured.str().find("dynamic axis 'batch'") != std::string::npos);
}

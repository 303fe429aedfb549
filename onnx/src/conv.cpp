// nn's Conv1d, MaxPool1d and AvgPool1d (their composite scopes) as ONNX Conv, MaxPool and
// AveragePool: xgrad computes them from as_strided windows, which have no ONNX equivalent.
// The global poolings with lengths as a mask computed from the lengths and a reduction.
//
// Shapes: x (N, C, L) or unbatched (C, L) → (N, C', L_out) or (C', L_out); channels last
// (N, L, C) or (L, C) → (N, L_out, C') or (L_out, C'), through a Transpose on either side of
// the node (ONNX's Conv and pools read channels first). The padding is explicit (`pads`, "same"
// and "causal" resolved by xgrad to their left/right amounts), so L stays dynamic.
#include <limits>

#include <fmt/format.h>

#include "graph.hpp"

namespace xgrad::onnx::detail {

namespace {

std::int64_t int_attr(const Event& e, const char* name) { return trace::get<std::int64_t>(e.attributes, name, e.name); }

// Runs `node` (which writes one node reading the batched, channels-first input's name) on x,
// batching an unbatched input and transposing a channels-last one on the way in and out; the
// output dims are x's with channels `channels` and a length that is dynamic exactly when x's
// is (read from the output's own shape).
Value on_batched(Lowering& L, const Event& e, std::int64_t channels,
                 const std::function<std::string(const std::string&)>& node) {
  Graph& g = L.graph;
  const Value x = L.value_of(e.inputs[0]);
  const bool unbatched = x.dims.size() == 2, last = int_attr(e, "channels_last") != 0;
  auto swap = [&](const std::string& t) {  // (N, L, C) ↔ (N, C, L)
    return g.op("Transpose", {t}, [](::onnx::NodeProto& n) { set_attr(n, "perm", std::vector<std::int64_t>{0, 2, 1}); });
  };
  std::string in = unbatched ? g.op("Unsqueeze", {x.name, g.ints({0})}) : x.name;
  if (last) in = swap(in);
  std::string y = node(in);
  if (last) y = swap(y);
  if (unbatched) y = g.op("Squeeze", {y, g.ints({0})});
  const std::int64_t time_axis = (unbatched ? 0 : 1) + (last ? 0 : 1);
  const Shape& shape = e.outputs[0].shape();
  Dim length{shape[static_cast<std::size_t>(time_axis)], {}, {}, -1};
  // The input's steps are on the same axis as the output's.
  if (x.dims[static_cast<std::size_t>(time_axis)].dynamic()) length = Dim{length.value, {}, y, time_axis};
  Dims dims;
  if (!unbatched) dims.push_back(x.dims[0]);
  dims.push_back(Dim{channels, {}, {}, -1});
  dims.insert(dims.begin() + time_axis, length);
  return {y, dims, x.dtype};
}

// global_max_pool1d / global_avg_pool1d with lengths: x (3-D) with steps along time_dim and
// lengths (B,) → (B, C). The valid steps (t < len_b, or t ≥ T − len_b pre-padded) are computed
// from the lengths input, so batch, length and lengths stay dynamic; padded steps are never
// read (Where, not a product), and a sequence of length 0 gives zeros, as xgrad.
Value lower_global_pool(Lowering& L, const Event& e) {
  Graph& g = L.graph;
  const Value x = L.value_of(e.inputs[0]), lengths = L.value_of(e.inputs[1]);
  std::int64_t td = int_attr(e, "time_dim");
  if (td < 0) td += 3;
  const bool max = trace::get<std::string>(e.attributes, "mode", e.name) == "max";
  const bool pre = trace::get<std::string>(e.attributes, "padding", e.name) == "pre";
  const std::string T = g.op("Shape", {x.name}, [td](::onnx::NodeProto& n) {
    set_attr(n, "start", td);
    set_attr(n, "end", td + 1);
  });
  const std::string steps = g.op(
      "Unsqueeze",
      {g.op("Range", {g.scalar(0, DType::i64), g.op("Squeeze", {T, g.ints({0})}), g.scalar(1, DType::i64)}),
       g.ints({0})});  // (1, T)
  const std::string len = g.op("Unsqueeze", {g.op("Cast", {lengths.name}, [](::onnx::NodeProto& n) {
    set_attr(n, "to", std::int64_t{::onnx::TensorProto_DataType_INT64});
  }), g.ints({1})});  // (B, 1)
  std::string valid = pre ? g.op("Not", {g.op("Less", {steps, g.op("Sub", {T, len})})}) : g.op("Less", {steps, len});
  // (B, T) → broadcastable against x.
  if (td == 0) valid = g.op("Transpose", {valid}, [](::onnx::NodeProto& n) { set_attr(n, "perm", std::vector<std::int64_t>{1, 0}); });
  valid = g.op("Unsqueeze", {valid, g.ints({td == 2 ? 1 : 2})});
  const double fill = max ? -std::numeric_limits<double>::infinity() : 0.0;
  const std::string masked = g.op("Where", {valid, x.name, g.scalar(fill, x.dtype)});
  std::string y;
  if (max) {
    y = g.op("ReduceMax", {masked}, [td](::onnx::NodeProto& n) {
      set_attr(n, "axes", std::vector<std::int64_t>{td});
      set_attr(n, "keepdims", std::int64_t{0});
    });
    const std::string empty = g.op("Equal", {len, g.scalar(0, DType::i64)});
    y = g.op("Where", {empty, g.scalar(0, x.dtype), y});
  } else {
    const std::string total = g.op("ReduceSum", {masked, g.ints({td})}, [](::onnx::NodeProto& n) {
      set_attr(n, "keepdims", std::int64_t{0});
    });
    const std::string count = g.op("Cast", {g.op("Max", {len, g.ints({1})})}, [&](::onnx::NodeProto& n) {
      set_attr(n, "to", std::int64_t{onnx_type(x.dtype)});
    });
    y = g.op("Div", {total, count});
  }
  Dims dims = x.dims;
  dims.erase(dims.begin() + td);
  return {y, dims, x.dtype};
}

// x (N, C, L) with `left` and `right` steps added along L as Conv1d's padding_mode fills them:
// reflect and replicate as Pad's "reflect" and "edge"; circular (Pad's "wrap" is opset 19) as
// the last `left` steps, x and the first `right` steps concatenated.
std::string pad_steps(Graph& g, const std::string& x, const std::string& mode, std::int64_t left, std::int64_t right) {
  if (mode == "circular") {
    std::vector<std::string> parts;
    auto slice = [&](std::int64_t start, std::int64_t end) {
      return g.op("Slice", {x, g.ints({start}), g.ints({end}), g.ints({2})});
    };
    if (left > 0) parts.push_back(slice(-left, std::numeric_limits<std::int64_t>::max()));
    parts.push_back(x);
    if (right > 0) parts.push_back(slice(0, right));
    return g.op("Concat", parts, [](::onnx::NodeProto& n) { set_attr(n, "axis", std::int64_t{2}); });
  }
  if (mode != "reflect" && mode != "replicate")
    throw Error(fmt::format("onnx export: Conv1d padding_mode '{}' has no ONNX mapping", mode));
  const std::string onnx_mode = mode == "reflect" ? "reflect" : "edge";
  return g.op("Pad", {x, g.ints({0, 0, left, 0, 0, right})},
              [&](::onnx::NodeProto& n) { set_attr(n, "mode", onnx_mode); });
}

}  // namespace

std::vector<Value> lower_conv(Lowering& L, const Event& e) {
  Graph& g = L.graph;
  if (e.name == "conv1d") {
    const Value w = L.value_of(e.inputs[1]);
    std::vector<std::string> inputs{"", w.name};
    if (e.inputs[2].defined()) inputs.push_back(L.value_of(e.inputs[2]).name);
    const std::string mode = trace::get<std::string>(e.attributes, "padding_mode", e.name);
    const std::int64_t left = int_attr(e, "pad_left"), right = int_attr(e, "pad_right");
    return {on_batched(L, e, e.inputs[1].size(0), [&](const std::string& x) {
      inputs[0] = mode == "zeros" ? x : pad_steps(g, x, mode, left, right);
      const bool padded = mode != "zeros";
      return g.op("Conv", inputs, [&](::onnx::NodeProto& n) {
        set_attr(n, "kernel_shape", std::vector<std::int64_t>{int_attr(e, "kernel_size")});
        set_attr(n, "strides", std::vector<std::int64_t>{int_attr(e, "stride")});
        set_attr(n, "pads", std::vector<std::int64_t>{padded ? 0 : left, padded ? 0 : right});
        set_attr(n, "dilations", std::vector<std::int64_t>{int_attr(e, "dilation")});
        set_attr(n, "group", int_attr(e, "groups"));
      });
    })};
  }
  if (e.name == "max_pool1d" || e.name == "avg_pool1d") {
    const bool max = e.name == "max_pool1d";
    const std::int64_t channels = e.outputs[0].size(int_attr(e, "channels_last") ? -1 : e.outputs[0].dim() - 2);
    return {on_batched(L, e, channels, [&](const std::string& x) {
      return g.op(max ? "MaxPool" : "AveragePool", {x}, [&](::onnx::NodeProto& n) {
        set_attr(n, "kernel_shape", std::vector<std::int64_t>{int_attr(e, "kernel_size")});
        set_attr(n, "strides", std::vector<std::int64_t>{int_attr(e, "stride")});
        const std::int64_t pad = int_attr(e, "padding");
        set_attr(n, "pads", std::vector<std::int64_t>{pad, pad});
        if (!max) set_attr(n, "count_include_pad", int_attr(e, "count_include_pad"));
      });
    })};
  }
  if (e.name == "global_pool1d") return {lower_global_pool(L, e)};
  throw Error(fmt::format("onnx export: the composite '{}' has no ONNX mapping", e.name));
}

}  // namespace xgrad::onnx::detail

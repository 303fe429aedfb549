// A recurrent layer (the driver's composite scope) as ONNX's own RNN / LSTM / GRU ops, one per
// layer, so ONNX Runtime runs its fused kernels and the sequence length stays dynamic.
//
// Shapes: X (T, B, I) time-major, W (D, G·H, I), R (D, G·H, H), B (D, 2·G·H), initial and
// final states (D, B, H) per layer; Y (T, D, B, H). Gate blocks are reordered from PyTorch's
// (LSTM i,f,g,o; GRU r,z,n) to ONNX's (LSTM i,o,f,c; GRU z,r,h).
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>

#include "graph.hpp"

namespace xgrad::onnx::detail {

namespace {

std::int64_t int_attr(const Event& e, const char* name) { return trace::get<std::int64_t>(e.attributes, name, e.name); }

struct Spec {
  std::string cell;             // LSTM, GRU, RNN
  std::int64_t gates = 1;
  std::vector<std::size_t> order;  // ONNX's gate k is xgrad's gate order[k]
};

Spec spec_of(const std::string& cell) {
  if (cell == "LSTM") return {cell, 4, {0, 3, 1, 2}};
  if (cell == "GRU") return {cell, 3, {1, 0, 2}};
  return {cell, 1, {0}};  // RNN (lower_recurrent sends every other cell to lower_scan)
}

void refuse_what_onnx_cannot_express(const Event& e, const std::string& cell) {
  if (int_attr(e, "training") != 0)
    throw Error(fmt::format("onnx export: the {} layer is in training mode; call eval() before exporting (dropout "
                            "exports as identity in eval mode only)",
                            cell));
  if (cell == "LSTM" && int_attr(e, "proj_size") != 0)
    throw Error(fmt::format("onnx export: an LSTM with proj_size={} has no ONNX equivalent (ONNX's LSTM has no "
                            "projection of h)",
                            int_attr(e, "proj_size")));
}

std::string concat(Graph& g, const std::vector<std::string>& parts, std::int64_t axis) {
  if (parts.size() == 1) return parts[0];
  return g.op("Concat", parts, [axis](::onnx::NodeProto& n) { set_attr(n, "axis", axis); });
}

// `w` (G·H, ...) with its G gate blocks in ONNX's order.
std::string reorder_gates(Graph& g, const std::string& w, const Spec& spec, std::int64_t H) {
  if (spec.gates == 1) return w;
  std::vector<std::string> parts;
  for (std::int64_t k = 0; k < spec.gates; ++k) parts.push_back(g.fresh("gate"));
  ::onnx::NodeProto& n = g.node("Split", {w, g.ints(std::vector<std::int64_t>(static_cast<std::size_t>(spec.gates), H))}, parts);
  set_attr(n, "axis", std::int64_t{0});
  std::vector<std::string> ordered;
  for (std::size_t k : spec.order) ordered.push_back(parts[k]);
  return concat(g, ordered, 0);
}

std::string unsqueeze(Graph& g, const std::string& x, std::int64_t axis) {
  return g.op("Unsqueeze", {x, g.ints({axis})});
}

// Pre-padded lengths: ONNX's sequence_lens reads the valid steps from step 0, so the input is
// rotated to post-padding before the layers and their output rotated back after them. Step t
// of sequence b reads step (t + shift_b) mod T of `x` (T, B, F), time-major, with the shift a
// (B,) int64 value; T and B are read from x's shape, so both stay dynamic. The rotation of
// xgrad's own post-padded output (zeros past each length) is exactly its pre-padded output
// (tests/test_padding.cpp), and the final states are those of the post-padded batch.
std::string rotate_time(Graph& g, const std::string& x, const std::string& shift) {
  const std::string T = g.op("Shape", {x}, [](::onnx::NodeProto& n) {
    set_attr(n, "start", std::int64_t{0});
    set_attr(n, "end", std::int64_t{1});
  });
  const std::string t =
      g.op("Range", {g.scalar(0, DType::i64), g.op("Squeeze", {T, g.ints({0})}), g.scalar(1, DType::i64)});
  // (T, 1) + (1, B) → (T, B), then (T, B, 1) expanded to x's shape.
  const std::string sum = g.op("Add", {unsqueeze(g, t, 1), unsqueeze(g, shift, 0)});
  const std::string index = g.op("Mod", {sum, T});
  const std::string full = g.op("Expand", {unsqueeze(g, index, 2), g.op("Shape", {x})});
  return g.op("GatherElements", {x, full}, [](::onnx::NodeProto& n) { set_attr(n, "axis", std::int64_t{0}); });
}

// One recurrent composite being lowered: its configuration and where its pieces are.
struct Layer {
  Lowering& L;
  const Event& e;
  Spec spec;
  std::int64_t layers, D, H, K;
  bool batch_first, unbatched = false;
  const std::vector<std::string>& names;  // each cell's parameters, in order
  std::size_t P, first_param;

  Layer(Lowering& L, const Event& e, const std::string& cell)
      : L(L), e(e), spec(spec_of(cell)), layers(int_attr(e, "num_layers")), D(int_attr(e, "num_directions")),
        H(int_attr(e, "hidden_size")), K(int_attr(e, "state_count")), batch_first(int_attr(e, "batch_first") != 0),
        names(trace::get<std::vector<std::string>>(e.attributes, "parameters", e.name)), P(names.size()),
        first_param(2 + static_cast<std::size_t>(K)) {
    if (e.inputs.size() != first_param + P * static_cast<std::size_t>(layers * D))
      throw Error("onnx export: internal error, the recurrent composite has an unexpected number of inputs");
  }

  // Parameter `name` of cell c (layer · D + direction), or "" when the cell has none.
  std::string param(std::int64_t c, const std::string& name) const {
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) return "";
    return L.value_of(e.inputs[first_param + static_cast<std::size_t>(c) * P + static_cast<std::size_t>(it - names.begin())])
        .name;
  }

  // The input as (T, B, I), with its dims.
  std::pair<std::string, Dims> time_major_input() {
    Graph& g = L.graph;
    const Value x = L.value_of(e.inputs[0]);
    unbatched = x.dims.size() == 2;
    std::string xs = x.name;
    Dims xd = x.dims;
    if (unbatched) {
      xs = unsqueeze(g, xs, 1);
      xd.insert(xd.begin() + 1, Dim{1, {}, {}, -1});
    } else if (batch_first) {
      xs = g.op("Transpose", {xs}, [](::onnx::NodeProto& n) { set_attr(n, "perm", std::vector<std::int64_t>{1, 0, 2}); });
      std::swap(xd[0], xd[1]);
    }
    return {xs, xd};
  }

  // The ONNX op of layer l on `input` (T, B, I); returns Y reshaped to (T, B, D·H) and appends
  // the layer's final states to `finals`.
  std::string layer_op(std::int64_t l, const std::string& input, const std::string& lens,
                       const std::vector<std::string>& init, std::vector<std::vector<std::string>>& finals) {
    Graph& g = L.graph;
    std::vector<std::string> W, R, Bias;
    bool any_bias = false;
    for (std::int64_t d = 0; d < D; ++d) {
      const std::int64_t c = l * D + d;
      W.push_back(unsqueeze(g, reorder_gates(g, param(c, "weight_ih"), spec, H), 0));
      R.push_back(unsqueeze(g, reorder_gates(g, param(c, "weight_hh"), spec, H), 0));
      std::string bi = param(c, "bias_ih"), bh = param(c, "bias_hh");
      any_bias = any_bias || !bi.empty();
      const DType dtype = e.inputs[0].dtype();
      // Keras's GRU with reset_after=false has bias_ih only: ONNX's Rb is then zero.
      if (bi.empty()) bi = g.constant(zeros({spec.gates * H}, dtype), "zero_bias");
      if (bh.empty()) bh = g.constant(zeros({spec.gates * H}, dtype), "zero_bias");
      Bias.push_back(unsqueeze(g, concat(g, {reorder_gates(g, bi, spec, H), reorder_gates(g, bh, spec, H)}, 0), 0));
    }
    std::vector<std::string> inputs{input, concat(g, W, 0), concat(g, R, 0), any_bias ? concat(g, Bias, 0) : "", lens};
    for (std::int64_t k = 0; k < K; ++k) {
      const std::string& s = init[static_cast<std::size_t>(k)];
      inputs.push_back(s.empty() ? "" : g.op("Slice", {s, g.ints({l * D}), g.ints({(l + 1) * D}), g.ints({0})}));
    }
    while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();
    const std::string y = g.fresh(spec.cell + "_Y");
    std::vector<std::string> outputs{y};
    for (std::int64_t k = 0; k < K; ++k) outputs.push_back(g.fresh(spec.cell + (k == 0 ? "_Y_h" : "_Y_c")));
    ::onnx::NodeProto& n = g.node(spec.cell, inputs, outputs);
    set_attr(n, "hidden_size", H);
    set_attr(n, "direction", std::string(D == 2 ? "bidirectional" : "forward"));
    if (spec.cell == "GRU") set_attr(n, "linear_before_reset", int_attr(e, "reset_after"));
    if (spec.cell == "RNN") {
      const std::string act = trace::get<std::string>(e.attributes, "nonlinearity", e.name) == "relu" ? "Relu" : "Tanh";
      set_attr(n, "activations", std::vector<std::string>(static_cast<std::size_t>(D), act));
    }
    for (std::int64_t k = 0; k < K; ++k) finals[static_cast<std::size_t>(k)].push_back(outputs[1 + static_cast<std::size_t>(k)]);
    // Y (T, D, B, H) → (T, B, D·H), the next layer's input (dropout between layers is the
    // identity in eval mode).
    const std::string yt = g.op("Transpose", {y}, [](::onnx::NodeProto& t) {
      set_attr(t, "perm", std::vector<std::int64_t>{0, 2, 1, 3});
    });
    return g.op("Reshape", {yt, g.ints({0, 0, D * H})});
  }

  // The layer's outputs: y in the caller's layout, then the final states (L·D, B, H).
  std::vector<Value> outputs(std::string y, const Dim& T, const Dim& B,
                             const std::vector<std::vector<std::string>>& finals) {
    Graph& g = L.graph;
    std::vector<Value> out;
    Dims yd{T, B, Dim{D * H, {}, {}, -1}};
    if (unbatched) {
      y = g.op("Squeeze", {y, g.ints({1})});
      yd = {T, yd[2]};
    } else if (batch_first) {
      y = g.op("Transpose", {y}, [](::onnx::NodeProto& n) { set_attr(n, "perm", std::vector<std::int64_t>{1, 0, 2}); });
      yd = {B, T, yd[2]};
    }
    out.push_back({y, yd, e.inputs[0].dtype()});
    for (std::int64_t k = 0; k < K; ++k) {
      std::string s = concat(g, finals[static_cast<std::size_t>(k)], 0);
      Dims sd{Dim{layers * D, {}, {}, -1}, B, Dim{H, {}, {}, -1}};
      if (unbatched) {
        s = g.op("Squeeze", {s, g.ints({1})});
        sd = {sd[0], sd[2]};
      }
      out.push_back({s, sd, e.inputs[0].dtype()});
    }
    return out;
  }
};

}  // namespace

std::vector<Value> lower_recurrent(Lowering& L, const Event& e) {
  Graph& g = L.graph;
  const std::string cell = trace::get<std::string>(e.attributes, "cell", e.name);
  if (cell != "LSTM" && cell != "GRU" && cell != "RNN") return lower_scan(L, e);
  refuse_what_onnx_cannot_express(e, cell);
  Layer layer(L, e, cell);
  auto [xs, xd] = layer.time_major_input();

  std::string lens, unshift;
  if (e.inputs[1].defined()) {
    const Value v = L.value_of(e.inputs[1]);
    lens = g.op("Cast", {v.name}, [](::onnx::NodeProto& n) {
      set_attr(n, "to", std::int64_t{::onnx::TensorProto_DataType_INT32});
    }, "sequence_lens");
    if (trace::get<std::string>(e.attributes, "padding", e.name) == "pre") {
      // To post-padding: shift T − len_b; back: shift len_b (both mod T).
      unshift = g.op("Cast", {v.name}, [](::onnx::NodeProto& n) {
        set_attr(n, "to", std::int64_t{::onnx::TensorProto_DataType_INT64});
      });
      const std::string T = g.op("Shape", {xs}, [](::onnx::NodeProto& n) {
        set_attr(n, "start", std::int64_t{0});
        set_attr(n, "end", std::int64_t{1});
      });
      xs = rotate_time(g, xs, g.op("Sub", {T, unshift}));
    }
  }
  // Given initial states, (L·D, B, S) each.
  std::vector<std::string> init(static_cast<std::size_t>(layer.K));
  for (std::int64_t k = 0; k < layer.K; ++k)
    if (const Tensor& s = e.inputs[2 + static_cast<std::size_t>(k)]; s.defined()) {
      const Value v = L.value_of(s);
      init[static_cast<std::size_t>(k)] = layer.unbatched ? unsqueeze(g, v.name, 1) : v.name;
    }

  std::vector<std::vector<std::string>> finals(static_cast<std::size_t>(layer.K));
  std::string y = xs;
  for (std::int64_t l = 0; l < layer.layers; ++l) y = layer.layer_op(l, y, lens, init, finals);
  if (!unshift.empty()) y = rotate_time(g, y, unshift);
  return layer.outputs(y, xd[0], xd[1], finals);
}

}  // namespace xgrad::onnx::detail

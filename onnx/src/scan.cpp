// A recurrent layer of a user-written cell (any RecurrentCell) as ONNX Scan loops, one per layer
// and direction: the cell's input projection is lowered once on the whole sequence, and the
// body of the Scan is the cell's first traced step, so the sequence length stays dynamic.
//
// Shapes: xp (T, B, G) time-major, or (B, T, G) batch-first (scan axis 1); the body maps
// (state_k (B, S_k)..., xp_t (B, G)) → (next state_k..., h (B, S_0)); the Scan's outputs are
// the final states and h at every step, (T, B, S_0) or (B, T, S_0).
#include <iterator>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>

#include "graph.hpp"

namespace xgrad::onnx::detail {

namespace {

std::int64_t int_attr(const Event& e, const char* name) { return trace::get<std::int64_t>(e.attributes, name, e.name); }

void describe(Graph& g, ::onnx::ValueInfoProto& info, const std::string& name, const Value& v) {
  info.set_name(name);
  auto* t = info.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx_type(v.dtype));
  auto* shape = t->mutable_shape();
  for (const Dim& d : v.dims) g.describe(d, *shape->add_dim());
}

// The events of one direction: the projection (everything before the first step, but the
// time split) and the first step.
struct Direction {
  std::vector<const Event*> projection;
  const Event* split = nullptr;
  const Event* first_step = nullptr;
};

Direction parse_direction(const Event& d, const std::string& cell) {
  Direction out;
  // The split into steps is the last unbind before the first step; a projection may split too.
  for (const Event& c : d.children) {
    if (c.composite && c.name == "recurrent_step") {
      out.first_step = &c;
      break;
    }
    out.projection.push_back(&c);
  }
  for (auto it = out.projection.rbegin(); it != out.projection.rend(); ++it)
    if (!(*it)->composite && (*it)->name == "split") {
      out.split = *it;
      out.projection.erase(std::next(it).base());
      break;
    }
  if (!out.split || !out.first_step)
    throw Error(fmt::format("onnx export: the recurrent layer of cell '{}' did not run its steps as the driver does "
                            "(no projection split or no step was traced)",
                            cell));
  return out;
}

// The loop body: one traced step as an ONNX graph reading the enclosing graph's values. With
// lengths, `valid_t` (B, 1) bool is a second scan input: where it is false the state is kept
// and the step's output is zero, as the driver's masks do.
::onnx::GraphProto body_of(Lowering& L, const Event& step, const Value& xp_t, const std::vector<Value>& state,
                           const Value* valid_t, const std::string& cell) {
  ::onnx::GraphProto body;
  body.set_name(L.graph.fresh(cell + "_step"));
  Graph bg(body, L.graph);
  Lowering BL(bg, &L);
  for (std::size_t k = 0; k < state.size(); ++k) {
    BL.bind(step.inputs[1 + k], state[k]);
    describe(bg, *body.add_input(), state[k].name, state[k]);
  }
  BL.bind(step.inputs[0], xp_t);
  describe(bg, *body.add_input(), xp_t.name, xp_t);
  if (valid_t) describe(bg, *body.add_input(), valid_t->name, *valid_t);
  for (const Event& c : step.children) BL.lower(c);
  std::vector<Value> next;
  for (const Tensor& t : step.outputs) next.push_back(BL.value_of(t));
  std::string h_value = next[0].name;
  if (valid_t) {
    h_value = bg.op("Where", {valid_t->name, next[0].name, bg.scalar(0, next[0].dtype)});
    for (std::size_t k = 0; k < next.size(); ++k)
      next[k].name = bg.op("Where", {valid_t->name, next[k].name, state[k].name});
  }
  for (std::size_t k = 0; k < next.size(); ++k) {
    const std::string name = bg.fresh("state_out");
    bg.node("Identity", {next[k].name}, {name});
    describe(bg, *body.add_output(), name, next[k]);
  }
  const std::string h = bg.fresh("h_out");
  bg.node("Identity", {h_value}, {h});
  describe(bg, *body.add_output(), h, next[0]);
  return body;
}

// With lengths: (T, B, 1) bool, true where step t of sequence b is valid — t < len_b padded
// after, t ≥ T − len_b padded before — with T and B read from x's shape at run time.
std::string valid_steps(Graph& g, const Value& x, const Value& lengths, std::int64_t time_dim, bool pre) {
  const std::string T = g.op("Shape", {x.name}, [time_dim](::onnx::NodeProto& n) {
    set_attr(n, "start", time_dim);
    set_attr(n, "end", time_dim + 1);
  });
  const std::string t =
      g.op("Range", {g.scalar(0, DType::i64), g.op("Squeeze", {T, g.ints({0})}), g.scalar(1, DType::i64)});
  const std::string len = g.op("Cast", {lengths.name}, [](::onnx::NodeProto& n) {
    set_attr(n, "to", std::int64_t{::onnx::TensorProto_DataType_INT64});
  });
  const std::string steps = g.op("Unsqueeze", {t, g.ints({1})});  // (T, 1)
  std::string valid;
  if (pre) {
    const std::string first = g.op("Unsqueeze", {g.op("Sub", {T, len}), g.ints({0})});  // (1, B)
    valid = g.op("Not", {g.op("Less", {steps, first})});
  } else {
    valid = g.op("Less", {steps, g.op("Unsqueeze", {len, g.ints({0})})});
  }
  return g.op("Unsqueeze", {valid, g.ints({2})});
}

// The initial state k of cell c (layer · D + direction), (B, S): the given state's row, or
// zeros of the run-time batch size.
std::string initial_state(Lowering& L, const Event& e, std::size_t k, std::int64_t c, const Dim& B, std::int64_t S,
                          DType dtype) {
  Graph& g = L.graph;
  if (const Tensor& given = e.inputs[2 + k]; given.defined()) {
    const std::string row = g.op("Slice", {L.value_of(given).name, g.ints({c}), g.ints({c + 1}), g.ints({0})});
    return g.op("Squeeze", {row, g.ints({0})});
  }
  const Tensor zero = zeros({1}, dtype);
  return g.op("ConstantOfShape", {g.shape_of({B, Dim{S, {}, {}, -1}})}, [&](::onnx::NodeProto& n) {
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(::onnx::AttributeProto_AttributeType_TENSOR);
    ::onnx::GraphProto scratch;
    Graph sg(scratch, g);
    sg.initializer("value", zero);
    *a->mutable_t() = scratch.initializer(0);
  });
}

// The Scan node over `inputs` (the K initial states, then the scan inputs along `time_dim`,
// the second one — the valid steps — along 0) in direction d; returns its outputs: the K
// final states, then h at every step.
std::vector<std::string> scan_node(Graph& g, ::onnx::GraphProto body, const std::vector<std::string>& inputs,
                                   std::int64_t K, std::int64_t scans, std::int64_t time_dim, std::int64_t d,
                                   const std::string& cell) {
  std::vector<std::string> outputs;
  for (std::int64_t k = 0; k < K; ++k) outputs.push_back(g.fresh(cell + "_final"));
  outputs.push_back(g.fresh(cell + "_h"));
  ::onnx::NodeProto& n = g.node("Scan", inputs, outputs);
  auto* a = n.add_attribute();
  a->set_name("body");
  a->set_type(::onnx::AttributeProto_AttributeType_GRAPH);
  *a->mutable_g() = std::move(body);
  set_attr(n, "num_scan_inputs", scans);
  set_attr(n, "scan_input_axes", scans == 1 ? std::vector<std::int64_t>{time_dim} : std::vector<std::int64_t>{time_dim, 0});
  set_attr(n, "scan_output_axes", std::vector<std::int64_t>{time_dim});
  set_attr(n, "scan_input_directions", std::vector<std::int64_t>(static_cast<std::size_t>(scans), d));
  set_attr(n, "scan_output_directions", std::vector<std::int64_t>{d});
  return outputs;
}

// The recurrent composite's directions, layer-major; throws unless there are `expected`.
std::vector<const Event*> traced_directions(const Event& e, std::int64_t expected, const std::string& cell) {
  std::vector<const Event*> directions;
  for (const Event& c : e.children)
    if (c.composite && c.name == "recurrent_direction") directions.push_back(&c);
  if (static_cast<std::int64_t>(directions.size()) != expected)
    throw Error(fmt::format("onnx export: the recurrent layer of cell '{}' traced {} directions, expected {}", cell,
                            directions.size(), expected));
  return directions;
}

}  // namespace

std::vector<Value> lower_scan(Lowering& L, const Event& e) {
  Graph& g = L.graph;
  const std::string cell = trace::get<std::string>(e.attributes, "cell", e.name);
  if (int_attr(e, "training") != 0)
    throw Error(fmt::format("onnx export: the recurrent layer of cell '{}' is in training mode; call eval() before "
                            "exporting",
                            cell));
  const std::int64_t layers = int_attr(e, "num_layers"), D = int_attr(e, "num_directions"),
                     K = int_attr(e, "state_count");
  const auto& sizes = trace::get<std::vector<std::int64_t>>(e.attributes, "state_sizes", e.name);
  const bool batch_first = int_attr(e, "batch_first") != 0;
  const Value x = L.value_of(e.inputs[0]);
  if (x.dims.size() != 3)
    throw Error(fmt::format("onnx export: a recurrent layer of the user cell '{}' on an unbatched input: give it a "
                            "batch dimension to export",
                            cell));
  const std::int64_t time_dim = batch_first ? 1 : 0;
  const Dim B = x.dims[static_cast<std::size_t>(1 - time_dim)], T = x.dims[static_cast<std::size_t>(time_dim)];
  const DType dtype = x.dtype;
  // With lengths, the Scan reads a second sequence: whether each step is valid.
  std::string valid;
  if (e.inputs[1].defined())
    valid = valid_steps(g, x, L.value_of(e.inputs[1]), time_dim,
                        trace::get<std::string>(e.attributes, "padding", e.name) == "pre");

  const std::vector<const Event*> directions = traced_directions(e, layers * D, cell);

  std::vector<std::vector<std::string>> finals(static_cast<std::size_t>(K));
  Value layer_input = x;
  Value y;
  for (std::int64_t l = 0; l < layers; ++l) {
    std::vector<std::string> outs;
    for (std::int64_t d = 0; d < D; ++d) {
      const Event& de = *directions[static_cast<std::size_t>(l * D + d)];
      const Direction dir = parse_direction(de, cell);
      L.bind(de.inputs[0], layer_input);
      for (const Event* p : dir.projection) L.lower(*p);
      const Value xp = L.value_of(dir.split->inputs[0]);  // (T, B, G) or (B, T, G)
      // Initial states (B, S_k), and the body's state inputs.
      std::vector<std::string> inputs;
      std::vector<Value> body_state;
      for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t S = sizes[static_cast<std::size_t>(k)];
        inputs.push_back(initial_state(L, e, static_cast<std::size_t>(k), l * D + d, B, S, dtype));
        body_state.push_back({g.fresh("state_in"), {B, Dim{S, {}, {}, -1}}, dtype});
      }
      Dims xp_t_dims = xp.dims;
      xp_t_dims.erase(xp_t_dims.begin() + time_dim);
      const Value xp_t{g.fresh("xp_t"), xp_t_dims, dtype};
      const Value valid_t{g.fresh("valid_t"), {B, Dim{1, {}, {}, -1}}, DType::b8};
      ::onnx::GraphProto body = body_of(L, *dir.first_step, xp_t, body_state, valid.empty() ? nullptr : &valid_t, cell);
      inputs.push_back(xp.name);
      if (!valid.empty()) inputs.push_back(valid);
      const std::vector<std::string> outputs =
          scan_node(g, std::move(body), inputs, K, valid.empty() ? 1 : 2, time_dim, d, cell);
      for (std::int64_t k = 0; k < K; ++k)
        finals[static_cast<std::size_t>(k)].push_back(g.op("Unsqueeze", {outputs[static_cast<std::size_t>(k)], g.ints({0})}));
      outs.push_back(outputs.back());
      // The driver's own output of this direction stands for the Scan's (the next layer's
      // projection reads it through the driver's cat of the directions).
      L.bind(de.outputs[0], {outputs.back(), batch_first ? Dims{B, T, Dim{sizes[0], {}, {}, -1}}
                                                         : Dims{T, B, Dim{sizes[0], {}, {}, -1}}, dtype});
    }
    Dims dims = batch_first ? Dims{B, T, Dim{D * sizes[0], {}, {}, -1}} : Dims{T, B, Dim{D * sizes[0], {}, {}, -1}};
    const std::string out = outs.size() == 1 ? outs[0] : g.op("Concat", outs, [](::onnx::NodeProto& c) {
      set_attr(c, "axis", std::int64_t{2});
    });
    layer_input = y = Value{out, dims, dtype};
  }
  std::vector<Value> result{y};
  for (std::int64_t k = 0; k < K; ++k) {
    const auto& parts = finals[static_cast<std::size_t>(k)];
    const std::string s = parts.size() == 1 ? parts[0] : g.op("Concat", parts, [](::onnx::NodeProto& c) {
      set_attr(c, "axis", std::int64_t{0});
    });
    result.push_back({s, {Dim{layers * D, {}, {}, -1}, B, Dim{sizes[static_cast<std::size_t>(k)], {}, {}, -1}}, dtype});
  }
  return result;
}

}  // namespace xgrad::onnx::detail

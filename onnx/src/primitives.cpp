// Every primitive of core's table, as ONNX nodes (opset 17), with the symbolic shape of its
// outputs so that dynamic axes stay dynamic. A primitive without a mapping is refused by name.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include <fmt/format.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/format.hpp>
#include <xgrad/core/ops.hpp>

#include "graph.hpp"

namespace xgrad::onnx::detail {

namespace {

using NodeFn = std::function<void(::onnx::NodeProto&)>;

std::int64_t int_attr(const Event& e, const char* name) { return trace::get<std::int64_t>(e.attributes, name, e.name); }
double real_attr(const Event& e, const char* name) { return trace::get<double>(e.attributes, name, e.name); }

Value input(Lowering& L, const Event& e, std::size_t i) { return L.value_of(e.inputs.at(i)); }

Value same_shape(Lowering& L, const Event& e, const std::string& op, const NodeFn& attrs = {}) {
  const Value x = input(L, e, 0);
  return {attrs ? L.graph.op(op, {x.name}, attrs) : L.graph.op(op, {x.name}), x.dims, x.dtype};
}

Value binary(Lowering& L, const Event& e, const std::string& op, DType out_dtype) {
  const Value a = input(L, e, 0), b = input(L, e, 1);
  return {L.graph.op(op, {a.name, b.name}), broadcast(a.dims, b.dims), out_dtype};
}

Dims without(Dims d, std::int64_t axis) {
  d.erase(d.begin() + axis);
  return d;
}

// The dims left by reducing `axes` (every axis when empty), kept as 1 with keepdim.
Dims reduced(const Dims& in, std::vector<std::int64_t> axes, bool keepdim) {
  if (axes.empty()) {
    axes.resize(in.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  Dims out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const bool r = std::find(axes.begin(), axes.end(), static_cast<std::int64_t>(i)) != axes.end();
    if (!r) out.push_back(in[i]);
    else if (keepdim) out.push_back(Dim{1, {}, {}, -1});
  }
  return out;
}

// --- reshape: which output dims are which input dims ------------------------------------------------

[[noreturn]] void ambiguous_reshape(const Graph& g, const Dims& in, const Shape& out, const std::string& why) {
  Shape in_shape;
  for (const Dim& d : in) in_shape.push_back(d.value);
  std::vector<std::string> names;
  for (const Symbol& s : g.symbols()) names.push_back(fmt::format("{}={}", s.name, s.example));
  throw Error(fmt::format("onnx export: reshape from {} to {}: {}; give the dynamic axes ({}) example sizes of at "
                          "least 2 that differ from each other and from the static sizes",
                          shape_str(in_shape), shape_str(out), why, fmt::join(names, ", ")));
}

// Output dims of one aligned group: input dims `gi` (one symbolic product) become `gj`.
void assign_group(const Graph& g, const Dims& in, const Shape& out, const std::vector<std::size_t>& gi,
                  const std::vector<std::size_t>& gj, Dims& res, int& inferred) {
  std::vector<int> syms;
  bool opaque = false;
  for (std::size_t i : gi) {
    syms.insert(syms.end(), in[i].syms.begin(), in[i].syms.end());
    opaque = opaque || !in[i].source.empty();
  }
  for (std::size_t j : gj) res[j] = Dim{out[j], {}, {}, -1};
  if (opaque) {
    if (gi.size() == 1 && gj.size() == 1) {
      res[gj[0]] = in[gi[0]];
      res[gj[0]].value = out[gj[0]];
      return;
    }
    if (gj.size() != 1 || inferred >= 0) ambiguous_reshape(g, in, out, "a dimension computed at run time is split");
    inferred = static_cast<int>(gj[0]);  // -1 in the shape: ONNX infers it
    return;
  }
  if (syms.empty()) return;
  std::sort(syms.begin(), syms.end());
  if (gj.size() == 1) {
    std::int64_t product = 1;
    for (int s : syms) product *= g.symbols()[static_cast<std::size_t>(s)].example;
    if (out[gj[0]] % product != 0) ambiguous_reshape(g, in, out, "the sizes do not factor");
    res[gj[0]].syms = syms;
    return;
  }
  // Several output dims share the symbols: give each symbol to the one output dim whose size
  // it divides, preferring an exact match; more than one candidate is ambiguous.
  std::vector<std::int64_t> rest;
  for (std::size_t j : gj) rest.push_back(out[j]);
  for (int s : syms) {
    const std::int64_t e = g.symbols()[static_cast<std::size_t>(s)].example;
    std::vector<std::size_t> exact, divisible;
    for (std::size_t k = 0; k < gj.size(); ++k) {
      if (rest[k] == e) exact.push_back(k);
      if (rest[k] % e == 0) divisible.push_back(k);
    }
    const std::vector<std::size_t>& pick = exact.size() == 1 ? exact : divisible;
    if (pick.size() != 1 || (exact.size() > 1))
      ambiguous_reshape(g, in, out, fmt::format("cannot tell which output dimension is '{}' (example size {})",
                                                g.symbols()[static_cast<std::size_t>(s)].name, e));
    rest[pick[0]] /= e;
    res[gj[pick[0]]].syms.push_back(s);
  }
}

Value lower_reshape(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  const Shape out = e.outputs[0].shape();
  Dims res(out.size());
  int inferred = -1;
  const bool empty = std::find(out.begin(), out.end(), 0) != out.end() ||
                     std::any_of(x.dims.begin(), x.dims.end(), [](const Dim& d) { return d.value == 0; });
  if (empty) {
    res = static_dims(out);
  } else {
    std::size_t i = 0, j = 0;
    while (i < x.dims.size() || j < out.size()) {
      if (j < out.size() && out[j] == 1) {
        res[j++] = Dim{1, {}, {}, -1};
        continue;
      }
      if (i < x.dims.size() && x.dims[i].value == 1) {
        ++i;
        continue;
      }
      if (i >= x.dims.size() || j >= out.size()) ambiguous_reshape(L.graph, x.dims, out, "the sizes do not align");
      std::vector<std::size_t> gi{i}, gj{j};
      std::int64_t pin = x.dims[i++].value, pout = out[j++];
      while (pin != pout) {
        if (pin < pout) {
          if (i >= x.dims.size()) ambiguous_reshape(L.graph, x.dims, out, "the sizes do not align");
          pin *= x.dims[i].value;
          gi.push_back(i++);
        } else {
          if (j >= out.size()) ambiguous_reshape(L.graph, x.dims, out, "the sizes do not align");
          pout *= out[j];
          gj.push_back(j++);
        }
      }
      assign_group(L.graph, x.dims, out, gi, gj, res, inferred);
    }
  }
  const std::string name = L.graph.fresh("Reshape");
  Dims shape_dims = res;
  if (inferred >= 0) shape_dims[static_cast<std::size_t>(inferred)] = Dim{-1, {}, {}, -1};
  L.graph.node("Reshape", {x.name, L.graph.shape_of(shape_dims)}, {name});
  if (inferred >= 0) res[static_cast<std::size_t>(inferred)] = Dim{out[static_cast<std::size_t>(inferred)], {}, name, inferred};
  return {name, res, x.dtype};
}

// --- the table --------------------------------------------------------------------------------------

using Lower = std::function<std::vector<Value>(Lowering&, const Event&)>;

Lower one(std::function<Value(Lowering&, const Event&)> f) {
  return [f](Lowering& L, const Event& e) { return std::vector<Value>{f(L, e)}; };
}
Lower unary_op(const char* op) {
  return one([op](Lowering& L, const Event& e) { return same_shape(L, e, op); });
}
Lower binary_op(const char* op) {
  return one([op](Lowering& L, const Event& e) { return binary(L, e, op, input(L, e, 0).dtype); });
}
Lower compare_op(const char* op, bool negate = false) {
  return one([op, negate](Lowering& L, const Event& e) {
    Value v = binary(L, e, op, DType::b8);
    if (negate) v.name = L.graph.op("Not", {v.name});
    return v;
  });
}
Lower unsupported(const char* why) {
  return [why](Lowering&, const Event& e) -> std::vector<Value> {
    throw Error(fmt::format("onnx export: primitive '{}' has no ONNX mapping: {}", e.name, why));
  };
}

Value reduce_node(Lowering& L, const Event& e, const std::string& op, std::vector<std::int64_t> axes, bool keepdim,
                  bool axes_as_input) {
  const Value x = input(L, e, 0);
  if (x.dims.empty()) return {L.graph.op("Identity", {x.name}), x.dims, x.dtype};
  Dims dims = reduced(x.dims, axes, keepdim);
  if (axes.empty()) {
    axes.resize(x.dims.size());
    std::iota(axes.begin(), axes.end(), 0);
  }
  std::string out;
  if (axes_as_input)
    out = L.graph.op(op, {x.name, L.graph.ints(axes)}, [&](::onnx::NodeProto& n) { set_attr(n, "keepdims", std::int64_t{keepdim}); });
  else
    out = L.graph.op(op, {x.name}, [&](::onnx::NodeProto& n) {
      set_attr(n, "axes", axes);
      set_attr(n, "keepdims", std::int64_t{keepdim});
    });
  return {out, dims, x.dtype};
}

Dims matmul_dims(const Dims& a, const Dims& b) {
  if (a.size() < 2 || b.size() < 2) {
    // numpy's 1-D rules: a row on the left, a column on the right, removed again.
    if (a.size() == 1 && b.size() == 1) return {};
    if (a.size() == 1) return without(b, static_cast<std::int64_t>(b.size()) - 2);
    return without(a, static_cast<std::int64_t>(a.size()) - 1);
  }
  Dims batch = broadcast(Dims(a.begin(), a.end() - 2), Dims(b.begin(), b.end() - 2));
  batch.push_back(a[a.size() - 2]);
  batch.push_back(b[b.size() - 1]);
  return batch;
}

Value lower_pow(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  return Value{L.graph.op("Pow", {x.name, L.graph.scalar(real_attr(e, "exponent"), x.dtype)}), x.dims, x.dtype};
}

Value lower_lerp(Lowering& L, const Event& e) {
  const Value s = input(L, e, 0), en = input(L, e, 1), w = input(L, e, 2);
  const std::string diff = L.graph.op("Sub", {en.name, s.name});
  const std::string step = L.graph.op("Mul", {w.name, diff});
  return Value{L.graph.op("Add", {s.name, step}), broadcast(broadcast(s.dims, en.dims), w.dims), s.dtype};
}

Value lower_clamp(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  return Value{L.graph.op("Clip", {x.name, L.graph.scalar(real_attr(e, "min"), x.dtype),
                                   L.graph.scalar(real_attr(e, "max"), x.dtype)}),
               x.dims, x.dtype};
}

Value lower_leaky_relu(Lowering& L, const Event& e) {
  const double slope = real_attr(e, "negative_slope");
  return same_shape(L, e, "LeakyRelu", [slope](::onnx::NodeProto& n) { set_attr(n, "alpha", slope); });
}

Value lower_gelu(Lowering& L, const Event& e) {
  // opset 17 has no Gelu: x · ½ (1 + erf(x / √2)), the exact form xgrad computes.
  const Value x = input(L, e, 0);
  Graph& g = L.graph;
  const std::string erf = g.op("Erf", {g.op("Div", {x.name, g.scalar(std::sqrt(2.0), x.dtype)})});
  const std::string half = g.op("Mul", {g.op("Add", {erf, g.scalar(1.0, x.dtype)}), g.scalar(0.5, x.dtype)});
  return Value{g.op("Mul", {x.name, half}), x.dims, x.dtype};
}

Value lower_to(Lowering& L, const Event& e) {
  const DType to = e.outputs[0].dtype();
  Value v = same_shape(L, e, "Cast", [to](::onnx::NodeProto& n) { set_attr(n, "to", std::int64_t{onnx_type(to)}); });
  v.dtype = to;
  return v;
}

Value lower_matmul(Lowering& L, const Event& e) {
  const Value a = input(L, e, 0), b = input(L, e, 1);
  return Value{L.graph.op("MatMul", {a.name, b.name}), matmul_dims(a.dims, b.dims), a.dtype};
}

Value lower_linear(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0), w = input(L, e, 1);
  Graph& g = L.graph;
  const std::string wt = g.op("Transpose", {w.name}, [](::onnx::NodeProto& n) {
    set_attr(n, "perm", std::vector<std::int64_t>{1, 0});
  });
  Dims dims(x.dims.begin(), x.dims.end() - 1);
  dims.push_back(w.dims[0]);
  std::string out = g.op("MatMul", {x.name, wt});
  if (e.inputs.size() > 2 && e.inputs[2].defined()) out = g.op("Add", {out, input(L, e, 2).name});
  return Value{out, dims, x.dtype};
}

Value lower_permute(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  const auto& perm = trace::get<std::vector<std::int64_t>>(e.attributes, "perm", e.name);
  Dims dims;
  for (std::int64_t p : perm) dims.push_back(x.dims[static_cast<std::size_t>(p)]);
  return Value{L.graph.op("Transpose", {x.name}, [&](::onnx::NodeProto& n) { set_attr(n, "perm", perm); }), dims,
               x.dtype};
}

Value lower_expand(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  const Shape out = e.outputs[0].shape();
  Dims dims = static_dims(out);
  const std::size_t lead = out.size() - x.dims.size();
  for (std::size_t i = lead; i < out.size(); ++i)
    if (x.dims[i - lead].value == out[i]) dims[i] = x.dims[i - lead];
  return Value{L.graph.op("Expand", {x.name, L.graph.shape_of(dims)}), dims, x.dtype};
}

Value lower_narrow(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  const std::int64_t dim = int_attr(e, "dim"), start = int_attr(e, "start");
  const std::int64_t length = e.outputs[0].shape()[static_cast<std::size_t>(dim)];
  Dims dims = x.dims;
  dims[static_cast<std::size_t>(dim)] = Dim{length, {}, {}, -1};
  Graph& g = L.graph;
  return Value{g.op("Slice", {x.name, g.ints({start}), g.ints({start + length}), g.ints({dim})}), dims, x.dtype};
}

Value lower_select(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  const std::int64_t dim = int_attr(e, "dim");
  std::int64_t index = int_attr(e, "index");
  // The last element of a dynamic axis stays the last one at every size.
  const Dim& d = x.dims[static_cast<std::size_t>(dim)];
  if (d.dynamic() && index == d.value - 1) index = -1;
  else if (d.dynamic())
    throw Error(fmt::format("onnx export: select of element {} along the dynamic axis {} of size {}: only the "
                            "last element (-1) is the same at every size",
                            index, dim, d.value));
  const std::string idx = L.graph.constant(full({}, static_cast<double>(index), DType::i64), "index");
  return Value{L.graph.op("Gather", {x.name, idx}, [dim](::onnx::NodeProto& n) { set_attr(n, "axis", dim); }),
               without(x.dims, dim), x.dtype};
}

Value lower_cat(Lowering& L, const Event& e) {
  const std::int64_t dim = int_attr(e, "dim");
  std::vector<std::string> names;
  Dims dims;
  bool dynamic = false;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < e.inputs.size(); ++i) {
    const Value v = input(L, e, i);
    names.push_back(v.name);
    if (i == 0) dims = v.dims;
    dynamic = dynamic || v.dims[static_cast<std::size_t>(dim)].dynamic();
    total += v.dims[static_cast<std::size_t>(dim)].value;
  }
  const std::string out = L.graph.op("Concat", names, [dim](::onnx::NodeProto& n) { set_attr(n, "axis", dim); });
  dims[static_cast<std::size_t>(dim)] = dynamic ? Dim{total, {}, out, dim} : Dim{total, {}, {}, -1};
  return Value{out, dims, input(L, e, 0).dtype};
}

std::vector<Value> lower_split(Lowering& L, const Event& e) {
  const Value x = input(L, e, 0);
  const std::int64_t dim = int_attr(e, "dim");
  const bool drop = int_attr(e, "drop_dim") != 0;
  const auto axis = static_cast<std::size_t>(dim);
  if (x.dims[axis].dynamic())
    throw Error(fmt::format("onnx export: split along the dynamic axis {} (size {}): the number of pieces "
                            "would change with the size",
                            dim, x.dims[axis].value));
  std::vector<std::int64_t> sizes;
  std::vector<std::string> outs;
  for (const Tensor& o : e.outputs) {
    sizes.push_back(drop ? 1 : o.shape()[axis]);
    outs.push_back(L.graph.fresh("Split"));
  }
  ::onnx::NodeProto& n = L.graph.node("Split", {x.name, L.graph.ints(sizes)}, outs);
  set_attr(n, "axis", dim);
  std::vector<Value> values;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    Dims dims = x.dims;
    dims[axis] = Dim{sizes[i], {}, {}, -1};
    std::string name = outs[i];
    if (drop) {
      name = L.graph.op("Squeeze", {name, L.graph.ints({dim})});
      dims = without(dims, dim);
    }
    values.push_back({name, dims, x.dtype});
  }
  return values;
}

Value lower_index_select(Lowering& L, const Event& e) {
  const Value a = input(L, e, 0), index = input(L, e, 1);
  const std::int64_t dim = int_attr(e, "dim");
  Dims dims(a.dims.begin(), a.dims.begin() + dim);
  dims.insert(dims.end(), index.dims.begin(), index.dims.end());
  dims.insert(dims.end(), a.dims.begin() + dim + 1, a.dims.end());
  return Value{L.graph.op("Gather", {a.name, index.name}, [dim](::onnx::NodeProto& n) { set_attr(n, "axis", dim); }),
               dims, a.dtype};
}

Value lower_gather(Lowering& L, const Event& e) {
  const Value a = input(L, e, 0), index = input(L, e, 1);
  const std::int64_t dim = int_attr(e, "dim");
  return Value{L.graph.op("GatherElements", {a.name, index.name},
                          [dim](::onnx::NodeProto& n) { set_attr(n, "axis", dim); }),
               index.dims, a.dtype};
}

Value lower_where(Lowering& L, const Event& e) {
  const Value c = input(L, e, 0), a = input(L, e, 1), b = input(L, e, 2);
  return Value{L.graph.op("Where", {c.name, a.name, b.name}), broadcast(broadcast(c.dims, a.dims), b.dims),
               a.dtype};
}

Value lower_sum(Lowering& L, const Event& e) {
  return reduce_node(L, e, "ReduceSum", trace::get<std::vector<std::int64_t>>(e.attributes, "dims", e.name),
                     int_attr(e, "keepdim") != 0, true);
}

Value lower_max(Lowering& L, const Event& e) {
  return reduce_node(L, e, "ReduceMax", {int_attr(e, "dim")}, int_attr(e, "keepdim") != 0, false);
}

Value lower_min(Lowering& L, const Event& e) {
  return reduce_node(L, e, "ReduceMin", {int_attr(e, "dim")}, int_attr(e, "keepdim") != 0, false);
}

Value lower_logsumexp(Lowering& L, const Event& e) {
  return reduce_node(L, e, "ReduceLogSumExp", trace::get<std::vector<std::int64_t>>(e.attributes, "dims", e.name),
                     int_attr(e, "keepdim") != 0, false);
}

Value lower_sum_squared_difference(Lowering& L, const Event& e) {
  const Value a = input(L, e, 0), b = input(L, e, 1);
  Graph& g = L.graph;
  const std::string d = g.op("Sub", {a.name, b.name});
  const std::string out = g.op("ReduceSum", {g.op("Mul", {d, d})}, [](::onnx::NodeProto& n) {
    set_attr(n, "keepdims", std::int64_t{0});
  });
  return Value{out, {}, a.dtype};
}

Value lower_softmax(Lowering& L, const Event& e) {
  const std::int64_t dim = int_attr(e, "dim");
  return same_shape(L, e, "Softmax", [dim](::onnx::NodeProto& n) { set_attr(n, "axis", dim); });
}

Value lower_log_softmax(Lowering& L, const Event& e) {
  const std::int64_t dim = int_attr(e, "dim");
  return same_shape(L, e, "LogSoftmax", [dim](::onnx::NodeProto& n) { set_attr(n, "axis", dim); });
}

const std::unordered_map<std::string, Lower>& table() {
  static const std::unordered_map<std::string, Lower> t = {
      {"add", binary_op("Add")},
      {"sub", binary_op("Sub")},
      {"mul", binary_op("Mul")},
      {"div", binary_op("Div")},
      {"neg", unary_op("Neg")},
      {"pow", one(lower_pow)},
      {"pow_tensor", binary_op("Pow")},
      {"lerp", one(lower_lerp)},
      {"exp", unary_op("Exp")},
      {"log", unary_op("Log")},
      {"sqrt", unary_op("Sqrt")},
      {"abs", unary_op("Abs")},
      {"clamp", one(lower_clamp)},
      {"sigmoid", unary_op("Sigmoid")},
      {"tanh", unary_op("Tanh")},
      {"relu", unary_op("Relu")},
      {"leaky_relu", one(lower_leaky_relu)},
      {"gelu", one(lower_gelu)},
      {"softplus", unary_op("Softplus")},
      {"to", one(lower_to)},
      {"clone", unary_op("Identity")},
      {"matmul", one(lower_matmul)},
      {"linear", one(lower_linear)},
      {"reshape", one(lower_reshape)},
      {"permute", one(lower_permute)},
      {"expand", one(lower_expand)},
      {"narrow", one(lower_narrow)},
      {"select", one(lower_select)},
      {"as_strided", unsupported("an arbitrary strided view of storage has no ONNX equivalent; use reshape, "
                                 "narrow, select or permute")},
      {"copy_slices", unsupported("in-place writes through a view are not exported; compute the result "
                                  "out of place (cat, where)")},
      {"cat", one(lower_cat)},
      {"split", lower_split},
      {"index_select", one(lower_index_select)},
      {"gather", one(lower_gather)},
      {"where", one(lower_where)},
      {"sum", one(lower_sum)},
      {"max", one(lower_max)},
      {"min", one(lower_min)},
      {"logsumexp", one(lower_logsumexp)},
      {"sum_squared_difference", one(lower_sum_squared_difference)},
      {"softmax", one(lower_softmax)},
      {"log_softmax", one(lower_log_softmax)},
      // Comparisons are not primitives (nothing to differentiate), but masks made from inputs
      // must stay computed from them.
      {"eq", compare_op("Equal")},
      {"ne", compare_op("Equal", true)},
      {"lt", compare_op("Less")},
      {"le", compare_op("LessOrEqual")},
      {"gt", compare_op("Greater")},
      {"ge", compare_op("GreaterOrEqual")},
  };
  return t;
}

}  // namespace

std::vector<Value> lower_primitive(Lowering& L, const Event& e) {
  const auto& t = table();
  auto it = t.find(e.name);
  if (it == t.end())
    throw Error(fmt::format("onnx export: primitive '{}' has no ONNX mapping (a user-defined op? export supports "
                            "core's primitives and the recurrent layers)",
                            e.name));
  return it->second(L, e);
}

bool has_mapping(const std::string& primitive) {
  static const std::vector<std::string> refused = {"as_strided", "copy_slices"};
  return table().contains(primitive) && std::find(refused.begin(), refused.end(), primitive) == refused.end();
}

}  // namespace xgrad::onnx::detail

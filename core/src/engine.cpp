// The reverse-mode engine: grad mode, anomaly mode, the backward walk, graph teardown.
// Tensor::backward at the end reads as the algorithm: count the edges into every node, then
// run each node once all of them have delivered (Kahn's order) and deliver its inputs'
// gradients onward, to nodes and to leaves. Gathering and sinks, the two ways a gradient is
// written somewhere other than `acc += g`, live in gather.cpp.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <atomic>
#include <unordered_map>
#include <utility>

#include "checks.hpp"
#include "gather.hpp"
#include "record.hpp"
#include "views.hpp"

namespace xgrad {

namespace {
thread_local bool grad_enabled = true;
thread_local bool anomaly_enabled = false;
std::atomic<std::uint64_t> next_epoch{1};
}  // namespace

bool is_grad_enabled() { return grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(grad_enabled) { grad_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_enabled = previous_; }
EnableGradGuard::EnableGradGuard() : previous_(grad_enabled) { grad_enabled = true; }
EnableGradGuard::~EnableGradGuard() { grad_enabled = previous_; }

namespace {
// The callbacks queued during the backward pass running on this thread (null outside one).
thread_local std::vector<std::function<void()>>* backward_callbacks = nullptr;

// Collects the callbacks of one backward pass and runs them at its end (run()); a pass that
// throws drops them.
class CallbackScope {
 public:
  CallbackScope() : previous_(backward_callbacks) { backward_callbacks = &callbacks_; }
  ~CallbackScope() { backward_callbacks = previous_; }
  CallbackScope(const CallbackScope&) = delete;
  CallbackScope& operator=(const CallbackScope&) = delete;
  void run() {
    // A callback may queue another: it runs too, after the ones before it.
    for (std::size_t i = 0; i < callbacks_.size(); ++i) {
      auto callback = std::move(callbacks_[i]);
      callback();
    }
    callbacks_.clear();
  }

 private:
  std::vector<std::function<void()>> callbacks_;
  std::vector<std::function<void()>>* previous_;
};

// A list for one backward pass whose capacity is kept for the next pass on this thread (a
// pass nested in a hook gets a fresh one). Freeing a 10 000-node list (160 KB) at the end of
// every pass made glibc consolidate all its fast bins each time, a cost bench_op_overhead
// shows.
template <class T>
class ScratchList {
 public:
  ScratchList() { items.swap(spare()); }
  ~ScratchList() {
    items.clear();
    if (items.capacity() > spare().capacity()) items.swap(spare());
  }
  ScratchList(const ScratchList&) = delete;
  ScratchList& operator=(const ScratchList&) = delete;
  std::vector<T> items;

 private:
  static std::vector<T>& spare() {
    thread_local std::vector<T> list;
    return list;
  }
};

}  // namespace

void queue_callback(std::function<void()> callback) {
  if (!callback) throw Error("queue_callback: empty callback");
  if (!backward_callbacks) throw Error("queue_callback: no backward pass is running on this thread; call it from a gradient hook");
  backward_callbacks->push_back(std::move(callback));
}

bool is_anomaly_enabled() { return anomaly_enabled; }
AnomalyGuard::AnomalyGuard() : previous_(anomaly_enabled) { anomaly_enabled = true; }
AnomalyGuard::~AnomalyGuard() { anomaly_enabled = previous_; }

namespace {

// acc += g, the only way gradients meet: they accumulate, they never overwrite. A gradient
// in flight may be a view or shared with another input's (add sends one tensor to both); it
// is adopted as it is and copied only on a later in-place accumulation. A leaf's gradient is
// the user's to keep and modify, so it always gets a tensor of its own.
void accumulate(Tensor& acc, Tensor g, bool leaf = false) {
  if (!acc.defined()) {
    acc = !leaf || exclusively_owned(g) ? std::move(g) : g.clone();
  } else if (exclusively_owned(acc)) {
    acc.add_(g);
  } else {
    acc = acc + g;
  }
}

// The error for a saved tensor modified in place (PyTorch: "one of the variables needed for
// gradient computation has been modified by an inplace operation").
[[noreturn]] void modified_saved_tensor(const Node& node, const Node::SavedVersion& saved, const TensorImpl* tensor,
                                       std::uint64_t version) {
  const std::string what =
      tensor ? ", of shape " + shape_str(tensor->shape) + " and dtype " + std::string(dtype_name(tensor->dtype)) : "";
  const std::string which = saved.which >= static_cast<int>(node.next.size()) ? "not one of its inputs or outputs"
                            : saved.which >= 0 ? "its input " + std::to_string(saved.which)
                                               : "its output " + std::to_string(-1 - saved.which);
  throw Error("backward of '" + node.name + "': a tensor it saved for the gradient (" + which + what +
              ") was modified by an in-place operation after the op ran (version " + std::to_string(version) +
              ", expected " + std::to_string(saved.version) + "), so its gradient would be wrong; modify a clone() instead");
}

// Throws unless every tensor `node` saved for its backward still holds the version it had
// when the op ran.
void check_saved_versions(const Node& node) {
  for (const Node::SavedVersion& saved : node.saved) {
    const auto storage = saved.storage.lock();
    if (storage && storage->version != saved.version)
      modified_saved_tensor(node, saved, saved.tensor.lock().get(), storage->version);
    // Another storage: set_data gave the tensor other data, itself a write.
    if (const auto t = saved.tensor.lock(); t && t->storage != storage)
      modified_saved_tensor(node, saved, t.get(), t->storage->version);
  }
}

// Checks a gradient computed by `node` for input `i` and brings it to the input's shape.
Tensor fit_gradient(const Node& node, std::size_t i, Tensor g, std::span<const std::int64_t> shape, DType dtype) {
  if (g.dtype() != dtype)
    throw Error("backward of '" + node.name + "': gradient for input " + std::to_string(i) + " has dtype " +
                std::string(dtype_name(g.dtype())) + ", the input has " + std::string(dtype_name(dtype)));
  if (is_anomaly_enabled() && has_nonfinite(g))
    throw Error("anomaly: backward of '" + node.name + "' produced NaN or Inf in the gradient of input " +
                std::to_string(i));
  if (same_extents(g.shape(), shape)) return g;
  const Shape target(shape.begin(), shape.end());
  try {
    return sum_to(g, target);
  } catch (const Error&) {
    throw Error("backward of '" + node.name + "': gradient of shape " + shape_str(g.shape()) +
                " does not reduce to the shape " + shape_str(target) + " of input " + std::to_string(i));
  }
}

// The seed of backward(): `seed` checked against the tensor `self`, or ones for a
// one-element tensor when none was given.
Tensor checked_seed(const Tensor& self, const Tensor& seed) {
  require_defined(self, "backward");
  if (!self.requires_grad())
    throw Error("backward: tensor of shape " + shape_str(self.shape()) +
                " does not require grad (no input of its graph requires grad)");
  if (!seed.defined()) {
    if (self.numel() != 1)
      throw Error("backward: an implicit seed needs a one-element tensor, got shape " + shape_str(self.shape()) +
                  "; pass a seed of the same shape");
    return ones(self.shape(), self.dtype());
  }
  if (seed.shape() != self.shape() || seed.dtype() != self.dtype())
    throw Error("backward: seed of shape " + shape_str(seed.shape()) + " and dtype " +
                std::string(dtype_name(seed.dtype())) + " for a tensor of shape " + shape_str(self.shape()) +
                " and dtype " + std::string(dtype_name(self.dtype())));
  return seed;
}

// backward() on a leaf: its hooks see the seed, which is then its gradient.
void backward_leaf(const std::shared_ptr<TensorImpl>& leaf, Tensor seed) {
  if (has_hooks(*leaf)) run_hooks(*leaf->hooks, seed);
  accumulate(leaf->grad, seed.detach(), /*leaf=*/true);
  if (has_post_hooks(*leaf)) run_post_hooks(*leaf->hooks, leaf);
}

// A leaf with hooks, during one pass: its hooks see the sum of the gradients along all its
// edges, and its post-accumulate hooks run after the last edge delivered.
struct HookedLeaf {
  std::int64_t pending = 0;  // edges into it that have not delivered yet
  Tensor grad;               // gathered for the hooks that see it (has_hooks)
  bool arrived = false;      // some gradient reached the leaf (post hooks run only then)
};
using HookedLeaves = std::unordered_map<TensorImpl*, HookedLeaf>;

// Readies a node reached for the first time in the pass `epoch`: no dependencies counted
// yet, no gradient held from an earlier pass.
void start_pass(Node& node, std::uint64_t epoch) {
  node.epoch = epoch;
  node.dependencies = 0;
  node.grads.clear();
  if (node.gather) reset_gather(*node.gather);
}

// Counts, for every node reachable from `root`, how many edges lead into it (and into each
// output of a gathering node), and for every leaf with hooks, how many lead into it.
// Iterative depth-first walk; `epoch` marks the nodes seen in this pass.
void count_dependencies(Node& root, std::uint64_t epoch, HookedLeaves& hooked_leaves) {
  // Plain pointers: used only by this walk, before any node can be freed. Holding every node
  // to the end of the pass instead made their teardown a second sweep over cold memory after
  // it (a cost bench_op_overhead shows); now a node dies as soon as it has run.
  ScratchList<Node*> all_list;
  std::vector<Node*>& all = all_list.items;
  start_pass(root, epoch);
  all.push_back(&root);
  for (std::size_t k = 0; k < all.size(); ++k) {
    for (Edge& e : all[k]->next) {
      if (e.leaf && (has_hooks(*e.leaf) || has_post_hooks(*e.leaf))) ++hooked_leaves[e.leaf.get()].pending;
      if (!e.fn) continue;
      if (e.fn->epoch != epoch) {
        start_pass(*e.fn, epoch);
        all.push_back(e.fn.get());
      }
      ++e.fn->dependencies;
      if (e.fn->gather) ++e.fn->gather->consumers[e.output_nr];
    }
  }
}

// Hands the seed to output `output_nr` of the root, as an edge would.
void seed_root(Node& root, std::uint32_t output_nr, Tensor seed) {
  root.grads.resize(root.outputs.size());
  if (root.gather) ++root.gather->consumers[output_nr];
  if (gathers(root)) gather_into(root, output_nr, seed);
  else root.grads[output_nr] = std::move(seed);
}

// What running a node produced: one gradient per input, or none at all.
struct NodeResult {
  GradList input_grads;
  bool any = false;                // some gradient reached the node: input_grads holds one per input
  std::span<Tensor* const> sinks;  // where the backward added gradients in place
};

// A node's outputs' gradients, completed for its backward: zeros for the outputs no gradient
// reached, then each output's hooks.
void complete_output_grads(const Node& node, SmallVector<Tensor, 1>& grads) {
  grads.resize(node.outputs.size());
  for (std::size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined())
      grads[i] = zeros(Shape(node.outputs[i].shape.begin(), node.outputs[i].shape.end()), node.outputs[i].dtype);
  for (std::size_t i = 0; i < node.hooks.size() && i < grads.size(); ++i)
    if (node.hooks[i] && !node.hooks[i]->empty()) run_hooks(*node.hooks[i], grads[i]);
}

// Runs `node`, every edge into which has delivered: its backward turns its outputs' gradients
// into its inputs'. A gathering node's input gradient is its gathered buffer.
NodeResult run_node(Node& node, std::vector<Tensor*>& sinks) {
  NodeResult result;
  SmallVector<Tensor, 1> grads = std::move(node.grads);
  if (gathers(node)) {
    result.any = node.gather->buffer.defined();
    result.input_grads.push_back(take_gathered(*node.gather));
    return result;
  }
  for (const Tensor& g : grads) result.any = result.any || g.defined();
  if (!result.any) return result;
  if (node.freed())
    throw Error("backward: the graph through '" + node.name +
                "' was already freed by an earlier backward(); pass retain_graph=true to the "
                "first call to differentiate twice");
  complete_output_grads(node, grads);
  // Checked after the hooks, the last user code before this backward reads what the op
  // saved: a hook on the op's output may have written to that very output (and every
  // earlier hook, leaf hook or custom backward ran before this point too).
  check_saved_versions(node);
  if (node.backward_into) result.sinks = sinks_for(node, sinks);  // only such a backward takes sinks
  result.input_grads = node.run_backward(grads, result.sinks);
  grads.clear();  // release our references, so gradients can be adopted in place
  if (result.input_grads.size() != node.next.size())
    throw Error("backward of '" + node.name + "' returned " + std::to_string(result.input_grads.size()) +
                " gradients for " + std::to_string(node.next.size()) + " inputs");
  return result;
}

// One backward pass over a graph.
struct Pass {
  std::vector<std::shared_ptr<Node>>& ready;  // nodes all of whose edges have delivered
  HookedLeaves hooked_leaves;
  std::vector<Tensor*> sinks;  // sinks_for's storage, reused by every node
};

// Delivers `g`, the gradient `from` computed for its input `i`, along edge `e` to a node:
// accumulated into (or gathered by) that node's output; the node is ready after its last edge.
void deliver_to_node(const Node& from, std::size_t i, Edge& e, Tensor g, Pass& pass) {
  if (g.defined()) {
    const OutputMeta& meta = e.fn->outputs[e.output_nr];
    g = fit_gradient(from, i, std::move(g), meta.extents(), meta.dtype);
    if (gathers(*e.fn)) {
      gather_into(*e.fn, e.output_nr, g);
    } else {
      e.fn->grads.resize(e.fn->outputs.size());
      accumulate(e.fn->grads[e.output_nr], std::move(g));
    }
  }
  if (--e.fn->dependencies == 0) pass.ready.push_back(e.fn);
}

// The same to a leaf with hooks: its gradient is gathered over all uses, then hooked and
// accumulated. A leaf with post-accumulate hooks only accumulates as usual (sinks included),
// and its post hooks run after its last edge. `sunk`: the backward added into its gradient.
void deliver_to_hooked_leaf(const Node& from, std::size_t i, Edge& e, Tensor g, bool sunk, HookedLeaf& h) {
  const bool gather = has_hooks(*e.leaf);
  if (g.defined()) {
    g = fit_gradient(from, i, std::move(g), e.leaf->shape, e.leaf->dtype);
    if (gather) accumulate(h.grad, std::move(g));
    else accumulate(e.leaf->grad, std::move(g), /*leaf=*/true);
    h.arrived = true;
  }
  if (sunk) h.arrived = true;
  if (--h.pending == 0) {
    if (gather && h.grad.defined()) {
      run_hooks(*e.leaf->hooks, h.grad);
      accumulate(e.leaf->grad, std::move(h.grad), /*leaf=*/true);
    }
    if (h.arrived && has_post_hooks(*e.leaf)) run_post_hooks(*e.leaf->hooks, e.leaf);
  }
}

// The same to a leaf: accumulated into its gradient.
void deliver_to_leaf(const Node& from, std::size_t i, Edge& e, Tensor g, bool sunk, Pass& pass) {
  auto hooked = pass.hooked_leaves.find(e.leaf.get());
  if (hooked != pass.hooked_leaves.end()) {
    deliver_to_hooked_leaf(from, i, e, std::move(g), sunk, hooked->second);
  } else if (g.defined()) {
    accumulate(e.leaf->grad, fit_gradient(from, i, std::move(g), e.leaf->shape, e.leaf->dtype), /*leaf=*/true);
  }
}

// Delivers what `node` computed along each of its edges.
void deliver(Node& node, NodeResult& result, Pass& pass) {
  for (std::size_t i = 0; i < node.next.size(); ++i) {
    Edge& e = node.next[i];
    Tensor g = result.any ? std::move(result.input_grads[i]) : Tensor();
    if (e.fn) deliver_to_node(node, i, e, std::move(g), pass);
    else if (e.leaf) deliver_to_leaf(node, i, e, std::move(g), i < result.sinks.size() && result.sinks[i], pass);
  }
}

// Drops the gradients gathered so far by the nodes still waiting when a pass throws (the
// counting walk clears any others at the next pass).
void drop_pending(std::vector<std::shared_ptr<Node>>& ready) {
  for (auto& n : ready) {
    n->grads.clear();
    if (n->gather) drop_gathered(*n->gather);
  }
}

// Differentiates the graph behind `root`, whose output `output_nr` receives `seed`.
void run_graph(std::shared_ptr<Node> root, std::uint32_t output_nr, Tensor seed, bool retain_graph) {
  ScratchList<std::shared_ptr<Node>> ready_list;
  Pass pass{ready_list.items, {}, {}};
  count_dependencies(*root, next_epoch++, pass.hooked_leaves);
  try {
    seed_root(*root, output_nr, std::move(seed));
    pass.ready.push_back(root);
    while (!pass.ready.empty()) {
      std::shared_ptr<Node> node = std::move(pass.ready.back());
      pass.ready.pop_back();
      NodeResult result = run_node(*node, pass.sinks);
      deliver(*node, result, pass);
      if (!retain_graph) {
        node->free_backward();  // frees what the node saved for backward
        node->next.clear();
      }
    }
  } catch (...) {
    drop_pending(pass.ready);
    throw;
  }
}

}  // namespace

void Tensor::backward(const Tensor& seed_in, bool retain_graph) const {
  Tensor seed = checked_seed(*this, seed_in);
  NoGradGuard no_grad;
  CallbackScope callbacks;
  sync_grad_fn(*impl_);
  if (impl_->grad_fn) run_graph(impl_->grad_fn, impl_->output_nr, seed.detach(), retain_graph);
  else backward_leaf(impl_, seed);
  callbacks.run();
}

}  // namespace xgrad

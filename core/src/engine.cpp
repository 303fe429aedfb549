// The reverse-mode engine: grad mode, anomaly mode, the backward walk, graph teardown.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>

#include <atomic>
#include <unordered_map>
#include <utility>

#include "impl.hpp"

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

bool has_post_hooks(const TensorImpl& leaf) { return leaf.hooks && !leaf.hooks->post.empty(); }
bool has_hooks(const TensorImpl& leaf) { return leaf.hooks && !leaf.hooks->empty(); }
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
// Nodes waiting to be destroyed by the outermost ~Node on this thread. A graph can outlive the
// thread's thread-locals (a global Tensor holding one is destroyed after them, at exit): then
// the list is gone and nodes are destroyed directly.
thread_local bool pending_gone = false;
struct PendingNodes {
  std::vector<std::shared_ptr<Node>> nodes;
  bool draining = false;
  ~PendingNodes() { pending_gone = true; }
};
PendingNodes* pending_nodes() {
  if (pending_gone) return nullptr;
  thread_local PendingNodes pending;
  return &pending;
}
}  // namespace

Node::~Node() {
  // Releasing `next` could destroy the next node, whose destructor would release its own
  // `next`, and so on down the graph: recursion as deep as the graph. Instead, nodes about to
  // die are parked in a thread-local list and destroyed one at a time by the outermost call.
  PendingNodes* pending = pending_nodes();
  if (pending == nullptr) return;  // at thread exit: `next` is released normally
  for (Edge& e : next)
    if (e.fn && e.fn.use_count() == 1) pending->nodes.push_back(std::move(e.fn));
  next.clear();
  if (pending->draining) return;
  pending->draining = true;
  while (!pending->nodes.empty()) {
    std::shared_ptr<Node> n = std::move(pending->nodes.back());
    pending->nodes.pop_back();
    n.reset();  // may park more nodes in `pending`
  }
  pending->draining = false;
}

namespace {

// True when nobody else can observe `t` and it owns its whole storage densely, so it may be
// updated in place (or kept as a leaf's gradient).
bool exclusively_owned(const Tensor& t) {
  const TensorImpl& im = impl_of(t);
  return t.impl().use_count() == 1 && im.storage.use_count() == 1 && im.contiguous &&
         static_cast<std::size_t>(im.numel) * dtype_size(im.dtype) == im.storage->nbytes;
}

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

// For a node that can add gradients in place (backward_into), where each input's gradient
// is accumulated when that place already holds a tensor nobody else sees, of the input's
// exact shape and dtype (so no unbroadcasting is due); null elsewhere. Anomaly mode checks
// every gradient on its own, so it gets none.
std::span<Tensor* const> sinks_for(Node& node, std::vector<Tensor*>& sinks) {
  sinks.assign(node.next.size(), nullptr);
  if (!node.backward_into || is_anomaly_enabled()) return sinks;
  for (std::size_t i = 0; i < node.next.size(); ++i) {
    Edge& e = node.next[i];
    Tensor* slot = nullptr;
    std::span<const std::int64_t> shape;
    DType dtype{};
    if (e.fn) {
      if (e.output_nr >= e.fn->grads.size()) continue;
      slot = &e.fn->grads[e.output_nr];
      shape = e.fn->outputs[e.output_nr].extents();
      dtype = e.fn->outputs[e.output_nr].dtype;
    } else if (e.leaf && !has_hooks(*e.leaf)) {
      slot = &e.leaf->grad;
      shape = e.leaf->shape;
      dtype = e.leaf->dtype;
    }
    if (slot && slot->defined() && exclusively_owned(*slot) && slot->dtype() == dtype && same_extents(slot->shape(), shape)) {
      ++impl_of(*slot).storage->version;
      sinks[i] = slot;
    }
  }
  return sinks;
}

// True when `node` gathers its outputs' gradients into one buffer (see Node::Gather): not
// once the graph is freed, and not when a hook must see one output's gradient on its own.
bool gathers(const Node& node) {
  if (!node.gather || node.freed()) return false;
  for (const auto& h : node.hooks)
    if (h && !h->empty()) return false;
  return true;
}

// The windows tile the buffer, so it starts uninitialised: a window's first gradient is copied
// in, later ones added, and windows no gradient reached are zeroed when the buffer is taken.
// (Zeroing the whole buffer first cost an LSTM of size M a 26 MB memset per step for the
// projection's unbind and one per step for the gate chunks.)
TensorImpl window_of(const Node::Gather& gather, std::uint32_t output) {
  const Node::Window& w = gather.windows[output];
  const TensorImpl& b = impl_of(gather.buffer);
  return TensorImpl(b.storage, w.shape, w.strides, b.offset + w.offset, b.dtype);
}

bool contiguous_window(const Node::Window& w) { return w.strides == contiguous_strides(w.shape); }

// A buffer for `node`'s gathering: its parent's window when `node` splits the only consumer of
// a gathering parent's output, laid out as the buffer would be (contiguous, of node's input's
// shape, nothing in it yet). The parent's window then counts as written: node fills it (its
// unreached windows are zeroed when taken), and it is the parent's input that arrives there.
// Otherwise a new buffer, and the parent copies node's gradient into its window as usual.
Tensor gather_buffer(const Node& node) {
  const Node::Gather& gather = *node.gather;
  if (node.next.size() == 1 && node.next[0].fn && gathers(*node.next[0].fn)) {
    Node::Gather& parent = *node.next[0].fn->gather;
    const std::uint32_t k = node.next[0].output_nr;
    const Node::Window& w = parent.windows[k];
    if (k < parent.consumers.size() && parent.consumers[k] == 1 && parent.dtype == gather.dtype &&
        w.shape == gather.input_shape && contiguous_window(w) && (!parent.buffer.defined() || !parent.written[k])) {
      if (!parent.buffer.defined()) {
        parent.buffer = make_empty(parent.input_shape, parent.dtype);
        parent.written.assign(parent.windows.size(), false);
      }
      parent.written[k] = true;
      return Tensor(make_pooled<TensorImpl>(window_of(parent, k)));
    }
  }
  return make_empty(gather.input_shape, gather.dtype);
}

void gather_into(Node& node, std::uint32_t output, const Tensor& g) {
  Node::Gather& gather = *node.gather;
  if (!gather.buffer.defined()) {
    gather.buffer = gather_buffer(node);
    gather.written.assign(gather.windows.size(), false);
  }
  TensorImpl window = window_of(gather, output);
  const TensorImpl& gi = impl_of(g);
  if (gi.storage == window.storage && gi.offset == window.offset && gi.strides == window.strides) {
    return;  // a child gathered it in place (gather_buffer)
  }
  if (gather.written[output]) {
    add_elements(gi, window);
  } else {
    copy_elements(gi, window);
    gather.written[output] = true;
  }
}

// The gathered gradient (undefined when none arrived), its unreached windows zeroed.
Tensor take_gathered(Node::Gather& gather) {
  if (gather.buffer.defined()) {
    const Tensor zero = zeros({}, gather.dtype);
    for (std::uint32_t i = 0; i < gather.windows.size(); ++i) {
      if (gather.written[i]) continue;
      TensorImpl window = window_of(gather, i);
      const TensorImpl zeros_like_window(impl_of(zero).storage, window.shape, Shape(window.shape.size(), 0), 0,
                                         gather.dtype);
      copy_elements(zeros_like_window, window);
    }
  }
  gather.written.clear();
  return std::exchange(gather.buffer, Tensor());
}

}  // namespace

void Tensor::backward(const Tensor& seed_in, bool retain_graph) const {
  require_defined(*this, "backward");
  if (!requires_grad())
    throw Error("backward: tensor of shape " + shape_str(shape()) +
                " does not require grad (no input of its graph requires grad)");
  Tensor seed = seed_in;
  if (!seed.defined()) {
    if (numel() != 1)
      throw Error("backward: an implicit seed needs a one-element tensor, got shape " + shape_str(shape()) +
                  "; pass a seed of the same shape");
    seed = ones(shape(), dtype());
  } else if (seed.shape() != shape() || seed.dtype() != dtype()) {
    throw Error("backward: seed of shape " + shape_str(seed.shape()) + " and dtype " +
                std::string(dtype_name(seed.dtype())) + " for a tensor of shape " + shape_str(shape()) +
                " and dtype " + std::string(dtype_name(dtype())));
  }
  NoGradGuard no_grad;
  CallbackScope callbacks;
  sync_grad_fn(*impl_);
  if (!impl_->grad_fn) {
    if (has_hooks(*impl_)) run_hooks(*impl_->hooks, seed);
    accumulate(impl_->grad, seed.detach(), /*leaf=*/true);
    if (has_post_hooks(*impl_)) run_post_hooks(*impl_->hooks, impl_);
    callbacks.run();
    return;
  }

  // Count, for every node reachable from the root, how many edges lead into it, and for every
  // leaf with hooks, how many lead into it (its hooks see the sum; its post-accumulate hooks
  // run after the last). Iterative depth-first walk; `epoch` marks nodes seen in this pass.
  std::shared_ptr<Node> root = impl_->grad_fn;
  const std::uint64_t epoch = next_epoch++;
  // Plain pointers: used only by this walk, before any node can be freed. Holding every node
  // to the end of the pass instead made their teardown a second sweep over cold memory after
  // it (a cost bench_op_overhead shows); now a node dies as soon as it has run.
  ScratchList<Node*> all_list;
  std::vector<Node*>& all = all_list.items;
  all.push_back(root.get());
  struct HookedLeaf {
    std::int64_t pending = 0;
    Tensor grad;           // gathered for the hooks that see it (has_hooks)
    bool arrived = false;  // some gradient reached the leaf (post hooks run only then)
  };
  std::unordered_map<TensorImpl*, HookedLeaf> hooked_leaves;
  root->epoch = epoch;
  root->dependencies = 0;
  for (std::size_t k = 0; k < all.size(); ++k) {
    for (Edge& e : all[k]->next) {
      if (e.leaf && (has_hooks(*e.leaf) || has_post_hooks(*e.leaf))) ++hooked_leaves[e.leaf.get()].pending;
      if (!e.fn) continue;
      if (e.fn->epoch != epoch) {
        e.fn->epoch = epoch;
        e.fn->dependencies = 0;
        e.fn->grads.clear();
        if (e.fn->gather) {
          e.fn->gather->buffer = Tensor();
          e.fn->gather->consumers.assign(e.fn->gather->windows.size(), 0);
        }
        all.push_back(e.fn.get());
      }
      ++e.fn->dependencies;
      if (e.fn->gather) ++e.fn->gather->consumers[e.output_nr];
    }
  }

  // A node runs once every edge into it has delivered its gradient (Kahn's order).
  ScratchList<std::shared_ptr<Node>> ready_list;
  std::vector<std::shared_ptr<Node>>& ready = ready_list.items;
  try {
    root->grads.clear();
    if (root->gather) root->gather->buffer = Tensor();
    root->grads.resize(root->outputs.size());
    if (root->gather) {
      root->gather->consumers.assign(root->gather->windows.size(), 0);
      ++root->gather->consumers[impl_->output_nr];  // the seed
    }
    if (gathers(*root)) gather_into(*root, impl_->output_nr, seed.detach());
    else root->grads[impl_->output_nr] = seed.detach();
    ready.push_back(root);
    std::vector<Tensor*> sinks;
    while (!ready.empty()) {
      std::shared_ptr<Node> node = std::move(ready.back());
      ready.pop_back();
      SmallVector<Tensor, 1> grads = std::move(node->grads);
      bool any = false;
      for (const Tensor& g : grads) any = any || g.defined();

      GradList input_grads;
      std::span<Tensor* const> node_sinks;  // where run_backward added gradients in place
      if (gathers(*node)) {
        // The outputs' gradients were gathered into one buffer as they arrived: it is the input's.
        any = node->gather->buffer.defined();
        input_grads.push_back(take_gathered(*node->gather));
      } else if (any) {
        if (node->freed())
          throw Error("backward: the graph through '" + node->name +
                      "' was already freed by an earlier backward(); pass retain_graph=true to the "
                      "first call to differentiate twice");
        grads.resize(node->outputs.size());
        for (std::size_t i = 0; i < grads.size(); ++i)
          if (!grads[i].defined()) grads[i] = zeros(Shape(node->outputs[i].shape.begin(), node->outputs[i].shape.end()), node->outputs[i].dtype);
        for (std::size_t i = 0; i < node->hooks.size() && i < grads.size(); ++i)
          if (node->hooks[i] && !node->hooks[i]->empty()) run_hooks(*node->hooks[i], grads[i]);
        // Checked after the hooks, the last user code before this backward reads what the op
        // saved: a hook on the op's output may have written to that very output (and every
        // earlier hook, leaf hook or custom backward ran before this point too).
        check_saved_versions(*node);
        node_sinks = sinks_for(*node, sinks);
        input_grads = node->run_backward(grads, node_sinks);
        grads.clear();  // release our references, so gradients can be adopted in place
        if (input_grads.size() != node->next.size())
          throw Error("backward of '" + node->name + "' returned " + std::to_string(input_grads.size()) +
                      " gradients for " + std::to_string(node->next.size()) + " inputs");
      }
      for (std::size_t i = 0; i < node->next.size(); ++i) {
        Edge& e = node->next[i];
        Tensor g = any ? std::move(input_grads[i]) : Tensor();
        if (e.fn) {
          if (g.defined()) {
            const OutputMeta& meta = e.fn->outputs[e.output_nr];
            g = fit_gradient(*node, i, std::move(g), meta.extents(), meta.dtype);
            if (gathers(*e.fn)) {
              gather_into(*e.fn, e.output_nr, g);
            } else {
              e.fn->grads.resize(e.fn->outputs.size());
              accumulate(e.fn->grads[e.output_nr], std::move(g));
            }
          }
          if (--e.fn->dependencies == 0) ready.push_back(e.fn);
        } else if (e.leaf) {
          auto hooked = hooked_leaves.find(e.leaf.get());
          if (hooked == hooked_leaves.end()) {
            if (g.defined())
              accumulate(e.leaf->grad, fit_gradient(*node, i, std::move(g), e.leaf->shape, e.leaf->dtype), /*leaf=*/true);
            continue;
          }
          // A leaf with hooks: gather its gradient over all uses, then hook and accumulate. A
          // leaf with post-accumulate hooks only accumulates as usual (sinks included).
          HookedLeaf& h = hooked->second;
          const bool gather = has_hooks(*e.leaf);
          if (g.defined()) {
            g = fit_gradient(*node, i, std::move(g), e.leaf->shape, e.leaf->dtype);
            if (gather) accumulate(h.grad, std::move(g));
            else accumulate(e.leaf->grad, std::move(g), /*leaf=*/true);
            h.arrived = true;
          }
          if (i < node_sinks.size() && node_sinks[i]) h.arrived = true;
          if (--h.pending == 0) {
            if (gather && h.grad.defined()) {
              run_hooks(*e.leaf->hooks, h.grad);
              accumulate(e.leaf->grad, std::move(h.grad), /*leaf=*/true);
            }
            if (h.arrived && has_post_hooks(*e.leaf)) run_post_hooks(*e.leaf->hooks, e.leaf);
          }
        }
      }
      if (!retain_graph) {
        node->free_backward();  // frees what the node saved for backward
        node->next.clear();
      }
    }
  } catch (...) {
    // Drop the gradients gathered so far by the nodes still waiting (the walk above clears
    // any others at the next pass).
    for (auto& n : ready) {
      n->grads.clear();
      if (n->gather) {
        n->gather->buffer = Tensor();
        n->gather->written.clear();
      }
    }
    throw;
  }
  callbacks.run();
}

}  // namespace xgrad

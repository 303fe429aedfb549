// The graph's nodes and hooks: ~Node, which tears a graph down without recursion, and
// gradient hooks (register_hook, retain_grad, post-accumulate hooks), which hang on a leaf or
// on the node that made a tensor and which the engine runs as a gradient completes.
#include <xgrad/core/ops.hpp>
#include <xgrad/core/tensor.hpp>

#include <atomic>
#include <memory>
#include <vector>

#include "checks.hpp"
#include "node.hpp"
#include "strided.hpp"
#include "views.hpp"

namespace xgrad {

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

// --- hooks ---------------------------------------------------------------------------------------

namespace {
std::atomic<std::uint64_t> next_hook_id{1};

// The hook list that sees this tensor's complete gradient: a leaf's own, or its grad_fn's for
// this output.
std::shared_ptr<HookList>& hook_list(TensorImpl& im) {
  sync_grad_fn(im);
  if (!im.grad_fn) return im.hooks;
  Node& node = *im.grad_fn;
  if (node.hooks.size() < node.outputs.size()) node.hooks.resize(node.outputs.size());
  return node.hooks[im.output_nr];
}
}  // namespace

void HookHandle::remove() {
  if (auto list = list_.lock()) {
    std::erase_if(list->hooks, [this](const auto& h) { return h.first == id_; });
    std::erase_if(list->post, [this](const auto& h) { return h.first == id_; });
  }
}

HookHandle Tensor::register_hook(std::function<Tensor(const Tensor& grad)> hook) {
  require_defined(*this, "register_hook");
  if (!requires_grad())
    throw Error("register_hook: cannot register a hook on a tensor of shape " + shape_str(shape()) +
                " that does not require grad");
  if (!hook) throw Error("register_hook: empty hook");
  auto& list = hook_list(*impl_);
  if (!list) list = std::make_shared<HookList>();
  const std::uint64_t id = next_hook_id++;
  list->hooks.emplace_back(id, std::move(hook));
  return HookHandle(list, id);
}

HookHandle Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor& leaf)> hook) {
  require_defined(*this, "register_post_accumulate_grad_hook");
  if (!requires_grad() || !is_leaf())
    throw Error("register_post_accumulate_grad_hook: needs a leaf that requires grad, got a tensor of shape " +
                shape_str(shape()) + (requires_grad() ? " made by '" + grad_fn_name() + "'" : " that does not require grad"));
  if (!hook) throw Error("register_post_accumulate_grad_hook: empty hook");
  auto& list = impl_->hooks;
  if (!list) list = std::make_shared<HookList>();
  const std::uint64_t id = next_hook_id++;
  list->post.emplace_back(id, std::move(hook));
  return HookHandle(list, id);
}

void Tensor::retain_grad() {
  require_defined(*this, "retain_grad");
  if (!requires_grad())
    throw Error("retain_grad: a tensor of shape " + shape_str(shape()) + " that does not require grad has no gradient to retain");
  if (is_leaf()) return;  // leaves keep their gradient anyway
  auto& list = hook_list(*impl_);
  if (!list) list = std::make_shared<HookList>();
  list->retain = impl_;
}

bool Tensor::retains_grad() const {
  if (!impl_ || is_leaf()) return false;
  const auto& list = hook_list(*impl_);
  return list && list->retain.lock() == impl_;
}

void run_hooks(const HookList& list, Tensor& grad) {
  // A copy: a hook may remove itself or register others while it runs.
  const auto hooks = list.hooks;
  for (const auto& [id, hook] : hooks) {
    Tensor replaced = hook(grad);
    if (!replaced.defined()) continue;
    if (replaced.shape() != grad.shape() || replaced.dtype() != grad.dtype())
      throw Error("register_hook: a hook returned a gradient of shape " + shape_str(replaced.shape()) + " and dtype " +
                  std::string(dtype_name(replaced.dtype())) + " for a gradient of shape " + shape_str(grad.shape()) +
                  " and dtype " + std::string(dtype_name(grad.dtype())));
    grad = replaced;
  }
  if (auto t = list.retain.lock()) t->grad = t->grad.defined() ? t->grad + grad : dense(grad).clone();
}

void run_post_hooks(const HookList& list, const std::shared_ptr<TensorImpl>& leaf) {
  const auto hooks = list.post;  // a copy, as in run_hooks
  const Tensor t(leaf);
  for (const auto& [id, hook] : hooks) hook(t);
}

}  // namespace xgrad

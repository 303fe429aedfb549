#pragma once
// Private to core: the graph. A Node is one recorded application of a primitive: an Edge per
// input (to the node that made it, or to a leaf), its outputs' shapes and dtypes, its backward
// rule, the versions of what it saved, the hooks on its outputs, and the engine's scratch for
// one backward pass. Gradient hooks live here too, since a non-leaf's hooks hang on its node.
// How a node is made is record.hpp; how it is run, engine.cpp; how it is torn down without
// recursion, node.cpp.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/core/extension.hpp>
#include <xgrad/core/tensor.hpp>

#include "small.hpp"
#include "tensor_impl.hpp"

namespace xgrad {

// A user's gradient hook; returns the replacement gradient or an undefined tensor.
using GradHook = std::function<Tensor(const Tensor&)>;
// A leaf's hook that runs once its gradient has been accumulated (it receives the leaf).
using PostAccumulateHook = std::function<void(const Tensor&)>;
struct HookList {
  std::vector<std::pair<std::uint64_t, GradHook>> hooks;  // (id, hook), run in order
  std::weak_ptr<TensorImpl> retain;                       // retain_grad(): accumulate the result here
  std::vector<std::pair<std::uint64_t, PostAccumulateHook>> post;  // leaves only, after accumulation
  // True when no hook sees the gradient before it is accumulated (post hooks don't).
  bool empty() const { return hooks.empty() && retain.expired(); }
};
// Runs `list`'s hooks on `grad` (replacing it when one returns a tensor), then stores it for
// retain_grad. `name` names the tensor in errors.
void run_hooks(const HookList& list, Tensor& grad);
// Runs a leaf's post-accumulate hooks on the leaf.
void run_post_hooks(const HookList& list, const std::shared_ptr<TensorImpl>& leaf);
// True when a leaf has hooks that see its gradient before it is accumulated, or hooks that
// run after.
inline bool has_hooks(const TensorImpl& leaf) { return leaf.hooks && !leaf.hooks->empty(); }
inline bool has_post_hooks(const TensorImpl& leaf) { return leaf.hooks && !leaf.hooks->post.empty(); }

// Where the gradient of one input goes: into another node's output, or into a leaf's grad.
// Neither is set when that input does not require grad.
struct Edge {
  std::shared_ptr<Node> fn;
  std::uint32_t output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;
};

// The shape and dtype of a node's output, for its gradient. The extents live inline: backward
// compares every incoming gradient's shape with them, and a heap buffer written at forward
// time was a cache miss there (and one more allocation per op).
struct OutputMeta {
  SmallVector<std::int64_t, 4> shape;
  DType dtype{};
  std::span<const std::int64_t> extents() const { return {shape.data(), shape.size()}; }
};
// True when `shape` has exactly these extents.
inline bool same_extents(const Shape& shape, std::span<const std::int64_t> extents) {
  if (shape.size() != extents.size()) return false;
  for (std::size_t d = 0; d < extents.size(); ++d)
    if (shape[d] != extents[d]) return false;
  return true;
}

// The gradients a backward rule returns, one per input (undefined: none). Inline for up to
// two inputs: returning a std::vector was one more malloc and free per node in every pass.
// Converts from and to std::vector<Tensor>, for rules written either way.
class GradList {
 public:
  GradList() = default;
  GradList(std::initializer_list<Tensor> grads) {
    for (const Tensor& g : grads) list_.push_back(g);
  }
  GradList(std::vector<Tensor> grads) {
    for (Tensor& g : grads) list_.push_back(std::move(g));
  }
  operator std::vector<Tensor>() && {
    return std::vector<Tensor>(std::make_move_iterator(list_.begin()), std::make_move_iterator(list_.end()));
  }
  void push_back(Tensor g) { list_.push_back(std::move(g)); }
  std::size_t size() const { return list_.size(); }
  Tensor& operator[](std::size_t i) { return list_[i]; }
  const Tensor& operator[](std::size_t i) const { return list_[i]; }

 private:
  SmallVector<Tensor, 2> list_;
};
using Grads = GradList;  // what core's backward closures return

// Backward of a single-output op: the gradient of its output → one gradient per input.
// (InlineFunction rather than std::function: closures up to 48 bytes live in the node.)
using UnaryBackwardFn = InlineFunction<GradList(const Tensor& grad_output)>;

// The same, for ops whose backward can add a gradient straight into the place where it is
// accumulated (GEMMs with beta = 1). sinks[i], when not null, is the gradient accumulated so
// far for input i: owned by nobody else, of the input's shape and dtype. The function may add
// its gradient for input i into *sinks[i] and then return an undefined tensor for it.
using SinkBackwardFn = InlineFunction<GradList(const Tensor& grad_output, std::span<Tensor* const> sinks)>;

// One recorded application of a primitive.
class Node {
 public:
  explicit Node(std::string name) : name(std::move(name)) {}
  // Destroys the graph behind this node iteratively: a 100 000-node chain must not
  // recurse 100 000 destructors deep.
  ~Node();

  // Engine scratch, valid during one backward pass. First, beside `next`: backward's
  // counting walk reads a node's epoch as it reaches it, and sharing a cache line with what it
  // reads next saved a miss per node.
  std::uint64_t epoch = 0;
  std::int64_t dependencies = 0;
  SmallVector<Edge, 2> next;      // one per input
  SmallVector<Tensor, 1> grads;   // engine scratch: accumulated gradient of each output
  SmallVector<OutputMeta, 1> outputs;
  std::string name;
  // Exactly one is set while the graph lives (single-output ops use the first, which saves
  // a wrapper); all are empty once the graph is freed.
  UnaryBackwardFn backward_one;
  BackwardFn backward_many;
  SinkBackwardFn backward_into;
  bool freed() const { return !backward_one && !backward_many && !backward_into; }
  void free_backward() {
    backward_one = nullptr;
    backward_many = nullptr;
    backward_into = nullptr;
  }
  GradList run_backward(std::span<const Tensor> grads, std::span<Tensor* const> sinks) const {
    if (backward_one) return backward_one(grads[0]);
    if (backward_into) return backward_into(grads[0], sinks);
    return backward_many(std::vector<Tensor>(grads.begin(), grads.end()));
  }
  // The tensors backward reads and their storage versions when the op ran: backward refuses
  // to run once one was modified in place (its gradient would silently be wrong). `which`
  // names it in the error: input i (>= 0) or output -1 - i.
  // The tensor is held weakly and its storage only by address (to notice set_data): a weak
  // reference per tensor instead of two saved two atomic operations per saved tensor.
  struct SavedVersion {
    std::weak_ptr<TensorImpl> tensor;  // for the message, and set_data: its storage replaced
    std::weak_ptr<Storage> storage;    // checked while it lives, even once `tensor` is gone (a
                                       // detached handle elsewhere can still write to it)
    std::uint64_t version = 0;
    int which = 0;
  };
  SmallVector<SavedVersion, 2> saved;
  // Hooks on this node's outputs (register_hook / retain_grad on a non-leaf), by output.
  std::vector<std::shared_ptr<HookList>> hooks;

  // For split / chunk / unbind, whose outputs are disjoint views of one input: each output's
  // gradient is added into its window of one input-shaped buffer as it arrives, instead of
  // being kept until the last arrives and then concatenated. Unbinding T time steps would
  // otherwise hold T gradients and then a copy of them all (PyTorch's UnbindBackward does).
  struct Window {
    Shape shape, strides;  // inside a contiguous tensor of the input's shape
    std::int64_t offset;
  };
  struct Gather {
    Shape input_shape;
    DType dtype;
    std::vector<Window> windows;  // one per output
    Tensor buffer;                // the input's gradient so far (undefined until one arrives)
    std::vector<bool> written;    // per window: a gradient is in it (the rest is not yet zeroed)
    // Per window, the edges into that output in the current backward pass. A gathering node
    // whose input is the only consumer of a gathering parent's output gathers straight into
    // the parent's window (a GRU step's projection chunk into the projection's unbind).
    std::vector<std::uint32_t> consumers;
  };
  std::unique_ptr<Gather> gather;
};

}  // namespace xgrad

// Gathering and sinks: how backward writes gradients into a split's input buffer and into a
// GEMM input's accumulator (gather.hpp says why each exists; engine.cpp says when).
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>

#include <utility>

#include "gather.hpp"
#include "strided.hpp"

namespace xgrad {

namespace {

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

}  // namespace

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

void reset_gather(Node::Gather& gather) {
  gather.buffer = Tensor();
  gather.consumers.assign(gather.windows.size(), 0);
}

void drop_gathered(Node::Gather& gather) {
  gather.buffer = Tensor();
  gather.written.clear();
}

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

}  // namespace xgrad

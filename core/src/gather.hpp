#pragma once
// Private to core: the two places where backward writes a gradient somewhere other than a
// node's own accumulator. Gathering: split / chunk / unbind add each output's gradient into its
// window of one input-shaped buffer as it arrives (Node::Gather), so unbinding T time steps
// holds one buffer instead of T gradients and their concatenation. Sinks: a GEMM's backward
// adds its gradient straight into the tensor accumulated so far for an input (beta = 1), the
// one exception to the engine's `acc += g`. The engine (engine.cpp) decides when; this is how.
#include <cstdint>
#include <span>
#include <vector>

#include "node.hpp"

namespace xgrad {

// True when `node` gathers its outputs' gradients into one buffer (see Node::Gather): not
// once the graph is freed, and not when a hook must see one output's gradient on its own.
// Inline: the engine asks for every node and every edge it delivers along.
inline bool gathers(const Node& node) {
  if (!node.gather || node.freed()) return false;
  for (const auto& h : node.hooks)
    if (h && !h->empty()) return false;
  return true;
}

// Adds (or copies, for the first) `g`, the gradient of output `output` of a gathering node,
// into that output's window of the node's buffer.
void gather_into(Node& node, std::uint32_t output, const Tensor& g);
// The gathered gradient (undefined when none arrived), its unreached windows zeroed; the node
// holds no buffer afterwards.
Tensor take_gathered(Node::Gather& gather);
// Drops what `gather` holds, for a new pass: the buffer, and the count of each output's
// consumers (counted again by the pass's walk).
void reset_gather(Node::Gather& gather);
// Drops a buffer left by a pass that threw.
void drop_gathered(Node::Gather& gather);

// For a node that can add gradients in place (backward_into): where each input's gradient is
// accumulated, when that place already holds a tensor nobody else sees, of the input's exact
// shape and dtype (so no unbroadcasting is due); null elsewhere. Each sink's version is bumped,
// as the backward writes to it. Anomaly mode checks every gradient on its own, so it gets
// none. `sinks` is the storage, reused across nodes. Other nodes need no sinks at all.
std::span<Tensor* const> sinks_for(Node& node, std::vector<Tensor*>& sinks);

}  // namespace xgrad

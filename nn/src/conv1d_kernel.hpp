// The conv1d op (forward and backward side by side), recorded through the extension API.
// Internal to nn: conv.cpp checks the arguments and resolves the padding before calling it.
#pragma once

#include <cstdint>

#include <xgrad/core/tensor.hpp>
#include <xgrad/nn/conv.hpp>

namespace xgrad::nn::detail {

// The resolved geometry of one conv1d call. Channels first: x (N, C, L) → (N, O, L_out);
// channels last: x (N, L, C) → (N, L_out, O). The weight is (O, C / G, K) either way. `mode`
// says what the left and right padding steps hold.
struct Conv1dGeometry {
  std::int64_t N, C, L, O, G, K, stride, dilation, left, right, L_out;
  bool channels_last;
  PaddingMode mode = PaddingMode::zeros;
};

// The input step that padded step p (in [−left, L + right)) reads under `mode`, or −1 for a zero.
std::int64_t source_step(PaddingMode mode, std::int64_t p, std::int64_t L);

// y = conv1d(x, w) + b over a batched x (3-D, f32 or f64; b undefined or (O)), as one node
// whose backward saves only x and w: the im2col matrix is built per block of sequences, used
// and dropped, forward and again in backward.
Tensor conv1d_op(const Tensor& x, const Tensor& w, const Tensor& b, const Conv1dGeometry& geo);

}  // namespace xgrad::nn::detail

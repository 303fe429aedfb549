// conv1d as one recorded op. The composed form (as_strided windows copied into a whole-batch
// column matrix, one batched GEMM, a broadcast bias add) keeps the (N, C·K, L_out) column
// matrix alive for backward, several times the input; this op saves only x and w and builds
// the columns per block of sequences, forward and again in backward, so a block's columns stay
// in cache between their copy and their GEMM. The GEMMs go through matmul on detached tensors.
//
// Per block of B sequences (R = B·L_out rows) and group g, with W_g (O/G, C/G·K):
//   channels first: cols_g (C/G·K, R), rows (c, k) as W's;  Y_g (O/G, R) = W_g · cols_g
//   channels last:  cols_g (R, K·C/G), columns (k, c), each tap a contiguous run of channels,
//                   against W permuted to (O/G, K·C/G);     Y_g (R, O/G) = cols_g · W_gᵀ
//   dW_g += G_g · cols_gᵀ (first) or G_gᵀ · cols_g (last);   dcols_g = W_gᵀ · G_g or G_g · W_g,
//   added back into dx by col2im;   db = Σ gy.
#include "conv1d_kernel.hpp"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/error.hpp>
#include <xgrad/core/extension.hpp>
#include <xgrad/core/ops.hpp>

namespace xgrad::nn::detail {

namespace {

using Geo = Conv1dGeometry;

// A block's column matrix holds at most about this many elements (1 MiB in f32), or one
// sequence's: small enough that the columns and the block's output stay in cache and a training
// step's memory is its output and gradient, not an im2col; large enough that each GEMM is big
// enough for OpenBLAS to split between its threads with little waiting.
constexpr std::int64_t kColumnBudget = std::int64_t{1} << 18;

// How the batch is cut: `count` blocks of about N / count sequences, at most `size` each.
struct BlockPlan {
  std::int64_t size, count;
};

BlockPlan plan_blocks(const Geo& g) {
  const std::int64_t per_sequence = std::max<std::int64_t>(g.C * g.K * g.L_out, 1), N = std::max<std::int64_t>(g.N, 1);
  const std::int64_t most = std::clamp<std::int64_t>(kColumnBudget / per_sequence, 1, N);
  const std::int64_t count = (N + most - 1) / most;
  return {(N + count - 1) / count, count};
}

// The buffers every block reuses, as large as the largest block; a block uses the front of each.
struct Scratch {
  Tensor cols, grad;
};

// The first `shape`'s worth of a buffer, as a contiguous tensor of that shape.
Tensor front(const Tensor& buffer, const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return buffer.reshape({-1}).narrow(0, 0, n).reshape(shape);
}

// Runs fn(first sequence, sequences) for every block in turn. (Blocks on separate threads, each
// GEMM on one, measured slower: matmul hands a GEMM both OpenBLAS threads whenever the other
// block is between GEMMs, and the threads then outnumber the cores.)
template <class F>
void run_blocks(const Geo& g, const BlockPlan& plan, F&& fn) {
  for (std::int64_t b = 0; b < plan.count; ++b) {
    const std::int64_t n0 = g.N * b / plan.count, n1 = g.N * (b + 1) / plan.count;
    if (n1 > n0) fn(n0, n1 - n0);
  }
}

// Output steps [lo, hi) whose tap k reads a real step p = t·stride + k·dilation − left ∈ [0, L).
std::pair<std::int64_t, std::int64_t> valid_steps(const Geo& g, std::int64_t k) {
  const std::int64_t offset = k * g.dilation - g.left;
  std::int64_t lo = offset >= 0 ? 0 : (-offset + g.stride - 1) / g.stride;
  std::int64_t hi = g.L - 1 - offset < 0 ? 0 : (g.L - 1 - offset) / g.stride + 1;
  lo = std::min(lo, g.L_out);
  hi = std::clamp(hi, lo, g.L_out);
  return {lo, hi};
}

// The columns of sequences [n0, n0 + B) into cols, laid out as in the file comment; where a
// tap falls in the padding, zero or the step the padding mode reads.
template <class T>
void im2col(const T* x, const Geo& g, std::int64_t n0, std::int64_t B, T* cols) {
  const std::int64_t Cg = g.C / g.G, R = B * g.L_out;
  if (!g.channels_last) {
    for (std::int64_t gi = 0; gi < g.G; ++gi)
      for (std::int64_t c = 0; c < Cg; ++c)
        for (std::int64_t k = 0; k < g.K; ++k) {
          const auto [lo, hi] = valid_steps(g, k);
          const std::int64_t offset = k * g.dilation - g.left;
          for (std::int64_t b = 0; b < B; ++b) {
            const T* src = x + ((n0 + b) * g.C + gi * Cg + c) * g.L;
            T* dst = cols + ((gi * Cg + c) * g.K + k) * R + b * g.L_out;
            auto pad = [&](std::int64_t t) {
              const std::int64_t s = source_step(g.mode, t * g.stride + offset, g.L);
              dst[t] = s < 0 ? T(0) : src[s];
            };
            for (std::int64_t t = 0; t < lo; ++t) pad(t);
            if (g.stride == 1) std::copy(src + lo + offset, src + hi + offset, dst + lo);
            else
              for (std::int64_t t = lo; t < hi; ++t) dst[t] = src[t * g.stride + offset];
            for (std::int64_t t = hi; t < g.L_out; ++t) pad(t);
          }
        }
    return;
  }
  for (std::int64_t gi = 0; gi < g.G; ++gi)
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t t = 0; t < g.L_out; ++t)
        for (std::int64_t k = 0; k < g.K; ++k) {
          T* dst = cols + ((gi * R + b * g.L_out + t) * g.K + k) * Cg;
          const std::int64_t s = source_step(g.mode, t * g.stride + k * g.dilation - g.left, g.L);
          if (s < 0) std::fill(dst, dst + Cg, T(0));
          else std::copy_n(x + ((n0 + b) * g.L + s) * g.C + gi * Cg, Cg, dst);
        }
}

// The inverse of im2col for gradients: adds the column gradients of group gi into dx (a padded
// step's into the step it read).
template <class T>
void col2im_add(const T* dcols, const Geo& g, std::int64_t gi, std::int64_t n0, std::int64_t B, T* dx) {
  const std::int64_t Cg = g.C / g.G, R = B * g.L_out;
  if (!g.channels_last) {
    for (std::int64_t c = 0; c < Cg; ++c)
      for (std::int64_t k = 0; k < g.K; ++k) {
        const auto [lo, hi] = valid_steps(g, k);
        const std::int64_t offset = k * g.dilation - g.left;
        for (std::int64_t b = 0; b < B; ++b) {
          const T* src = dcols + (c * g.K + k) * R + b * g.L_out;
          T* dst = dx + ((n0 + b) * g.C + gi * Cg + c) * g.L;
          for (std::int64_t t = lo; t < hi; ++t) dst[t * g.stride + offset] += src[t];
          if (g.mode == PaddingMode::zeros) continue;
          auto pad = [&](std::int64_t t) {
            const std::int64_t s = source_step(g.mode, t * g.stride + offset, g.L);
            if (s >= 0) dst[s] += src[t];
          };
          for (std::int64_t t = 0; t < lo; ++t) pad(t);
          for (std::int64_t t = hi; t < g.L_out; ++t) pad(t);
        }
      }
    return;
  }
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < g.L_out; ++t)
      for (std::int64_t k = 0; k < g.K; ++k) {
        const std::int64_t s = source_step(g.mode, t * g.stride + k * g.dilation - g.left, g.L);
        if (s < 0) continue;
        const T* src = dcols + ((b * g.L_out + t) * g.K + k) * Cg;
        T* dst = dx + ((n0 + b) * g.L + s) * g.C + gi * Cg;
        for (std::int64_t c = 0; c < Cg; ++c) dst[c] += src[c];
      }
}

// Index of y[n][o][t] (channels first) or y[n][t][o] (channels last) in a contiguous output.
std::int64_t out_index(const Geo& g, std::int64_t n, std::int64_t o, std::int64_t t) {
  return g.channels_last ? (n * g.L_out + t) * g.O + o : (n * g.O + o) * g.L_out + t;
}

Shape columns_shape(const Geo& g, std::int64_t B) {
  const std::int64_t KC = g.C / g.G * g.K, R = B * g.L_out;
  return g.channels_last ? Shape{g.G, R, KC} : Shape{g.G, KC, R};
}

Scratch make_scratch(const Geo& g, const BlockPlan& plan, DType dtype, bool cols, bool grad) {
  Scratch s;
  if (cols) s.cols = empty(columns_shape(g, plan.size), dtype);
  if (grad) s.grad = empty({plan.size * g.L_out * (g.O / g.G)}, dtype);
  return s;
}

template <class T>
Tensor forward(const Tensor& x, const Tensor& wmat, const Tensor& bias, const Geo& g) {
  const std::int64_t Og = g.O / g.G;
  Tensor y = empty(g.channels_last ? Shape{g.N, g.L_out, g.O} : Shape{g.N, g.O, g.L_out}, x.dtype());
  T* ys = y.mutable_data<T>();
  const T* xs = x.data<T>();
  const T* bs = bias.defined() ? bias.data<T>() : nullptr;
  const BlockPlan plan = plan_blocks(g);
  const Scratch scratch = make_scratch(g, plan, x.dtype(), true, false);
  run_blocks(g, plan, [&](std::int64_t n0, std::int64_t B) {
    const std::int64_t R = B * g.L_out;
    Tensor cols = front(scratch.cols, columns_shape(g, B));
    im2col(xs, g, n0, B, cols.mutable_data<T>());
    for (std::int64_t gi = 0; gi < g.G; ++gi) {
      const Tensor w = select(wmat, 0, gi), c = select(cols, 0, gi);
      const Tensor Y = g.channels_last ? matmul(c, w.t()) : matmul(w, c);  // (R, O/G) or (O/G, R)
      const T* Ys = Y.data<T>();
      // Into y with the bias: one pass over the block while it is in cache.
      if (!g.channels_last) {
        for (std::int64_t o = 0; o < Og; ++o) {
          const T bo = bs ? bs[gi * Og + o] : T(0);
          for (std::int64_t b = 0; b < B; ++b) {
            const T* src = Ys + o * R + b * g.L_out;
            T* dst = ys + out_index(g, n0 + b, gi * Og + o, 0);
            for (std::int64_t t = 0; t < g.L_out; ++t) dst[t] = src[t] + bo;
          }
        }
      } else {
        for (std::int64_t r = 0; r < R; ++r) {  // row r is step t of sequence n: n·L_out + t = n0·L_out + r
          const T* src = Ys + r * Og;
          T* dst = ys + (n0 * g.L_out + r) * g.O + gi * Og;
          for (std::int64_t o = 0; o < Og; ++o) dst[o] = src[o] + (bs ? bs[gi * Og + o] : T(0));
        }
      }
    }
  });
  return y;
}

// Σ p[0..n): eight partial sums in T (which the compiler keeps in vector registers; a single
// running sum is one dependent add per element), added in double.
template <class T>
double row_sum(const T* p, std::int64_t n) {
  T lanes[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += p[i + l];
  double total = 0;
  for (int l = 0; l < 8; ++l) total += lanes[l];
  for (; i < n; ++i) total += p[i];
  return total;
}

// The output gradient read in place, whatever its strides: the gradient of a mean or sum
// arrives as one value expanded over y's shape, and a dense copy would be one more pass over a
// tensor as large as the output. Element (n, i, j) of y's (N, ·, ·) shape is at
// p[n·s0 + i·s1 + j·s2].
template <class T>
struct GradView {
  Tensor keep;  // the storage's elements as a contiguous tensor
  const T* p;
  std::int64_t s0, s1, s2;
};

template <class T>
GradView<T> grad_view(const Tensor& grad) {
  const std::vector<std::int64_t>& st = grad.strides();
  const bool plain = grad.numel() > 0 && std::all_of(st.begin(), st.end(), [](std::int64_t v) { return v >= 0; });
  if (!plain) {
    const Tensor dense = grad.contiguous();
    return {dense, dense.data<T>(), grad.size(1) * grad.size(2), grad.size(2), 1};
  }
  std::int64_t extent = grad.storage_offset() + 1;
  for (std::int64_t d = 0; d < grad.dim(); ++d) extent += (grad.size(d) - 1) * st[static_cast<std::size_t>(d)];
  const Tensor whole = as_strided(grad, {extent}, {1}, 0);
  return {whole, whole.data<T>() + grad.storage_offset(), st[0], st[1], st[2]};
}

// The output gradient of sequences [n0, n0 + B), group gi, as the (O/G, R) or (R, O/G) matrix
// the GEMMs read; adds its sums into db when db is given.
template <class T>
Tensor gather_block(const GradView<T>& gy, const Geo& g, std::int64_t gi, std::int64_t n0, std::int64_t B, double* db,
                    const Tensor& buffer) {
  const std::int64_t Og = g.O / g.G, R = B * g.L_out;
  Tensor out = front(buffer, g.channels_last ? Shape{R, Og} : Shape{Og, R});
  T* os = out.mutable_data<T>();
  // Copies `count` elements `step` apart from src to dst.
  auto copy = [](const T* src, std::int64_t step, std::int64_t count, T* dst) {
    if (step == 1) std::copy_n(src, count, dst);
    else if (step == 0) std::fill_n(dst, count, *src);
    else
      for (std::int64_t i = 0; i < count; ++i) dst[i] = src[i * step];
  };
  if (!g.channels_last) {  // gy (N, O, L_out)
    for (std::int64_t o = 0; o < Og; ++o) {
      double total = 0;
      for (std::int64_t b = 0; b < B; ++b) {
        T* dst = os + o * R + b * g.L_out;
        copy(gy.p + (n0 + b) * gy.s0 + (gi * Og + o) * gy.s1, gy.s2, g.L_out, dst);
        if (db) total += row_sum(dst, g.L_out);
      }
      if (db) db[gi * Og + o] += total;
    }
    return out;
  }
  for (std::int64_t b = 0; b < B; ++b)  // gy (N, L_out, O)
    for (std::int64_t t = 0; t < g.L_out; ++t) {
      T* dst = os + (b * g.L_out + t) * Og;
      copy(gy.p + (n0 + b) * gy.s0 + t * gy.s1 + gi * Og * gy.s2, gy.s2, Og, dst);
      if (db)
        for (std::int64_t o = 0; o < Og; ++o) db[gi * Og + o] += dst[o];
    }
  return out;
}

struct Needs {
  bool x, w, b;
};

template <class T>
std::vector<Tensor> backward(const Tensor& grad, const Tensor& x, const Tensor& wmat, const Geo& g, Needs need) {
  const GradView<T> gy = grad_view<T>(grad);
  const std::int64_t Og = g.O / g.G, KC = g.C / g.G * g.K;
  const BlockPlan plan = plan_blocks(g);
  Tensor dx = need.x ? zeros(x.shape(), x.dtype()) : Tensor();
  Tensor dwmat = need.w ? zeros({g.G, Og, KC}, x.dtype()) : Tensor();  // (G, O/G, K·C/G)
  T* dxs = need.x ? dx.mutable_data<T>() : nullptr;
  T* dws = need.w ? dwmat.mutable_data<T>() : nullptr;
  std::vector<double> db(need.b ? static_cast<std::size_t>(g.O) : 0, 0.0);
  const T* xs = x.data<T>();
  const Scratch scratch = make_scratch(g, plan, x.dtype(), need.w, true);
  run_blocks(g, plan, [&](std::int64_t n0, std::int64_t B) {
    Tensor cols;
    if (need.w) {
      cols = front(scratch.cols, columns_shape(g, B));
      im2col(xs, g, n0, B, cols.mutable_data<T>());
    }
    for (std::int64_t gi = 0; gi < g.G; ++gi) {
      const Tensor G = gather_block(gy, g, gi, n0, B, need.b ? db.data() : nullptr, scratch.grad);
      const Tensor w = select(wmat, 0, gi);
      if (need.w) {
        const Tensor c = select(cols, 0, gi);
        const Tensor part = g.channels_last ? matmul(G.t(), c) : matmul(G, c.t());  // (O/G, K·C/G)
        const T* ps = part.data<T>();
        T* ds = dws + gi * Og * KC;
        for (std::int64_t i = 0; i < Og * KC; ++i) ds[i] += ps[i];
      }
      if (need.x) {
        const Tensor dcols = g.channels_last ? matmul(G, w) : matmul(w.t(), G);
        col2im_add(dcols.data<T>(), g, gi, n0, B, dxs);
      }
    }
  });
  std::vector<Tensor> grads{dx, Tensor()};
  if (need.w) {
    const std::int64_t Cg = g.C / g.G;
    grads[1] = g.channels_last ? reshape(dwmat, {g.O, g.K, Cg}).permute({0, 2, 1}).contiguous()
                               : reshape(dwmat, {g.O, Cg, g.K});
  }
  if (need.b) {
    Tensor dbt = empty({g.O}, x.dtype());
    T* ds = dbt.mutable_data<T>();
    for (std::int64_t o = 0; o < g.O; ++o) ds[o] = static_cast<T>(db[static_cast<std::size_t>(o)]);
    grads.push_back(dbt);
  }
  return grads;
}

}  // namespace

std::int64_t source_step(PaddingMode mode, std::int64_t p, std::int64_t L) {
  if (p >= 0 && p < L) return p;
  switch (mode) {
    case PaddingMode::zeros: return -1;
    case PaddingMode::reflect: return p < 0 ? -p : 2 * (L - 1) - p;  // the edge step is not repeated
    case PaddingMode::replicate: return p < 0 ? 0 : L - 1;
    case PaddingMode::circular: return ((p % L) + L) % L;
  }
  return -1;
}

Tensor conv1d_op(const Tensor& input, const Tensor& weight, const Tensor& bias, const Conv1dGeometry& geo) {
  const Tensor x = input.detach().contiguous();
  const std::int64_t Cg = geo.C / geo.G;
  // (G, O/G, C/G·K) with rows (c, k) as stored, or (k, c) for channels last.
  const Tensor w = weight.detach();
  const Tensor wmat = geo.channels_last ? w.permute({0, 2, 1}).contiguous().reshape({geo.G, geo.O / geo.G, geo.K * Cg})
                                        : w.contiguous().reshape({geo.G, geo.O / geo.G, Cg * geo.K});
  const Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y;
  if (x.dtype() == DType::f32) y = forward<float>(x, wmat, b, geo);
  else if (x.dtype() == DType::f64) y = forward<double>(x, wmat, b, geo);
  else throw Error("conv1d: expected a float32 or float64 input, got " + std::string(dtype_name(x.dtype())));
  std::vector<Tensor> inputs{input, weight};
  if (bias.defined()) inputs.push_back(bias);
  const Needs need{input.requires_grad(), weight.requires_grad(), bias.defined() && bias.requires_grad()};
  return record_op(
      "conv1d", inputs, y,
      [x, wmat, geo, need](const Tensor& g) {
        return x.dtype() == DType::f32 ? backward<float>(g, x, wmat, geo, need) : backward<double>(g, x, wmat, geo, need);
      },
      {input, weight});
}

}  // namespace xgrad::nn::detail

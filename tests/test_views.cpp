// PyTorch parity of strided views and in-place ops: fixtures/views/views.json (written by
// fixtures/gen_view_fixtures.py with PyTorch 1.13) holds, for every case, what PyTorch did:
// where writes through a view land, the view's layout (strides, offset, contiguity, shared
// storage), version counters, outputs and gradients of in-place ops inside a graph — or the
// step PyTorch refused and its message. Each case below is a function of the same name that
// does the same steps with xgrad; a case on one side only fails the first test.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <xgrad/xgrad.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace xgrad;
using json = nlohmann::json;

namespace {

// --- what a case observed (the Result of gen_view_fixtures.py) -----------------------------------

struct Values {
  Shape shape;
  std::vector<double> values;  // row-major
};

struct Layout {
  Shape shape;
  std::vector<std::int64_t> strides;
  std::int64_t storage_offset;
  bool is_contiguous, is_view, shares;
};

class Result {
 public:
  /// Records t's values now (an undefined t, e.g. a gradient never set, as "no tensor").
  Result& tensor(const std::string& name, const Tensor& t) {
    tensors[name] = t.defined() ? std::optional<Values>(Values{t.shape(), t.to_vector<double>()}) : std::nullopt;
    return *this;
  }
  /// Records view's layout and whether it uses base's storage.
  Result& layout(const std::string& name, const Tensor& view, const Tensor& base) {
    layouts[name] = Layout{view.shape(),      view.strides(), view.storage_offset(),
                           view.is_contiguous(), view.is_view(), view.shares_storage(base)};
    return *this;
  }
  Result& version(const std::string& name, const Tensor& t) {
    versions[name] = static_cast<std::int64_t>(t.version());
    return *this;
  }
  Result& flag(const std::string& name, bool value) {
    flags[name] = value;
    return *this;
  }

  std::map<std::string, std::optional<Values>> tensors;
  std::map<std::string, Layout> layouts;
  std::map<std::string, std::int64_t> versions;
  std::map<std::string, bool> flags;
  bool is_refusal = false;            // made by refused()
  std::optional<std::string> error;   // the refused step's message; empty when it did not throw
};

/// Runs the one step the case expects xgrad to refuse; every step before it must succeed.
Result refused(const std::function<void()>& step) {
  Result r;
  r.is_refusal = true;
  try {
    step();
  } catch (const Error& e) {
    r.error = e.what();
  }
  return r;
}

/// A fresh contiguous f64 tensor holding start, start + step, ... in row-major order.
Tensor seq(const Shape& shape, double start = 0.0, double step = 1.0) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = static_cast<double>(i) * step + start;
  return from_vector(v, shape);
}

/// seq() as a leaf that requires grad.
Tensor leaf(const Shape& shape, double start = 0.0, double step = 1.0) {
  Tensor t = seq(shape, start, step);
  t.requires_grad_();
  return t;
}

Tensor f64(std::vector<double> values) {
  const Shape shape{static_cast<std::int64_t>(values.size())};
  return from_vector(values, shape);
}

/// The usual record of a write-through case.
Result written(const Tensor& base, const Tensor& view) {
  return Result()
      .tensor("base_after", base)
      .tensor("view_after", view)
      .layout("view", view, base)
      .version("base", base)
      .version("view", view);
}

Result parts_written(const Tensor& base, const std::vector<Tensor>& parts, bool part_versions) {
  Result r;
  r.tensor("base_after", base);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string name = "part" + std::to_string(i);
    r.tensor(name, parts[i]).layout(name, parts[i], base);
    if (part_versions) r.version(name, parts[i]);
  }
  return r.version("base", base);
}

// --- A. writes through views (no autograd) --------------------------------------------------------

Result narrow_fill() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.narrow(1, 1, 2);
  v.fill_(-1.0);
  return written(a, v);
}

Result slice_add() {
  Tensor a = seq({2, 3, 4});
  Tensor v = slice(a, 2, 1, 3);
  v.add_(seq({2, 3, 2}, 100.0));
  return written(a, v);
}

Result slice_add_alpha() {
  Tensor a = seq({3, 4});
  Tensor v = slice(a, 0, 1, 2);
  v.add_(seq({1, 4}, 10.0), 0.5);
  return written(a, v);
}

Result select_mul_scalar() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.select(1, 2);
  v.mul_(10.0);
  return written(a, v);
}

Result select_zero() {
  Tensor a = seq({2, 3, 4}, 1.0);
  Tensor v = a.select(0, 1).narrow(1, 1, 2);
  v.zero_();
  return written(a, v);
}

Result transpose_copy() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.transpose(0, 2);
  v.copy_(seq({4, 3, 2}, -50.0));
  return written(a, v);
}

Result permute_sub() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.permute({2, 0, 1});
  v.sub_(seq({4, 2, 3}, 0.0, 0.5));
  return written(a, v);
}

Result permute_sub_alpha() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.permute({1, 2, 0});
  v.sub_(seq({3, 4, 2}, 0.0, 0.25), 2.0);
  return written(a, v);
}

Result t_div() {
  Tensor m = seq({3, 4});
  Tensor v = m.t();
  v.div_(seq({4, 3}, 1.0, 0.5));
  return written(m, v);
}

Result t_div_scalar() {
  Tensor m = seq({3, 4});
  Tensor v = m.t().narrow(0, 1, 2);
  v.div_(4.0);
  return written(m, v);
}

Result squeeze_mul_tensor() {
  Tensor b = seq({2, 1, 3}, 1.0);
  Tensor v = b.squeeze(1);
  v.mul_(seq({2, 3}, -1.0, 0.5));
  return written(b, v);
}

Result unsqueeze_layouts() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.unsqueeze(1);
  Tensor w = a.unsqueeze(3);
  v.add_(seq({2, 1, 3, 4}, 0.5));
  return written(a, v).layout("last", w, a);
}

Result unbind_write() {
  Tensor a = seq({2, 3, 4});
  std::vector<Tensor> p = a.unbind(1);
  p[1].zero_();
  p[2].add_(p[0]);
  return parts_written(a, p, /*part_versions=*/true);
}

Result chunk_uneven_write() {
  Tensor a = seq({2, 3, 4});
  std::vector<Tensor> p = a.chunk(2, 1);
  p[0].fill_(7.0);
  p[1].mul_(3.0);
  return parts_written(a, p, /*part_versions=*/false);
}

Result split_write() {
  Tensor a = seq({2, 3, 4});
  std::vector<Tensor> p = a.split(3, 2);
  p[1].sub_(seq({2, 3, 1}, 100.0));
  p[0].div_(2.0);
  return parts_written(a, p, /*part_versions=*/false);
}

Result flatten_view_mul() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.flatten(1, 2);
  v.mul_(seq({2, 12}, -3.0, 0.5));
  return written(a, v);
}

Result flatten_copy() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.transpose(0, 1).flatten();
  v.fill_(0.0);
  return written(a, v);
}

Result reshape_view_mul() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.reshape({4, 6});
  v.mul_(seq({4, 6}, 1.0));
  return written(a, v);
}

Result reshape_view_noncontiguous() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.narrow(1, 0, 2).reshape({2, 8});
  v.copy_(seq({2, 8}, -100.0));
  return written(a, v);
}

Result reshape_split_dim_of_transposed() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.transpose(0, 1).reshape({3, 2, 2, 2});
  v.add_(seq({3, 2, 2, 2}, 1000.0));
  return written(a, v);
}

Result reshape_copy() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.transpose(0, 1).reshape({6, 4});
  v.fill_(0.0);
  return written(a, v);
}

Result view_sub_alpha() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.view({3, 8});
  v.sub_(seq({3, 8}, 0.0, 0.25), 2.0);
  return written(a, v);
}

Result view_of_size_one_dims() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.view({2, 1, 12});
  Tensor w = a.view({24, 1});
  v.mul_(-1.0);
  return written(a, v).layout("column", w, a);
}

Result view_of_view_add() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.transpose(0, 2).narrow(0, 1, 2).select(1, 0);
  v.add_(seq({2, 2}, 100.0, 10.0));
  return written(a, v);
}

Result expand_layout() {
  Tensor c = seq({3, 1}, 1.0);
  Tensor e = c.expand({2, 3, 4});
  return Result().tensor("view", e).layout("view", e, c);
}

Result expand_fill() {
  Tensor c = seq({3, 1}, 1.0);
  Tensor e = c.expand({3, 4});
  e.fill_(5.0);
  return written(c, e);
}

Result contiguous_of_transposed() {
  Tensor a = seq({2, 3, 4});
  Tensor tr = a.transpose(1, 2);
  Tensor c = tr.contiguous();
  Tensor before = c.clone();
  c.fill_(0.0);
  return Result()
      .tensor("base_after", a)
      .tensor("contiguous_before", before)
      .tensor("contiguous_after", c)
      .layout("transposed", tr, a)
      .layout("contiguous", c, a);
}

Result contiguous_of_contiguous() {
  Tensor a = seq({2, 3});
  Tensor c = a.contiguous();
  c.add_(seq({2, 3}, 10.0));
  return written(a, c);
}

Result add_broadcast() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.narrow(2, 1, 2);
  v.add_(f64({10.0, 20.0}));
  return written(a, v);
}

Result copy_transposed_into_narrow() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.narrow(2, 1, 3);
  v.copy_(seq({3, 3, 2}, -1.0, -1.0).transpose(0, 2));
  return written(a, v);
}

Result copy_broadcast_row() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.select(2, 0);
  v.copy_(f64({-1.0, -2.0, -3.0}));
  return written(a, v);
}

Result detach_shares_storage() {
  Tensor x = leaf({2, 3});
  Tensor d = x.detach();
  d.mul_(2.0);
  return written(x, d).flag("x_requires_grad", x.requires_grad()).flag("d_requires_grad", d.requires_grad());
}

Result nograd_write_view_of_leaf() {
  Tensor x = leaf({2, 3});
  Tensor v;
  {
    NoGradGuard no_grad;
    v = x.narrow(1, 1, 2);
    v.mul_(-1.0);
  }
  return written(x, v).flag("x_is_leaf", x.is_leaf()).flag("x_requires_grad", x.requires_grad());
}

// --- B. autograd through in-place ops ---------------------------------------------------------------

Result grad_narrow_mul_scalar() {
  Tensor x = leaf({3, 4}, -1.0, 0.25);
  Tensor y = x * 2.0;
  y.narrow(0, 1, 2).mul_(3.0);
  Tensor loss = y.sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad()).version("y", y);
}

Result grad_narrow_mul_scalar_squared() {
  Tensor x = leaf({3, 4}, -1.0, 0.25);
  Tensor y = x * 2.0;
  y.narrow(0, 1, 2).mul_(3.0);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_select_copy() {
  Tensor x = leaf({2, 3}, 0.5, 0.25);
  Tensor w = leaf({3}, -1.0, 0.75);
  Tensor y = x.clone();
  y.select(0, 1).copy_(w);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad()).tensor("w_grad", w.grad());
}

Result grad_copy_into_nograd_buffer() {
  Tensor w = leaf({2}, 1.5, -2.0);
  Tensor c = seq({4}, 1.0, 0.5);
  Tensor buf = zeros({4}, DType::f64);
  buf.narrow(0, 1, 2).copy_(w);
  Tensor loss = (buf * c).sum();
  loss.backward();
  return Result()
      .tensor("buf", buf)
      .tensor("out", loss)
      .tensor("w_grad", w.grad())
      .flag("buf_requires_grad", buf.requires_grad())
      .flag("buf_is_leaf", buf.is_leaf());
}

Result grad_add_into_nograd_buffer() {
  Tensor w = leaf({3}, -0.5, 0.5);
  Tensor buf = ones({2, 3}, DType::f64);
  buf.add_(w);
  Tensor loss = (buf * buf).sum();
  loss.backward();
  return Result()
      .tensor("buf", buf)
      .tensor("out", loss)
      .tensor("w_grad", w.grad())
      .flag("buf_requires_grad", buf.requires_grad())
      .flag("buf_is_leaf", buf.is_leaf());
}

Result grad_t_add_broadcast() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor w = leaf({2}, 0.25, 0.5);
  Tensor y = x * 1.0;
  y.t().add_(w);
  Tensor loss = pow(y, 2.0).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad()).tensor("w_grad", w.grad());
}

Result grad_two_selects() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor y = x * 1.0;
  Tensor a = y.select(0, 0);
  Tensor b = y.select(0, 1);
  a.mul_(2.0);
  Tensor loss = (a * b).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_view_of_view_mul() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor w = leaf({1, 2}, -1.5, 1.0);
  Tensor y = x * 1.0;
  Tensor v = y.t().narrow(0, 0, 1);
  v.mul_(w);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result()
      .tensor("y", y)
      .tensor("v", v)
      .tensor("out", loss)
      .tensor("x_grad", x.grad())
      .tensor("w_grad", w.grad());
}

Result grad_add_scalar_tensor() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor y = x * 2.0;
  y.add_(scalar(1.0, DType::f64));
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_mul_nonleaf_broadcast() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor w = leaf({3}, -1.0, 0.75);
  Tensor y = x * 1.0;
  y.mul_(w);
  Tensor loss = y.sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad()).tensor("w_grad", w.grad());
}

Result grad_fill_view_of_product() {
  Tensor x = leaf({2, 3}, 0.5, 0.25);
  Tensor y = x * x;
  y.narrow(0, 0, 1).fill_(0.5);
  Tensor loss = y.sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_div_tensor() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor w = leaf({2, 3}, 0.5, 0.25);
  Tensor y = x * 1.0;
  y.div_(w);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad()).tensor("w_grad", w.grad());
}

Result grad_div_scalar_view() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor y = x * 1.0;
  y.narrow(1, 1, 2).div_(4.0);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_sub_alpha() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor w = leaf({2, 3}, 0.5, 0.25);
  Tensor y = x * 1.0;
  y.sub_(w, 2.0);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad()).tensor("w_grad", w.grad());
}

Result grad_sibling_view_created_before_write() {
  Tensor w = leaf({3}, 1.0, 1.0);
  Tensor buf = zeros({2, 3}, DType::f64);
  Tensor u = buf.select(0, 1);
  buf.select(0, 0).copy_(w);
  Tensor loss = (u + buf.select(0, 0) * 2.0).sum();
  loss.backward();
  return Result()
      .tensor("buf", buf)
      .tensor("out", loss)
      .tensor("w_grad", w.grad())
      .flag("u_requires_grad", u.requires_grad());
}

Result grad_overlapping_view_created_before_write() {
  Tensor w = leaf({3}, 1.0, 1.0);
  Tensor c = seq({2, 2}, 1.0);
  Tensor buf = zeros({2, 3}, DType::f64);
  Tensor u = buf.narrow(1, 0, 2);
  buf.select(0, 0).copy_(w);
  Tensor loss = (u * c).sum();
  loss.backward();
  return Result()
      .tensor("u", u)
      .tensor("out", loss)
      .tensor("w_grad", w.grad())
      .flag("u_requires_grad", u.requires_grad())
      .flag("buf_is_leaf", buf.is_leaf());
}

Result grad_overlapping_view_of_nonleaf() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor w = leaf({2, 2}, -1.0, 0.75);
  Tensor c = seq({3, 2}, 1.0);
  Tensor y = x * 1.0;
  Tensor u = y.t();
  y.narrow(1, 1, 2).mul_(w);
  Tensor loss = (u * c).sum();
  loss.backward();
  return Result().tensor("u", u).tensor("out", loss).tensor("x_grad", x.grad()).tensor("w_grad", w.grad());
}

Result grad_use_base_and_view_after_write() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor w = leaf({2, 2}, -1.0, 0.75);
  Tensor c = seq({2, 2}, 2.0, -1.0);
  Tensor y = x * 1.0;
  Tensor v = y.narrow(1, 1, 2);
  v.mul_(w);
  Tensor loss = (y * y).sum() + (v * c).sum();
  loss.backward();
  return Result()
      .tensor("y", y)
      .tensor("out", loss)
      .tensor("x_grad", x.grad())
      .tensor("w_grad", w.grad())
      .version("y", y)
      .version("v", v);
}

Result grad_two_writes_through_overlapping_views() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor w1 = leaf({3}, 2.0, -1.0);
  Tensor w2 = leaf({1, 2}, -0.5, 1.5);
  Tensor y = x * 1.0;
  y.narrow(0, 0, 1).mul_(w1);
  y.t().narrow(0, 1, 1).add_(w2);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result()
      .tensor("y", y)
      .tensor("out", loss)
      .tensor("x_grad", x.grad())
      .tensor("w1_grad", w1.grad())
      .tensor("w2_grad", w2.grad())
      .version("y", y);
}

Result grad_copy_overwrites_all() {
  Tensor x = leaf({2, 3}, 0.5, 0.25);
  Tensor w = leaf({2, 3}, -1.0, 0.5);
  Tensor y = x * 1.0;
  y.copy_(w);
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad()).tensor("w_grad", w.grad());
}

Result grad_copy_constant_into_nonleaf() {
  Tensor x = leaf({2, 3}, 0.5, 0.25);
  Tensor y = x * 1.0;
  y.narrow(0, 1, 1).copy_(seq({1, 3}, -2.0));
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_zero_view() {
  Tensor x = leaf({2, 3}, -0.5, 0.25);
  Tensor y = x.exp() * 1.0;
  y.select(1, 0).zero_();
  Tensor loss = y.sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_inplace_on_unbind_under_nograd() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor y = x * 1.0;
  {
    NoGradGuard no_grad;
    std::vector<Tensor> p = y.unbind(0);
    p[0].mul_(2.0);
  }
  Tensor loss = (y * y).sum();
  loss.backward();
  return Result().tensor("y", y).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_views_without_inplace() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  Tensor c = seq({2, 2, 2}, 1.0);
  Tensor e = x.t().narrow(0, 1, 2).unsqueeze(0).expand({2, 2, 2});
  Tensor loss = (e * c).sum();
  loss.backward();
  return Result().tensor("e", e).tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_unbind_chunk_split_read() {
  Tensor x = leaf({2, 4}, 0.5, 0.5);
  std::vector<Tensor> rows = x.unbind(0);
  std::vector<Tensor> halves = x.chunk(2, 1);
  std::vector<Tensor> pieces = x.split(3, 1);
  Tensor loss = (rows[0] * rows[1]).sum() + (halves[1] * 2.0).sum() + (pieces[1] * pieces[1]).sum();
  loss.backward();
  return Result().tensor("out", loss).tensor("x_grad", x.grad());
}

Result grad_nograd_write_then_use_leaf() {
  Tensor x = leaf({2, 3}, 0.5, 0.5);
  {
    NoGradGuard no_grad;
    x.narrow(1, 1, 2).mul_(-1.0);
  }
  Tensor loss = (x * x).sum();
  loss.backward();
  return Result().tensor("x", x).tensor("out", loss).tensor("x_grad", x.grad()).version("x", x);
}

// --- C. refusals ----------------------------------------------------------------------------------

Result refuse_inplace_on_leaf() {
  Tensor x = leaf({2, 3});
  return refused([&] { x.mul_(2.0); });
}

Result refuse_inplace_on_view_of_leaf() {
  Tensor x = leaf({2, 3});
  Tensor v = x.narrow(0, 0, 1);
  return refused([&] { v.fill_(0.0); });
}

Result refuse_inplace_on_unbind_output() {
  Tensor x = leaf({2, 3});
  std::vector<Tensor> p = (x * 1.0).unbind(0);
  return refused([&] { p[0].mul_(2.0); });
}

Result refuse_inplace_on_split_output() {
  Tensor x = leaf({2, 3});
  std::vector<Tensor> p = (x * 1.0).split(1, 0);
  return refused([&] { p[1].add_(ones({1, 3}, DType::f64)); });
}

Result refuse_inplace_on_chunk_output() {
  Tensor x = leaf({2, 4});
  std::vector<Tensor> p = (x * 1.0).chunk(2, 1);
  return refused([&] { p[0].zero_(); });
}

Result refuse_inplace_on_unbind_output_of_nograd_base() {
  Tensor a = seq({2, 3});
  Tensor w = leaf({3}, 1.0);
  std::vector<Tensor> p = a.unbind(0);
  return refused([&] { p[0].mul_(w); });
}

Result refuse_write_with_grad_to_view_created_under_nograd() {
  Tensor x = leaf({2, 3});
  Tensor y = x * 1.0;
  Tensor v;
  {
    NoGradGuard no_grad;
    v = y.narrow(0, 0, 1);
  }
  return refused([&] { v.mul_(2.0); });
}

Result refuse_backward_after_sigmoid_output_modified() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor y = x.sigmoid();
  y.mul_(2.0);
  Tensor loss = y.sum();
  return refused([&] { loss.backward(); });
}

Result refuse_backward_after_exp_output_filled_through_view() {
  Tensor x = leaf({2, 3}, 0.5, 0.25);
  Tensor y = x.exp();
  y.narrow(0, 0, 1).fill_(0.5);
  Tensor loss = y.sum();
  return refused([&] { loss.backward(); });
}

Result refuse_backward_after_saved_input_modified() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor a = x * 1.0;
  Tensor b = a * a;
  a.add_(scalar(1.0, DType::f64));
  Tensor loss = b.sum();
  return refused([&] { loss.backward(); });
}

Result refuse_backward_after_saved_input_modified_through_view() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor a = x * 1.0;
  Tensor b = a * a;
  a.narrow(0, 0, 1).mul_(2.0);
  Tensor loss = b.sum();
  return refused([&] { loss.backward(); });
}

Result refuse_backward_after_leaf_modified_through_detach() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor y = x * x;
  x.detach().add_(scalar(1.0, DType::f64));
  Tensor loss = y.sum();
  return refused([&] { loss.backward(); });
}

Result refuse_backward_after_saved_other_modified() {
  Tensor x = leaf({2, 3}, -1.0, 0.5);
  Tensor y = x * 1.0;
  Tensor z = x * 2.0;
  y.mul_(z);
  z.add_(scalar(1.0, DType::f64));
  Tensor loss = y.sum();
  return refused([&] { loss.backward(); });
}

Result refuse_backward_after_mul_by_itself_inplace() {
  Tensor x = leaf({2, 3}, 0.5, 0.25);
  Tensor y = x * 1.0;
  y.mul_(y);
  Tensor loss = y.sum();
  return refused([&] { loss.backward(); });
}

Result refuse_add_into_expanded() {
  Tensor c = seq({3, 1});
  Tensor e = c.expand({3, 4});
  return refused([&] { e.add_(ones({3, 4}, DType::f64)); });
}

Result refuse_mul_scalar_into_expanded() {
  Tensor c = seq({3, 1});
  Tensor e = c.expand({2, 3, 1});
  return refused([&] { e.mul_(2.0); });
}

Result refuse_copy_into_expanded() {
  Tensor c = seq({3, 1});
  Tensor e = c.expand({3, 4});
  return refused([&] { e.copy_(seq({3, 4})); });
}

Result refuse_inplace_into_expanded_nonleaf_with_grad() {
  Tensor x = leaf({2, 2});
  Tensor e = (x * 1.0).expand({3, 2, 2});
  return refused([&] { e.mul_(2.0); });
}

Result refuse_view_of_nonviewable() {
  Tensor a = seq({2, 3, 4});
  Tensor tr = a.transpose(0, 1);
  return refused([&] { (void)tr.view({6, 4}); });
}

Result refuse_view_of_nonviewable_narrow() {
  Tensor a = seq({2, 3, 4});
  Tensor v = a.narrow(1, 0, 2);
  return refused([&] { (void)v.view({4, 4}); });
}

// --- the registry: one entry per fixture case, by the same name -------------------------------------

using Case = std::function<Result()>;
#define XGRAD_VIEW_CASE(name) {#name, name}

const std::map<std::string, Case>& cases() {
  static const std::map<std::string, Case> all = {
      XGRAD_VIEW_CASE(narrow_fill),
      XGRAD_VIEW_CASE(slice_add),
      XGRAD_VIEW_CASE(slice_add_alpha),
      XGRAD_VIEW_CASE(select_mul_scalar),
      XGRAD_VIEW_CASE(select_zero),
      XGRAD_VIEW_CASE(transpose_copy),
      XGRAD_VIEW_CASE(permute_sub),
      XGRAD_VIEW_CASE(permute_sub_alpha),
      XGRAD_VIEW_CASE(t_div),
      XGRAD_VIEW_CASE(t_div_scalar),
      XGRAD_VIEW_CASE(squeeze_mul_tensor),
      XGRAD_VIEW_CASE(unsqueeze_layouts),
      XGRAD_VIEW_CASE(unbind_write),
      XGRAD_VIEW_CASE(chunk_uneven_write),
      XGRAD_VIEW_CASE(split_write),
      XGRAD_VIEW_CASE(flatten_view_mul),
      XGRAD_VIEW_CASE(flatten_copy),
      XGRAD_VIEW_CASE(reshape_view_mul),
      XGRAD_VIEW_CASE(reshape_view_noncontiguous),
      XGRAD_VIEW_CASE(reshape_split_dim_of_transposed),
      XGRAD_VIEW_CASE(reshape_copy),
      XGRAD_VIEW_CASE(view_sub_alpha),
      XGRAD_VIEW_CASE(view_of_size_one_dims),
      XGRAD_VIEW_CASE(view_of_view_add),
      XGRAD_VIEW_CASE(expand_layout),
      XGRAD_VIEW_CASE(expand_fill),
      XGRAD_VIEW_CASE(contiguous_of_transposed),
      XGRAD_VIEW_CASE(contiguous_of_contiguous),
      XGRAD_VIEW_CASE(add_broadcast),
      XGRAD_VIEW_CASE(copy_transposed_into_narrow),
      XGRAD_VIEW_CASE(copy_broadcast_row),
      XGRAD_VIEW_CASE(detach_shares_storage),
      XGRAD_VIEW_CASE(nograd_write_view_of_leaf),
      XGRAD_VIEW_CASE(grad_narrow_mul_scalar),
      XGRAD_VIEW_CASE(grad_narrow_mul_scalar_squared),
      XGRAD_VIEW_CASE(grad_select_copy),
      XGRAD_VIEW_CASE(grad_copy_into_nograd_buffer),
      XGRAD_VIEW_CASE(grad_add_into_nograd_buffer),
      XGRAD_VIEW_CASE(grad_t_add_broadcast),
      XGRAD_VIEW_CASE(grad_two_selects),
      XGRAD_VIEW_CASE(grad_view_of_view_mul),
      XGRAD_VIEW_CASE(grad_add_scalar_tensor),
      XGRAD_VIEW_CASE(grad_mul_nonleaf_broadcast),
      XGRAD_VIEW_CASE(grad_fill_view_of_product),
      XGRAD_VIEW_CASE(grad_div_tensor),
      XGRAD_VIEW_CASE(grad_div_scalar_view),
      XGRAD_VIEW_CASE(grad_sub_alpha),
      XGRAD_VIEW_CASE(grad_sibling_view_created_before_write),
      XGRAD_VIEW_CASE(grad_overlapping_view_created_before_write),
      XGRAD_VIEW_CASE(grad_overlapping_view_of_nonleaf),
      XGRAD_VIEW_CASE(grad_use_base_and_view_after_write),
      XGRAD_VIEW_CASE(grad_two_writes_through_overlapping_views),
      XGRAD_VIEW_CASE(grad_copy_overwrites_all),
      XGRAD_VIEW_CASE(grad_copy_constant_into_nonleaf),
      XGRAD_VIEW_CASE(grad_zero_view),
      XGRAD_VIEW_CASE(grad_inplace_on_unbind_under_nograd),
      XGRAD_VIEW_CASE(grad_views_without_inplace),
      XGRAD_VIEW_CASE(grad_unbind_chunk_split_read),
      XGRAD_VIEW_CASE(grad_nograd_write_then_use_leaf),
      XGRAD_VIEW_CASE(refuse_inplace_on_leaf),
      XGRAD_VIEW_CASE(refuse_inplace_on_view_of_leaf),
      XGRAD_VIEW_CASE(refuse_inplace_on_unbind_output),
      XGRAD_VIEW_CASE(refuse_inplace_on_split_output),
      XGRAD_VIEW_CASE(refuse_inplace_on_chunk_output),
      XGRAD_VIEW_CASE(refuse_inplace_on_unbind_output_of_nograd_base),
      XGRAD_VIEW_CASE(refuse_write_with_grad_to_view_created_under_nograd),
      XGRAD_VIEW_CASE(refuse_backward_after_sigmoid_output_modified),
      XGRAD_VIEW_CASE(refuse_backward_after_exp_output_filled_through_view),
      XGRAD_VIEW_CASE(refuse_backward_after_saved_input_modified),
      XGRAD_VIEW_CASE(refuse_backward_after_saved_input_modified_through_view),
      XGRAD_VIEW_CASE(refuse_backward_after_leaf_modified_through_detach),
      XGRAD_VIEW_CASE(refuse_backward_after_saved_other_modified),
      XGRAD_VIEW_CASE(refuse_backward_after_mul_by_itself_inplace),
      XGRAD_VIEW_CASE(refuse_add_into_expanded),
      XGRAD_VIEW_CASE(refuse_mul_scalar_into_expanded),
      XGRAD_VIEW_CASE(refuse_copy_into_expanded),
      XGRAD_VIEW_CASE(refuse_inplace_into_expanded_nonleaf_with_grad),
      XGRAD_VIEW_CASE(refuse_view_of_nonviewable),
      XGRAD_VIEW_CASE(refuse_view_of_nonviewable_narrow),
  };
  return all;
}
#undef XGRAD_VIEW_CASE

// --- comparing with the fixture ---------------------------------------------------------------------

const json& fixture() {
  static const json doc = [] {
    std::ifstream in(std::string(XGRAD_FIXTURES_DIR) + "/views/views.json");
    if (!in) throw std::runtime_error("cannot open fixtures/views/views.json");
    return json::parse(in);
  }();
  return doc;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return "[" + out + "]";
}

/// The fixture's and xgrad's records of one kind hold the same names: a name on one side only
/// is a failure, not a skipped comparison.
template <class Map>
void check_same_names(const std::string& field, const json& expected, const Map& actual) {
  std::vector<std::string> ours, torchs;
  for (const auto& entry : actual) ours.push_back(entry.first);  // std::map: sorted
  for (const auto& item : expected.items()) torchs.push_back(item.key());
  std::sort(torchs.begin(), torchs.end());
  CHECK_MESSAGE(ours == torchs, field << ": xgrad recorded " << join(ours) << ", the fixture has " << join(torchs));
}

void check_values(const std::string& name, const json& expected, const std::optional<Values>& actual,
                  double tolerance) {
  INFO("tensor \"" << name << "\"");
  if (expected.is_null() || !actual) {
    CHECK_MESSAGE(expected.is_null() == !actual.has_value(),
                  (expected.is_null() ? "torch has no tensor (undefined), xgrad has one"
                                      : "torch has a tensor, xgrad's is undefined"));
    return;
  }
  const Shape shape = expected.at("shape").get<Shape>();
  const auto values = expected.at("values").get<std::vector<double>>();
  if (actual->shape != shape || actual->values.size() != values.size()) {
    FAIL_CHECK("shape " << shape_str(actual->shape) << " (" << actual->values.size() << " values), torch "
                        << shape_str(shape));
    return;
  }
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double bound = tolerance * std::max(1.0, std::abs(values[i]));
    if (!(std::abs(actual->values[i] - values[i]) <= bound)) {  // NaN fails too
      FAIL_CHECK("value [" << i << "] (row-major) is " << actual->values[i] << ", torch " << values[i]);
      return;  // one message per tensor
    }
  }
}

void check_layout(const std::string& name, const json& expected, const Layout& actual) {
  INFO("layout \"" << name << "\"");
  const Shape shape = expected.at("shape").get<Shape>();
  const auto strides = expected.at("strides").get<std::vector<std::int64_t>>();
  const auto offset = expected.at("storage_offset").get<std::int64_t>();
  CHECK_MESSAGE(actual.shape == shape, "shape " << shape_str(actual.shape) << ", torch " << shape_str(shape));
  CHECK_MESSAGE(actual.strides == strides, "strides " << shape_str(actual.strides) << ", torch " << shape_str(strides));
  CHECK_MESSAGE(actual.storage_offset == offset, "storage_offset " << actual.storage_offset << ", torch " << offset);
  CHECK_MESSAGE(actual.is_contiguous == expected.at("is_contiguous").get<bool>(), "is_contiguous");
  CHECK_MESSAGE(actual.is_view == expected.at("is_view").get<bool>(), "is_view");
  CHECK_MESSAGE(actual.shares == expected.at("shares").get<bool>(), "shares storage with the base");
}

void check_result(const json& expected, const Result& r, double tolerance) {
  if (r.is_refusal) {
    FAIL_CHECK("the C++ case has a refused step; torch ran every step");
    return;
  }
  const json& tensors = expected.at("tensors");
  const json& layouts = expected.at("layouts");
  const json& versions = expected.at("versions");
  const json& flags = expected.at("flags");
  check_same_names("tensors", tensors, r.tensors);
  check_same_names("layouts", layouts, r.layouts);
  check_same_names("versions", versions, r.versions);
  check_same_names("flags", flags, r.flags);
  // (Plain loop variables, not structured bindings: doctest's messages capture them in lambdas.)
  for (const auto& entry : r.tensors)
    if (tensors.contains(entry.first)) check_values(entry.first, tensors.at(entry.first), entry.second, tolerance);
  for (const auto& entry : r.layouts)
    if (layouts.contains(entry.first)) check_layout(entry.first, layouts.at(entry.first), entry.second);
  for (const auto& entry : r.versions) {
    const std::string& name = entry.first;
    if (!versions.contains(name)) continue;
    const auto torch_version = versions.at(name).get<std::int64_t>();
    CHECK_MESSAGE(entry.second == torch_version,
                  "version of \"" << name << "\" is " << entry.second << ", torch " << torch_version);
  }
  for (const auto& entry : r.flags) {
    const std::string& name = entry.first;
    if (!flags.contains(name)) continue;
    const bool torch_flag = flags.at(name).get<bool>();
    CHECK_MESSAGE(entry.second == torch_flag,
                  "flag \"" << name << "\" is " << entry.second << ", torch " << torch_flag);
  }
}

void check_refusal(const json& expected, const Result& r) {
  INFO("torch's message: " << expected.at("message").get<std::string>());
  if (!r.is_refusal || !r.error) {
    FAIL_CHECK((r.is_refusal ? "xgrad accepted the step torch refuses"
                             : "the C++ case marks no refused step (use refused()); torch refuses one"));
    return;
  }
  for (const auto& keyword : expected.at("expect_in_message").get<std::vector<std::string>>())
    CHECK_MESSAGE(lower(*r.error).find(lower(keyword)) != std::string::npos,
                  "xgrad's message \"" << *r.error << "\" lacks \"" << keyword << "\"");
}

/// Runs every fixture case of `group` and compares it with what torch did.
void run_group(const std::string& group) {
  const json& doc = fixture();
  const double tolerance = doc.at("tolerance").get<double>();
  int ran = 0;
  for (const auto& item : doc.at("cases").items()) {
    const std::string name = item.key();
    const json& expected = item.value();
    if (expected.at("group").get<std::string>() != group) continue;
    const auto it = cases().find(name);
    if (it == cases().end()) continue;  // reported by the registry test
    INFO("case " << name << ": " << expected.at("doc").get<std::string>());
    ++ran;
    std::optional<Result> r;
    try {
      r = it->second();
    } catch (const std::exception& e) {
      FAIL_CHECK("threw outside refused(), or not an xgrad::Error: " << e.what());
      continue;
    }
    if (expected.value("error", false))
      check_refusal(expected, *r);
    else
      check_result(expected, *r, tolerance);
  }
  CHECK_MESSAGE(ran > 0, "no case of group \"" << group << "\" ran");
}

}  // namespace

TEST_CASE("views fixture: every PyTorch case has a C++ case of the same name, and back") {
  const json& fixture_cases = fixture().at("cases");
  std::vector<std::string> only_fixture, only_cpp;
  for (const auto& item : fixture_cases.items())
    if (!cases().count(item.key())) only_fixture.push_back(item.key());
  for (const auto& entry : cases())
    if (!fixture_cases.contains(entry.first)) only_cpp.push_back(entry.first);
  CHECK_MESSAGE(only_fixture.empty(), "fixture cases without a C++ case: " << join(only_fixture));
  CHECK_MESSAGE(only_cpp.empty(), "C++ cases without a fixture entry: " << join(only_cpp));
}

TEST_CASE("views: writes through views land in the base, with PyTorch's layouts") { run_group("write"); }

TEST_CASE("views: autograd through in-place ops on views gives PyTorch's gradients") { run_group("grad"); }

TEST_CASE("views: xgrad refuses the in-place and view steps PyTorch refuses") { run_group("refuse"); }

// --- as_strided geometry: overflow and bounds -------------------------------------------------------

TEST_CASE("as_strided: a size x stride or offset sum that overflows int64 is an Error, never a wrapped view") {
  constexpr std::int64_t k62 = std::int64_t{1} << 62, k20 = std::int64_t{1} << 20;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  Tensor a = zeros({8});
  // (3 - 1) * (2^62 + 2^20) wraps to 2^21: accepted before, and fill_ then wrote far away.
  CHECK_THROWS_WITH_AS(a.as_strided({3}, {k62 + k20}, 0), doctest::Contains("as_strided: shape (3), strides (4611686018428436480)"), Error);
  // 1 + (2 - 1) * INT64_MAX wraps to INT64_MIN: read memory before the storage.
  CHECK_THROWS_WITH_AS(a.as_strided({2}, {kMax}, 1), doctest::Contains("overflow"), Error);
  CHECK_THROWS_WITH_AS(a.as_strided({3, 3}, {kMax / 2, kMax / 2}, 0), doctest::Contains("overflow"), Error);
  CHECK_THROWS_WITH_AS(a.as_strided({1}, {1}, kMax), doctest::Contains("as_strided"), Error);
  // Extents whose product overflows (strides 0) are refused before any element is counted.
  CHECK_THROWS_WITH_AS(a.as_strided({k62, 4}, {0, 0}, 0), doctest::Contains("as_strided: shape (4611686018427387904, 4)"), Error);
  // Negative extents, negative strides and offsets past the storage (empty views too).
  CHECK_THROWS_WITH_AS(a.as_strided({-1}, {1}, 0), doctest::Contains("as_strided: negative"), Error);
  CHECK_THROWS_WITH_AS(a.as_strided({2}, {-1}, 1), doctest::Contains("as_strided: negative"), Error);
  CHECK_THROWS_WITH_AS(a.as_strided({2}, {1}, -1), doctest::Contains("as_strided"), Error);
  CHECK_THROWS_WITH_AS(a.as_strided({0}, {1}, 9), doctest::Contains("as_strided"), Error);
  CHECK_THROWS_WITH_AS(a.as_strided({2}, {7}, 1), doctest::Contains("reach element 8 of a storage of 8"), Error);

  // What stays accepted: the last element exactly, a huge stride over an extent of 1, an
  // empty view at the end of the storage, a huge extent of an empty view.
  a.as_strided({2}, {7}, 0).fill_(1.0);
  CHECK(a.to_vector<float>() == std::vector<float>{1, 0, 0, 0, 0, 0, 0, 1});
  Tensor one = a.as_strided({2, 1}, {7, kMax}, 0);
  one.mul_(3.0);
  CHECK(a.to_vector<float>() == std::vector<float>{3, 0, 0, 0, 0, 0, 0, 3});
  CHECK(a.as_strided({1, 2, 1}, {kMax, 1, kMax}, 6).sum().item() == 3.0);
  CHECK(a.as_strided({0}, {1}, 8).numel() == 0);
  CHECK(a.as_strided({k62, 0}, {kMax, kMax}, 0).numel() == 0);
  // Views of an empty view along a huge stride address nothing: no index * stride past int64
  // (UBSan found select's).
  const Tensor e = a.as_strided({3, 0}, {kMax, 1}, 0);
  CHECK(e.select(0, 2).numel() == 0);
  CHECK(e.narrow(0, 1, 2).numel() == 0);
  CHECK(e.split(1, 0).size() == 3);
  CHECK(e.unsqueeze(0).dim() == 3);
}

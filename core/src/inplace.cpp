// In-place updates (add_, sub_, mul_, div_, copy_, fill_, set_data): checked against what
// PyTorch refuses, a one-pass fast path when no gradient is needed, and otherwise computed out
// of place, written back and recorded, so autograd sees the write (views.cpp rebases the
// history of a view's base).
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

namespace {

// Checks an in-place write into `self` and says whether it must be recorded in the graph;
// throws for the writes PyTorch refuses too.
bool inplace_needs_grad(const Tensor& self, std::initializer_list<const Tensor*> others, const char* op,
                        bool overlap_ok = false) {
  require_defined(self, op);
  trace::report_in_place(op, self);
  for (const Tensor* o : others) require_defined(*o, op);
  const TensorImpl& s = impl_of(self);
  if (!overlap_ok) require_no_overlap(s, op);
  // Integer and bool tensors are never differentiable: writing a float result into one is a
  // plain write, as in PyTorch.
  if (!is_grad_enabled() || !is_floating(s.dtype)) return false;
  bool needed = self.requires_grad() || (s.view_base && s.view_base->requires_grad);
  for (const Tensor* o : others) needed = needed || o->requires_grad();
  if (!needed) return false;
  const std::string name(op);
  if (!s.grad_fn && s.requires_grad)
    throw Error(name + ": a leaf tensor that requires grad is being modified in place while grad mode is on; wrap "
                "the update in NoGradGuard (as optimizers do)");
  if (s.view_base) {
    const TensorImpl& base = *s.view_base;
    if (s.view_kind == ViewKind::multi_output)
      throw Error(name + ": this tensor is one of multiple views returned by split, chunk or unbind, and such views "
                  "cannot be modified in place while grad is needed; clone() it, or write into the base");
    if (s.view_kind == ViewKind::no_grad)
      throw Error(name + ": this view was made while grad mode was off and is being modified in place with grad mode "
                  "on; take the view under grad mode, or write under NoGradGuard");
    if (!base.grad_fn && base.requires_grad)
      throw Error(name + ": a view of a leaf tensor that requires grad is being modified in place while grad mode is "
                  "on; wrap the update in NoGradGuard (as optimizers do), or clone() the leaf first");
    check_rebase(s, op);
  }
  return true;
}

void check_broadcast_into(const Tensor& self, const Tensor& other, const char* op) {
  if (self.shape() == other.shape()) return;  // every gradient accumulation: no Shape to allocate
  Shape b = broadcast_shapes(self.shape(), other.shape(), op);
  if (b != self.shape())
    throw Error(std::string(op) + ": cannot broadcast " + shape_str(other.shape()) + " into " + shape_str(self.shape()));
}

// Writes `result` (self's shape) into self's elements and bumps the version.
void write_result(const Tensor& self, const Tensor& result) {
  TensorImpl& s = impl_of(self);
  const TensorImpl& r = impl_of(result);
  if (r.storage == s.storage && (r.offset != s.offset || r.strides != s.strides)) {
    const Tensor copy = result.detach().clone();  // overlapping source: read it all first
    copy_elements(impl_of(copy), s);
  } else if (r.storage != s.storage || r.offset != s.offset) {
    copy_elements(r, s);
  }
  ++s.storage->version;
}

// Whether an op replaces every element (fill_, copy_) or updates them (add_, mul_, ...).
enum class Overwrites { no, all };

// this ← compute(this), computed out of place and written back. Under autograd the result
// also becomes this tensor's (or its base's) history. `reads_self`: compute's backward reads
// its first operand, which the write destroys, so it gets a copy.
template <class F>
void inplace(const Tensor& self, std::initializer_list<const Tensor*> others, const char* op, bool reads_self,
             F compute, Overwrites overwrites = Overwrites::no) {
  if (!inplace_needs_grad(self, others, op, overwrites == Overwrites::all && others.size() == 0)) {
    Tensor result;
    {
      NoGradGuard no_grad;
      result = compute(self);
    }
    write_result(self, result);
    return;
  }
  Tensor result = compute(reads_self ? self.clone() : self);
  if (overwrites == Overwrites::all && !self.is_view()) {
    // fill_ and copy_ replace every element: the old value gets a zero gradient (defined, as
    // in PyTorch), and the tensor keeps requiring grad even when the new value is constant.
    result = where(zeros(self.shape(), DType::b8), self, result);
  }
  write_result(self, result);
  rebase_history(self, result, op);
}

// The no-grad fast path for `self op= alpha * other` with one shape, both contiguous, and
// no partial overlap: one pass, no temporary (optimizer updates take it).
template <class F>
bool fast_binary(const Tensor& self, const Tensor& other, const char* op, F f) {
  const TensorImpl &s = impl_of(self), &o = impl_of(other);
  if (!s.contiguous || !o.contiguous || s.shape != o.shape || s.dtype != o.dtype) return false;
  if (o.storage == s.storage && o.offset != s.offset) return false;
  if (has_internal_overlap(s)) return false;
  if (inplace_needs_grad(self, {&other}, op)) return false;  // also throws what it refuses
  dispatch_numeric(s.dtype, "inplace", [&]<class T>() {
    T* y = s.raw<T>();
    const T* x = o.raw<T>();
    for (std::int64_t i = 0; i < s.numel; ++i) y[i] = f(y[i], x[i]);
  });
  ++s.storage->version;
  return true;
}

// self += alpha · other, for add_ and sub_ (`op` names the caller in errors).
void add_scaled(const Tensor& self, const Tensor& other, double alpha, const char* op) {
  require_same_dtype(self, other, op);
  check_broadcast_into(self, other, op);
  require_fits(alpha, self.dtype(), op);
  if (!is_floating(self.dtype()) && alpha != std::trunc(alpha))
    throw Error(std::string(op) + ": alpha " + std::to_string(alpha) + " would be truncated to fit a " +
                std::string(dtype_name(self.dtype())) + " tensor");
  if (dispatch_numeric(self.dtype(), op, [&]<class T>() {
        const T a = static_cast<T>(alpha);
        return fast_binary(self, other, op, [a](T y, T x) { return y + a * x; });
      }))
    return;
  inplace(self, {&other}, op, false, [&](const Tensor& s) { return alpha == 1.0 ? s + other : s + other * alpha; });
}
// The no-grad path of `self = self · factor` for a floating tensor: in place, through the
// strides, no temporary.
bool fast_scale(const Tensor& self, double factor, const char* op) {
  if (!is_floating(self.dtype()) || inplace_needs_grad(self, {}, op)) return false;
  const TensorImpl& s = impl_of(self);
  dispatch_floating(s.dtype, op, [&]<class T>() {
    T* p = s.raw<T>();
    const T f = static_cast<T>(factor);
    if (s.contiguous) for (std::int64_t i = 0; i < s.numel; ++i) p[i] *= f;
    else for_each_offset(s.shape, s.strides, [&](std::int64_t o) { p[o] *= f; });
  });
  ++s.storage->version;
  return true;
}
}  // namespace

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  add_scaled(*this, other, alpha, "add_");
  return *this;
}

Tensor& Tensor::sub_(const Tensor& other, double alpha) {
  add_scaled(*this, other, -alpha, "sub_");
  return *this;
}

Tensor& Tensor::mul_(const Tensor& other) {
  require_same_dtype(*this, other, "mul_");
  check_broadcast_into(*this, other, "mul_");
  if (dispatch_numeric(dtype(), "mul_", [&]<class T>() { return fast_binary(*this, other, "mul_", [](T y, T x) { return y * x; }); }))
    return *this;
  inplace(*this, {&other}, "mul_", other.requires_grad(), [&](const Tensor& self) { return self * other; });
  return *this;
}

Tensor& Tensor::mul_(double value) {
  if (fast_scale(*this, value, "mul_")) return *this;
  inplace(*this, {}, "mul_", false, [&](const Tensor& self) { return self * value; });
  return *this;
}

Tensor& Tensor::div_(const Tensor& other) {
  require_same_dtype(*this, other, "div_");
  check_broadcast_into(*this, other, "div_");
  inplace(*this, {&other}, "div_", false, [&](const Tensor& self) { return self / other; });
  return *this;
}

Tensor& Tensor::div_(double value) {
  inplace(*this, {}, "div_", false, [&](const Tensor& self) { return self / value; });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& other) {
  require_defined(*this, "copy_");
  require_defined(other, "copy_");
  check_broadcast_into(*this, other, "copy_");
  inplace(*this, {&other}, "copy_", false, [&](const Tensor& self) { return xgrad::expand(other.to(self.dtype()), self.shape()); },
          Overwrites::all);
  return *this;
}

Tensor& Tensor::fill_(double value) {
  require_defined(*this, "fill_");
  require_fits(value, dtype(), "fill_");
  if (!inplace_needs_grad(*this, {}, "fill_", /*overlap_ok=*/true)) {  // every element gets one value
    dispatch_all(dtype(), [&]<class T>() {
      T* p = impl_->raw<T>();
      if (impl_->contiguous) std::fill_n(p, impl_->numel, static_cast<T>(value));
      else for_each_offset(impl_->shape, impl_->strides, [&](std::int64_t o) { p[o] = static_cast<T>(value); });
    });
    ++impl_->storage->version;
    return *this;
  }
  inplace(*this, {}, "fill_", false, [&](const Tensor& self) { return xgrad::expand(full({}, value, self.dtype()), self.shape()); },
          Overwrites::all);
  return *this;
}

void Tensor::set_data(const Tensor& source) {
  require_defined(*this, "set_data");
  require_defined(source, "set_data");
  if (impl_->grad_fn) throw Error("set_data: only leaf tensors can take new data (this one comes from '" + impl_->grad_fn->name + "')");
  if (impl_->requires_grad && !is_floating(source.dtype()))
    throw Error("set_data: a tensor that requires grad cannot take " + std::string(dtype_name(source.dtype())) + " data");
  ++impl_->storage->version;  // the old data is replaced: graphs that saved it must not use it
  const TensorImpl& src = impl_of(source);
  impl_->storage = src.storage;
  impl_->shape = src.shape;
  impl_->strides = src.strides;
  impl_->offset = src.offset;
  impl_->contiguous = src.contiguous;
  impl_->dtype = src.dtype;
  impl_->numel = src.numel;
  impl_->view_version = src.storage->version;
  impl_->grad = Tensor();
}

}  // namespace xgrad

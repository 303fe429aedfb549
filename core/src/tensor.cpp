#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/tensor.hpp>

#include <atomic>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "kernels.hpp"
#include "trace_hook.hpp"

namespace xgrad {

// --- dtype and shape vocabulary ---------------------------------------------------------------

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
  }
  return "unknown";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::b8: return 1;
  }
  return 0;
}

bool is_floating(DType dtype) { return dtype == DType::f32 || dtype == DType::f64; }

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto e : shape)
    if (__builtin_mul_overflow(n, e, &n))
      throw Error("shape " + shape_str(shape) + " has more elements than an int64 can count");
  return n;
}

// --- helpers shared by core ---------------------------------------------------------------------

void check_shape(const Shape& shape, const char* op) {
  std::int64_t span = 1;
  for (auto e : shape) {
    if (e < 0) throw Error(std::string(op) + ": negative extent in shape " + shape_str(shape));
    if (__builtin_mul_overflow(span, std::max<std::int64_t>(e, 1), &span))
      throw Error(std::string(op) + ": shape " + shape_str(shape) + " has more elements than an int64 can count");
  }
}

namespace {

// Released TensorImpls, kept per thread for new_impl. Every op makes a few tensors (its
// result, the detached ones its backward saves, its gradients), each with a shape and strides
// vector: recycling whole TensorImpls made those vectors' allocations go away (they were ~8 of
// the ~9 mallocs per op left in bench_op_overhead after the node and storage pools, each a
// trip through glibc's slower paths since forward allocates thousands before backward frees).
// Like BlockPool, a TensorImpl released on another thread joins that thread's cache; caches
// are deleted at thread exit (after that, released ones are deleted at once).
constexpr std::size_t kMaxIdleImpls = std::size_t{1} << 17;  // ~30 MB
thread_local bool impl_cache_gone = false;
struct ImplCache {
  std::vector<TensorImpl*> idle;
  ~ImplCache() {
    impl_cache_gone = true;
    for (TensorImpl* p : idle) delete p;
  }
};
ImplCache* impl_cache() {
  if (impl_cache_gone) return nullptr;
  thread_local ImplCache cache;
  return &cache;
}

struct RecycleImpl {
  void operator()(TensorImpl* p) const noexcept {
    ImplCache* cache = impl_cache();
    if (cache == nullptr || cache->idle.size() >= kMaxIdleImpls) {
      delete p;
      return;
    }
    p->reset_for_reuse();  // may release other tensors into the cache
    try {
      cache->idle.push_back(p);
    } catch (...) {
      delete p;
    }
  }
};

TensorImpl* take_idle_impl() {
  ImplCache* cache = impl_cache();
  if (cache == nullptr || cache->idle.empty()) return nullptr;
  TensorImpl* p = cache->idle.back();
  cache->idle.pop_back();
  return p;
}

std::shared_ptr<TensorImpl> share_impl(TensorImpl* p) {
  return std::shared_ptr<TensorImpl>(p, RecycleImpl{}, PoolAllocator<TensorImpl>{});
}

}  // namespace

std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype) {
  TensorImpl* p = take_idle_impl();
  if (p == nullptr) return share_impl(new TensorImpl(std::move(storage), shape, dtype));
  std::shared_ptr<TensorImpl> im = share_impl(p);
  im->shape.assign(shape.begin(), shape.end());
  contiguous_strides(im->shape, im->strides);
  im->storage = std::move(storage);
  im->dtype = dtype;
  im->numel = shape_numel(im->shape);
  im->offset = 0;
  im->contiguous = true;
  return im;
}

std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                                     std::int64_t offset, DType dtype) {
  TensorImpl* p = take_idle_impl();
  if (p == nullptr) return share_impl(new TensorImpl(std::move(storage), shape, strides, offset, dtype));
  std::shared_ptr<TensorImpl> im = share_impl(p);
  im->shape.assign(shape.begin(), shape.end());
  im->strides.assign(strides.begin(), strides.end());
  im->storage = std::move(storage);
  im->dtype = dtype;
  im->numel = shape_numel(im->shape);
  im->offset = offset;
  im->update_contiguous();
  return im;
}

Tensor make_empty(const Shape& shape, DType dtype, const char* op) {
  // Every tensor's memory is sized here, once: the element count and the byte size must not
  // overflow (a wrapped count would allocate a small buffer and write past it).
  check_shape(shape, op);
  const std::int64_t count = shape_numel(shape);
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<std::int64_t>(dtype_size(dtype)), &bytes))
    throw Error(std::string(op) + ": shape " + shape_str(shape) + " of " + std::string(dtype_name(dtype)) +
                " needs more bytes than memory can address");
  std::shared_ptr<Storage> storage;
  try {
    storage = make_pooled<Storage>(static_cast<std::size_t>(bytes));
  } catch (const std::bad_alloc&) {
    throw Error(std::string(op) + ": cannot allocate " + std::to_string(bytes) + " bytes for a tensor of shape " +
                shape_str(shape) + " and dtype " + std::string(dtype_name(dtype)));
  }
  return Tensor(new_impl(std::move(storage), shape, dtype));
}

std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, const char* op, bool scalar_ok) {
  // Reductions and softmax accept dim 0 / -1 on a 0-d tensor, as PyTorch does; ops that index
  // a dimension do not.
  const std::int64_t r = rank == 0 && scalar_ok ? 1 : rank;
  if (dim < -r || dim >= r)
    throw Error(std::string(op) + ": dim " + std::to_string(dim) + " is out of range for a tensor of rank " +
                std::to_string(rank));
  return dim < 0 ? dim + r : dim;
}

void require_fits(double value, DType dtype, const char* op) {
  if (!fits_dtype(value, dtype))
    throw Error(std::string(op) + ": the value " + fmt::format("{}", value) + " does not fit a " +
                std::string(dtype_name(dtype)) + " tensor (an int64 holds finite values in [-2^63, 2^63))");
}

void conversion_error(double value, const char* from, const char* to, const char* op) {
  throw Error(std::string(op) + ": the " + from + " value " + fmt::format("{}", value) + " cannot be converted to " + to +
              " (NaN, infinite or out of its range)");
}

void require_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw Error(std::string(op) + ": undefined tensor");
}

void require_floating(const Tensor& t, const char* op) {
  require_defined(t, op);
  if (!is_floating(t.dtype()))
    throw Error(std::string(op) + ": expected a floating-point tensor, got " +
                std::string(dtype_name(t.dtype())));
}

void require_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  require_defined(a, op);
  require_defined(b, op);
  if (a.dtype() != b.dtype())
    throw Error(std::string(op) + ": dtype mismatch, " + std::string(dtype_name(a.dtype())) + " vs " +
                std::string(dtype_name(b.dtype())));
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (trace::tracing()) return true;  // a tracer sees every primitive, recorded or not (trace.cpp)
  if (!is_grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->requires_grad()) return true;
  return false;
}

// --- Tensor -------------------------------------------------------------------------------------

Tensor::Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

const Shape& Tensor::shape() const {
  require_defined(*this, "shape");
  return impl_->shape;
}
std::int64_t Tensor::size(std::int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
std::int64_t Tensor::dim() const { return static_cast<std::int64_t>(shape().size()); }
std::int64_t Tensor::numel() const {
  require_defined(*this, "numel");
  return impl_->numel;
}
DType Tensor::dtype() const {
  require_defined(*this, "dtype");
  return impl_->dtype;
}

static double element_as_double(const TensorImpl& im, std::int64_t offset) {
  switch (im.dtype) {
    case DType::f32: return im.raw<float>()[offset];
    case DType::f64: return im.raw<double>()[offset];
    case DType::i64: return static_cast<double>(im.raw<std::int64_t>()[offset]);
    case DType::b8: return im.raw<bool>()[offset] ? 1.0 : 0.0;
  }
  return 0.0;
}

double Tensor::item() const {
  if (numel() != 1)
    throw Error("item: only one-element tensors can be converted, got shape " + shape_str(shape()));
  return element_as_double(*impl_, 0);
}

template <class T>
T Tensor::item() const {
  if (numel() != 1)
    throw Error("item: only one-element tensors can be converted, got shape " + shape_str(shape()));
  return dispatch_all(impl_->dtype, [&]<class S>() { return convert_element<T>(impl_->raw<S>()[0], "item"); });
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template std::int64_t Tensor::item<std::int64_t>() const;
template int Tensor::item<int>() const;
template bool Tensor::item<bool>() const;

double Tensor::at(const std::vector<std::int64_t>& index) const {
  const Shape& s = shape();
  if (index.size() != s.size())
    throw Error("at: index has " + std::to_string(index.size()) + " entries for a tensor of shape " +
                shape_str(s));
  std::int64_t offset = 0;
  for (std::size_t d = 0; d < s.size(); ++d) {
    std::int64_t i = index[d] < 0 ? index[d] + s[d] : index[d];
    if (i < 0 || i >= s[d])
      throw Error("at: index " + std::to_string(index[d]) + " is out of range for dimension " +
                  std::to_string(d) + " with size " + std::to_string(s[d]));
    offset += i * impl_->strides[d];
  }
  return element_as_double(*impl_, offset);
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  require_defined(*this, "to_vector");
  std::vector<T> out(static_cast<std::size_t>(impl_->numel));
  dispatch_all(impl_->dtype, [&]<class S>() {
    const S* p = impl_->raw<S>();
    if (impl_->contiguous) {
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = convert_element<T>(p[i], "to_vector");
    } else {
      std::size_t i = 0;
      for_each_offset(impl_->shape, impl_->strides, [&](std::int64_t o) { out[i++] = convert_element<T>(p[o], "to_vector"); });
    }
  });
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<int> Tensor::to_vector<int>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

template <class T>
static constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, double>) return DType::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>) return DType::i64;
  else return DType::b8;
}

template <class T>
static void check_raw_access(const Tensor& t, const char* op) {
  require_defined(t, op);
  const TensorImpl& im = impl_of(t);
  if (im.dtype != dtype_of<T>())
    throw Error(std::string(op) + ": tensor has dtype " + std::string(dtype_name(im.dtype)) + ", asked for " +
                std::string(dtype_name(dtype_of<T>())));
  if (!im.contiguous)
    throw Error(std::string(op) + ": tensor of shape " + shape_str(im.shape) + " and strides " + shape_str(im.strides) +
                " is not contiguous, so its elements are not consecutive; call contiguous() first");
}

template <class T>
const T* Tensor::data() const {
  check_raw_access<T>(*this, "data");
  return impl_->raw<T>();
}
template <class T>
T* Tensor::mutable_data() {
  check_raw_access<T>(*this, "mutable_data");
  ++impl_->storage->version;
  return impl_->raw<T>();
}
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const std::int64_t* Tensor::data<std::int64_t>() const;
template const bool* Tensor::data<bool>() const;
template float* Tensor::mutable_data<float>();
template double* Tensor::mutable_data<double>();
template std::int64_t* Tensor::mutable_data<std::int64_t>();
template bool* Tensor::mutable_data<bool>();

const std::vector<std::int64_t>& Tensor::strides() const {
  require_defined(*this, "strides");
  return impl_->strides;
}
std::int64_t Tensor::stride(std::int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
std::int64_t Tensor::storage_offset() const {
  require_defined(*this, "storage_offset");
  return impl_->offset;
}
bool Tensor::is_contiguous() const {
  require_defined(*this, "is_contiguous");
  return impl_->contiguous;
}
bool Tensor::is_view() const {
  return impl_ && impl_->view_base != nullptr && impl_->view_base->storage == impl_->storage;
}
bool Tensor::shares_storage(const Tensor& other) const {
  return impl_ && other.impl_ && impl_->storage == other.impl_->storage;
}
std::uint64_t Tensor::version() const {
  require_defined(*this, "version");
  return impl_->storage->version;
}

Tensor Tensor::detach() const {
  require_defined(*this, "detach");
  return Tensor(new_impl(impl_->storage, impl_->shape, impl_->strides, impl_->offset, impl_->dtype));
}

// --- autograd metadata ---------------------------------------------------------------------------

bool Tensor::requires_grad() const {
  if (!impl_) return false;
  if (impl_->requires_grad) return true;
  // A view made before its base required grad follows the base (its grad_fn comes lazily).
  return impl_->view_base && impl_->view_kind == ViewKind::differentiable && impl_->view_base->requires_grad;
}

Tensor& Tensor::requires_grad_(bool requires_grad) {
  require_defined(*this, "requires_grad_");
  if (requires_grad && !is_floating(impl_->dtype))
    throw Error("requires_grad_: only floating-point tensors can require grad, got " +
                std::string(dtype_name(impl_->dtype)));
  if (!requires_grad && impl_->grad_fn)
    throw Error("requires_grad_: cannot turn off requires_grad of a non-leaf tensor (from '" +
                impl_->grad_fn->name + "'); use detach()");
  impl_->requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const {
  if (!impl_) return true;
  sync_grad_fn(*impl_);
  return !impl_->grad_fn;
}

Tensor Tensor::grad() const {
  require_defined(*this, "grad");
  return impl_->grad;
}

void Tensor::set_grad(const Tensor& grad) {
  require_defined(*this, "set_grad");
  if (grad.defined() && (grad.shape() != shape() || grad.dtype() != dtype()))
    throw Error("set_grad: gradient of shape " + shape_str(grad.shape()) + " and dtype " +
                std::string(dtype_name(grad.dtype())) + " for a tensor of shape " + shape_str(shape()) +
                " and dtype " + std::string(dtype_name(dtype())));
  impl_->grad = grad;
}

void Tensor::zero_grad(bool set_to_none) {
  require_defined(*this, "zero_grad");
  if (set_to_none || !impl_->grad.defined()) {
    impl_->grad = Tensor();
  } else {
    NoGradGuard guard;
    impl_->grad.fill_(0.0);
  }
}

std::string Tensor::grad_fn_name() const {
  if (!impl_) return "";
  sync_grad_fn(*impl_);
  return impl_->grad_fn ? impl_->grad_fn->name : "";
}

// --- in-place updates -------------------------------------------------------------------------------

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

// --- hooks ---------------------------------------------------------------------------------------------

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

// --- method forms ------------------------------------------------------------------------------------

Tensor Tensor::sum() const { return xgrad::sum(*this); }
Tensor Tensor::sum(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return xgrad::sum(*this, dims, keepdim);
}
Tensor Tensor::mean() const { return xgrad::mean(*this); }
Tensor Tensor::mean(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return xgrad::mean(*this, dims, keepdim);
}
Tensor Tensor::reshape(const Shape& s) const { return xgrad::reshape(*this, s); }
Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  return xgrad::flatten(*this, start_dim, end_dim);
}
Tensor Tensor::squeeze(std::int64_t d) const { return xgrad::squeeze(*this, d); }
Tensor Tensor::unsqueeze(std::int64_t d) const { return xgrad::unsqueeze(*this, d); }
Tensor Tensor::transpose(std::int64_t d0, std::int64_t d1) const { return xgrad::transpose(*this, d0, d1); }
Tensor Tensor::t() const {
  if (dim() > 2) throw Error("t: expects a tensor of at most 2 dimensions, got shape " + shape_str(shape()));
  return dim() < 2 ? *this : xgrad::transpose(*this, 0, 1);
}
Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const { return xgrad::permute(*this, dims); }
Tensor Tensor::expand(const Shape& s) const { return xgrad::expand(*this, s); }
Tensor Tensor::as_strided(const Shape& s, const std::vector<std::int64_t>& st, std::int64_t offset) const {
  return xgrad::as_strided(*this, s, st, offset);
}
Tensor Tensor::narrow(std::int64_t d, std::int64_t start, std::int64_t length) const {
  return xgrad::narrow(*this, d, start, length);
}
Tensor Tensor::select(std::int64_t d, std::int64_t index) const { return xgrad::select(*this, d, index); }
Tensor Tensor::index_select(std::int64_t d, const Tensor& index) const {
  return xgrad::index_select(*this, d, index);
}
Tensor Tensor::gather(std::int64_t d, const Tensor& index) const { return xgrad::gather(*this, d, index); }
std::vector<Tensor> Tensor::chunk(std::int64_t chunks, std::int64_t d) const {
  return xgrad::chunk(*this, chunks, d);
}
std::vector<Tensor> Tensor::split(std::int64_t split_size, std::int64_t d) const {
  return xgrad::split(*this, split_size, d);
}
std::vector<Tensor> Tensor::unbind(std::int64_t d) const { return xgrad::unbind(*this, d); }
Tensor Tensor::masked_fill(const Tensor& mask, double value) const {
  return xgrad::masked_fill(*this, mask, value);
}
Tensor Tensor::matmul(const Tensor& other) const { return xgrad::matmul(*this, other); }
Tensor Tensor::pow(double exponent) const { return xgrad::pow(*this, exponent); }
Tensor Tensor::exp() const { return xgrad::exp(*this); }
Tensor Tensor::log() const { return xgrad::log(*this); }
Tensor Tensor::sqrt() const { return xgrad::sqrt(*this); }
Tensor Tensor::abs() const { return xgrad::abs(*this); }
Tensor Tensor::sigmoid() const { return xgrad::sigmoid(*this); }
Tensor Tensor::tanh() const { return xgrad::tanh(*this); }
Tensor Tensor::relu() const { return xgrad::relu(*this); }
Tensor Tensor::softmax(std::int64_t d) const { return xgrad::softmax(*this, d); }
Tensor Tensor::log_softmax(std::int64_t d) const { return xgrad::log_softmax(*this, d); }
Tensor Tensor::argmax(std::int64_t d, bool keepdim) const { return xgrad::argmax(*this, d, keepdim); }

}  // namespace xgrad

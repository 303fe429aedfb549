// The Tensor handle: dtype and shape vocabulary, accessors, element access, autograd
// metadata, and the method forms of the ops. What a handle points at is tensor_impl.hpp;
// in-place updates are inplace.cpp and hooks node.cpp.
#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/tensor.hpp>

#include <cmath>

#include "kernels.hpp"

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

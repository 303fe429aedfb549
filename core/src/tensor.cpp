#include <xgrad/core/autograd.hpp>
#include <xgrad/core/creation.hpp>
#include <xgrad/core/ops.hpp>
#include <xgrad/core/tensor.hpp>

#include <cstring>

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
  for (auto e : shape) n *= e;
  return n;
}

// --- helpers shared by core ---------------------------------------------------------------------

Tensor make_empty(const Shape& shape, DType dtype, const char* op) {
  for (auto e : shape)
    if (e < 0) throw Error(std::string(op) + ": negative extent in shape " + shape_str(shape));
  auto bytes = static_cast<std::size_t>(shape_numel(shape)) * dtype_size(dtype);
  return Tensor(std::make_shared<TensorImpl>(std::make_shared<Storage>(bytes), shape, dtype));
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

static double element_as_double(const TensorImpl& im, std::int64_t flat_index) {
  switch (im.dtype) {
    case DType::f32: return im.data<float>()[flat_index];
    case DType::f64: return im.data<double>()[flat_index];
    case DType::i64: return static_cast<double>(im.data<std::int64_t>()[flat_index]);
    case DType::b8: return im.data<bool>()[flat_index] ? 1.0 : 0.0;
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
  return dispatch_all(impl_->dtype, [&]<class S>() { return static_cast<T>(impl_->data<S>()[0]); });
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
  std::int64_t flat_index = 0;
  for (std::size_t d = 0; d < s.size(); ++d) {
    std::int64_t i = index[d] < 0 ? index[d] + s[d] : index[d];
    if (i < 0 || i >= s[d])
      throw Error("at: index " + std::to_string(index[d]) + " is out of range for dimension " +
                  std::to_string(d) + " with size " + std::to_string(s[d]));
    flat_index = flat_index * s[d] + i;
  }
  return element_as_double(*impl_, flat_index);
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  require_defined(*this, "to_vector");
  std::vector<T> out(static_cast<std::size_t>(impl_->numel));
  dispatch_all(impl_->dtype, [&]<class S>() {
    const S* p = impl_->data<S>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(p[i]);
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
T* Tensor::data() {
  require_defined(*this, "data");
  if (impl_->dtype != dtype_of<T>())
    throw Error("data: tensor has dtype " + std::string(dtype_name(impl_->dtype)) + ", asked for " +
                std::string(dtype_name(dtype_of<T>())));
  return impl_->data<T>();
}
template <class T>
const T* Tensor::data() const {
  return const_cast<Tensor*>(this)->data<T>();
}
template float* Tensor::data<float>();
template double* Tensor::data<double>();
template std::int64_t* Tensor::data<std::int64_t>();
template bool* Tensor::data<bool>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const std::int64_t* Tensor::data<std::int64_t>() const;
template const bool* Tensor::data<bool>() const;

Tensor Tensor::detach() const {
  require_defined(*this, "detach");
  return Tensor(std::make_shared<TensorImpl>(impl_->storage, impl_->shape, impl_->dtype));
}

// --- autograd metadata ---------------------------------------------------------------------------

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

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

bool Tensor::is_leaf() const { return !impl_ || !impl_->grad_fn; }

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

std::string Tensor::grad_fn_name() const { return impl_ && impl_->grad_fn ? impl_->grad_fn->name : ""; }

// --- in-place updates -------------------------------------------------------------------------------

static void check_inplace(const Tensor& self, const Tensor* other, const char* op) {
  require_defined(self, op);
  if (is_grad_enabled() && self.requires_grad())
    throw Error(std::string(op) + ": in-place update of a tensor that requires grad while grad mode is on; "
                "wrap it in NoGradGuard");
  if (other) {
    require_defined(*other, op);
    Shape b = broadcast_shapes(self.shape(), other->shape(), op);
    if (b != self.shape())
      throw Error(std::string(op) + ": cannot broadcast " + shape_str(other->shape()) + " into " +
                  shape_str(self.shape()));
  }
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, &other, "add_");
  require_same_dtype(*this, other, "add_");
  dispatch_numeric(dtype(), "add_", [&]<class T>() {
    const T a = static_cast<T>(alpha);
    if (other.shape() == shape()) {
      T* y = impl_->data<T>();
      const T* x = impl_of(other).data<T>();
      for (std::int64_t i = 0; i < impl_->numel; ++i) y[i] += a * x[i];
    } else {
      auto y = nd<T>(*this);
      xt::noalias(y) += a * nd<T>(other);
    }
  });
  ++impl_->storage->version;
  return *this;
}

Tensor& Tensor::mul_(const Tensor& other) {
  check_inplace(*this, &other, "mul_");
  require_same_dtype(*this, other, "mul_");
  dispatch_numeric(dtype(), "mul_", [&]<class T>() {
    auto y = nd<T>(*this);
    y *= nd<T>(other);
  });
  ++impl_->storage->version;
  return *this;
}

Tensor& Tensor::mul_(double value) {
  check_inplace(*this, nullptr, "mul_");
  dispatch_numeric(dtype(), "mul_", [&]<class T>() {
    auto y = flat<T>(*this);
    y *= static_cast<T>(value);
  });
  ++impl_->storage->version;
  return *this;
}

Tensor& Tensor::copy_(const Tensor& other) {
  check_inplace(*this, &other, "copy_");
  Tensor src = xgrad::expand(other.detach().to(dtype()), shape());
  if (impl_of(src).storage != impl_->storage)
    std::memcpy(impl_->storage->data, impl_of(src).storage->data,
                static_cast<std::size_t>(impl_->numel) * dtype_size(dtype()));
  ++impl_->storage->version;
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, nullptr, "fill_");
  dispatch_all(dtype(), [&]<class T>() { std::fill_n(impl_->data<T>(), impl_->numel, static_cast<T>(value)); });
  ++impl_->storage->version;
  return *this;
}

void Tensor::set_data(const Tensor& source) {
  require_defined(*this, "set_data");
  require_defined(source, "set_data");
  if (impl_->grad_fn) throw Error("set_data: only leaf tensors can take new data (this one comes from '" + impl_->grad_fn->name + "')");
  if (impl_->requires_grad && !is_floating(source.dtype()))
    throw Error("set_data: a tensor that requires grad cannot take " + std::string(dtype_name(source.dtype())) + " data");
  impl_->storage = impl_of(source).storage;
  impl_->shape = source.shape();
  impl_->dtype = source.dtype();
  impl_->numel = source.numel();
  impl_->grad = Tensor();
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

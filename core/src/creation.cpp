// Tensor factories and the seeded random generator.
#include <xgrad/core/creation.hpp>

#include <cmath>
#include <cstring>
#include <mutex>
#include <random>
#include <sstream>

#include "kernels.hpp"

namespace xgrad {

namespace {

template <class S>
Tensor from_values(const S* values, std::size_t count, const Shape& shape, DType dtype, const char* op) {
  check_shape(shape, op);
  if (shape_numel(shape) != static_cast<std::int64_t>(count))
    throw Error(std::string(op) + ": " + std::to_string(count) + " values do not fill shape " + shape_str(shape));
  Tensor t = make_empty(shape, dtype, op);
  dispatch_all(dtype, [&]<class T>() {
    T* p = impl_of(t).data<T>();
    for (std::size_t i = 0; i < count; ++i) p[i] = convert_element<T>(values[i], op);
  });
  return t;
}

// One generator for every random call; mt19937_64 and our own transforms (not <random>'s
// distributions, whose output differs between standard libraries) make draws reproducible.
std::mt19937_64 generator{0};
std::mutex generator_mutex;

double uniform01() { return static_cast<double>(generator() >> 11) * 0x1.0p-53; }

}  // namespace

Tensor tensor(std::initializer_list<double> values, DType dtype) {
  return from_values(values.begin(), values.size(), {static_cast<std::int64_t>(values.size())}, dtype, "tensor");
}
Tensor tensor(std::initializer_list<double> values, const Shape& shape, DType dtype) {
  return from_values(values.begin(), values.size(), shape, dtype, "tensor");
}
Tensor scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor from_vector(const std::vector<float>& v, const Shape& shape) {
  return from_values(v.data(), v.size(), shape, DType::f32, "from_vector");
}
Tensor from_vector(const std::vector<double>& v, const Shape& shape) {
  return from_values(v.data(), v.size(), shape, DType::f64, "from_vector");
}
Tensor from_vector(const std::vector<std::int64_t>& v, const Shape& shape) {
  return from_values(v.data(), v.size(), shape, DType::i64, "from_vector");
}
Tensor from_vector(const std::vector<bool>& v, const Shape& shape) {
  std::vector<std::uint8_t> bytes(v.begin(), v.end());
  return from_values(bytes.data(), bytes.size(), shape, DType::b8, "from_vector");
}

Tensor empty(const Shape& shape, DType dtype) { return make_empty(shape, dtype); }
Tensor zeros(const Shape& shape, DType dtype) {
  Tensor t = make_empty(shape, dtype, "zeros");
  std::memset(impl_of(t).storage->data, 0, impl_of(t).storage->nbytes);
  return t;
}
namespace {
Tensor filled(const Shape& shape, double value, DType dtype, const char* op) {
  require_fits(value, dtype, op);
  Tensor t = make_empty(shape, dtype, op);
  dispatch_all(dtype, [&]<class T>() { std::fill_n(impl_of(t).data<T>(), impl_of(t).numel, static_cast<T>(value)); });
  return t;
}
}  // namespace
Tensor ones(const Shape& shape, DType dtype) { return filled(shape, 1.0, dtype, "ones"); }
Tensor full(const Shape& shape, double value, DType dtype) { return filled(shape, value, dtype, "full"); }

Tensor arange(std::int64_t end) { return arange(0.0, static_cast<double>(end), 1.0, DType::i64); }
Tensor arange(double start, double end, double step, DType dtype) {
  if (step == 0.0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    throw Error("arange: needs finite bounds and a nonzero step");
  const double count = std::max(0.0, std::ceil((end - start) / step));
  if (count > 1e12) throw Error("arange: [" + std::to_string(start) + ", " + std::to_string(end) + ") with step " + std::to_string(step) + " has too many elements");
  const auto n = static_cast<std::int64_t>(count);
  Tensor t = make_empty({n}, dtype);
  dispatch_all(dtype, [&]<class T>() {
    T* p = impl_of(t).data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = convert_element<T>(start + static_cast<double>(i) * step, "arange");
  });
  return t;
}

Tensor eye(std::int64_t n, std::int64_t m, DType dtype) {
  if (m < 0) m = n;
  if (n < 0) throw Error("eye: negative size " + std::to_string(n));
  Tensor t = zeros({n, m}, dtype);
  dispatch_all(dtype, [&]<class T>() {
    for (std::int64_t i = 0; i < std::min(n, m); ++i) impl_of(t).data<T>()[i * m + i] = static_cast<T>(1);
  });
  return t;
}

void manual_seed(std::uint64_t seed) {
  std::lock_guard lock(generator_mutex);
  generator.seed(seed);
}

std::string rng_state() {
  std::lock_guard lock(generator_mutex);
  std::ostringstream out;
  out << generator;
  return out.str();
}

void set_rng_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  if (in.fail() || !(in >> std::ws).eof())
    throw Error("set_rng_state: the text is not a generator state from rng_state() (" + std::to_string(state.size()) +
                " characters)");
  std::lock_guard lock(generator_mutex);
  generator = restored;
}

namespace {
Tensor uniform_named(const Shape& shape, double low, double high, DType dtype, const char* op) {
  if (!(low <= high))
    throw Error(std::string(op) + ": low " + std::to_string(low) + " is above high " + std::to_string(high));
  Tensor t = make_empty(shape, dtype, op);
  std::lock_guard lock(generator_mutex);
  dispatch_floating(dtype, op, [&]<class T>() {
    T* p = impl_of(t).data<T>();
    for (std::int64_t i = 0; i < impl_of(t).numel; ++i) {
      T v = static_cast<T>(low + (high - low) * uniform01());
      p[i] = v < static_cast<T>(high) || low == high ? v : static_cast<T>(low);  // [low, high) after rounding
    }
  });
  return t;
}
}  // namespace

Tensor uniform(const Shape& shape, double low, double high, DType dtype) {
  return uniform_named(shape, low, high, dtype, "uniform");
}
Tensor rand(const Shape& shape, DType dtype) { return uniform_named(shape, 0.0, 1.0, dtype, "rand"); }

Tensor randn(const Shape& shape, DType dtype) {
  Tensor t = make_empty(shape, dtype, "randn");
  std::lock_guard lock(generator_mutex);
  dispatch_floating(dtype, "randn", [&]<class T>() {
    T* p = impl_of(t).data<T>();
    const std::int64_t n = impl_of(t).numel;
    for (std::int64_t i = 0; i < n; i += 2) {  // Box–Muller: two normals per pair of uniforms
      double u1 = 1.0 - uniform01();           // in (0, 1], so log is finite
      double u2 = uniform01();
      double r = std::sqrt(-2.0 * std::log(u1));
      p[i] = static_cast<T>(r * std::cos(2.0 * M_PI * u2));
      if (i + 1 < n) p[i + 1] = static_cast<T>(r * std::sin(2.0 * M_PI * u2));
    }
  });
  return t;
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape) {
  if (high <= low)
    throw Error("randint: empty range [" + std::to_string(low) + ", " + std::to_string(high) + ")");
  Tensor t = make_empty(shape, DType::i64, "randint");
  std::lock_guard lock(generator_mutex);
  auto range = static_cast<std::uint64_t>(high - low);
  std::int64_t* p = impl_of(t).data<std::int64_t>();
  for (std::int64_t i = 0; i < impl_of(t).numel; ++i) {
    // Rejection sampling: no modulo bias.
    std::uint64_t limit = UINT64_MAX - UINT64_MAX % range, x;
    do x = generator(); while (x >= limit);
    p[i] = low + static_cast<std::int64_t>(x % range);
  }
  return t;
}

Tensor bernoulli(const Shape& shape, double p, DType dtype) {
  if (!(p >= 0.0 && p <= 1.0)) throw Error("bernoulli: probability " + std::to_string(p) + " is not in [0, 1]");
  Tensor t = make_empty(shape, dtype, "bernoulli");
  std::lock_guard lock(generator_mutex);
  dispatch_all(dtype, [&]<class T>() {
    T* q = impl_of(t).data<T>();
    for (std::int64_t i = 0; i < impl_of(t).numel; ++i) q[i] = static_cast<T>(uniform01() < p ? 1 : 0);
  });
  return t;
}

Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor rand_like(const Tensor& t) { return rand(t.shape(), t.dtype()); }
Tensor randn_like(const Tensor& t) { return randn(t.shape(), t.dtype()); }

}  // namespace xgrad

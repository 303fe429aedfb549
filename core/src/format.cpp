// Printing tensors, PyTorch-like, summarised numpy-style past 1000 elements.
#include <xgrad/core/format.hpp>

#include <cmath>
#include <ostream>

#include "checks.hpp"
#include "strided.hpp"
#include "tensor_impl.hpp"

namespace xgrad {

namespace {

constexpr std::int64_t kSummariseAbove = 1000;  // elements, as numpy's threshold
constexpr std::int64_t kEdgeItems = 3;

struct Printer {
  const Tensor& t;
  std::vector<double> values;
  std::vector<std::int64_t> ints;  // i64 elements, exact (doubles lose precision past 2^53)
  bool summarise = false;
  bool scientific = false;
  std::size_t width = 0;

  std::string element(std::int64_t flat_index) const {
    double v = values[flat_index];
    switch (t.dtype()) {
      case DType::b8: return v != 0.0 ? "true" : "false";
      case DType::i64: return fmt::format("{}", ints[flat_index]);
      default:
        if (std::isnan(v)) return "nan";
        if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
        return scientific ? fmt::format("{:.4e}", v) : fmt::format("{:.4f}", v);
    }
  }

  // Indices shown along a dimension of extent n (-1 marks the "..." gap).
  std::vector<std::int64_t> shown(std::int64_t n) const {
    std::vector<std::int64_t> idx;
    if (summarise && n > 2 * kEdgeItems) {
      for (std::int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);
      for (std::int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    } else {
      for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  void measure(std::size_t dim, std::int64_t offset) {
    const Shape& s = t.shape();
    if (dim == s.size()) {
      width = std::max(width, element(offset).size());
      return;
    }
    std::int64_t stride = 1;
    for (std::size_t d = dim + 1; d < s.size(); ++d) stride *= s[d];
    for (auto i : shown(s[dim]))
      if (i >= 0) measure(dim + 1, offset + i * stride);
  }

  void print(std::string& out, std::size_t dim, std::int64_t offset, std::size_t indent) const {
    const Shape& s = t.shape();
    if (dim == s.size()) {
      std::string e = element(offset);
      out += std::string(width - e.size(), ' ') + e;
      return;
    }
    std::int64_t stride = 1;
    for (std::size_t d = dim + 1; d < s.size(); ++d) stride *= s[d];
    out += '[';
    const auto idx = shown(s[dim]);
    const bool last_dim = dim + 1 == s.size();
    for (std::size_t j = 0; j < idx.size(); ++j) {
      if (j) {
        out += ',';
        if (last_dim) {
          out += ' ';
        } else {
          out += std::string(s.size() - dim - 1, '\n');
          out += std::string(indent + dim + 1, ' ');
        }
      }
      if (idx[j] < 0) out += "...";
      else print(out, dim + 1, offset + idx[j] * stride, indent);
    }
    out += ']';
  }
};

}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  Printer p{t, t.to_vector<double>(), {}};
  if (t.dtype() == DType::i64) p.ints = t.to_vector<std::int64_t>();
  p.summarise = t.numel() > kSummariseAbove;
  if (is_floating(t.dtype())) {
    double lo = INFINITY, hi = 0;
    for (double v : p.values)
      if (std::isfinite(v) && v != 0.0) {
        lo = std::min(lo, std::abs(v));
        hi = std::max(hi, std::abs(v));
      }
    p.scientific = hi >= 1e8 || (lo < 1e-4 && hi > 0) || (hi / lo > 1e6 && std::isfinite(lo));
  }
  std::string out = "tensor(";
  if (t.numel() == 0) {
    out += "[]";
  } else {
    p.measure(0, 0);
    p.print(out, 0, 0, 7);
  }
  if (t.numel() == 0 || p.summarise) out += ", shape=" + shape_str(t.shape());
  if (t.dtype() != DType::f32) out += ", dtype=" + std::string(dtype_name(t.dtype()));
  if (!t.is_leaf()) out += ", grad_fn=<" + t.grad_fn_name() + ">";
  else if (t.requires_grad()) out += ", requires_grad=true";
  return out + ")";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

}  // namespace xgrad

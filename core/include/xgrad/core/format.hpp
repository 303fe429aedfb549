#pragma once
/// \file
/// Printing tensors with fmt and iostreams, summarised for large tensors like numpy.
#include <iosfwd>
#include <string>

#include <fmt/format.h>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// PyTorch-like text: `tensor([[1.0000, 2.0000], [3.0000, 4.0000]], dtype=float64)`.
/// Tensors with more than 1000 elements show the first and last 3 entries of each
/// dimension with "..." between, as numpy does.
std::string to_string(const Tensor& t);
/// Writes to_string(t). Example: `std::cout << t << '\n';`
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace xgrad

// Kept out of the API reference: Doxygen cannot place a specialization in fmt's namespace.
/// \cond
/// `fmt::print("{}\n", t);`
template <>
struct fmt::formatter<xgrad::Tensor> : fmt::formatter<std::string> {
  template <class FormatContext>
  auto format(const xgrad::Tensor& t, FormatContext& ctx) const {
    return fmt::formatter<std::string>::format(xgrad::to_string(t), ctx);
  }
};
/// \endcond

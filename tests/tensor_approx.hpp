#pragma once
// `CHECK(t == approx(expected))`: same shape and values within tolerance (allclose); when
// the check fails doctest prints both tensors.
#include <ostream>

#include <xgrad/xgrad.hpp>

namespace xgrad_test {

struct ApproxTensor {
  xgrad::Tensor expected;
  double rtol, atol;
};
inline ApproxTensor approx(const xgrad::Tensor& expected, double rtol = 1e-5, double atol = 1e-6) {
  return {expected, rtol, atol};
}
inline bool operator==(const xgrad::Tensor& t, const ApproxTensor& a) {
  return xgrad::allclose(t, a.expected, a.rtol, a.atol);
}
inline std::ostream& operator<<(std::ostream& os, const ApproxTensor& a) { return os << "approx " << a.expected; }

}  // namespace xgrad_test

// The state a cell carries between steps, and a recurrent layer's state (nn/state.hpp).
#include <xgrad/nn/state.hpp>

#include <utility>

#include <fmt/format.h>

#include <xgrad/core/error.hpp>

namespace xgrad::nn {

CellState detach(const CellState& state) {
  CellState out;
  out.reserve(state.size());
  for (const Tensor& t : state) out.push_back(t.defined() ? t.detach() : t);
  return out;
}

RecurrentState::RecurrentState(Tensor h) : entries_{std::move(h)} {}
RecurrentState::RecurrentState(Tensor h, Tensor c) : entries_{std::move(h), std::move(c)} {}
RecurrentState::RecurrentState(CellState entries) : entries_(std::move(entries)) {}

const Tensor& RecurrentState::operator[](std::size_t k) const {
  if (k >= entries_.size())
    throw Error(fmt::format("RecurrentState: no entry {} in a state of {} entries", k, entries_.size()));
  return entries_[k];
}

const Tensor& RecurrentState::h() const {
  if (entries_.empty()) throw Error("RecurrentState::h: the state is empty (zeros)");
  return entries_[0];
}

const Tensor& RecurrentState::c() const {
  if (entries_.size() < 2)
    throw Error(fmt::format("RecurrentState::c: the state has {} entries; only an LSTM's has c (entry 1)",
                            entries_.size()));
  return entries_[1];
}

RecurrentState RecurrentState::detach() const { return nn::detach(entries_); }

}  // namespace xgrad::nn

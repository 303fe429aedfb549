#pragma once
/// \file
/// The state a recurrent cell carries from step to step, and a recurrent layer's state.
#include <cstddef>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad::nn {

/// What a recurrent cell carries from one time step to the next. `state[0]` is h, which is
/// also the cell's output at that step; further entries are extra state (LSTM's c).
/// Each entry is (B, state_sizes()[k]).
using CellState = std::vector<Tensor>;

/// `state` with every entry detached from the graph (for truncated backpropagation through
/// time: carry the values into the next chunk, not the graph).
/// Example: `state = nn::detach(state);`
CellState detach(const CellState& state);

/// The state of a recurrent layer — one type for every layer (and for LSTMCell's step), so
/// code that picks the cell at run time handles one state type: a tensor per state entry, h
/// first, then the cell's extra entries (an LSTM's c), each (L·D, B, size_k), or
/// (L·D, size_k) unbatched ((B, size_k) for a cell). Undefined entries (or an empty state)
/// stand for zeros. Entries are read with `h()`, `c()` or `[k]`.
/// Example:
///
///     nn::RecurrentState s;                 // zeros
///     s = gru_h0;                           // h only (RNN, GRU)
///     s = {h0, c0};                         // LSTM
///     Tensor h = out.state.h(), c = out.state.c();
class RecurrentState {
 public:
  RecurrentState() = default;
  /// h alone (RNN, GRU); implicit, so `s = h0;` works.
  RecurrentState(Tensor h);                // NOLINT: implicit, h alone
  /// An LSTM's (h, c).
  RecurrentState(Tensor h, Tensor c);
  /// Any cell's entries, h first (implicit).
  RecurrentState(CellState entries);       // NOLINT: implicit, any cell's entries
  /// Entry 0, h; throws when the state is empty.
  const Tensor& h() const;
  /// Entry 1, an LSTM's c; throws when the state has no second entry.
  const Tensor& c() const;
  /// Entry k; throws when out of range.
  const Tensor& operator[](std::size_t k) const;
  /// The number of entries (0 for the all-zeros state).
  std::size_t size() const { return entries_.size(); }
  /// True for the all-zeros state.
  bool empty() const { return entries_.empty(); }
  /// All entries, h first.
  const CellState& entries() const { return entries_; }
  /// Iteration over the entries, h first: `for (const Tensor& e : state)`.
  ///@{
  CellState::const_iterator begin() const { return entries_.begin(); }
  CellState::const_iterator end() const { return entries_.end(); }
  ///@}
  /// Every entry detached from the graph (truncated BPTT).
  RecurrentState detach() const;

 private:
  CellState entries_;
};

}  // namespace xgrad::nn

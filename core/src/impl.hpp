#pragma once
// Private to core: what a Tensor handle points at, and the graph node.
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include <xgrad/core/extension.hpp>
#include <xgrad/core/tensor.hpp>

#include "pool.hpp"
#include "small.hpp"

namespace xgrad {

// 64-byte aligned blocks for Storage, from a per-thread cache of freed blocks (storage.cpp).
// `capacity` receives what was really reserved (at least nbytes), which free_storage needs back.
std::byte* allocate_storage(std::size_t nbytes, std::size_t& capacity);
void free_storage(std::byte* data, std::size_t nbytes, std::size_t capacity);

// Raw, 64-byte aligned bytes (aligned for xsimd). Up to 64 bytes live inside the Storage
// itself: recurrent nets make many tiny tensors, and each saved allocation is per-op time.
struct Storage {
  static constexpr std::size_t kInlineBytes = 64;
  explicit Storage(std::size_t nbytes)
      : data(nbytes <= kInlineBytes ? inline_bytes : allocate_storage(nbytes, capacity)), nbytes(nbytes) {}
  ~Storage() {
    if (data != inline_bytes) free_storage(data, nbytes, capacity);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  alignas(64) std::byte inline_bytes[kInlineBytes];
  std::size_t capacity = 0;  // set by allocate_storage, before `data` (declared after it)
  std::byte* data;
  std::size_t nbytes;
  std::uint64_t version = 0;  // bumped by every in-place write (add_, copy_, fill_, ...)
};

class Node;

// How a view relates to its base, for autograd (PyTorch's CreationMeta).
enum class ViewKind : std::uint8_t {
  differentiable,  // made in grad mode by a single-output view op
  multi_output,    // one of several views returned by split / chunk / unbind
  no_grad,         // made while grad mode was off
};

// A user's gradient hook; returns the replacement gradient or an undefined tensor.
using GradHook = std::function<Tensor(const Tensor&)>;
// A leaf's hook that runs once its gradient has been accumulated (it receives the leaf).
using PostAccumulateHook = std::function<void(const Tensor&)>;
struct HookList {
  std::vector<std::pair<std::uint64_t, GradHook>> hooks;  // (id, hook), run in order
  std::weak_ptr<TensorImpl> retain;                       // retain_grad(): accumulate the result here
  std::vector<std::pair<std::uint64_t, PostAccumulateHook>> post;  // leaves only, after accumulation
  // True when no hook sees the gradient before it is accumulated (post hooks don't).
  bool empty() const { return hooks.empty() && retain.expired(); }
};
// Runs `list`'s hooks on `grad` (replacing it when one returns a tensor), then stores it for
// retain_grad. `name` names the tensor in errors.
void run_hooks(const HookList& list, Tensor& grad);
// Runs a leaf's post-accumulate hooks on the leaf.
void run_post_hooks(const HookList& list, const std::shared_ptr<TensorImpl>& leaf);

// The row-major strides of a shape, in elements.
Shape contiguous_strides(const Shape& shape);
// The same, into `strides` (reusing its capacity).
void contiguous_strides(const Shape& shape, Shape& strides);

class TensorImpl {
 public:
  // A contiguous tensor over the whole of `storage`.
  TensorImpl(std::shared_ptr<Storage> storage, Shape shape, DType dtype)
      : storage(std::move(storage)), shape(std::move(shape)), dtype(dtype),
        numel(shape_numel(this->shape)), strides(contiguous_strides(this->shape)) {}
  // Any geometry over `storage` (a view); the caller has checked the bounds.
  TensorImpl(std::shared_ptr<Storage> storage, Shape shape, Shape strides, std::int64_t offset, DType dtype)
      : storage(std::move(storage)), shape(std::move(shape)), dtype(dtype), numel(shape_numel(this->shape)),
        strides(std::move(strides)), offset(offset) {
    update_contiguous();
  }

  // The first element, for kernels that read or write densely: throws unless contiguous
  // (a kernel that forgot to call dense() fails loudly instead of reading the wrong elements).
  template <class T>
  T* data() const {
    if (!contiguous) not_contiguous();
    return reinterpret_cast<T*>(storage->data) + offset;
  }
  // The first element, whatever the layout (strided kernels).
  template <class T>
  T* raw() const { return reinterpret_cast<T*>(storage->data) + offset; }
  std::byte* raw_bytes() const { return storage->data + offset * static_cast<std::int64_t>(dtype_size(dtype)); }

  void update_contiguous();
  [[noreturn]] void not_contiguous() const;

  // Back to a blank tensor, keeping the capacity of shape and strides, for new_impl's cache.
  // Releases everything the tensor held (which may free a graph). A field added to TensorImpl
  // must be reset here too.
  void reset_for_reuse() {
    storage.reset();
    grad_fn.reset();
    output_nr = 0;
    requires_grad = false;
    grad = Tensor();
    hooks.reset();
    view_base.reset();
    view_kind = ViewKind::differentiable;
    view_version = 0;
  }

  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype;
  std::int64_t numel;
  Shape strides;             // in elements, one per dimension
  std::int64_t offset = 0;   // of the first element, in elements of the storage
  bool contiguous = true;    // row-major and dense (extent-1 dimensions' strides ignored)

  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::uint32_t output_nr = 0;    // which output of grad_fn this is
  Tensor grad;
  std::shared_ptr<HookList> hooks;  // a leaf's hooks (a non-leaf's live on its grad_fn)

  // Set when this tensor is a view: the tensor at the root of the chain of views (never a
  // view itself), how this view was made, and the storage version its grad_fn belongs to.
  std::shared_ptr<TensorImpl> view_base;
  ViewKind view_kind = ViewKind::differentiable;
  std::uint64_t view_version = 0;
};

// A new TensorImpl (no autograd state) over `storage`: contiguous with `shape`, or with any
// geometry (a view; the caller has checked the bounds). Taken from a per-thread cache of
// released ones when it can: their shape and strides keep their capacity, so the tensor
// costs no allocation (tensor.cpp says why).
std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype);
std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                                     std::int64_t offset, DType dtype);

// Brings a view's grad_fn up to date after an in-place write to its storage (the base's
// history was rewritten): the view becomes an as_strided view of its base's new history.
// Cheap when nothing changed; called wherever a tensor's grad_fn is about to be used.
void refresh_view(TensorImpl& t);
// refresh_view when due: after a write to the storage, or for a view made before its base
// required grad.
inline void sync_grad_fn(TensorImpl& t) {
  if (t.view_base && (t.view_version != t.storage->version || t.view_base->storage != t.storage ||
                      (!t.grad_fn && t.view_kind == ViewKind::differentiable && t.view_base->requires_grad)))
    refresh_view(t);
}

// Where the gradient of one input goes: into another node's output, or into a leaf's grad.
// Neither is set when that input does not require grad.
struct Edge {
  std::shared_ptr<Node> fn;
  std::uint32_t output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;
};

// The shape and dtype of a node's output, for its gradient. The extents live inline: backward
// compares every incoming gradient's shape with them, and a heap buffer written at forward
// time was a cache miss there (and one more allocation per op).
struct OutputMeta {
  SmallVector<std::int64_t, 4> shape;
  DType dtype{};
  std::span<const std::int64_t> extents() const { return {shape.data(), shape.size()}; }
};
// True when `shape` has exactly these extents.
inline bool same_extents(const Shape& shape, std::span<const std::int64_t> extents) {
  if (shape.size() != extents.size()) return false;
  for (std::size_t d = 0; d < extents.size(); ++d)
    if (shape[d] != extents[d]) return false;
  return true;
}

// The gradients a backward rule returns, one per input (undefined: none). Inline for up to
// two inputs: returning a std::vector was one more malloc and free per node in every pass.
// Converts from and to std::vector<Tensor>, for rules written either way.
class GradList {
 public:
  GradList() = default;
  GradList(std::initializer_list<Tensor> grads) {
    for (const Tensor& g : grads) list_.push_back(g);
  }
  GradList(std::vector<Tensor> grads) {
    for (Tensor& g : grads) list_.push_back(std::move(g));
  }
  operator std::vector<Tensor>() && {
    return std::vector<Tensor>(std::make_move_iterator(list_.begin()), std::make_move_iterator(list_.end()));
  }
  void push_back(Tensor g) { list_.push_back(std::move(g)); }
  std::size_t size() const { return list_.size(); }
  Tensor& operator[](std::size_t i) { return list_[i]; }
  const Tensor& operator[](std::size_t i) const { return list_[i]; }

 private:
  SmallVector<Tensor, 2> list_;
};
using Grads = GradList;  // what core's backward closures return

// Backward of a single-output op: the gradient of its output → one gradient per input.
// (InlineFunction rather than std::function: closures up to 48 bytes live in the node.)
using UnaryBackwardFn = InlineFunction<GradList(const Tensor& grad_output)>;

// The same, for ops whose backward can add a gradient straight into the place where it is
// accumulated (GEMMs with beta = 1). sinks[i], when not null, is the gradient accumulated so
// far for input i: owned by nobody else, of the input's shape and dtype. The function may add
// its gradient for input i into *sinks[i] and then return an undefined tensor for it.
using SinkBackwardFn = InlineFunction<GradList(const Tensor& grad_output, std::span<Tensor* const> sinks)>;

// One recorded application of a primitive.
class Node {
 public:
  explicit Node(std::string name) : name(std::move(name)) {}
  // Destroys the graph behind this node iteratively: a 100 000-node chain must not
  // recurse 100 000 destructors deep.
  ~Node();

  // Engine scratch, valid during one backward pass. First, beside `next`: backward's
  // counting walk reads a node's epoch as it reaches it, and sharing a cache line with what it
  // reads next saved a miss per node.
  std::uint64_t epoch = 0;
  std::int64_t dependencies = 0;
  SmallVector<Edge, 2> next;      // one per input
  SmallVector<Tensor, 1> grads;   // engine scratch: accumulated gradient of each output
  SmallVector<OutputMeta, 1> outputs;
  std::string name;
  // Exactly one is set while the graph lives (single-output ops use the first, which saves
  // a wrapper); all are empty once the graph is freed.
  UnaryBackwardFn backward_one;
  BackwardFn backward_many;
  SinkBackwardFn backward_into;
  bool freed() const { return !backward_one && !backward_many && !backward_into; }
  void free_backward() {
    backward_one = nullptr;
    backward_many = nullptr;
    backward_into = nullptr;
  }
  GradList run_backward(std::span<const Tensor> grads, std::span<Tensor* const> sinks) const {
    if (backward_one) return backward_one(grads[0]);
    if (backward_into) return backward_into(grads[0], sinks);
    return backward_many(std::vector<Tensor>(grads.begin(), grads.end()));
  }
  // The tensors backward reads and their storage versions when the op ran: backward refuses
  // to run once one was modified in place (its gradient would silently be wrong). `which`
  // names it in the error: input i (>= 0) or output -1 - i.
  // The tensor is held weakly and its storage only by address (to notice set_data): a weak
  // reference per tensor instead of two saved two atomic operations per saved tensor.
  struct SavedVersion {
    std::weak_ptr<TensorImpl> tensor;  // for the message, and set_data: its storage replaced
    std::weak_ptr<Storage> storage;    // checked while it lives, even once `tensor` is gone (a
                                       // detached handle elsewhere can still write to it)
    std::uint64_t version = 0;
    int which = 0;
  };
  SmallVector<SavedVersion, 2> saved;
  // Hooks on this node's outputs (register_hook / retain_grad on a non-leaf), by output.
  std::vector<std::shared_ptr<HookList>> hooks;

  // For split / chunk / unbind, whose outputs are disjoint views of one input: each output's
  // gradient is added into its window of one input-shaped buffer as it arrives, instead of
  // being kept until the last arrives and then concatenated. Unbinding T time steps would
  // otherwise hold T gradients and then a copy of them all (PyTorch's UnbindBackward does).
  struct Window {
    Shape shape, strides;  // inside a contiguous tensor of the input's shape
    std::int64_t offset;
  };
  struct Gather {
    Shape input_shape;
    DType dtype;
    std::vector<Window> windows;  // one per output
    Tensor buffer;                // the input's gradient so far (undefined until one arrives)
    std::vector<bool> written;    // per window: a gradient is in it (the rest is not yet zeroed)
    // Per window, the edges into that output in the current backward pass. A gathering node
    // whose input is the only consumer of a gathering parent's output gathers straight into
    // the parent's window (a GRU step's projection chunk into the projection's unbind).
    std::vector<std::uint32_t> consumers;
  };
  std::unique_ptr<Gather> gather;
};

// The inputs (or saved tensors) of an op being recorded, as a braced list or a vector, copying
// neither: a braced std::initializer_list<Tensor> copied every handle (two atomic operations
// each, four to six per op).
class TensorList {
 public:
  struct Ref {
    Ref(const Tensor& t) : tensor(&t) {}
    const Tensor* tensor;
  };
  TensorList() = default;
  // A view, like std::span: only ever a parameter, so the braced list's array (which lives to
  // the end of the caller's full-expression) outlives it. GCC warns on any such capture.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
#endif
  TensorList(std::initializer_list<Ref> refs) : refs_(refs.begin()), size_(refs.size()) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
  TensorList(const std::vector<Tensor>& tensors) : tensors_(tensors.data()), size_(tensors.size()) {}
  TensorList(std::span<const Tensor> tensors) : tensors_(tensors.data()), size_(tensors.size()) {}

  std::size_t size() const { return size_; }
  const Tensor& operator[](std::size_t i) const { return refs_ ? *refs_[i].tensor : tensors_[i]; }
  struct Iterator {
    const TensorList* list;
    std::size_t i;
    const Tensor& operator*() const { return (*list)[i]; }
    Iterator& operator++() {
      ++i;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return i != other.i; }
  };
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, size_}; }

 private:
  const Ref* refs_ = nullptr;
  const Tensor* tensors_ = nullptr;
  std::size_t size_ = 0;
};

// Core's own forms of record_op take the tensors backward reads (`saved`, the tensors its
// closure captured; undefined ones are skipped): only they are version-checked, as PyTorch
// checks only what an op saved. The public record_op checks every input and output.
Tensor record_unary(std::string name, TensorList inputs, Tensor output, UnaryBackwardFn backward, TensorList saved);
// A template so that a closure matches it exactly, ahead of the public overload taking a
// std::function (the braced lists convert equally well to either).
template <class F>
Tensor record_op(std::string name, TensorList inputs, Tensor output, F&& backward, TensorList saved) {
  return record_unary(std::move(name), inputs, std::move(output), UnaryBackwardFn(std::forward<F>(backward)), saved);
}
std::vector<Tensor> record_op(std::string name, TensorList inputs, std::vector<Tensor> outputs,
                              BackwardFn backward, std::initializer_list<Tensor> saved);
// record_op for a single-output op with a SinkBackwardFn (core's GEMM ops).
Tensor record_op_into(std::string name, TensorList inputs, Tensor output, SinkBackwardFn backward, TensorList saved);

// Turns grad mode on for its lifetime (core's own graph surgery runs under it).
class EnableGradGuard {
 public:
  EnableGradGuard();
  ~EnableGradGuard();
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool previous_;
};

// After an in-place op wrote `result` (computed out of place, recorded) into `self`: self
// takes result's place in the graph; through a view, the base's history is rewritten
// (copy_slices) and the view becomes as_strided of the base's new history.
void rebase_history(const Tensor& self, const Tensor& result, const char* op);
// Throws (naming `op`) unless a write through the view `view` could rewrite its base's history:
// checked before the write, so a refused write changes nothing.
void check_rebase(const TensorImpl& view, const char* op);

// A view of `base` with the given geometry (offset and strides in elements of the storage),
// recorded in the graph under `name` with `backward`, and linked to base's root for autograd
// through in-place writes.
Tensor make_view(const Tensor& base, Shape shape, Shape strides, std::int64_t offset);
Tensor record_view(const char* name, const Tensor& base, Tensor view, UnaryBackwardFn backward);
std::vector<Tensor> record_views(const char* name, const Tensor& base, std::vector<Tensor> views, BackwardFn backward);

// `t` itself when contiguous, else a contiguous copy (not recorded): for kernels that read
// densely. Cheap and allocation-free in the common, contiguous case.
Tensor dense(const Tensor& t);
// For kernels that broadcast: an expanded view (stride 0) as the contiguous tensor it expands,
// with extent 1 in the broadcast dimensions, so broadcasting costs no copy; any other
// non-contiguous tensor as a dense copy.
Tensor compact(const Tensor& t);
// Copies src's elements into dst's (same shape; any layouts; dtypes converted). Elementwise
// in row-major order, so an overlapping dst (stride 0) keeps the last write.
void copy_elements(const TensorImpl& src, TensorImpl& dst);
// A zero tensor of `in_shape` with g added at the elements of a view of it (g's shape, the
// view's strides and offset inside a contiguous tensor of in_shape): the backward of narrow,
// select and as_strided. Elements the view reaches twice accumulate.
Tensor scatter_into_zeros(const Tensor& g, const Shape& in_shape, const Shape& strides, std::int64_t offset);
// dst[i] += src[i] over dst's elements, any layouts (same shape and dtype); a dst position
// reached twice (stride 0) accumulates both.
void add_elements(const TensorImpl& src, TensorImpl& dst);
// The lowest and highest storage positions (in elements) a geometry reaches: the offset plus,
// per dimension, (extent - 1) * stride on the side of the stride's sign; an empty geometry
// reaches only its offset. Every size × stride and offset sum of the strided code is computed
// here, overflow-checked: a sum past int64 throws an Error naming `op` and the geometry.
struct Reach {
  std::int64_t lo, hi;
};
Reach geometry_reach(const Shape& shape, const Shape& strides, std::int64_t offset, const char* op);
// Whether two elements of t share one memory location: no (provably), yes (a stride of 0 over
// an extent > 1, or two dimensions with one stride), or too_hard (the layout is not provably
// free of overlap: as PyTorch's MemOverlap::TooHard, but refused for writes).
enum class Overlap { no, yes, too_hard };
Overlap internal_overlap(const TensorImpl& t);
// True unless t provably has no two elements at one memory location.
bool has_internal_overlap(const TensorImpl& t);
// Throws "<op>: ... " unless t can be written elementwise without overlapping itself (writes
// to a layout that overlaps or might are refused, by name).
void require_no_overlap(const TensorImpl& t, const char* op);

// Calls f(offsets) with the offsets (in elements, from each first element) of every element
// of N geometries of one shape, in row-major order. Iterative: an odometer over the outer
// dimensions and a plain loop over the last.
template <std::size_t N, class F>
void for_each_offsets(const Shape& shape, const std::array<const Shape*, N>& strides, F&& f) {
  const std::size_t rank = shape.size();
  std::array<std::int64_t, N> o{};
  if (rank == 0) {
    f(o);
    return;
  }
  for (auto e : shape)
    if (e == 0) return;
  std::vector<std::int64_t> index(rank, 0);
  std::array<std::int64_t, N> last_stride;
  for (std::size_t k = 0; k < N; ++k) last_stride[k] = (*strides[k])[rank - 1];
  const std::int64_t last = shape[rank - 1];
  // Offsets never step past the last element of a dimension: every one computed is an element's
  // own, inside the range geometry_reach checked (as_strided may pair an extent of 1 with a
  // stride near INT64_MAX, which one more step would overflow).
  for (;;) {
    std::array<std::int64_t, N> p = o;
    for (std::int64_t j = 0;;) {
      f(p);
      if (++j == last) break;
      for (std::size_t k = 0; k < N; ++k) p[k] += last_stride[k];
    }
    std::size_t d = rank - 1;
    for (;;) {
      if (d == 0) return;
      --d;
      if (++index[d] < shape[d]) {
        for (std::size_t k = 0; k < N; ++k) o[k] += (*strides[k])[d];
        break;
      }
      for (std::size_t k = 0; k < N; ++k) o[k] -= (*strides[k])[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}
template <class F>
void for_each_offset2(const Shape& shape, const Shape& sa, const Shape& sb, F&& f) {
  for_each_offsets<2>(shape, {&sa, &sb}, [&](const std::array<std::int64_t, 2>& o) { f(o[0], o[1]); });
}
template <class F>
void for_each_offset(const Shape& shape, const Shape& strides, F&& f) {
  for_each_offsets<1>(shape, {&strides}, [&](const std::array<std::int64_t, 1>& o) { f(o[0]); });
}

// Shorthand used throughout core.
inline TensorImpl& impl_of(const Tensor& t) { return *t.impl(); }

/// Throws, naming `op` and the shape, unless every extent is >= 0 and the product of the
/// extents (zeros counted as 1, so an empty tensor's strides fit too) fits in an int64.
/// Every shape a tensor is made with or viewed as passes this once.
void check_shape(const Shape& shape, const char* op);
// A new contiguous tensor with uninitialised data; `op` names the caller in errors.
Tensor make_empty(const Shape& shape, DType dtype, const char* op = "empty");

// Converting a floating-point number that an integer type cannot hold (NaN, ±Inf, 1e30) is
// undefined behaviour in C++ (it wrote INT64_MIN): every float-to-integer conversion in core
// goes through these. True when `value` can become an element of `dtype`: always for the
// floating dtypes and bool, for int64 a value inside its range (truncated toward zero).
inline bool fits_dtype(double value, DType dtype) {
  return dtype != DType::i64 || (value >= -0x1p63 && value < 0x1p63);
}
// Throws "<op>: the value V does not fit an int64 tensor ..." unless fits_dtype(value, dtype).
void require_fits(double value, DType dtype, const char* op);
[[noreturn]] void conversion_error(double value, const char* from, const char* to, const char* op);
// static_cast<D>(v) for one element, throwing (naming `op`) where a floating v does not fit an
// integer D.
template <class D, class S>
D convert_element(S v, const char* op) {
  if constexpr (std::is_integral_v<D> && !std::is_same_v<D, bool> && std::is_floating_point_v<S>) {
    constexpr double bound = static_cast<double>(std::uint64_t{1} << std::numeric_limits<D>::digits);
    if (!(static_cast<double>(v) >= -bound && static_cast<double>(v) < bound))
      conversion_error(static_cast<double>(v), std::is_same_v<S, float> ? "float32" : "float64",
                       std::is_same_v<D, std::int64_t> ? "int64" : "int32", op);
  }
  return static_cast<D>(v);
}

// Normalises a possibly negative dim for a tensor of rank `rank`; throws naming `op`.
// With `scalar_ok`, a 0-d tensor accepts dim 0 and -1 (for reductions and softmax).
std::int64_t wrap_dim(std::int64_t dim, std::int64_t rank, const char* op, bool scalar_ok = false);

// Throws "<op>: expected a floating-point tensor, got int64" unless `t` is f32 or f64.
void require_floating(const Tensor& t, const char* op);
// Throws unless a and b share one dtype.
void require_same_dtype(const Tensor& a, const Tensor& b, const char* op);
// Throws "<op>: undefined tensor" for default-constructed tensors.
void require_defined(const Tensor& t, const char* op);

// True when an op on these inputs must be recorded.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);

}  // namespace xgrad

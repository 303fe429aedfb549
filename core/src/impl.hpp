#pragma once
// Private to core: what a Tensor handle points at, and the graph node.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include <xgrad/core/extension.hpp>
#include <xgrad/core/tensor.hpp>

namespace xgrad {

// 64-byte aligned blocks for Storage, from a per-thread cache of freed blocks (storage.cpp).
std::byte* allocate_storage(std::size_t nbytes);
void free_storage(std::byte* data, std::size_t nbytes);

// Raw, 64-byte aligned bytes (aligned for xsimd). Up to 64 bytes live inside the Storage
// itself: recurrent nets make many tiny tensors, and each saved allocation is per-op time.
struct Storage {
  static constexpr std::size_t kInlineBytes = 64;
  explicit Storage(std::size_t nbytes)
      : data(nbytes <= kInlineBytes ? inline_bytes : allocate_storage(nbytes)), nbytes(nbytes) {}
  ~Storage() {
    if (data != inline_bytes) free_storage(data, nbytes);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  alignas(64) std::byte inline_bytes[kInlineBytes];
  std::byte* data;
  std::size_t nbytes;
  std::uint64_t version = 0;  // bumped by every in-place write (add_, copy_, fill_, ...)
};

class Node;

class TensorImpl {
 public:
  TensorImpl(std::shared_ptr<Storage> storage, Shape shape, DType dtype)
      : storage(std::move(storage)), shape(std::move(shape)), dtype(dtype),
        numel(shape_numel(this->shape)) {}

  template <class T>
  T* data() const { return reinterpret_cast<T*>(storage->data); }

  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype;
  std::int64_t numel;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::uint32_t output_nr = 0;    // which output of grad_fn this is
  Tensor grad;
};

// Where the gradient of one input goes: into another node's output, or into a leaf's grad.
// Neither is set when that input does not require grad.
struct Edge {
  std::shared_ptr<Node> fn;
  std::uint32_t output_nr = 0;
  std::shared_ptr<TensorImpl> leaf;
};

struct OutputMeta {
  Shape shape;
  DType dtype;
};

// Backward of a single-output op: the gradient of its output → one gradient per input.
using UnaryBackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// The same, for ops whose backward can add a gradient straight into the place where it is
// accumulated (GEMMs with beta = 1). sinks[i], when not null, is the gradient accumulated so
// far for input i: owned by nobody else, of the input's shape and dtype. The function may add
// its gradient for input i into *sinks[i] and then return an undefined tensor for it.
using SinkBackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output, std::span<Tensor* const> sinks)>;

// One recorded application of a primitive.
class Node {
 public:
  Node(std::string name, std::vector<Edge> next) : name(std::move(name)), next(std::move(next)) {}
  // Destroys the graph behind this node iteratively: a 100 000-node chain must not
  // recurse 100 000 destructors deep.
  ~Node();

  std::string name;
  std::vector<Edge> next;         // one per input
  std::vector<OutputMeta> outputs;
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
  std::vector<Tensor> run_backward(const std::vector<Tensor>& grads, std::span<Tensor* const> sinks) const {
    if (backward_into) return backward_into(grads[0], sinks);
    return backward_one ? backward_one(grads[0]) : backward_many(grads);
  }
  // Storage versions of the inputs and outputs when the op ran: backward refuses to use
  // data that was modified in place since (its gradient would silently be wrong).
  std::vector<std::pair<std::weak_ptr<Storage>, std::uint64_t>> versions;

  // Engine scratch, valid during one backward pass.
  std::vector<Tensor> grads;      // accumulated gradient of each output
  std::int64_t dependencies = 0;
  std::uint64_t epoch = 0;
};

// record_op for a single-output op with a SinkBackwardFn (core's GEMM ops).
Tensor record_op_into(std::string name, const std::vector<Tensor>& inputs, Tensor output, SinkBackwardFn backward);

// Shorthand used throughout core.
inline TensorImpl& impl_of(const Tensor& t) { return *t.impl(); }

// A new contiguous tensor with uninitialised data; `op` names the caller in errors.
Tensor make_empty(const Shape& shape, DType dtype, const char* op = "empty");

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

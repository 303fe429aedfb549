#pragma once
// Private to core: containers that keep their first few elements inside their owner. A
// recorded op has one or two inputs, one output and saves at most three tensors, and each heap
// allocation saved is per-op time (bench_op_overhead: ~20 mallocs per op before these).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace xgrad {

// A vector whose first N elements live inline (T must be default-constructible: unused inline
// slots hold T{}); past N, all elements move to a heap vector.
template <class T, std::size_t N>
class SmallVector {
 public:
  SmallVector() = default;
  SmallVector(SmallVector&& other) noexcept { *this = std::move(other); }
  SmallVector& operator=(SmallVector&& other) noexcept {
    inline_ = std::move(other.inline_);
    heap_ = std::move(other.heap_);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }
  SmallVector(const SmallVector&) = delete;
  SmallVector& operator=(const SmallVector&) = delete;

  void push_back(T value) {
    if (!heap_ && size_ < N) {
      inline_[size_++] = std::move(value);
      return;
    }
    spill(size_ + 1);
    heap_->push_back(std::move(value));
    ++size_;
  }
  // Grows with T{} or shrinks to n elements.
  void resize(std::size_t n) {
    if (!heap_ && n <= N) {
      for (std::size_t i = n; i < size_; ++i) inline_[i] = T{};
    } else {
      spill(n);
      heap_->resize(n);
    }
    size_ = static_cast<std::uint32_t>(n);
  }
  void clear() { resize(0); }

  T* data() { return heap_ ? heap_->data() : inline_.data(); }
  const T* data() const { return heap_ ? heap_->data() : inline_.data(); }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }
  T& operator[](std::size_t i) { return data()[i]; }
  const T& operator[](std::size_t i) const { return data()[i]; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  void spill(std::size_t capacity) {
    if (heap_) return;
    heap_ = std::make_unique<std::vector<T>>();
    heap_->reserve(std::max(capacity, 2 * N));
    for (std::size_t i = 0; i < size_; ++i) heap_->push_back(std::exchange(inline_[i], T{}));
  }
  std::array<T, N> inline_{};
  std::unique_ptr<std::vector<T>> heap_;  // all elements, once there are more than N
  std::uint32_t size_ = 0;
};

// A move-only std::function that keeps callables of up to Capacity bytes inline.
// libstdc++'s std::function keeps only 16 bytes inline, so a backward closure that saves two
// tensors (mul's: 32 bytes) was one more malloc and free per op.
template <class Signature, std::size_t Capacity = 48>
class InlineFunction;

template <class R, class... Args, std::size_t Capacity>
class InlineFunction<R(Args...), Capacity> {
 public:
  InlineFunction() = default;
  InlineFunction(std::nullptr_t) {}
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, InlineFunction> &&
                                              std::is_invocable_r_v<R, std::decay_t<F>&, Args...>>>
  InlineFunction(F&& f) {
    using D = std::decay_t<F>;
    if constexpr (std::is_constructible_v<bool, const D&>) {
      if (!static_cast<bool>(f)) return;  // an empty std::function or null pointer stays empty
    }
    if constexpr (sizeof(D) <= Capacity && alignof(D) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<D>) {
      ::new (static_cast<void*>(buffer_)) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      *reinterpret_cast<D**>(buffer_) = new D(std::forward<F>(f));
      ops_ = &heap_ops<D>;
    }
  }
  InlineFunction(InlineFunction&& other) noexcept { take(other); }
  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  InlineFunction& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  R operator()(Args... args) const { return ops_->call(const_cast<std::byte*>(buffer_), std::forward<Args>(args)...); }

 private:
  struct Ops {
    R (*call)(void*, Args&&...);
    void (*move)(void* from, void* to) noexcept;  // move-constructs into `to`, destroys `from`
    void (*destroy)(void*) noexcept;
  };
  template <class D>
  static constexpr Ops inline_ops{
      [](void* p, Args&&... a) -> R { return std::invoke(*static_cast<D*>(p), std::forward<Args>(a)...); },
      [](void* from, void* to) noexcept {
        ::new (to) D(std::move(*static_cast<D*>(from)));
        static_cast<D*>(from)->~D();
      },
      [](void* p) noexcept { static_cast<D*>(p)->~D(); }};
  template <class D>
  static constexpr Ops heap_ops{
      [](void* p, Args&&... a) -> R { return std::invoke(**static_cast<D**>(p), std::forward<Args>(a)...); },
      [](void* from, void* to) noexcept { *static_cast<D**>(to) = *static_cast<D**>(from); },
      [](void* p) noexcept { delete *static_cast<D**>(p); }};

  void take(InlineFunction& other) noexcept {
    if (!other.ops_) return;
    other.ops_->move(other.buffer_, buffer_);
    ops_ = std::exchange(other.ops_, nullptr);
  }
  void reset() noexcept {
    if (ops_) std::exchange(ops_, nullptr)->destroy(buffer_);
  }

  alignas(std::max_align_t) std::byte buffer_[Capacity];
  const Ops* ops_ = nullptr;
};

}  // namespace xgrad

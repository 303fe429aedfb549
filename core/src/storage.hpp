#pragma once
// Private to core: memory. A Storage is a tensor's raw bytes (small ones inline, the rest from
// storage.cpp's per-thread block cache); BlockPool and make_pooled are the per-thread free
// lists for the other blocks every recorded op allocates (a Node per op, a Storage per result,
// the shared_ptr control blocks of its tensors); TensorImpls themselves are recycled whole by
// new_impl, whose cache lives in storage.cpp too. Every pool is here so that a reader finds
// where each per-op allocation goes in one place.
//
// Why: glibc malloc/free dominated bench_op_overhead's time. These blocks (up to ~600
// bytes) are past its fast bins, and forward allocates thousands before backward frees any, so
// each pair went through its general path (coalescing, unlink_chunk, malloc_consolidate;
// Storage, 64-byte aligned, through memalign).
//
// A pooled block is one ::operator new allocation of its own, so it may be freed on any
// thread: it then joins that thread's list, and a thread's lists are returned to the system
// when the thread exits (or straight away once they are gone, for objects destroyed after the
// thread's thread-locals, e.g. a global Tensor at exit). Idle blocks per list are capped.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

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

template <std::size_t Size, std::size_t Align>
class BlockPool {
  static_assert(Size >= sizeof(void*) && Align >= alignof(void*));

 public:
  static void* allocate() {
    if (List* list = local()) {
      if (FreeBlock* b = list->head) {
        list->head = b->next;
        --list->count;
        return b;
      }
    }
    return system_allocate();
  }
  static void deallocate(void* p) noexcept {
    List* list = local();
    if (list == nullptr || list->count >= kMaxIdle) {
      system_free(p);
      return;
    }
    auto* b = static_cast<FreeBlock*>(p);
    b->next = list->head;
    list->head = b;
    ++list->count;
  }

 private:
  // Idle bytes kept per thread and block size: 32 MB, above a 10 000-op chain's ~6 MB of nodes.
  static constexpr std::size_t kMaxIdle = (std::size_t{32} << 20) / Size;
  static void* system_allocate() {
    if constexpr (Align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) return ::operator new(Size, std::align_val_t{Align});
    else return ::operator new(Size);
  }
  static void system_free(void* p) noexcept {
    if constexpr (Align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) ::operator delete(p, std::align_val_t{Align});
    else ::operator delete(p);
  }
  struct FreeBlock {
    FreeBlock* next;
  };
  struct List {
    FreeBlock* head = nullptr;
    std::size_t count = 0;
    ~List() {
      gone = true;
      while (head) {
        FreeBlock* b = head;
        head = b->next;
        system_free(b);
      }
    }
  };
  static inline thread_local bool gone = false;
  static List* local() {
    if (gone) return nullptr;
    thread_local List list;
    return &list;
  }
};

// An allocator for std::allocate_shared: single objects come from BlockPool (the object and
// its shared_ptr control block in one block), arrays from ::operator new.
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n == 1) return static_cast<T*>(BlockPool<sizeof(T), alignof(T) < alignof(void*) ? alignof(void*) : alignof(T)>::allocate());
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{alignof(T)}));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n == 1) return BlockPool<sizeof(T), alignof(T) < alignof(void*) ? alignof(void*) : alignof(T)>::deallocate(p);
    ::operator delete(p, std::align_val_t{alignof(T)});
  }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const noexcept { return true; }
};

// std::make_shared, with the block from this thread's pool.
template <class T, class... Args>
std::shared_ptr<T> make_pooled(Args&&... args) {
  return std::allocate_shared<T>(PoolAllocator<T>{}, std::forward<Args>(args)...);
}

}  // namespace xgrad

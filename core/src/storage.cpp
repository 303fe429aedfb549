// Memory: the per-thread caches behind storage.hpp. First, storage blocks: a recurrent net
// allocates and frees blocks of the same few sizes thousands of times per step (one per op
// and per gradient); taking them from a free list instead of malloc saves the allocator's
// work and the page faults of touching fresh pages every time, and mapping the large ones
// directly keeps the peak resident memory that of the live tensors. Then, at the end, the
// cache of released TensorImpls behind new_impl, and make_empty, where every tensor's memory
// is sized.
#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <map>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>

#include <xgrad/core/memory.hpp>

#include "checks.hpp"
#include "tensor_impl.hpp"

namespace xgrad {

namespace {

// Small blocks (up to kLargeBlock) come from malloc and are cached by size class: a recurrent
// step allocates the same few sizes thousands of times. Four classes per power of two
// (2^k · {1, 1.25, 1.5, 1.75}): at most 25 % rounding, which costs no resident memory beyond
// the touched bytes.
//
// Large blocks (256 KB to 4 MB: whole sequences of the smaller models, a step of the larger
// ones) are mapped directly and kept when freed, since touching fresh pages costs a page fault
// each (mapping them anew every time made training steps several times slower). A request takes
// the smallest idle range that fits, split to size; on a miss, idle ranges too small for it
// are unmapped first, as much as the new block maps, so idle memory is traded for the new
// block instead of adding to it (unless they add up to it: see LargeArena::take). Huge blocks
// (4 MB and up) are kept as long as resident memory stays within the thread's peak of live
// ones, with the same exception: see HugeArena.
// Through malloc, glibc's heap kept freed large blocks resident instead, raising a training
// step's peak memory above what mapping them directly needs.
constexpr std::size_t kLargeBlock = std::size_t{256} << 10;        // 256 KB
constexpr std::size_t kMaxCachedBytes = std::size_t{256} << 20;    // small blocks, per thread
constexpr std::size_t kMaxIdleLarge = std::size_t{128} << 20;      // large blocks, per thread
constexpr std::size_t kClasses = 4 * 64;
constexpr std::size_t kPage = 4096;

// The class of a block of n bytes and its capacity.
std::size_t size_class(std::size_t n, std::size_t& capacity) {
  const int k = std::bit_width(n - 1) - 1;  // 2^k < n <= 2^(k+1)
  const std::size_t base = std::size_t{1} << k, quarter = base / 4;
  const std::size_t steps = (n - base + quarter - 1) / quarter;  // 1..4 quarters above 2^k
  capacity = base + steps * quarter;
  return 4 * static_cast<std::size_t>(k) + steps - 1;
}

// The calling thread's counts of what it mapped and unmapped (memory_stats()). A plain
// thread-local: trivially destructible, so it stays usable while other thread-locals go.
thread_local MemoryStats arena_stats;

void count_unmap(std::size_t n) {
  ++arena_stats.unmaps;
  arena_stats.unmapped_bytes += static_cast<std::int64_t>(n);
}

void* system_allocate(std::size_t n) { return ::operator new(n, std::align_val_t{64}); }
void system_free(void* p) { ::operator delete(p, std::align_val_t{64}); }

std::byte* map_block(std::size_t n) {
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  ++arena_stats.maps;
  arena_stats.mapped_bytes += static_cast<std::int64_t>(n);
  return static_cast<std::byte*>(p);
}

// Huge blocks (whole sequences of the larger models) are mapped 2 MB-aligned and marked for
// transparent huge pages (honoured where THP is enabled or set to madvise; elsewhere they fall
// back to ordinary pages): one fault and one 2 MB clear per page instead of 512 faults.
constexpr std::size_t kHugeBlock = std::size_t{4} << 20;  // 4 MB
constexpr std::size_t kHugePage = std::size_t{2} << 20;
// Sizes are kept to the 4 KB page, not rounded to 2 MB: idle ranges are split and merged, and
// a GRU's (T·B, 3H) projection must fit its three (T·B, H) successors exactly. Rounded to
// 2 MB, a third of 19.7 MB took 8 MB, the third did not fit, and a GRU of size M mapped and
// cleared 28 MB afresh every training step.
std::size_t huge_size(std::size_t n) { return (n + kPage - 1) / kPage * kPage; }
std::byte* map_huge(std::size_t n) {
  const std::size_t size = huge_size(n);
  auto* raw = static_cast<std::byte*>(::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE,
                                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto address = reinterpret_cast<std::uintptr_t>(raw);
  const std::size_t head = (kHugePage - address % kHugePage) % kHugePage;
  if (head) ::munmap(raw, head);
  ::munmap(raw + head + size, kHugePage - head);
  std::byte* p = raw + head;
  ++arena_stats.maps;
  arena_stats.mapped_bytes += static_cast<std::int64_t>(size);
  // Only whole 2 MB pages: a huge page for the tail would hold up to 2 MB nobody uses.
  if (const std::size_t whole = n / kHugePage * kHugePage) ::madvise(p, whole, MADV_HUGEPAGE);
  return p;
}

// Idle large blocks: page ranges kept mapped for reuse. A request takes the smallest idle
// range that fits and leaves the rest idle; freed ranges merge with idle neighbours, so the
// pages of one freed sequence-sized block can serve several smaller ones and then be whole
// again. A request no idle range can serve unmaps idle ranges (smallest first, as much as it
// maps) before mapping its own, so idle pages are traded for it rather than added; except
// that pieces adding up to it are kept (take()).
struct LargeArena {
  std::map<std::byte*, std::size_t> by_address;
  std::multimap<std::size_t, std::byte*> by_size;
  std::size_t idle_bytes = 0;
  std::size_t slack = 0;  // mapped beyond the idle pages traded on a miss: see take()

  void erase(std::map<std::byte*, std::size_t>::iterator it) {
    auto [lo, hi] = by_size.equal_range(it->second);
    for (auto s = lo; s != hi; ++s)
      if (s->second == it->first) {
        by_size.erase(s);
        break;
      }
    idle_bytes -= it->second;
    by_address.erase(it);
  }
  void add(std::byte* p, std::size_t size) {
    if (auto next = by_address.find(p + size); next != by_address.end()) {
      size += next->second;
      erase(next);
    }
    if (auto it = by_address.lower_bound(p); it != by_address.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == p) {
        p = prev->first;
        size += prev->second;
        erase(prev);
      }
    }
    by_address.emplace(p, size);
    by_size.emplace(size, p);
    idle_bytes += size;
  }
  // The smallest idle range of at least `want` bytes, split to size; null when none is.
  std::byte* take_fit(std::size_t want) {
    auto fit = by_size.lower_bound(want);
    if (fit == by_size.end()) return nullptr;
    std::byte* p = fit->second;
    const std::size_t size = fit->first;
    erase(by_address.find(p));
    if (size > want) add(p + want, size - want);
    return p;
  }
  // Unmaps the smallest idle range; returns its size.
  std::size_t release_smallest() {
    auto smallest = by_size.begin();
    std::byte* p = smallest->second;
    const std::size_t size = smallest->first;
    erase(by_address.find(p));
    ::munmap(p, size);
    count_unmap(size);
    return size;
  }
  std::byte* take(std::size_t want) {
    if (std::byte* p = take_fit(want)) return p;
    // Idle pages that add up to the request but lie in pieces are kept (see HugeArena): a
    // loop that holds its last output while making the next would otherwise unmap and clear
    // the same pages every pass. Such a miss raises the allowance (pages mapped beyond those
    // traded) to the largest such request.
    if (idle_bytes >= want) slack = std::max(slack, want);
    std::size_t released = 0;
    while (released + slack < want && !by_size.empty()) released += release_smallest();
    return map_block(want);
  }
  void give_back(std::byte* p, std::size_t size) {
    add(p, size);
    while (idle_bytes > kMaxIdleLarge) {  // the largest idle ranges go first
      auto largest = std::prev(by_size.end());
      std::byte* q = largest->second;
      const std::size_t qsize = largest->first;
      erase(by_address.find(q));
      ::munmap(q, qsize);
      count_unmap(qsize);
    }
  }
  ~LargeArena() {
    for (auto& [p, size] : by_address) ::munmap(p, size);
  }
};

// Idle huge blocks (whole sequences: projections, outputs, their gradients), kept as page
// ranges like the large ones. A training step allocates the same few of them every time, and
// mapping them afresh costs a fault and a 2 MB clear per huge page each time. Idle ranges are
// held only while live + idle stays within the most this thread ever had live at once, so
// resident memory does not grow past that peak, with one exception: a miss when the idle
// pages add up to the request but lie in pieces. Say a GRU's inference loop holds the last
// output while computing the next: the new output is cut from the freed projection's pages,
// the old one is freed elsewhere, and the next projection finds its pages in two pieces.
// Unmapping them to map it afresh would clear the whole block again every pass, so
// such a miss keeps them, raising the allowance above the peak to the largest such request,
// so resident memory stays within the peak plus one block.
struct HugeArena {
  LargeArena ranges;
  std::int64_t live_bytes = 0, peak_live = 0, slack = 0;

  std::byte* take(std::size_t nbytes) {
    const std::size_t size = huge_size(nbytes);
    // A request the system refuses leaves the counts as they were: counted anyway, a few
    // refused exabyte requests overflowed live_bytes, and trim() stopped giving pages back.
    if (size > static_cast<std::size_t>(INT64_MAX - std::max<std::int64_t>(live_bytes, 0))) throw std::bad_alloc();
    const std::int64_t live_before = live_bytes, peak_before = peak_live, slack_before = slack;
    live_bytes += static_cast<std::int64_t>(size);
    if (std::byte* p = ranges.take_fit(size)) return p;
    peak_live = std::max(peak_live, live_bytes);
    if (ranges.idle_bytes >= size) slack = std::max(slack, static_cast<std::int64_t>(size));
    trim();  // before mapping, so that live + idle never passes the peak and its allowance
    try {
      return map_huge(nbytes);
    } catch (const std::bad_alloc&) {
      live_bytes = live_before;
      peak_live = peak_before;
      slack = slack_before;
      throw;
    }
  }
  void give_back(std::byte* p, std::size_t size) {
    live_bytes -= static_cast<std::int64_t>(size);  // negative in a thread that frees what others took
    ranges.add(p, size);
    trim();
  }
  void trim() {
    while (!ranges.by_size.empty() &&
           live_bytes + static_cast<std::int64_t>(ranges.idle_bytes) > peak_live + slack)
      ranges.release_smallest();
  }
};

struct Cache {
  std::array<std::vector<void*>, kClasses> free;  // small blocks by class
  std::size_t bytes = 0;
  LargeArena large;
  HugeArena huge;
  ~Cache() {
    for (std::size_t c = 0; c < kClasses; ++c)
      for (void* p : free[c]) system_free(p);
  }
};

// The calling thread's cache, or null once the thread is tearing down its thread-locals
// (storage freed by a later destructor then goes straight to the system).
thread_local bool cache_gone = false;
Cache* thread_cache() {
  if (cache_gone) return nullptr;
  struct Owner {
    Cache cache;
    ~Owner() { cache_gone = true; }
  };
  thread_local Owner owner;
  return &owner.cache;
}

// The pages a large block of n bytes takes.
std::size_t mapped_size(std::size_t nbytes) { return (nbytes + kPage - 1) / kPage * kPage; }

}  // namespace

std::byte* allocate_storage(std::size_t nbytes, std::size_t& capacity) {
  capacity = nbytes;
  if (nbytes == 0) return static_cast<std::byte*>(system_allocate(nbytes));
  Cache* cache = thread_cache();
  if (nbytes >= kHugeBlock) {
    capacity = huge_size(nbytes);
    return cache ? cache->huge.take(nbytes) : map_huge(nbytes);
  }
  if (nbytes > kLargeBlock) {
    capacity = mapped_size(nbytes);
    return cache ? cache->large.take(capacity) : map_block(capacity);
  }
  const std::size_t c = size_class(nbytes, capacity);
  if (cache && !cache->free[c].empty()) {
    void* p = cache->free[c].back();
    cache->free[c].pop_back();
    cache->bytes -= capacity;
    return static_cast<std::byte*>(p);
  }
  return static_cast<std::byte*>(system_allocate(capacity));
}

void free_storage(std::byte* data, std::size_t nbytes, std::size_t capacity) {
  if (nbytes == 0) return system_free(data);
  Cache* cache = thread_cache();
  if (nbytes >= kHugeBlock) {
    if (cache) return cache->huge.give_back(data, capacity);
    ::munmap(data, capacity);
    count_unmap(capacity);
    return;
  }
  if (nbytes > kLargeBlock) {
    // Pages are pages: whichever thread frees a range keeps it for its own reuse.
    if (cache) return cache->large.give_back(data, capacity);
    ::munmap(data, capacity);
    count_unmap(capacity);
    return;
  }
  const std::size_t c = size_class(nbytes, capacity);
  if (cache == nullptr || cache->bytes + capacity > kMaxCachedBytes) return system_free(data);
  cache->free[c].push_back(data);
  cache->bytes += capacity;
}

MemoryStats memory_stats() {
  MemoryStats stats = arena_stats;
  if (Cache* cache = thread_cache())
    stats.idle_bytes = static_cast<std::int64_t>(cache->large.idle_bytes + cache->huge.ranges.idle_bytes);
  return stats;
}

// --- TensorImpls ----------------------------------------------------------------------------------

namespace {

// Released TensorImpls, kept per thread for new_impl. Every op makes a few tensors (its
// result, the detached ones its backward saves, its gradients), each with a shape and strides
// vector: recycling whole TensorImpls made those vectors' allocations go away (they were ~8 of
// the ~9 mallocs per op left in bench_op_overhead after the node and storage pools, each a
// trip through glibc's slower paths since forward allocates thousands before backward frees).
// Like BlockPool, a TensorImpl released on another thread joins that thread's cache; caches
// are deleted at thread exit (after that, released ones are deleted at once).
constexpr std::size_t kMaxIdleImpls = std::size_t{1} << 17;  // ~30 MB
thread_local bool impl_cache_gone = false;
struct ImplCache {
  std::vector<TensorImpl*> idle;
  ~ImplCache() {
    impl_cache_gone = true;
    for (TensorImpl* p : idle) delete p;
  }
};
ImplCache* impl_cache() {
  if (impl_cache_gone) return nullptr;
  thread_local ImplCache cache;
  return &cache;
}

struct RecycleImpl {
  void operator()(TensorImpl* p) const noexcept {
    ImplCache* cache = impl_cache();
    if (cache == nullptr || cache->idle.size() >= kMaxIdleImpls) {
      delete p;
      return;
    }
    p->reset_for_reuse();  // may release other tensors into the cache
    try {
      cache->idle.push_back(p);
    } catch (...) {
      delete p;
    }
  }
};

TensorImpl* take_idle_impl() {
  ImplCache* cache = impl_cache();
  if (cache == nullptr || cache->idle.empty()) return nullptr;
  TensorImpl* p = cache->idle.back();
  cache->idle.pop_back();
  return p;
}

std::shared_ptr<TensorImpl> share_impl(TensorImpl* p) {
  return std::shared_ptr<TensorImpl>(p, RecycleImpl{}, PoolAllocator<TensorImpl>{});
}

}  // namespace

std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, DType dtype) {
  TensorImpl* p = take_idle_impl();
  if (p == nullptr) return share_impl(new TensorImpl(std::move(storage), shape, dtype));
  std::shared_ptr<TensorImpl> im = share_impl(p);
  im->shape.assign(shape.begin(), shape.end());
  contiguous_strides(im->shape, im->strides);
  im->storage = std::move(storage);
  im->dtype = dtype;
  im->numel = shape_numel(im->shape);
  im->offset = 0;
  im->contiguous = true;
  return im;
}

std::shared_ptr<TensorImpl> new_impl(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                                     std::int64_t offset, DType dtype) {
  TensorImpl* p = take_idle_impl();
  if (p == nullptr) return share_impl(new TensorImpl(std::move(storage), shape, strides, offset, dtype));
  std::shared_ptr<TensorImpl> im = share_impl(p);
  im->shape.assign(shape.begin(), shape.end());
  im->strides.assign(strides.begin(), strides.end());
  im->storage = std::move(storage);
  im->dtype = dtype;
  im->numel = shape_numel(im->shape);
  im->offset = offset;
  im->update_contiguous();
  return im;
}

Tensor make_empty(const Shape& shape, DType dtype, const char* op) {
  // Every tensor's memory is sized here, once: the element count and the byte size must not
  // overflow (a wrapped count would allocate a small buffer and write past it).
  check_shape(shape, op);
  const std::int64_t count = shape_numel(shape);
  std::int64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<std::int64_t>(dtype_size(dtype)), &bytes))
    throw Error(std::string(op) + ": shape " + shape_str(shape) + " of " + std::string(dtype_name(dtype)) +
                " needs more bytes than memory can address");
  std::shared_ptr<Storage> storage;
  try {
    storage = make_pooled<Storage>(static_cast<std::size_t>(bytes));
  } catch (const std::bad_alloc&) {
    throw Error(std::string(op) + ": cannot allocate " + std::to_string(bytes) + " bytes for a tensor of shape " +
                shape_str(shape) + " and dtype " + std::string(dtype_name(dtype)));
  }
  return Tensor(new_impl(std::move(storage), shape, dtype));
}

}  // namespace xgrad

#pragma once
/// \file
/// What the storage allocator has done on the calling thread.
#include <cstdint>

namespace xgrad {

/// Counters of the calling thread's page arenas: the blocks of more than 256 KB that tensors'
/// storage maps from the system directly and keeps, when freed, for reuse (smaller blocks come
/// from malloc and are not counted). The counters record the allocator's own decisions, so
/// they are the same under any kernel, sanitizer or machine load; PyTorch's
/// `torch.cuda.memory_stats` is the analogue. Only differences between two readings on one
/// thread mean anything.
/// Example: `auto before = memory_stats(); run(); bool reused = memory_stats().maps == before.maps;`
struct MemoryStats {
  std::int64_t maps = 0;            ///< blocks mapped from the system (each a fresh, zeroed range)
  std::int64_t mapped_bytes = 0;    ///< bytes of those blocks
  std::int64_t unmaps = 0;          ///< idle ranges returned to the system
  std::int64_t unmapped_bytes = 0;  ///< bytes of those ranges
  std::int64_t idle_bytes = 0;      ///< bytes mapped, held by no tensor, kept for reuse (now)
};

/// The calling thread's arena counters since it started.
MemoryStats memory_stats();

}  // namespace xgrad

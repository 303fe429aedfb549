// Storage memory: large and huge blocks are kept for reuse when freed, without raising
// resident memory past what the live tensors needed at their peak. The tests check what the
// allocator decides (addresses, and its own count of mappings through memory_stats()), never
// what the kernel counts (page faults depend on the sanitizer's shadow memory and the machine).
#include <doctest/doctest.h>

#include <cstdint>
#include <thread>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/memory.hpp>
#include <xgrad/core/tensor.hpp>

using namespace xgrad;

namespace {

constexpr std::int64_t kMiB = 1 << 20;

// A float32 tensor of `mib` MiB, every page written.
Tensor filled(std::int64_t mib, double value = 1.0) { return full({mib * kMiB / 4}, value); }

// Blocks the calling thread's arenas have mapped from the system so far.
std::int64_t maps() { return memory_stats().maps; }

// Runs `f` on a new thread, which starts with an empty block cache.
template <class F>
void on_fresh_thread(F f) {
  std::thread worker(f);
  worker.join();
}

}  // namespace

TEST_CASE("a freed sequence-sized block is reused by the next request, and live blocks never overlap") {
  on_fresh_thread([] {
    Tensor a = filled(20);
    const float* first = a.data<float>();
    a = Tensor();
    CHECK(memory_stats().idle_bytes == 20 * kMiB);
    const std::int64_t mapped = maps();
    Tensor b = filled(20, 2.0);
    CHECK(b.data<float>() == first);
    CHECK(maps() == mapped);  // the same pages, already resident: no new mapping
    CHECK(memory_stats().idle_bytes == 0);
    Tensor c = filled(8, 3.0);        // while b is live: elsewhere
    const auto* b_begin = b.data<float>(), *b_end = b_begin + b.numel();
    const auto* c_begin = c.data<float>(), *c_end = c_begin + c.numel();
    CHECK((c_end <= b_begin || c_begin >= b_end));
    CHECK(b.to_vector<float>().back() == 2.0f);
    CHECK(c.to_vector<float>().front() == 3.0f);
  });
}

TEST_CASE("idle blocks are unmapped before resident memory would pass the peak of live ones") {
  on_fresh_thread([] {
    { Tensor a = filled(32); }  // peak of live huge blocks: 32 MiB; its pages stay idle
    CHECK(memory_stats().idle_bytes == 32 * kMiB);
    std::int64_t mapped = maps();
    Tensor b = filled(8);       // taken from the idle 32 MiB; the other 24 MiB stay idle
    CHECK(maps() == mapped);
    CHECK(memory_stats().idle_bytes == 24 * kMiB);
    const MemoryStats before_c = memory_stats();
    Tensor c = filled(64);      // live 72 MiB, a new peak: the idle 24 MiB are unmapped first
    const MemoryStats after_c = memory_stats();
    CHECK(after_c.unmapped_bytes - before_c.unmapped_bytes == 24 * kMiB);
    CHECK(after_c.maps - before_c.maps == 1);
    CHECK(after_c.idle_bytes == 0);
    mapped = maps();
    Tensor d = filled(24);      // so this is a new mapping (kept idle, they would serve it)
    CHECK(maps() - mapped == 1);
    const float* c_begin = c.data<float>();
    const float* c_end = c_begin + c.numel();
    c = Tensor();               // live 32 MiB, 64 idle: within the peak of 96
    CHECK(memory_stats().idle_bytes == 64 * kMiB);
    mapped = maps();
    Tensor e = filled(48);      // served from c's pages
    CHECK(maps() == mapped);
    CHECK((e.data<float>() >= c_begin && e.data<float>() + e.numel() <= c_end));
    CHECK(memory_stats().idle_bytes == 16 * kMiB);
  });
}

TEST_CASE("a freed block serves several smaller ones that fill it exactly, whatever their size") {
  // A GRU's projection (T·B, 3H) and then three (T·B, H) tensors (output, loss terms) in the
  // same pages: sizes are kept to the page, so three thirds fit where the whole was. Rounded
  // to 2 MiB (a third of 19.5 MiB to 8 MiB), the third would not fit and be mapped anew.
  // Checked by address: the thirds lie in the whole's pages, and nothing new is mapped.
  on_fresh_thread([] {
    const std::int64_t third = 6656 * 1024 / 4;  // 6.5 MiB of floats: not a multiple of 2 MiB
    const float* begin = nullptr;
    {
      Tensor whole = full({3 * third}, 1.0);
      begin = whole.data<float>();
    }
    const float* end = begin + 3 * third;
    const std::int64_t mapped = maps();
    Tensor a = full({third}, 2.0), b = full({third}, 3.0), c = full({third}, 4.0);
    for (const Tensor* t : {&a, &b, &c}) {
      const float* p = t->data<float>();
      CHECK((p >= begin && p + third <= end));
    }
    CHECK(maps() == mapped);
    CHECK(c.to_vector<float>().back() == 4.0f);
  });
}

TEST_CASE("a loop that holds its last output while making the next one maps no new pages once warm") {
  // A GRU's inference loop, `out = gru.forward(x).output`: the projection (3 parts) is freed
  // before the output (1 part) is made, so the output is cut from the projection's pages while
  // the previous output, still held, lies elsewhere; freed, it leaves the next projection's
  // pages in two pieces. Before pieces adding up to a request were kept, every pass unmapped
  // them and cleared the projection's pages afresh. Both block kinds: huge (a 19.5 MiB
  // projection, about the GRU's at bench_rnn's size M) and large (a 1.5 MiB one).
  for (const std::int64_t part_kib : {6656, 512}) {
    CAPTURE(part_kib);
    on_fresh_thread([part_kib] {
      const std::int64_t part = part_kib * 1024 / 4;  // floats
      Tensor out;
      std::int64_t mapped = 0, unmapped = 0;
      for (int pass = 0; pass < 8; ++pass) {
        // The first passes map what the loop needs: up to four, depending on where the
        // kernel places the mappings (which decides what merges with what).
        if (pass == 5) mapped = maps(), unmapped = memory_stats().unmaps;
        { Tensor projection = full({3 * part}, 1.0); }
        Tensor next = full({part}, static_cast<double>(pass));
        out = next;  // the previous output is freed only now
      }
      CHECK(maps() == mapped);
      CHECK(memory_stats().unmaps == unmapped);
      CHECK(out.to_vector<float>().back() == 7.0f);
    });
  }
}

TEST_CASE("huge requests the system refuses leave the arena's accounting as it was") {
  on_fresh_thread([] {
    // 2 EiB each: never mapped. Counted as live anyway, four of them overflowed the count
    // (found by fuzz_padding), and trim() then never gave idle pages back.
    for (int i = 0; i < 5; ++i) CHECK_THROWS_AS(zeros({std::int64_t{1} << 59}), Error);
    { Tensor a = filled(32); }  // peak of live huge blocks: 32 MiB; its pages stay idle
    CHECK(memory_stats().idle_bytes == 32 * kMiB);
    const MemoryStats before = memory_stats();
    Tensor c = filled(64);      // a new peak: the idle 32 MiB are unmapped first
    CHECK(memory_stats().unmapped_bytes - before.unmapped_bytes == 32 * kMiB);
    CHECK(memory_stats().idle_bytes == 0);
  });
}

// Storage memory: large and huge blocks are kept for reuse when freed, without raising
// resident memory past what the live tensors needed at their peak.
#include <doctest/doctest.h>

#include <cstdint>
#include <thread>

#include <sys/resource.h>

#include <xgrad/core/creation.hpp>
#include <xgrad/core/tensor.hpp>

using namespace xgrad;

namespace {

constexpr std::int64_t kMiB = 1 << 20;

// A float32 tensor of `mib` MiB, every page written.
Tensor filled(std::int64_t mib, double value = 1.0) { return full({mib * kMiB / 4}, value); }

// Page faults the calling thread has taken so far (Linux's RUSAGE_THREAD).
long page_faults() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt + usage.ru_majflt;
}

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
    const long faults = page_faults();
    Tensor b = filled(20, 2.0);
    CHECK(b.data<float>() == first);
    CHECK(page_faults() - faults < 5);  // the same pages, already resident: no new mapping
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
    long faults = page_faults();
    Tensor b = filled(8);       // taken from the idle 32 MiB; the other 24 MiB stay idle
    CHECK(page_faults() - faults < 5);
    Tensor c = filled(64);      // live 72 MiB, a new peak: the idle 24 MiB are unmapped first
    faults = page_faults();
    Tensor d = filled(24);      // so this is a new mapping (kept idle, they would serve it)
    CHECK(page_faults() - faults >= 5);
    c = Tensor();               // live 32 MiB, 64 idle: within the peak of 96
    faults = page_faults();
    Tensor e = filled(48);      // served from c's pages
    CHECK(page_faults() - faults < 5);
  });
}

TEST_CASE("a freed block serves several smaller ones that fill it exactly, whatever their size") {
  // A GRU's projection (T·B, 3H) and then three (T·B, H) tensors (output, loss terms) in the
  // same pages: sizes are kept to the page, so three thirds fit where the whole was. Rounded
  // to 2 MiB (a third of 19.5 MiB to 8 MiB), the third would not fit and be mapped anew.
  // Checked by address (the thirds lie in the whole's pages), which page-fault counts show
  // only approximately: the tensors' own bookkeeping can fault a page or two on a new thread.
  on_fresh_thread([] {
    const std::int64_t third = 6656 * 1024 / 4;  // 6.5 MiB of floats: not a multiple of 2 MiB
    const float* begin = nullptr;
    {
      Tensor whole = full({3 * third}, 1.0);
      begin = whole.data<float>();
    }
    const float* end = begin + 3 * third;
    Tensor a = full({third}, 2.0), b = full({third}, 3.0), c = full({third}, 4.0);
    for (const Tensor* t : {&a, &b, &c}) {
      const float* p = t->data<float>();
      CHECK((p >= begin && p + third <= end));
    }
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
      long faults = 0;
      for (int pass = 0; pass < 8; ++pass) {
        // The first passes map what the loop needs: up to four, depending on where the
        // kernel places the mappings (which decides what merges with what).
        if (pass == 5) faults = page_faults();
        { Tensor projection = full({3 * part}, 1.0); }
        Tensor next = full({part}, static_cast<double>(pass));
        out = next;  // the previous output is freed only now
      }
      CHECK(page_faults() - faults < 5);
      CHECK(out.to_vector<float>().back() == 7.0f);
    });
  }
}

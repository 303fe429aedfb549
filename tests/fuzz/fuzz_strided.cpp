/// Fuzz target: the strided-view API (as_strided, narrow, select, transpose, unsqueeze,
/// expand) and in-place writes through the views, checked against a plain reference: the same
/// index arithmetic done by hand on a std::vector<double>, in 128-bit integers so that nothing
/// in the reference can overflow.
///
/// The bytes drive a small program over one f64 storage: make an as_strided view (sizes,
/// strides and offsets from a table that includes values whose geometry overflows int64), derive
/// views from it, and write through them. What is checked:
/// - as_strided succeeds exactly when the reference finds every element inside the storage
///   (an empty view: its offset within it), and otherwise throws xgrad::Error;
/// - every view reads the elements the reference reads, and sum() and contiguous() agree;
/// - a write through a view is refused exactly when two elements may share a location (the
///   sorted-stride rule; fill_ is allowed on any overlap), a refused write changes nothing,
///   and an accepted one changes exactly what the reference's write changes;
/// - the gradient of sum(as_strided(x)) counts how often each element of x is read.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/core.hpp>

#include "fuzz_target.hpp"

namespace {

using xgrad::Shape;
using xgrad::Tensor;
using i128 = __int128;

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_strided: %s\n", what.c_str());
  std::abort();
}

// The input, read a byte at a time (zeros once it runs out).
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  std::uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::int64_t below(std::int64_t n) { return n <= 0 ? 0 : next() % n; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxElements = 4096;  // views read and written element by element
constexpr std::int64_t k62 = std::int64_t{1} << 62;

// A size, stride or offset: mostly small, sometimes one of the values that overflowed.
std::int64_t pick(Bytes& in, std::int64_t small_range) {
  const std::uint8_t b = in.next();
  if (b < 200) return b % small_range;
  static const std::int64_t special[] = {kMax,           kMax - 1,    kMax / 2,   kMax / 3, k62 + (std::int64_t{1} << 20),
                                         k62,            1 << 30,     -1,         -7,       std::numeric_limits<std::int64_t>::min(),
                                         (kMax / 2) + 1, std::int64_t{1} << 32};
  return special[b % (sizeof(special) / sizeof(special[0]))];
}

// A geometry over the storage, as the reference sees it.
struct Geometry {
  std::vector<std::int64_t> shape, strides;
  std::int64_t offset = 0;
};

std::string describe(const Geometry& g) {
  std::string s = "shape " + xgrad::shape_str(g.shape) + " strides " + xgrad::shape_str(g.strides) + " offset " +
                  std::to_string(g.offset);
  return s;
}

// Whether as_strided must accept `g` over `capacity` elements (exact arithmetic).
bool reference_accepts(const Geometry& g, std::int64_t capacity) {
  if (g.offset < 0) return false;
  i128 span = 1;
  bool empty = false;
  for (std::size_t d = 0; d < g.shape.size(); ++d) {
    if (g.shape[d] < 0 || g.strides[d] < 0) return false;
    span *= std::max<std::int64_t>(g.shape[d], 1);
    if (span > kMax) return false;  // the extents' product must fit an int64 (check_shape)
    if (g.shape[d] == 0) empty = true;
  }
  if (empty) return g.offset <= capacity;
  i128 hi = g.offset;
  for (std::size_t d = 0; d < g.shape.size(); ++d) hi += static_cast<i128>(g.shape[d] - 1) * g.strides[d];
  return hi < capacity;
}

// The storage position of every element, in row-major order (g accepted, so they fit).
std::vector<std::int64_t> positions(const Geometry& g) {
  std::vector<std::int64_t> out;
  for (auto e : g.shape)
    if (e == 0) return out;
  std::vector<std::int64_t> index(g.shape.size(), 0);
  for (;;) {
    i128 p = g.offset;
    for (std::size_t d = 0; d < g.shape.size(); ++d) p += static_cast<i128>(index[d]) * g.strides[d];
    out.push_back(static_cast<std::int64_t>(p));
    std::size_t d = g.shape.size();
    for (;;) {
      if (d == 0) return out;
      --d;
      if (++index[d] < g.shape[d]) break;
      index[d] = 0;
    }
  }
}

// The sorted-stride rule: true when no two elements can share a location (extent-1 dims
// ignored). An exact duplicate among positions() must make it false.
bool provably_disjoint(const Geometry& g) {
  std::vector<std::pair<std::int64_t, std::int64_t>> dims;
  std::int64_t numel = 1;
  for (std::size_t d = 0; d < g.shape.size(); ++d) {
    numel *= g.shape[d];
    if (g.shape[d] != 1) dims.push_back({g.strides[d], g.shape[d]});
  }
  if (numel <= 1) return true;
  std::sort(dims.begin(), dims.end());
  i128 reach = 0;
  for (const auto& [stride, extent] : dims) {
    if (stride <= reach) return false;
    reach += static_cast<i128>(extent - 1) * stride;
  }
  return true;
}

bool has_duplicates(std::vector<std::int64_t> p) {
  std::sort(p.begin(), p.end());
  return std::adjacent_find(p.begin(), p.end()) != p.end();
}

std::vector<double> storage_of(const Tensor& base) { return base.to_vector<double>(); }

// Checks that `view` reads the reference's elements of `ref`.
void check_reads(const Tensor& view, const Geometry& g, const std::vector<double>& ref) {
  if (view.shape() != g.shape) finding("view of " + describe(g) + " has shape " + xgrad::shape_str(view.shape()));
  const std::vector<std::int64_t> pos = positions(g);
  const std::vector<double> got = view.to_vector<double>();
  const std::vector<double> dense = view.contiguous().to_vector<double>();
  if (got.size() != pos.size() || dense.size() != pos.size()) finding("element count differs for " + describe(g));
  double total = 0;
  for (std::size_t i = 0; i < pos.size(); ++i) {
    const double want = ref[static_cast<std::size_t>(pos[i])];
    if (got[i] != want || dense[i] != want) finding("element " + std::to_string(i) + " differs for " + describe(g));
    total += want;
  }
  if (view.sum().item() != total) finding("sum differs for " + describe(g));
}

// Writes through `view` (geometry g) with one of the in-place ops, and through the reference.
void check_write(Bytes& in, Tensor& base, const Tensor& view, const Geometry& g, std::vector<double>& ref) {
  const int op = static_cast<int>(in.below(6));
  const double c = static_cast<double>(in.below(5) + 1);
  const std::vector<std::int64_t> pos = positions(g);
  const bool disjoint = provably_disjoint(g);
  if (disjoint && has_duplicates(pos)) finding("the sorted-stride rule calls " + describe(g) + " disjoint");
  const bool must_accept = disjoint || op == 2;
  const std::vector<double> before = ref;
  const std::uint64_t version = base.version();
  Tensor v = view;
  Tensor values = xgrad::full(g.shape, c, xgrad::DType::f64);
  bool accepted = true;
  try {
    switch (op) {
      case 0: v.add_(values); break;
      case 1: v.mul_(c); break;
      case 2: v.fill_(c); break;
      case 3: v.copy_(xgrad::arange(0.0, static_cast<double>(pos.size()), 1.0, xgrad::DType::f64).reshape(g.shape)); break;
      case 4: v.sub_(values, 2.0); break;
      default: v.div_(2.0); break;
    }
  } catch (const xgrad::Error& e) {
    accepted = false;
    if (must_accept) finding("write " + std::to_string(op) + " through " + describe(g) + " refused: " + e.what());
    if (storage_of(base) != before || base.version() != version)
      finding("a refused write through " + describe(g) + " changed the storage");
  }
  if (!accepted) return;
  if (!must_accept) finding("write " + std::to_string(op) + " through the overlapping " + describe(g) + " accepted");
  for (std::size_t i = 0; i < pos.size(); ++i) {
    double& x = ref[static_cast<std::size_t>(pos[i])];
    switch (op) {
      case 0: x += c; break;
      case 1: x *= c; break;
      case 2: x = c; break;
      case 3: x = static_cast<double>(i); break;
      case 4: x -= 2.0 * c; break;
      default: x /= 2.0; break;
    }
  }
  if (storage_of(base) != ref) finding("write " + std::to_string(op) + " through " + describe(g) + " landed elsewhere");
}

// One derived view of (view, g): the same change to the reference geometry.
void derive(Bytes& in, Tensor& view, Geometry& g) {
  const std::int64_t rank = static_cast<std::int64_t>(g.shape.size());
  switch (in.below(5)) {
    case 0:  // transpose
      if (rank >= 2) {
        const std::int64_t a = in.below(rank), b = in.below(rank);
        view = view.transpose(a, b);
        std::swap(g.shape[a], g.shape[b]);
        std::swap(g.strides[a], g.strides[b]);
      }
      break;
    case 1:  // narrow
      if (rank >= 1) {
        const std::int64_t d = in.below(rank);
        const std::int64_t n = std::min<std::int64_t>(g.shape[d], 1 << 20);  // an empty view's extent may be INT64_MAX
        const std::int64_t start = in.below(n + 1), len = in.below(n - start + 1);
        const bool empty = view.numel() == 0;
        view = view.narrow(d, start, len);
        if (len > 0 && !empty) g.offset += start * g.strides[d];  // empty: no element, any offset
        g.shape[d] = len;
      }
      break;
    case 2:  // select
      if (rank >= 1) {
        const std::int64_t d = in.below(rank);
        if (g.shape[d] == 0) break;
        const std::int64_t i = in.below(g.shape[d]);
        const bool empty = view.numel() == 0;
        view = view.select(d, i);
        if (!empty) g.offset += i * g.strides[d];
        g.shape.erase(g.shape.begin() + d);
        g.strides.erase(g.strides.begin() + d);
      }
      break;
    case 3: {  // unsqueeze: an extent-1 dim, whose stride never moves the position
      const std::int64_t d = in.below(rank + 1);
      view = view.unsqueeze(d);
      g.shape.insert(g.shape.begin() + d, 1);
      g.strides.insert(g.strides.begin() + d, 0);
      break;
    }
    default: {  // expand the extent-1 dims
      Shape target = g.shape, strides = g.strides;
      for (std::size_t d = 0; d < target.size(); ++d)
        if (target[d] == 1) {
          target[d] = in.below(4);
          if (target[d] != 1) strides[d] = 0;
        }
      try {
        view = view.expand(target);
      } catch (const xgrad::Error&) {
        // Beside the huge extents as_strided allows for an empty view, the new ones may
        // make the element count overflow: refused, and nothing changed.
        if (reference_accepts({target, strides, 0}, kMax)) finding("expand refused " + xgrad::shape_str(target));
        break;
      }
      g.shape = target;
      g.strides = strides;
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  const std::int64_t capacity = in.below(48) + 1;
  std::vector<double> ref(static_cast<std::size_t>(capacity));
  for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<double>(i + 1);
  Tensor base = xgrad::from_vector(ref, {capacity});
  for (int step = 0; step < 8 && !in.done(); ++step) {
    Geometry g;
    const std::int64_t rank = in.below(5);
    for (std::int64_t d = 0; d < rank; ++d) {
      g.shape.push_back(pick(in, 6));
      g.strides.push_back(pick(in, 10));
    }
    g.offset = pick(in, capacity + 3);
    const bool accept = reference_accepts(g, capacity);
    Tensor view;
    try {
      view = base.as_strided(g.shape, g.strides, g.offset);
    } catch (const xgrad::Error& e) {
      if (accept) finding("as_strided refused the valid " + describe(g) + ": " + e.what());
      continue;
    } catch (const std::exception& e) {
      finding("as_strided threw a non-xgrad exception for " + describe(g) + ": " + e.what());
    }
    if (!accept) finding("as_strided accepted the invalid " + describe(g) + " of a storage of " + std::to_string(capacity));
    // A valid view may still have 2^62 elements (stride 0): reading it is honest work, and the
    // reference would list every one. Only views of a few elements are read and written.
    if (view.numel() > kMaxElements) continue;
    check_reads(view, g, ref);
    if (in.below(4) == 0) {  // the gradient of sum(as_strided(x)) counts the reads of each element
      Tensor x = xgrad::from_vector(ref, {capacity}).requires_grad_();
      x.as_strided(g.shape, g.strides, g.offset).sum().backward();
      std::vector<double> count(ref.size(), 0.0);
      for (auto p : positions(g)) count[static_cast<std::size_t>(p)] += 1.0;
      if (!x.grad().defined() || x.grad().to_vector<double>() != count) finding("gradient of as_strided " + describe(g));
    }
    for (std::int64_t k = in.below(3); k > 0; --k) {
      derive(in, view, g);
      if (view.numel() > kMaxElements) break;
      check_reads(view, g, ref);
    }
    if (view.numel() <= kMaxElements) check_write(in, base, view, g, ref);
  }
  return 0;
}

void write_seeds(const std::string& dir) {
  // A few programs: a plain window, an overlapping one, two int64 overflows of the geometry, and a
  // chain of derived views.
  const std::vector<std::vector<std::uint8_t>> seeds = {
      {16, 2, 3, 4, 2, 1, 0, 0, 1, 0},
      {8, 2, 2, 1, 2, 1, 0, 0, 0, 0, 0},
      {8, 1, 3, 204, 0, 1, 2},
      {8, 1, 2, 200, 1, 1, 1},
      {30, 3, 2, 12, 3, 4, 2, 1, 1, 0, 2, 0, 1, 1, 1, 0, 4, 2},
  };
  int i = 0;
  for (const auto& s : seeds) {
    const std::string path = dir + "/seed" + std::to_string(i++);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) finding("cannot write " + path);
    std::fwrite(s.data(), 1, s.size(), f);
    std::fclose(f);
  }
}

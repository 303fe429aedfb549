// xgrad's intra-op threads: parallel_for itself, and the ops that split their work with it
// (batched matmul, softmax, layer_norm) giving bit for bit the result of one thread.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tensor_approx.hpp"

using namespace xgrad;
using xgrad_test::approx;

namespace {

// Restores the thread count a test changed.
struct ThreadCount {
  int saved = get_num_threads();
  explicit ThreadCount(int n) { set_num_threads(n); }
  ~ThreadCount() { set_num_threads(saved); }
};

std::vector<float> values(const Tensor& t) { return t.contiguous().to_vector<float>(); }

// fn's output and its gradients under 1 and under 2 threads.
struct Run {
  std::vector<float> out;
  std::vector<std::vector<float>> grads;
};
template <class F>
Run run_with_threads(int threads, const std::vector<Tensor>& inputs, F&& fn) {
  const ThreadCount count(threads);
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) leaves.push_back(t.detach().clone().requires_grad_());
  const Tensor out = fn(leaves);
  // A weighted sum, so every output element's gradient differs.
  const Tensor weights = arange(0.0, static_cast<double>(out.numel())).reshape(out.shape()).to(out.dtype()) * 0.01;
  (out * weights).sum().backward();
  Run run{values(out), {}};
  for (const Tensor& l : leaves) run.grads.push_back(l.grad().defined() ? values(l.grad()) : std::vector<float>{});
  return run;
}
template <class F>
void check_same_under_one_and_two_threads(const std::vector<Tensor>& inputs, F&& fn) {
  const Run one = run_with_threads(1, inputs, fn), two = run_with_threads(2, inputs, fn);
  CHECK(one.out == two.out);
  REQUIRE(one.grads.size() == two.grads.size());
  for (std::size_t i = 0; i < one.grads.size(); ++i) CHECK(one.grads[i] == two.grads[i]);
}

}  // namespace

TEST_CASE("get_num_threads follows XGRAD_NUM_THREADS when it is set") {
  // ctest runs this file once more with XGRAD_NUM_THREADS=1 (tests/CMakeLists.txt).
  const char* env = std::getenv("XGRAD_NUM_THREADS");
  if (env != nullptr) CHECK(get_num_threads() == std::atoi(env));
  CHECK(get_num_threads() >= 1);
}

TEST_CASE("the default thread count is not lowered by a small GEMM run before it is read") {
  // Its own ctest (test_parallel_default) runs only this case, with OPENBLAS_NUM_THREADS=2 and
  // XGRAD_TEST_DEFAULT_THREADS set, so that nothing has read the count before. A small GEMM
  // turns OpenBLAS down to one thread; the default must still be the cores, at most 2.
  if (std::getenv("XGRAD_TEST_DEFAULT_THREADS") == nullptr) return;
  REQUIRE(std::getenv("XGRAD_NUM_THREADS") == nullptr);
  CHECK(matmul(ones({4, 4}), ones({4, 4})).sum().item() == 64.0);
  cpu_set_t set;
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  CHECK(get_num_threads() == std::min(CPU_COUNT(&set), 2));
}

TEST_CASE("set_num_threads refuses counts below one") {
  CHECK_THROWS_WITH_AS(set_num_threads(0), doctest::Contains("set_num_threads"), Error);
  CHECK_THROWS_AS(set_num_threads(-3), Error);
}

TEST_CASE("parallel_for visits every index exactly once, for any count, grain and thread count") {
  for (int threads : {1, 2, 3}) {
    const ThreadCount count(threads);
    for (std::int64_t n : {0, 1, 2, 3, 7, 64, 1000, 4099}) {
      for (std::int64_t grain : {-5, 0, 1, 2, 16, 5000}) {
        std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
        std::atomic<int> calls{0};
        parallel_for(n, grain, [&](std::int64_t begin, std::int64_t end) {
          CHECK(begin < end);
          ++calls;
          for (std::int64_t i = begin; i < end; ++i) ++seen[static_cast<std::size_t>(i)];
        });
        for (const auto& s : seen) CHECK(s.load() == 1);
        if (n == 0) CHECK(calls.load() == 0);
        if (n > 0 && n < 2 * std::max<std::int64_t>(grain, 1)) CHECK(calls.load() == 1);  // below two grains: inline
      }
    }
  }
}

TEST_CASE("parallel_for inside a parallel_for runs inline") {
  const ThreadCount count(2);
  std::vector<std::atomic<int>> seen(64 * 64);
  parallel_for(64, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i)
      parallel_for(64, 1, [&](std::int64_t b2, std::int64_t e2) {
        for (std::int64_t j = b2; j < e2; ++j) ++seen[static_cast<std::size_t>(i * 64 + j)];
      });
  });
  for (const auto& s : seen) CHECK(s.load() == 1);
}

TEST_CASE("an exception thrown by a task reaches the caller as an xgrad::Error") {
  const ThreadCount count(2);
  // An Error as it is, from whichever thread ran the item.
  CHECK_THROWS_WITH_AS(parallel_for(1000, 1,
                                    [](std::int64_t b, std::int64_t e) {
                                      for (std::int64_t i = b; i < e; ++i)
                                        if (i == 777) throw Error("kernel: bad item 777");
                                    }),
                       "kernel: bad item 777", Error);
  // Anything else as an Error naming parallel_for.
  CHECK_THROWS_WITH_AS(parallel_for(1000, 1, [](std::int64_t, std::int64_t) { throw std::runtime_error("boom"); }),
                       doctest::Contains("parallel_for: a task threw: boom"), Error);
  CHECK_THROWS_WITH_AS(parallel_for(1000, 1, [](std::int64_t, std::int64_t) { throw 42; }),
                       doctest::Contains("parallel_for"), Error);
  // Inline (one item) the same.
  CHECK_THROWS_WITH_AS(parallel_for(1, 1, [](std::int64_t, std::int64_t) { throw std::logic_error("inline"); }),
                       doctest::Contains("parallel_for: a task threw: inline"), Error);
  // The pool still works afterwards.
  std::atomic<std::int64_t> total{0};
  parallel_for(1000, 1, [&](std::int64_t b, std::int64_t e) { total += e - b; });
  CHECK(total.load() == 1000);
}

TEST_CASE("batched matmul reads transposed and strided operands in place, as their dense copies") {
  manual_seed(11);
  // q (N, H, L, d) and k (N, H, S, d) as attention makes them: heads of a (N, T, H·d) projection.
  const Tensor proj_q = randn({2, 5, 3 * 4}, DType::f64), proj_k = randn({2, 6, 3 * 4}, DType::f64);
  auto heads = [](const Tensor& t, std::int64_t T) { return permute(reshape(t, {2, T, 3, 4}), {0, 2, 1, 3}); };
  const Tensor q = heads(proj_q, 5).requires_grad_(false);
  SUBCASE("q · kᵀ with kᵀ a transposed view") {
    Tensor pq = proj_q.detach().requires_grad_(), pk = proj_k.detach().requires_grad_();
    Tensor s = matmul(heads(pq, 5), transpose(heads(pk, 6), -2, -1));  // (2, 3, 5, 6)
    Tensor cq = proj_q.detach().requires_grad_(), ck = proj_k.detach().requires_grad_();
    Tensor c = matmul(heads(cq, 5).contiguous(), transpose(heads(ck, 6), -2, -1).contiguous());
    CHECK(s == approx(c, 1e-12, 1e-12));
    const Tensor w = randn(s.shape(), DType::f64);
    (s * w).sum().backward();
    (c * w).sum().backward();
    CHECK(pq.grad() == approx(cq.grad(), 1e-12, 1e-12));
    CHECK(pk.grad() == approx(ck.grad(), 1e-12, 1e-12));
  }
  SUBCASE("a transposed left operand, a broadcast batch and an expanded one") {
    const Tensor a = randn({3, 4, 5}, DType::f64), b = randn({2, 1, 4, 6}, DType::f64);
    Tensor la = a.detach().requires_grad_(), lb = b.detach().requires_grad_();
    // (2, 3, 5, 6): aᵀ read in place with the transpose flag, b's batch broadcast over 3.
    Tensor y = matmul(transpose(la, -2, -1), lb);
    Tensor ca = a.detach().requires_grad_(), cb = b.detach().requires_grad_();
    Tensor z = matmul(transpose(ca, -2, -1).contiguous(), cb.contiguous());
    CHECK(y == approx(z, 1e-12, 1e-12));
    y.sum().backward();
    z.sum().backward();
    CHECK(la.grad() == approx(ca.grad(), 1e-12, 1e-12));
    CHECK(lb.grad() == approx(cb.grad(), 1e-12, 1e-12));
    // A batch that is an expanded view (stride 0) and a matrix strided in both dimensions.
    const Tensor e = expand(randn({1, 5, 4}, DType::f64), {3, 5, 4});
    const Tensor strided = select(randn({3, 4, 2, 6}, DType::f64), 2, 1);  // (3, 4, 6), rows 12 apart
    CHECK(matmul(e, strided) == approx(matmul(e.contiguous(), strided.contiguous()), 1e-12, 1e-12));
  }
  CHECK(q.dim() == 4);
}

TEST_CASE("batched matmul of empty and tiny operands") {
  for (int threads : {1, 2}) {
    const ThreadCount count(threads);
    // Zero batch, zero rows, zero inner dimension (transposed views of them too).
    Tensor a = zeros({0, 3, 4}).requires_grad_(), b = ones({0, 4, 2}).requires_grad_();
    Tensor y = matmul(a, b);
    CHECK(y.shape() == Shape{0, 3, 2});
    y.sum().backward();
    CHECK(a.grad().shape() == Shape{0, 3, 4});
    Tensor c = ones({2, 3, 0}).requires_grad_(), d = ones({2, 5, 0}).requires_grad_();
    Tensor z = matmul(c, transpose(d, -2, -1));  // (2, 3, 5) of zeros
    CHECK(z == approx(zeros({2, 3, 5})));
    z.sum().backward();
    CHECK(c.grad().shape() == Shape{2, 3, 0});
    CHECK(d.grad().shape() == Shape{2, 5, 0});
    Tensor e = ones({2, 0, 4}), f = ones({2, 4, 3});
    CHECK(matmul(e, transpose(transpose(f, -2, -1), -2, -1)).shape() == Shape{2, 0, 3});
    // 1 × 1 matrices, one batch.
    CHECK(matmul(full({1, 1, 1}, 2.0), transpose(full({1, 1, 1}, 3.0), -2, -1)).item() == 6.0);
  }
}

TEST_CASE("batched matmul, softmax and layer_norm give the same bits on one thread and two") {
  manual_seed(3);
  SUBCASE("attention's products: q · kᵀ (kᵀ a view) and weights · v, f32") {
    const Tensor proj = randn({8, 64, 3 * 32});
    check_same_under_one_and_two_threads({proj}, [](const std::vector<Tensor>& in) {
      auto parts = chunk(in[0], 3, 2);
      auto heads = [](const Tensor& t) { return permute(reshape(t, {8, 64, 4, 8}), {0, 2, 1, 3}); };
      const Tensor s = matmul(heads(parts[0]), transpose(heads(parts[1]), -2, -1));  // (8, 4, 64, 64)
      return matmul(s, heads(parts[2]));
    });
  }
  SUBCASE("GEMMs large enough to be split over the threads: by rows, by columns, transposed") {
    // (300, 200) · (200, 100): 6 Mi multiply-adds, above the size split between threads.
    check_same_under_one_and_two_threads({randn({300, 200}), randn({200, 100})},
                                         [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); });
    // Few rows, many columns: split by columns; operands as transposed views.
    check_same_under_one_and_two_threads({randn({400, 40}), randn({900, 400})}, [](const std::vector<Tensor>& in) {
      return matmul(transpose(in[0], 0, 1), transpose(in[1], 0, 1));
    });
    // linear: bias as the GEMM's starting value, a weight gradient summed over 2000 rows.
    check_same_under_one_and_two_threads({randn({2000, 64}), randn({96, 64}), randn({96})},
                                         [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); });
  }
  SUBCASE("a batch broadcast against one matrix, f64") {
    check_same_under_one_and_two_threads({randn({16, 48, 40}, DType::f64), randn({1, 40, 56}, DType::f64)},
                                         [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); });
  }
  SUBCASE("softmax and log_softmax over the last and a middle axis") {
    const Tensor x = randn({64, 33, 70});
    check_same_under_one_and_two_threads({x}, [](const std::vector<Tensor>& in) { return softmax(in[0], -1); });
    check_same_under_one_and_two_threads({x}, [](const std::vector<Tensor>& in) { return softmax(in[0], 1); });
    check_same_under_one_and_two_threads({x}, [](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); });
    check_same_under_one_and_two_threads({x.to(DType::f64)},
                                         [](const std::vector<Tensor>& in) { return softmax(in[0], -1); });
  }
  SUBCASE("layer_norm with and without affine parameters") {
    const Tensor x = randn({32, 50, 96}), w = randn({96}), b = randn({96});
    check_same_under_one_and_two_threads({x, w, b}, [](const std::vector<Tensor>& in) {
      return nn::layer_norm(in[0], {96}, in[1], in[2]);
    });
    check_same_under_one_and_two_threads({x}, [](const std::vector<Tensor>& in) {
      return nn::layer_norm(in[0], {96});
    });
  }
  SUBCASE("a TransformerEncoderLayer's output and every gradient") {
    manual_seed(8);
    nn::TransformerEncoderLayer layer(
        nn::TransformerEncoderLayerOptions(32, 4).dim_feedforward(64).dropout(0.0).batch_first(true));
    const Tensor x = randn({16, 40, 32});
    auto step = [&](int threads) {
      const ThreadCount count(threads);
      layer.zero_grad();
      Tensor y = layer(x);
      (y * y).mean().backward();
      std::vector<std::vector<float>> out{values(y)};
      for (const Tensor& p : layer.parameters()) out.push_back(values(p.grad()));
      return out;
    };
    CHECK(step(1) == step(2));
  }
}

TEST_CASE("softmax and layer_norm of empty and one-row inputs") {
  for (int threads : {1, 2}) {
    const ThreadCount count(threads);
    Tensor e = zeros({0, 5}).requires_grad_();
    Tensor s = softmax(e, -1);
    s.sum().backward();
    CHECK(s.shape() == Shape{0, 5});
    CHECK(e.grad().shape() == Shape{0, 5});
    CHECK(softmax(full({1, 3}, 1.0), -1) == approx(full({1, 3}, 1.0 / 3)));
    Tensor x = zeros({0, 4}).requires_grad_(), w = ones({4}).requires_grad_(), b = zeros({4}).requires_grad_();
    Tensor y = nn::layer_norm(x, {4}, w, b);
    y.sum().backward();
    CHECK(y.shape() == Shape{0, 4});
    CHECK(w.grad() == approx(zeros({4})));
    CHECK(nn::layer_norm(from_vector(std::vector<float>{1, 3}, {1, 2}), {2}) == approx(from_vector(std::vector<float>{-1, 1}, {1, 2}), 1e-4, 1e-4));
  }
}

TEST_CASE("a fork()ed child splits ops over threads of its own") {
  const ThreadCount count(2);
  std::atomic<int> parent_items{0};
  parallel_for(64, 1, [&](std::int64_t b, std::int64_t e) { parent_items += static_cast<int>(e - b); });
  REQUIRE(parent_items == 64);  // the parent's pool exists when the process forks

  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The parent's workers do not exist here. Eight slow items: a working pool gives some of
    // them to a second thread while the caller sleeps through the first.
    std::vector<std::thread::id> who(8);
    parallel_for(8, 1, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        who[static_cast<std::size_t>(i)] = std::this_thread::get_id();
      }
    });
    const bool all_done = std::none_of(who.begin(), who.end(), [](std::thread::id id) { return id == std::thread::id(); });
    const bool helped = std::any_of(who.begin(), who.end(), [](std::thread::id id) { return id != std::this_thread::get_id(); });
    std::_Exit(all_done && helped ? 0 : 1);
  }
  int status = 0;
  pid_t done = 0;
  for (int waited_ms = 0; (done = ::waitpid(child, &status, WNOHANG)) == 0 && waited_ms < 30000; waited_ms += 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (done == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  REQUIRE_MESSAGE(done == child, "the child hung in parallel_for");
  REQUIRE(WIFEXITED(status));
  CHECK_MESSAGE(WEXITSTATUS(status) == 0, "the child's parallel_for ran every item on the calling thread");
}

TEST_CASE("batched matmul read in place still refuses an operand changed in place before backward") {
  // kᵀ is read through the GEMM's transpose flag, not copied: backward reads base itself, so a
  // write to base after the forward must be caught, as for any saved tensor.
  const Tensor a = randn({2, 3, 4}, DType::f64).requires_grad_();
  Tensor base = randn({2, 5, 4}, DType::f64);
  const Tensor out = matmul(a, base.transpose(1, 2));
  base.mul_(2.0);
  CHECK_THROWS_WITH_AS(out.sum().backward(), doctest::Contains("modified by an in-place operation"), Error);
}

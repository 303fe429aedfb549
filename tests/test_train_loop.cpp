// The train module's loop side: progress output, CSV metrics, checkpoints that resume a run
// exactly, plots; and core's generator state and atomic file writes that they build on.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace xgrad;
using xgrad_test::TempDir;
namespace fs = std::filesystem;

namespace {

// What a ProgressBar printed to a temporary file.
struct Captured {
  std::FILE* file = std::tmpfile();
  ~Captured() { std::fclose(file); }
  std::string text() const {
    std::fflush(file);
    std::rewind(file);
    std::string out;
    for (int c; (c = std::fgetc(file)) != EOF;) out += static_cast<char>(c);
    return out;
  }
};

// A small model with dropout (so the generator state matters) and its training step.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  std::shared_ptr<nn::Dropout> drop;
  Net() {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(3, 8));
    drop = register_module("drop", std::make_shared<nn::Dropout>(0.3));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(8, 1));
  }
  Tensor forward(const Tensor& x) { return (*fc2)((*drop)(tanh((*fc1)(x)))); }
};

double train_steps(Net& net, optim::Optimizer& opt, optim::LRScheduler& sched, int steps) {
  double loss_value = 0;
  for (int i = 0; i < steps; ++i) {
    Tensor x = randn({16, 3});
    Tensor loss = nn::mse_loss(net.forward(x), x.sum({1}, true));
    opt.zero_grad();
    loss.backward();
    opt.step();
    sched.step();
    loss_value = loss.item();
  }
  return loss_value;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("rng_state / set_rng_state: a restored generator repeats its draws") {
  manual_seed(5);
  randn({3});
  const std::string state = rng_state();
  const auto first = randn({4}).to_vector<float>();
  set_rng_state(state);
  CHECK(randn({4}).to_vector<float>() == first);
  CHECK_THROWS_WITH_AS(set_rng_state("not a state"), doctest::Contains("set_rng_state"), Error);
  CHECK_THROWS_AS(set_rng_state(state + " 12"), Error);
}

TEST_CASE("write_file_atomic replaces the whole file and leaves no temporary behind") {
  TempDir dir;
  write_file_atomic(dir.file("a.txt"), "first version, longer");
  write_file_atomic(dir.file("a.txt"), "second");
  CHECK(slurp(dir.file("a.txt")) == "second");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  CHECK_THROWS_WITH_AS(write_file_atomic(dir.file("no/such/dir/a.txt"), "x"), doctest::Contains("write_file_atomic"), Error);
}

TEST_CASE("ProgressBar in line mode: sample-weighted means, one summary line with the extra metrics") {
  Captured out;
  // An interval no run reaches: the lines this test counts must not depend on the machine's speed.
  train::ProgressBar bar("epoch 1/3", 3, train::ProgressOptions().mode(train::ProgressOptions::Mode::lines).line_interval(1e9).out(out.file));
  bar.update(10, {{"loss", 1.0}});
  bar.update(10, {{"loss", 2.0}});
  bar.update(5, {{"loss", 4.0}});
  CHECK(bar.samples() == 25);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // "validation": not training time
  CHECK(bar.elapsed_seconds() >= bar.training_seconds() + 0.025);
  CHECK(bar.mean("loss") == doctest::Approx((10 * 1.0 + 10 * 2.0 + 5 * 4.0) / 25));
  const auto metrics = bar.finish({{"val_acc", 0.875}});
  REQUIRE(metrics.size() == 2);
  CHECK(metrics[0].first == "loss");
  CHECK(metrics[0].second == doctest::Approx(2.0));
  CHECK(metrics[1] == std::pair<std::string, double>{"val_acc", 0.875});
  const std::string text = out.text();
  CHECK(text.find("epoch 1/3  3/3") == 0);
  CHECK(text.find("loss 2.0000  val_acc 0.8750") != std::string::npos);
  CHECK(text.find('\r') == std::string::npos);  // no terminal control in a log
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK_THROWS_WITH_AS(bar.mean("acc"), doctest::Contains("no metric 'acc'"), Error);
  CHECK_THROWS_AS(bar.finish(), Error);
  CHECK_THROWS_AS(bar.update(1), Error);
}

TEST_CASE("ProgressBar as a bar redraws in place and ends with a clean summary line") {
  Captured out;
  train::ProgressBar bar("train", 2, train::ProgressOptions().mode(train::ProgressOptions::Mode::bar).out(out.file).width(10));
  bar.update(4, {{"loss", 0.5}});
  bar.update(4, {{"loss", 0.25}});
  bar.finish();
  const std::string text = out.text();
  CHECK(text.find("\rtrain [==========] 2/2  ETA") != std::string::npos);
  CHECK(text.find("loss 0.3750") != std::string::npos);
  CHECK(text.back() == '\n');
  CHECK(train::format_duration(7.25) == "7.2 s");
  CHECK(train::format_duration(125) == "2:05");
  CHECK(train::format_duration(3725) == "1:02:05");
}

TEST_CASE("CsvLogger writes every row at once, resumes a file, and rejects mismatched rows") {
  TempDir dir;
  const std::string path = dir.file("metrics.csv");
  {
    train::CsvLogger log(path, {"epoch", "loss"});
    CHECK(slurp(path) == "epoch,loss\n");
    log.log({1, 0.5});
    log.log_metrics({{"loss", 0.125}, {"epoch", 2}});
    CHECK(slurp(path) == "epoch,loss\n1,0.5\n2,0.125\n");
    CHECK_THROWS_WITH_AS(log.log(std::vector<double>{1.0}), doctest::Contains("1 values for 2 columns"), Error);
    CHECK_THROWS_WITH_AS(log.log_metrics({{"epoch", 3}}), doctest::Contains("no value for column 'loss'"), Error);
    CHECK_THROWS_WITH_AS(log.log_metrics({{"epoch", 3}, {"acc", 1}}), doctest::Contains("no column 'acc'"), Error);
  }
  train::CsvLogger resumed(path, {"epoch", "loss"}, /*resume=*/true);
  CHECK(resumed.rows() == 2);
  resumed.truncate(1);
  resumed.log({2, 0.25});
  CHECK(slurp(path) == "epoch,loss\n1,0.5\n2,0.25\n");
  CHECK_THROWS_WITH_AS(train::CsvLogger(path, {"epoch", "acc"}, true), doctest::Contains("its header is 'epoch,loss'"), Error);
  train::CsvLogger fresh(path, {"epoch", "loss"});  // without resume the file starts over
  CHECK(slurp(path) == "epoch,loss\n");
  CHECK_THROWS_AS(train::CsvLogger(path, {"a,b"}), Error);
}

TEST_CASE("a checkpoint resumes training exactly: model, Adam, scheduler and the generator (dropout)") {
  TempDir dir;
  auto make = [] {
    manual_seed(11);
    auto net = std::make_unique<Net>();
    auto opt = std::make_unique<optim::Adam>(net->parameters(), optim::AdamOptions(0.01));
    auto sched = std::make_unique<optim::StepLR>(*opt, 3, 0.5);
    return std::make_tuple(std::move(net), std::move(opt), std::move(sched));
  };
  // Uninterrupted: 10 steps.
  auto [net_a, opt_a, sched_a] = make();
  const double straight = train_steps(*net_a, *opt_a, *sched_a, 10);

  // Interrupted after 4 steps, then resumed in fresh objects (built with another seed).
  {
    auto [net, opt, sched] = make();
    train_steps(*net, *opt, *sched, 4);
    train::save_checkpoint(dir.file("ckpt.safetensors"), *net, opt.get(), sched.get(), {{"step", "4"}});
    randn({100});  // draws after the save must not leak into the resumed run
  }
  manual_seed(999);
  auto net_b = std::make_unique<Net>();
  optim::Adam opt_b(net_b->parameters(), optim::AdamOptions(0.01));
  optim::StepLR sched_b(opt_b, 3, 0.5);
  const train::CheckpointInfo info = train::load_checkpoint(dir.file("ckpt.safetensors"), *net_b, &opt_b, &sched_b);
  CHECK(info.integer("step") == 4);
  CHECK(info.metadata.size() == 1);  // xgrad's own keys are not returned
  const double resumed = train_steps(*net_b, opt_b, sched_b, 6);

  CHECK(resumed == straight);  // bit for bit
  const auto a = net_a->state_dict(), b = net_b->state_dict();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.to_vector<float>() == b[i].second.to_vector<float>());
  CHECK(sched_b.get_last_lr() == sched_a->get_last_lr());
}

TEST_CASE("load_checkpoint names what does not match") {
  TempDir dir;
  Net net;
  optim::Adam adam(net.parameters(), optim::AdamOptions(0.01));
  optim::SGD sgd(net.parameters(), optim::SGDOptions(0.1));
  train::save_checkpoint(dir.file("model_only.safetensors"), net);
  train::save_checkpoint(dir.file("adam.safetensors"), net, &adam, nullptr, {{"epoch", "x"}});
  CHECK_THROWS_WITH_AS(train::load_checkpoint(dir.file("model_only.safetensors"), net, &adam),
                       doctest::Contains("holds no optimizer state"), Error);
  CHECK_THROWS_WITH_AS(train::load_checkpoint(dir.file("adam.safetensors"), net, &sgd),
                       doctest::Contains("the state of a Adam optimizer, not of a SGD"), Error);
  nn::Linear other(3, 8);
  CHECK_THROWS_WITH_AS(train::load_checkpoint(dir.file("adam.safetensors"), other), doctest::Contains("adam.safetensors"), Error);
  const auto info = train::load_checkpoint(dir.file("adam.safetensors"), net, &adam);
  CHECK_THROWS_WITH_AS(info.integer("epoch"), doctest::Contains("'epoch' = 'x' is not an integer"), Error);
  CHECK_THROWS_WITH_AS(info.number("step"), doctest::Contains("no metadata 'step'"), Error);
  // The model's weights are readable on their own, under "model.<name>".
  CHECK(load_safetensors(dir.file("adam.safetensors")).contains("model.fc1.weight"));
}

TEST_CASE("plot_csv writes a PNG when gnuplot is installed, and nothing otherwise") {
  TempDir dir;
  write_file_atomic(dir.file("loss.csv"), "epoch,train,val\n1,1.0,1.2\n2,0.5,0.7\n3,0.25,0.4\n");
  const bool plotted = train::plot_csv(dir.file("loss.csv"), dir.file("loss.png"),
                                       train::PlotOptions().y_columns({2, 3}).log_y(true).title("it's a test"));
  CHECK(plotted == train::have_gnuplot());
  CHECK(fs::exists(dir.file("loss.png")) == plotted);
  if (plotted) CHECK(slurp(dir.file("loss.png")).substr(1, 3) == "PNG");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == (plotted ? 2 : 1));
}

TEST_CASE("load_checkpoint is all or nothing: a bad optimizer part leaves the model's weights untouched") {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  nn::Linear saved(2, 2), model(2, 2);
  optim::SGD opt_saved(saved.parameters(), optim::SGDOptions(0.1));
  train::save_checkpoint(path, saved, &opt_saved);
  // The same file with an optimizer hyper-parameter that cannot be loaded.
  SafetensorsFile file = load_safetensors(path);
  for (auto& [k, t] : file.tensors)
    if (k == "optimizer.param_groups.0.lr") t = full({}, INFINITY, t.dtype());
  save_safetensors(path, file.tensors, file.metadata);
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.5));
  const std::vector<float> before = model.weight.to_vector<float>();
  CHECK_THROWS_WITH_AS(train::load_checkpoint(path, model, &opt), doctest::Contains("is not a finite number"), Error);
  CHECK(model.weight.to_vector<float>() == before);
  CHECK(opt.param_groups()[0].options().get_lr() == doctest::Approx(0.5));
}

/// Fuzz target: a scheduler state file (as `LRScheduler::save` writes) loaded into each kind
/// of scheduler, each followed by a few steps.
#include <memory>

#include <xgrad/core.hpp>
#include <xgrad/optim/optim.hpp>

#include "fuzz_target.hpp"

namespace {

using namespace xgrad;

template <class Make>
void check(const char* what, const std::string& path, Make make) {
  fuzz::expect_xgrad_errors_only(what, [&] {
    Tensor w = full({2}, 1.0).requires_grad_();
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    auto sched = make(opt);
    sched->load(path);
    for (int i = 0; i < 3; ++i) {
      opt.step();
      sched->step();
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = fuzz::write_input(data, size);
  using O = optim::Optimizer&;
  check("StepLR::load", path, [](O o) { return std::make_unique<optim::StepLR>(o, 3, 0.5); });
  check("MultiStepLR::load", path, [](O o) { return std::make_unique<optim::MultiStepLR>(o, std::vector<std::int64_t>{2, 5}); });
  check("ExponentialLR::load", path, [](O o) { return std::make_unique<optim::ExponentialLR>(o, 0.9); });
  check("CosineAnnealingLR::load", path, [](O o) { return std::make_unique<optim::CosineAnnealingLR>(o, 10, 1e-4); });
  check("LinearLR::load", path, [](O o) { return std::make_unique<optim::LinearLR>(o); });
  check("SequentialLR::load", path, [](O o) {
    auto warm = std::make_shared<optim::LinearLR>(o, optim::LinearLROptions().start_factor(0.1).total_iters(2));
    auto cos = std::make_shared<optim::CosineAnnealingLR>(o, 5);
    return std::make_unique<optim::SequentialLR>(o, std::vector<std::shared_ptr<optim::LRScheduler>>{warm, cos},
                                                 std::vector<std::int64_t>{2});
  });
  check("ChainedScheduler::load", path, [](O o) {
    auto a = std::make_shared<optim::StepLR>(o, 2);
    auto b = std::make_shared<optim::ExponentialLR>(o, 0.95);
    return std::make_unique<optim::ChainedScheduler>(std::vector<std::shared_ptr<optim::LRScheduler>>{a, b});
  });
  fuzz::expect_xgrad_errors_only("ReduceLROnPlateau::load", [&] {
    Tensor w = full({2}, 1.0).requires_grad_();
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    optim::ReduceLROnPlateau plateau(opt, optim::ReduceLROnPlateauOptions().patience(1).cooldown(1));
    plateau.load(path);
    for (double metric : {1.0, 1.0, 0.5, 2.0}) plateau.step(metric);
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  auto save = [&](const char* name, auto make) {
    Tensor w = full({2}, 1.0).requires_grad_();
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    auto sched = make(opt);
    for (int i = 0; i < 4; ++i) sched->step();
    sched->save(dir + "/" + name + ".safetensors");
  };
  using O = optim::Optimizer&;
  save("step", [](O o) { return std::make_unique<optim::StepLR>(o, 3, 0.5); });
  save("multistep", [](O o) { return std::make_unique<optim::MultiStepLR>(o, std::vector<std::int64_t>{2, 5}); });
  save("cosine", [](O o) { return std::make_unique<optim::CosineAnnealingLR>(o, 10, 1e-4); });
  save("sequential", [](O o) {
    auto warm = std::make_shared<optim::LinearLR>(o, optim::LinearLROptions().start_factor(0.1).total_iters(2));
    auto cos = std::make_shared<optim::CosineAnnealingLR>(o, 5);
    return std::make_unique<optim::SequentialLR>(o, std::vector<std::shared_ptr<optim::LRScheduler>>{warm, cos},
                                                 std::vector<std::int64_t>{2});
  });
  save("chained", [](O o) {
    auto a = std::make_shared<optim::StepLR>(o, 2);
    auto b = std::make_shared<optim::ExponentialLR>(o, 0.95);
    return std::make_unique<optim::ChainedScheduler>(std::vector<std::shared_ptr<optim::LRScheduler>>{a, b});
  });
  Tensor w = full({2}, 1.0).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  optim::ReduceLROnPlateau plateau(opt, optim::ReduceLROnPlateauOptions().patience(1).cooldown(1));
  for (double metric : {1.0, 1.0, 1.0, 0.5}) plateau.step(metric);
  plateau.save(dir + "/plateau.safetensors");
}

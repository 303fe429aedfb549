/// Fuzz target: a scheduler state file (as `LRScheduler::save` writes) loaded into each kind
/// of scheduler, each followed by a few steps.
#include <functional>
#include <memory>

#include <xgrad/core.hpp>
#include <xgrad/optim.hpp>

#include "fuzz_target.hpp"

namespace {

using namespace xgrad;

// The schedulers under test, each with its seed file's name (or none).
struct Kind {
  const char* name;
  const char* seed;
  std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)> make;
};

const std::vector<Kind>& kinds() {
  using O = optim::Optimizer&;
  static const std::vector<Kind> all = {
      {"StepLR::load", "step", [](O o) { return std::make_unique<optim::StepLR>(o, 3, 0.5); }},
      {"MultiStepLR::load", "multistep",
       [](O o) { return std::make_unique<optim::MultiStepLR>(o, std::vector<std::int64_t>{2, 5}); }},
      {"ExponentialLR::load", nullptr, [](O o) { return std::make_unique<optim::ExponentialLR>(o, 0.9); }},
      {"CosineAnnealingLR::load", "cosine", [](O o) { return std::make_unique<optim::CosineAnnealingLR>(o, 10, 1e-4); }},
      {"LinearLR::load", nullptr, [](O o) { return std::make_unique<optim::LinearLR>(o); }},
      {"SequentialLR::load", "sequential",
       [](O o) {
         auto warm = std::make_shared<optim::LinearLR>(o, optim::LinearLROptions().start_factor(0.1).total_iters(2));
         auto cos = std::make_shared<optim::CosineAnnealingLR>(o, 5);
         return std::make_unique<optim::SequentialLR>(o, std::vector<std::shared_ptr<optim::LRScheduler>>{warm, cos},
                                                      std::vector<std::int64_t>{2});
       }},
      {"ChainedScheduler::load", "chained",
       [](O o) {
         auto a = std::make_shared<optim::StepLR>(o, 2);
         auto b = std::make_shared<optim::ExponentialLR>(o, 0.95);
         return std::make_unique<optim::ChainedScheduler>(std::vector<std::shared_ptr<optim::LRScheduler>>{a, b});
       }},
  };
  return all;
}

optim::ReduceLROnPlateauOptions plateau_options() { return optim::ReduceLROnPlateauOptions().patience(1).cooldown(1); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = fuzz::write_input(data, size);
  for (const Kind& kind : kinds())
    fuzz::expect_xgrad_errors_only(kind.name, [&] {
      Tensor w = full({2}, 1.0).requires_grad_();
      optim::SGD opt({w}, optim::SGDOptions(0.1));
      auto sched = kind.make(opt);
      sched->load(path);
      for (int i = 0; i < 3; ++i) {
        opt.step();
        sched->step();
      }
    });
  fuzz::expect_xgrad_errors_only("ReduceLROnPlateau::load", [&] {
    Tensor w = full({2}, 1.0).requires_grad_();
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    optim::ReduceLROnPlateau plateau(opt, plateau_options());
    plateau.load(path);
    for (double metric : {1.0, 1.0, 0.5, 2.0}) plateau.step(metric);
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  for (const Kind& kind : kinds()) {
    if (!kind.seed) continue;
    Tensor w = full({2}, 1.0).requires_grad_();
    optim::SGD opt({w}, optim::SGDOptions(0.1));
    auto sched = kind.make(opt);
    for (int i = 0; i < 4; ++i) sched->step();
    sched->save(dir + "/" + kind.seed + ".safetensors");
  }
  Tensor w = full({2}, 1.0).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  optim::ReduceLROnPlateau plateau(opt, plateau_options());
  for (double metric : {1.0, 1.0, 1.0, 0.5}) plateau.step(metric);
  plateau.save(dir + "/plateau.safetensors");
}

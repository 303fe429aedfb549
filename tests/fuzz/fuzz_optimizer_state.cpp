/// Fuzz target: an optimizer state file (as `Optimizer::save` writes) loaded into each of
/// the optimizers that keep state, each followed by one step: a state that loads must be one
/// the next step can use (UBSan reports an out-of-range cast, ASan a bad index).
#include <functional>
#include <memory>

#include <xgrad/core.hpp>
#include <xgrad/optim.hpp>

#include "fuzz_target.hpp"

namespace {

using namespace xgrad;

// Two groups, f32 and f64, so group and dtype checks both run.
std::vector<Tensor> make_params() {
  return {full({2, 3}, 0.5).requires_grad_(), full({3}, -0.25).requires_grad_(),
          full({2}, 1.0, DType::f64).requires_grad_()};
}

void step(optim::Optimizer& opt, const std::vector<Tensor>& params) {
  opt.zero_grad();
  for (const Tensor& p : params) (p * p).sum().backward();
  opt.step();
}

// The optimizers under test, each with its seed file's name.
struct Kind {
  const char* name;
  const char* seed;
  std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)> make;
};

const std::vector<Kind>& kinds() {
  using P = std::vector<Tensor>;
  static const std::vector<Kind> all = {
      {"Adam::load", "adam",
       [](P p) {
         return std::make_unique<optim::Adam>(
             std::vector<optim::ParamGroup>{{{p[0], p[1]}}, {{p[2]}, optim::AdamOptions(0.01).amsgrad(true)}});
       }},
      {"SGD::load", "sgd", [](P p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.1).momentum(0.9)); }},
      {"RMSprop::load", "rmsprop",
       [](P p) { return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions(0.01).momentum(0.5).centered(true)); }},
      {"Adagrad::load", "adagrad", [](P p) { return std::make_unique<optim::Adagrad>(p); }},
      {"AdamW::load", "adamw", [](P p) { return std::make_unique<optim::AdamW>(p); }},
  };
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = fuzz::write_input(data, size);
  for (const Kind& kind : kinds())
    fuzz::expect_xgrad_errors_only(kind.name, [&] {
      const std::vector<Tensor> params = make_params();
      auto opt = kind.make(params);
      opt->load(path);
      step(*opt, params);
    });
  return 0;
}

void write_seeds(const std::string& dir) {
  for (const Kind& kind : kinds()) {
    const std::vector<Tensor> params = make_params();
    auto opt = kind.make(params);
    for (int i = 0; i < 2; ++i) step(*opt, params);
    opt->save(dir + "/" + kind.seed + ".safetensors");
  }
}

/// Fuzz target: an optimizer state file (as `Optimizer::save` writes) loaded into each of
/// the optimizers that keep state, each followed by one step: a state that loads must be one
/// the next step can use (UBSan reports an out-of-range cast, ASan a bad index).
#include <functional>

#include <xgrad/core.hpp>
#include <xgrad/optim/optim.hpp>

#include "fuzz_target.hpp"

namespace {

using namespace xgrad;

void load_and_step(optim::Optimizer& opt, const std::vector<Tensor>& params, const std::string& path) {
  opt.load(path);
  for (const Tensor& p : params) {
    Tensor loss = (p * p).sum();
    loss.backward();
  }
  opt.step();
}

template <class Make>
void check(const char* what, const std::string& path, Make make) {
  fuzz::expect_xgrad_errors_only(what, [&] {
    // Two groups, f32 and f64, so group and dtype checks both run.
    std::vector<Tensor> params = {full({2, 3}, 0.5).requires_grad_(), full({3}, -0.25).requires_grad_(),
                                  full({2}, 1.0, DType::f64).requires_grad_()};
    auto opt = make(params);
    load_and_step(*opt, params, path);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = fuzz::write_input(data, size);
  using P = std::vector<Tensor>;
  check("Adam::load", path, [](P p) {
    return std::make_unique<optim::Adam>(
        std::vector<optim::ParamGroup>{{{p[0], p[1]}}, {{p[2]}, optim::AdamOptions(0.01).amsgrad(true)}});
  });
  check("SGD::load", path, [](P p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.1).momentum(0.9)); });
  check("RMSprop::load", path, [](P p) {
    return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions(0.01).momentum(0.5).centered(true));
  });
  check("Adagrad::load", path, [](P p) { return std::make_unique<optim::Adagrad>(p); });
  check("AdamW::load", path, [](P p) { return std::make_unique<optim::AdamW>(p); });
  return 0;
}

void write_seeds(const std::string& dir) {
  using P = std::vector<Tensor>;
  auto save = [&](const char* name, auto make) {
    std::vector<Tensor> params = {full({2, 3}, 0.5).requires_grad_(), full({3}, -0.25).requires_grad_(),
                                  full({2}, 1.0, DType::f64).requires_grad_()};
    auto opt = make(params);
    for (int i = 0; i < 2; ++i) {
      opt->zero_grad();
      for (const Tensor& p : params) (p * p).sum().backward();
      opt->step();
    }
    opt->save(dir + "/" + name + ".safetensors");
  };
  save("adam", [](P p) {
    return std::make_unique<optim::Adam>(
        std::vector<optim::ParamGroup>{{{p[0], p[1]}}, {{p[2]}, optim::AdamOptions(0.01).amsgrad(true)}});
  });
  save("sgd", [](P p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.1).momentum(0.9)); });
  save("rmsprop", [](P p) {
    return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions(0.01).momentum(0.5).centered(true));
  });
  save("adagrad", [](P p) { return std::make_unique<optim::Adagrad>(p); });
  save("adamw", [](P p) { return std::make_unique<optim::AdamW>(p); });
}

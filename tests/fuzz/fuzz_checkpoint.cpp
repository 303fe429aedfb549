/// Fuzz target: `load_checkpoint` into a small LSTM + Linear model with Adam and StepLR.
/// Beyond "xgrad::Error or success", it checks all-or-nothing: when the load throws, the
/// model's weights are the ones it had before.
#include <cstring>

#include <xgrad/core.hpp>
#include <xgrad/nn.hpp>
#include <xgrad/optim.hpp>
#include <xgrad/train/checkpoint.hpp>

#include "fuzz_target.hpp"

namespace {

using namespace xgrad;

struct Model : nn::Module {
  nn::LSTM lstm{3, 4};
  nn::Linear head{4, 2};
  Model() {
    register_module("lstm", lstm);
    register_module("head", head);
  }
};

bool same_weights(const nn::Module& m, const std::vector<Tensor>& before) {
  const auto now = m.parameters();
  if (now.size() != before.size()) return false;
  for (std::size_t i = 0; i < now.size(); ++i)
    if (now[i].numel() != before[i].numel() ||
        std::memcmp(now[i].data<float>(), before[i].data<float>(), sizeof(float) * now[i].numel()) != 0)
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = fuzz::write_input(data, size);
  manual_seed(7);
  Model model;
  optim::Adam opt(model.parameters(), optim::AdamOptions(0.01));
  optim::StepLR sched(opt, 2);
  std::vector<Tensor> before;
  for (const Tensor& p : model.parameters()) before.push_back(p.detach().clone());
  bool threw = true;
  fuzz::expect_xgrad_errors_only("load_checkpoint", [&] {
    (void)train::load_checkpoint(path, model, &opt, &sched);
    threw = false;
    // A checkpoint that loads must train on.
    Tensor y = model.head(model.lstm(full({5, 1, 3}, 0.3)).output.select(0, 4));
    y.sum().backward();
    opt.step();
    sched.step();
  });
  if (threw && !same_weights(model, before)) {
    std::fprintf(stderr, "fuzz: load_checkpoint threw but changed the model's weights\n");
    std::abort();
  }
  return 0;
}

void write_seeds(const std::string& dir) {
  manual_seed(3);
  Model model;
  optim::Adam opt(model.parameters(), optim::AdamOptions(0.01));
  optim::StepLR sched(opt, 2);
  Tensor y = model.head(model.lstm(full({5, 1, 3}, 0.3)).output.select(0, 4));
  y.sum().backward();
  opt.step();
  sched.step();
  train::save_checkpoint(dir + "/after_one_step.safetensors", model, &opt, &sched, {{"epoch", "1"}, {"best", "0.25"}});
}

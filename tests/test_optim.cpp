// Optimizers: PyTorch's trajectories reproduced step for step, parameter groups, zero_grad,
// state dicts, bit-exact resume from files, and clear errors for bad input.
//
// The reference trajectories come from tests/fixtures/gen_optim_fixtures.py (PyTorch 1.13;
// Keras-convention RMSprop from a numpy transcription of Keras's rule). Set
// XGRAD_OPTIM_REPORT=1 to print the worst difference of every configuration.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

using namespace xgrad;
using xgrad_test::TempDir;
namespace fs = std::filesystem;

namespace {

const std::string kFixtures = XGRAD_FIXTURES_DIR "/optim/";

using Factory = std::function<std::unique_ptr<optim::Optimizer>(Tensor W, Tensor b)>;

// W and b in one group with `options`.
template <class Opt, class Options>
Factory one_group(const Options& options) {
  return [options](Tensor W, Tensor b) -> std::unique_ptr<optim::Optimizer> {
    return std::make_unique<Opt>(std::vector<Tensor>{W, b}, options);
  };
}

// W and b in two groups with their own options.
template <class Opt, class Options>
Factory two_groups(const Options& w_options, const Options& b_options) {
  return [=](Tensor W, Tensor b) -> std::unique_ptr<optim::Optimizer> {
    std::vector<optim::ParamGroup> groups{optim::ParamGroup({W}, w_options), optim::ParamGroup({b}, b_options)};
    return std::make_unique<Opt>(groups, w_options);
  };
}

// The configurations of gen_optim_fixtures.py, by the same names.
const std::map<std::string, Factory>& configurations() {
  using optim::AdagradOptions, optim::AdamOptions, optim::AdamWOptions, optim::RMSpropOptions, optim::SGDOptions;
  static const std::map<std::string, Factory> table = {
      {"sgd", one_group<optim::SGD>(SGDOptions(0.1))},
      {"sgd_momentum", one_group<optim::SGD>(SGDOptions(0.05).momentum(0.9))},
      {"sgd_dampening_wd", one_group<optim::SGD>(SGDOptions(0.05).momentum(0.9).dampening(0.3).weight_decay(0.01))},
      {"sgd_nesterov", one_group<optim::SGD>(SGDOptions(0.05).momentum(0.8).nesterov(true).weight_decay(0.05))},
      {"sgd_maximize", one_group<optim::SGD>(SGDOptions(0.02).momentum(0.5).maximize(true))},
      {"sgd_groups", two_groups<optim::SGD>(SGDOptions(0.1).momentum(0.9), SGDOptions(0.01))},
      {"adam", one_group<optim::Adam>(AdamOptions())},
      {"adam_lr_betas_eps", one_group<optim::Adam>(AdamOptions(0.02).betas({0.8, 0.99}).eps(1e-6))},
      {"adam_amsgrad", one_group<optim::Adam>(AdamOptions(0.02).amsgrad(true))},
      {"adam_weight_decay", one_group<optim::Adam>(AdamOptions(0.01).weight_decay(0.1))},
      {"adam_maximize_amsgrad", one_group<optim::Adam>(AdamOptions(0.01).maximize(true).amsgrad(true))},
      {"adam_groups", two_groups<optim::Adam>(AdamOptions(0.03).betas({0.5, 0.9}), AdamOptions(0.01).amsgrad(true))},
      {"adamw", one_group<optim::AdamW>(AdamWOptions(0.01))},
      {"adamw_amsgrad_wd",
       one_group<optim::AdamW>(AdamWOptions(0.02).betas({0.85, 0.995}).eps(1e-7).weight_decay(0.1).amsgrad(true))},
      {"adamw_maximize", one_group<optim::AdamW>(AdamWOptions(0.01).maximize(true))},
      {"rmsprop", one_group<optim::RMSprop>(RMSpropOptions())},
      {"rmsprop_alpha_eps", one_group<optim::RMSprop>(RMSpropOptions(0.01).alpha(0.9).eps(1e-4))},
      {"rmsprop_momentum_wd", one_group<optim::RMSprop>(RMSpropOptions(0.005).momentum(0.9).weight_decay(0.01))},
      {"rmsprop_centered", one_group<optim::RMSprop>(RMSpropOptions(0.005).centered(true))},
      {"rmsprop_centered_momentum",
       one_group<optim::RMSprop>(RMSpropOptions(0.005).centered(true).momentum(0.5).alpha(0.95))},
      {"rmsprop_maximize", one_group<optim::RMSprop>(RMSpropOptions(0.001).maximize(true))},
      {"rmsprop_keras", one_group<optim::RMSprop>(RMSpropOptions::keras())},
      {"rmsprop_keras_momentum_centered",
       one_group<optim::RMSprop>(RMSpropOptions::keras(0.01).alpha(0.8).momentum(0.9).eps(1e-3).centered(true))},
      {"rmsprop_keras_weight_decay",
       one_group<optim::RMSprop>(RMSpropOptions::keras(0.01).weight_decay(0.1).momentum(0.5))},
      {"adagrad", one_group<optim::Adagrad>(AdagradOptions())},
      {"adagrad_lr_decay", one_group<optim::Adagrad>(AdagradOptions(0.1).lr_decay(0.05))},
      {"adagrad_init_acc_wd_eps",
       one_group<optim::Adagrad>(AdagradOptions(0.1).initial_accumulator_value(0.5).weight_decay(0.02).eps(1e-6))},
      {"adagrad_maximize", one_group<optim::Adagrad>(AdagradOptions(0.05).maximize(true))},
  };
  return table;
}

// The fixture's loss: mean((tanh(X W + b) - Y)^2) + 0.05 * sum(W^2).
Tensor fixture_loss(const Tensor& X, const Tensor& Y, const Tensor& W, const Tensor& b) {
  return (tanh(matmul(X, W) + b) - Y).pow(2).mean() + 0.05 * (W * W).sum();
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

// Runs every configuration on the fixture of one dtype; returns the worst difference of each.
std::map<std::string, double> check_trajectories(const std::string& file, double tolerance) {
  const SafetensorsFile fixture = load_safetensors(kFixtures + file);
  const Tensor& X = fixture.at("X");
  const Tensor& Y = fixture.at("Y");
  std::map<std::string, double> worst;
  for (const auto& [name, factory] : configurations()) {
    INFO("configuration " << name);
    REQUIRE(fixture.contains(name + ".W"));
    const Tensor& W_ref = fixture.at(name + ".W");  // (steps, 2, 3)
    const Tensor& b_ref = fixture.at(name + ".b");  // (steps, 3)
    Tensor W = fixture.at("W0").clone().requires_grad_();
    Tensor b = fixture.at("b0").clone().requires_grad_();
    auto opt = factory(W, b);
    worst[name] = 0;
    for (std::int64_t t = 0; t < W_ref.size(0); ++t) {
      opt->zero_grad();
      fixture_loss(X, Y, W, b).backward();
      opt->step();
      const double d = std::max(max_abs_diff(W, W_ref.select(0, t)), max_abs_diff(b, b_ref.select(0, t)));
      INFO("step " << t + 1);
      CHECK(d <= tolerance);
      worst[name] = std::max(worst[name], d);
    }
  }
  // Every trajectory in the fixture has a configuration here.
  std::size_t trajectories = 0;
  for (const auto& [key, t] : fixture.tensors)
    if (key.size() > 2 && key.substr(key.size() - 2) == ".W") ++trajectories;
  CHECK(trajectories == configurations().size());
  if (std::getenv("XGRAD_OPTIM_REPORT"))
    for (const auto& [name, d] : worst) std::printf("%-36s %-28s %.3g\n", file.c_str(), name.c_str(), d);
  return worst;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

// --- exact trajectories ------------------------------------------------------------------------

TEST_CASE("optimizers reproduce PyTorch's 20-step trajectories in float32 (<= 1e-6)") {
  check_trajectories("trajectories_f32.safetensors", 1e-6);
}

TEST_CASE("optimizers reproduce PyTorch's 20-step trajectories in float64 (<= 1e-12)") {
  check_trajectories("trajectories_f64.safetensors", 1e-12);
}

// --- the update loop ---------------------------------------------------------------------------

TEST_CASE("step leaves parameters without a gradient untouched and gives them no state") {
  Tensor used = tensor({1, 2, 3}).requires_grad_();
  Tensor unused = tensor({4, 5}).requires_grad_();
  Tensor frozen = tensor({6}, DType::f64);  // does not even require grad
  optim::Adam opt({used, unused, frozen}, optim::AdamOptions(0.1));
  (used * used).sum().backward();
  opt.step();
  CHECK(unused.to_vector<float>() == std::vector<float>{4, 5});
  CHECK(frozen.to_vector<double>() == std::vector<double>{6});
  CHECK(opt.state(unused) == nullptr);
  CHECK(opt.state(frozen) == nullptr);
  REQUIRE(opt.state(used) != nullptr);
  CHECK(opt.state(used)->step == 1);
  CHECK(used.to_vector<float>()[0] == doctest::Approx(0.9));  // Adam's first step moves by lr
}

TEST_CASE("step updates in place and records no graph") {
  Tensor w = tensor({1, -2}).requires_grad_();
  Tensor alias = w;
  optim::SGD opt({w}, optim::SGDOptions(0.5));
  (w * w).sum().backward();  // grad = 2w
  opt.step();
  CHECK(alias.to_vector<float>() == std::vector<float>{0, 0});
  CHECK(w.is_leaf());
  CHECK(w.grad_fn_name().empty());
  CHECK(w.requires_grad());
  CHECK(is_grad_enabled());
}

TEST_CASE("a parameter laid out transposed is updated as its contiguous twin, by every optimizer") {
  using Make = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
  const std::vector<std::pair<std::string, Make>> makers = {
      {"SGD", [](auto p) { return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.1).momentum(0.9).weight_decay(0.01)); }},
      {"Adam", [](auto p) { return std::make_unique<optim::Adam>(p, optim::AdamOptions(0.1).amsgrad(true)); }},
      {"RMSprop", [](auto p) { return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions(0.01).centered(true).momentum(0.5)); }},
      {"Adagrad", [](auto p) { return std::make_unique<optim::Adagrad>(p, optim::AdagradOptions(0.1)); }},
  };
  for (const auto& [name, make] : makers) {
    CAPTURE(name);
    manual_seed(8);
    const Tensor base = randn({4, 6}), w = randn({4, 5}), target = randn({6, 5});
    Tensor x = base.t().detach().requires_grad_();  // a leaf with strides (1, 6)
    Tensor twin = base.t().contiguous().requires_grad_();
    REQUIRE_FALSE(x.is_contiguous());
    auto opt = make({x}), opt_twin = make({twin});
    for (int i = 0; i < 3; ++i) {
      for (auto* o : {opt.get(), opt_twin.get()}) o->zero_grad();
      ((matmul(x, w) - target) * (matmul(x, w) - target)).sum().backward();
      ((matmul(twin, w) - target) * (matmul(twin, w) - target)).sum().backward();
      opt->step();
      opt_twin->step();
    }
    CHECK(x.strides() == std::vector<std::int64_t>{1, 6});  // still the same tensor, written in place
    CHECK(x.to_vector<float>() == twin.to_vector<float>());
  }
}

TEST_CASE("zero_grad clears gradients to none by default, or to zeros") {
  Tensor w = tensor({1, 2}).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  (w * w).sum().backward();
  REQUIRE(w.grad().defined());
  opt.zero_grad(false);
  REQUIRE(w.grad().defined());
  CHECK(w.grad().to_vector<float>() == std::vector<float>{0, 0});
  opt.zero_grad();
  CHECK_FALSE(w.grad().defined());
}

TEST_CASE("step(closure) evaluates the loss, then updates") {
  Tensor w = tensor({3}).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.25));
  Tensor loss = opt.step([&] {
    opt.zero_grad();
    Tensor l = (w * w).sum();
    l.backward();
    return l;
  });
  CHECK(loss.item() == 9);
  CHECK(w.item() == doctest::Approx(1.5));  // 3 - 0.25 * 6
}

TEST_CASE("parameter groups carry their own options; add_param_group takes the defaults") {
  Tensor a = tensor({1}).requires_grad_(), b = tensor({1}).requires_grad_(), c = tensor({1}).requires_grad_();
  optim::SGD opt(std::vector<optim::ParamGroup>{optim::ParamGroup({a}), optim::ParamGroup({b}, optim::SGDOptions(0.5))},
                 optim::SGDOptions(0.1).momentum(0.9));
  opt.add_param_group(optim::ParamGroup({c}));
  REQUIRE(opt.param_groups().size() == 3);
  CHECK(opt.param_groups()[0].lr() == 0.1);
  CHECK(opt.param_groups()[1].lr() == 0.5);
  CHECK(opt.param_groups()[2].lr() == 0.1);
  CHECK(dynamic_cast<const optim::SGDOptions&>(opt.param_groups()[2].options()).momentum() == 0.9);
  CHECK(opt.parameters().size() == 3);

  for (Tensor t : {a, b, c}) (t * 2.0).sum().backward();  // gradient 2 each
  opt.step();
  CHECK(a.item() == doctest::Approx(1 - 0.1 * 2));
  CHECK(b.item() == doctest::Approx(1 - 0.5 * 2));
  CHECK(c.item() == doctest::Approx(1 - 0.1 * 2));
  opt.param_groups()[2].set_lr(0.25);
  CHECK(opt.param_groups()[2].lr() == 0.25);
  CHECK(opt.param_groups()[0].lr() == 0.1);
}

TEST_CASE("options: PyTorch's defaults, chained setters, Keras's RMSprop defaults") {
  Tensor w = zeros({2}).requires_grad_();
  optim::Adam opt({w}, optim::AdamOptions(1e-3).betas({0.9, 0.999}).weight_decay(1e-2));
  const auto& o = dynamic_cast<const optim::AdamOptions&>(opt.defaults());
  CHECK(o.lr() == 1e-3);
  CHECK(o.weight_decay() == 1e-2);
  CHECK(o.eps() == 1e-8);
  CHECK(optim::AdamWOptions().weight_decay() == 1e-2);
  CHECK(optim::AdamOptions().weight_decay() == 0);
  CHECK(optim::RMSpropOptions().lr() == 1e-2);
  CHECK(optim::RMSpropOptions().alpha() == 0.99);
  CHECK(optim::RMSpropOptions().eps() == 1e-8);
  const auto keras = optim::RMSpropOptions::keras();
  CHECK(keras.lr() == 1e-3);
  CHECK(keras.alpha() == 0.9);
  CHECK(keras.eps() == 1e-7);
  CHECK(keras.convention() == optim::RMSpropConvention::keras);
  CHECK(optim::AdagradOptions().lr() == 1e-2);
  CHECK(optim::AdagradOptions().eps() == 1e-10);
  CHECK(optim::SGDOptions(0.1).momentum() == 0);
}

TEST_CASE("Keras's RMSprop puts eps inside the square root") {
  // One step from zero state: v = (1 - rho) g^2, p -= lr g / sqrt(v + eps) (Keras) versus
  // p -= lr g / (sqrt(v) + eps) (PyTorch). With a large eps the two clearly differ.
  const double g = 0.5, rho = 0.9, eps = 0.01, lr = 0.1;
  const double v = (1 - rho) * g * g;
  Tensor k = tensor({0}, DType::f64).requires_grad_(), p = tensor({0}, DType::f64).requires_grad_();
  optim::RMSprop keras({k}, optim::RMSpropOptions::keras(lr).eps(eps));
  optim::RMSprop torch({p}, optim::RMSpropOptions(lr).alpha(rho).eps(eps));
  (k * g).sum().backward();
  (p * g).sum().backward();
  keras.step();
  torch.step();
  CHECK(k.item() == doctest::Approx(-lr * g / std::sqrt(v + eps)).epsilon(1e-14));
  CHECK(p.item() == doctest::Approx(-lr * g / (std::sqrt(v) + eps)).epsilon(1e-14));
}

// --- bad input ---------------------------------------------------------------------------------

TEST_CASE("bad input: negative learning rates and out-of-range options name the optimizer and the value") {
  Tensor w = zeros({2}).requires_grad_();
  CHECK(error_of([&] { optim::SGD({w}, optim::SGDOptions(-0.1)); }) ==
        "SGD: invalid learning rate -0.1 (must be >= 0)");
  CHECK(error_of([&] { optim::Adam({w}, optim::AdamOptions(-1)); }) == "Adam: invalid learning rate -1 (must be >= 0)");
  CHECK(error_of([&] { optim::AdamW({w}, optim::AdamWOptions(-0.5)); }) ==
        "AdamW: invalid learning rate -0.5 (must be >= 0)");
  CHECK(error_of([&] { optim::RMSprop({w}, optim::RMSpropOptions(-0.01)); }) ==
        "RMSprop: invalid learning rate -0.01 (must be >= 0)");
  CHECK(error_of([&] { optim::Adagrad({w}, optim::AdagradOptions(-2)); }) ==
        "Adagrad: invalid learning rate -2 (must be >= 0)");
  CHECK(error_of([&] { optim::SGD({w}, optim::SGDOptions(0.1).momentum(-0.9)); }) ==
        "SGD: invalid momentum -0.9 (must be >= 0)");
  CHECK(contains(error_of([&] { optim::SGD({w}, optim::SGDOptions(0.1).nesterov(true)); }),
                 "SGD: Nesterov momentum requires a momentum > 0 and zero dampening"));
  CHECK(error_of([&] { optim::RMSprop({w}, optim::RMSpropOptions().alpha(-0.5)); }) ==
        "RMSprop: invalid alpha -0.5 (must be >= 0)");
  CHECK(error_of([&] { optim::Adagrad({w}, optim::AdagradOptions().lr_decay(-1)); }) ==
        "Adagrad: invalid lr_decay -1 (must be >= 0)");
  CHECK(error_of([&] { optim::Adam({w}, optim::AdamOptions().weight_decay(-1e-2)); }) ==
        "Adam: invalid weight_decay -0.01 (must be >= 0)");
  // A group's own options are checked too.
  CHECK(error_of([&] {
          optim::SGD opt({w}, optim::SGDOptions(0.1));
          opt.add_param_group(optim::ParamGroup({zeros({1}).requires_grad_()}, optim::SGDOptions(-3)));
        }) == "SGD: invalid learning rate -3 (must be >= 0)");
}

TEST_CASE("bad input: betas outside [0, 1)") {
  Tensor w = zeros({2}).requires_grad_();
  CHECK(error_of([&] { optim::Adam({w}, optim::AdamOptions().betas({1.0, 0.999})); }) ==
        "Adam: invalid beta1 1 (must be in [0, 1))");
  CHECK(error_of([&] { optim::Adam({w}, optim::AdamOptions().betas({0.9, 1.5})); }) ==
        "Adam: invalid beta2 1.5 (must be in [0, 1))");
  CHECK(error_of([&] { optim::AdamW({w}, optim::AdamWOptions().betas({-0.1, 0.9})); }) ==
        "AdamW: invalid beta1 -0.1 (must be in [0, 1))");
}

TEST_CASE("bad input: a parameter given twice") {
  Tensor w = zeros({2}).requires_grad_(), b = zeros({1}).requires_grad_();
  Tensor alias = w;  // the same tensor under another name
  CHECK(error_of([&] { optim::SGD({w, b, alias}, optim::SGDOptions(0.1)); }) ==
        "SGD: parameter 2 of group 0 is given twice (it is also parameter 0 of group 0)");
  CHECK(error_of([&] {
          optim::Adam(std::vector<optim::ParamGroup>{optim::ParamGroup({w}), optim::ParamGroup({b, w})});
        }) == "Adam: parameter 1 of group 1 is given twice (it is also parameter 0 of group 0)");
  optim::Adam opt({w, b});
  CHECK(error_of([&] { opt.add_param_group(optim::ParamGroup({b})); }) ==
        "Adam: parameter 0 of group 1 is given twice (it is also parameter 1 of group 0)");
  CHECK(opt.param_groups().size() == 1);  // the failed group was not added
}

TEST_CASE("bad input: non-float, non-leaf, undefined parameters and an empty list") {
  Tensor w = zeros({2}).requires_grad_();
  CHECK(error_of([&] { optim::SGD({w, arange(3)}, optim::SGDOptions(0.1)); }) ==
        "SGD: parameter 1 of group 0 has dtype int64; only float32 and float64 tensors can be optimized");
  CHECK(contains(error_of([&] { optim::Adam({w * 2.0}); }),
                 "Adam: parameter 0 of group 0 is not a leaf tensor (it was computed by 'mul')"));
  CHECK(error_of([&] { optim::RMSprop({Tensor()}); }) == "RMSprop: parameter 0 of group 0 is an undefined tensor");
  CHECK(error_of([&] { optim::Adagrad(std::vector<Tensor>{}); }) == "Adagrad: got an empty parameter list");
}

TEST_CASE("bad input: step checks options changed by hand") {
  Tensor w = tensor({1}).requires_grad_();
  optim::Adam opt({w});
  (w * 1.0).sum().backward();
  opt.param_groups()[0].set_lr(-0.5);
  CHECK(error_of([&] { opt.step(); }) == "Adam: invalid learning rate -0.5 (must be >= 0)");
  opt.param_groups()[0].set_options(optim::SGDOptions(0.1).clone());
  CHECK(error_of([&] { opt.step(); }) == "Adam: a parameter group's options are not AdamOptions");
  CHECK(w.item() == 1);  // nothing was updated
}

// --- state dicts ---------------------------------------------------------------------------------

TEST_CASE("state_dict holds hyper-parameters, step counts and buffers under PyTorch-like names") {
  Tensor w = tensor({1, 2}).requires_grad_(), b = tensor({3}).requires_grad_();
  optim::Adam opt(std::vector<optim::ParamGroup>{optim::ParamGroup({w}),
                                                  optim::ParamGroup({b}, optim::AdamOptions(0.5).amsgrad(true))},
                  optim::AdamOptions(0.1));
  (w * b).sum().backward();
  opt.step();
  opt.step();
  std::map<std::string, Tensor> sd;
  for (auto& [k, t] : opt.state_dict()) sd[k] = t;
  CHECK(sd.at("param_groups.0.params").to_vector<std::int64_t>() == std::vector<std::int64_t>{0});
  CHECK(sd.at("param_groups.1.params").to_vector<std::int64_t>() == std::vector<std::int64_t>{1});
  CHECK(sd.at("param_groups.0.lr").item() == 0.1);
  CHECK(sd.at("param_groups.1.lr").item() == 0.5);
  CHECK(sd.at("param_groups.1.amsgrad").item() == 1);
  CHECK(sd.at("param_groups.0.beta2").item() == 0.999);
  CHECK(sd.at("state.0.step").to_vector<std::int64_t>() == std::vector<std::int64_t>{2});
  CHECK(sd.at("state.0.exp_avg").shape() == Shape{2});
  CHECK(sd.at("state.1.max_exp_avg_sq").shape() == Shape{1});
  CHECK_FALSE(sd.count("state.0.max_exp_avg_sq"));
  // The state dict holds copies: changing it does not change the optimizer.
  NoGradGuard g;
  sd.at("state.0.exp_avg").fill_(123);
  CHECK(opt.state(w)->buffers.at("exp_avg").to_vector<float>()[0] != 123);
}

TEST_CASE("load_state_dict rejects state from another optimizer or other parameters") {
  Tensor w = zeros({2}).requires_grad_();
  optim::SGD sgd({w}, optim::SGDOptions(0.1).momentum(0.9));
  (w * 1.0).sum().backward();
  sgd.step();

  Tensor v = zeros({2}).requires_grad_();
  optim::Adam adam({v});
  CHECK(error_of([&] { adam.load_state_dict(sgd.state_dict()); }) ==
        "Adam: load_state_dict: missing hyper-parameter 'param_groups.0.beta1'");

  optim::SGD sgd_two_groups(std::vector<optim::ParamGroup>{optim::ParamGroup({zeros({2}).requires_grad_()}),
                                                          optim::ParamGroup({zeros({2}).requires_grad_()})},
                            optim::SGDOptions(0.1));
  CHECK(contains(error_of([&] { sgd_two_groups.load_state_dict(sgd.state_dict()); }),
                 "SGD: load_state_dict: missing 'param_groups.1.params'"));

  optim::SGD other_shape({zeros({3}).requires_grad_()}, optim::SGDOptions(0.1).momentum(0.9));
  CHECK(error_of([&] { other_shape.load_state_dict(sgd.state_dict()); }) ==
        "SGD: load_state_dict: 'state.0.momentum_buffer' has shape (2), but its parameter has shape (3)");

  NamedTensors bad_lr = sgd.state_dict();
  for (auto& [k, t] : bad_lr)
    if (k == "param_groups.0.lr") t = scalar(-1.0, DType::f64);
  optim::SGD fresh({zeros({2}).requires_grad_()}, optim::SGDOptions(0.3));
  CHECK(error_of([&] { fresh.load_state_dict(bad_lr); }) == "SGD: invalid learning rate -1 (must be >= 0)");
  CHECK(fresh.param_groups()[0].lr() == 0.3);  // nothing changed

  NamedTensors extra = sgd.state_dict();
  extra.emplace_back("param_groups.0.betas", scalar(0.5, DType::f64));
  CHECK(error_of([&] { fresh.load_state_dict(extra); }) == "SGD: load_state_dict: unexpected key 'param_groups.0.betas'");

  TempDir dir;
  sgd.save(dir.file("sgd.safetensors"));
  CHECK(contains(error_of([&] { adam.load(dir.file("sgd.safetensors")); }), "holds the state of a SGD optimizer"));
}

// --- resume ----------------------------------------------------------------------------------------

namespace {

// A two-layer ReLU network on a fixed regression task, its parameters in registration order.
// Only ops that are exact elementwise (relu, +, *) or fixed-order (matmul, mean) appear, so the
// two runs compute bit-identical gradients and any difference comes from the optimizer state.
// (xsimd's tanh and std::tanh differ in the last bit, and which one xtensor uses for an element
// can vary between calls, so tanh would make this test flaky for reasons outside optim.)
struct TinyModel {
  Tensor w1, b1, w2, b2;
  TinyModel() : w1(zeros({3, 8})), b1(zeros({8})), w2(zeros({8, 1})), b2(zeros({1})) {}
  static TinyModel seeded() {
    manual_seed(7);
    TinyModel m;
    m.w1 = randn({3, 8}) * 0.5;
    m.b1 = randn({8}) * 0.1;
    m.w2 = randn({8, 1}) * 0.5;
    m.b2 = zeros({1});
    return m;
  }
  std::vector<Tensor> parameters() {
    for (Tensor* p : {&w1, &b1, &w2, &b2})
      if (!p->requires_grad()) p->requires_grad_();
    return {w1, b1, w2, b2};
  }
  NamedTensors state_dict() const { return {{"w1", w1}, {"b1", b1}, {"w2", w2}, {"b2", b2}}; }
  void load(const std::string& path) {
    const SafetensorsFile f = load_safetensors(path);
    NoGradGuard g;
    w1.copy_(f.at("w1"));
    b1.copy_(f.at("b1"));
    w2.copy_(f.at("w2"));
    b2.copy_(f.at("b2"));
  }
  Tensor loss(const Tensor& x, const Tensor& y) const {
    Tensor d = matmul(relu(matmul(x, w1) + b1), w2) + b2 - y;
    return (d * d).mean();
  }
};

using OptFactory = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Tensor>)>;
using SchedFactory = std::function<std::unique_ptr<optim::LRScheduler>(optim::Optimizer&)>;

void train(TinyModel& m, optim::Optimizer& opt, optim::LRScheduler& sched, const Tensor& x, const Tensor& y,
           int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    m.loss(x, y).backward();
    opt.step();
    sched.step();
  }
}

void check_resume(const OptFactory& make_opt, const SchedFactory& make_sched) {
  const int N = 7, M = 9;
  manual_seed(3);
  const Tensor x = randn({16, 3});
  const Tensor y = (x.sum({1}, true) * 0.5).tanh();

  TinyModel straight = TinyModel::seeded();
  auto opt = make_opt(straight.parameters());
  auto sched = make_sched(*opt);
  train(straight, *opt, *sched, x, y, N + M);

  TempDir dir;
  TinyModel first = TinyModel::seeded();
  {
    auto opt1 = make_opt(first.parameters());
    auto sched1 = make_sched(*opt1);
    train(first, *opt1, *sched1, x, y, N);
    save_safetensors(dir.file("model.safetensors"), first.state_dict());
    opt1->save(dir.file("optimizer.safetensors"));
    sched1->save(dir.file("scheduler.safetensors"));
  }
  TinyModel resumed;  // fresh parameters (zeros), fresh optimizer and scheduler
  auto opt2 = make_opt(resumed.parameters());
  auto sched2 = make_sched(*opt2);
  resumed.load(dir.file("model.safetensors"));
  opt2->load(dir.file("optimizer.safetensors"));
  sched2->load(dir.file("scheduler.safetensors"));
  train(resumed, *opt2, *sched2, x, y, M);

  const auto a = straight.state_dict(), b = resumed.state_dict();
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(bitwise_equal(a[i].second, b[i].second));
  }
  CHECK(sched->get_last_lr() == sched2->get_last_lr());
  CHECK(straight.w1.to_vector<float>() != TinyModel::seeded().w1.to_vector<float>());  // it trained
}

}  // namespace

TEST_CASE("resume: N steps, save model, optimizer and scheduler, load into fresh objects, M more == N+M steps, bit for bit") {
  auto cosine = [](optim::Optimizer& o) -> std::unique_ptr<optim::LRScheduler> {
    return std::make_unique<optim::CosineAnnealingLR>(o, 10, 1e-4);
  };
  auto step_lr = [](optim::Optimizer& o) -> std::unique_ptr<optim::LRScheduler> {
    return std::make_unique<optim::StepLR>(o, 4, 0.5);
  };
  auto warmup_cosine = [](optim::Optimizer& o) -> std::unique_ptr<optim::LRScheduler> {
    auto warmup = std::make_shared<optim::LinearLR>(o, optim::LinearLROptions().start_factor(0.2).total_iters(5));
    auto cos = std::make_shared<optim::CosineAnnealingLR>(o, 20);
    return std::make_unique<optim::SequentialLR>(o, std::vector<std::shared_ptr<optim::LRScheduler>>{warmup, cos},
                                                 std::vector<std::int64_t>{5});
  };
  SUBCASE("SGD, Nesterov momentum") {
    check_resume([](std::vector<Tensor> p) {
      return std::make_unique<optim::SGD>(p, optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-3));
    }, step_lr);
  }
  SUBCASE("Adam, AMSGrad, two groups") {
    check_resume([](std::vector<Tensor> p) {
      std::vector<optim::ParamGroup> groups{optim::ParamGroup({p[0], p[1]}),
                                            optim::ParamGroup({p[2], p[3]}, optim::AdamOptions(3e-3).amsgrad(true))};
      return std::make_unique<optim::Adam>(groups, optim::AdamOptions(1e-2));
    }, warmup_cosine);
  }
  SUBCASE("AdamW") {
    check_resume([](std::vector<Tensor> p) { return std::make_unique<optim::AdamW>(p, optim::AdamWOptions(1e-2)); },
                 cosine);
  }
  SUBCASE("RMSprop, centered with momentum") {
    check_resume([](std::vector<Tensor> p) {
      return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions(1e-2).centered(true).momentum(0.5));
    }, cosine);
  }
  SUBCASE("RMSprop, Keras's convention") {
    check_resume([](std::vector<Tensor> p) {
      return std::make_unique<optim::RMSprop>(p, optim::RMSpropOptions::keras(1e-2).momentum(0.9));
    }, step_lr);
  }
  SUBCASE("Adagrad, lr_decay") {
    check_resume([](std::vector<Tensor> p) {
      return std::make_unique<optim::Adagrad>(p, optim::AdagradOptions(0.1).lr_decay(0.01));
    }, warmup_cosine);
  }
}

TEST_CASE("loaded optimizer state is sanity-checked: negative steps, infinite hyper-parameters, negative second moments") {
  Tensor w = ones({2}).requires_grad_();
  optim::Adam opt({w});
  w.set_grad(ones({2}));
  opt.step();
  const NamedTensors good = opt.state_dict();
  auto with = [&](const std::string& key, const Tensor& value) {
    NamedTensors s = good;
    bool found = false;
    for (auto& [k, t] : s)
      if (k == key) {
        t = value;
        found = true;
      }
    REQUIRE_MESSAGE(found, key);
    return s;
  };
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("state.0.step", tensor({-1}, DType::i64).reshape({}))),
                       doctest::Contains("a step count cannot be negative"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("param_groups.0.lr", full({}, INFINITY))),
                       doctest::Contains("is not a finite number"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("state.0.exp_avg_sq", full({2}, -1.0))),
                       doctest::Contains("has negative entries"), Error);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(with("state.0.exp_avg", full({2}, NAN))),
                       doctest::Contains("holds NaN or Inf"), Error);
  CHECK_NOTHROW(opt.load_state_dict(good));
}

TEST_CASE("parameter ids of the wrong dtype are named as such, not as a count mismatch") {
  Tensor w = ones({2}).requires_grad_(), v = ones({2}).requires_grad_();
  optim::SGD opt({w, v}, optim::SGDOptions(0.1));
  NamedTensors s = opt.state_dict();
  for (auto& [k, t] : s)
    if (k == "param_groups.0.params") t = t.to(DType::f32);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(s), doctest::Contains("must be a 1-D int64 tensor of parameter ids"), Error);
}

TEST_CASE("optimizer state refuses entries the optimizer does not keep, naming the key") {
  Tensor w = ones({2}).requires_grad_();
  optim::Adam opt({w});
  w.set_grad(ones({2}));
  opt.step();
  NamedTensors s = opt.state_dict();
  s.emplace_back("state.0.bogus", zeros({2}));
  CHECK_THROWS_WITH_AS(opt.load_state_dict(s),
                       doctest::Contains("unknown state entry 'state.0.bogus' (Adam keeps step, exp_avg, exp_avg_sq, max_exp_avg_sq)"),
                       Error);
  // SGD's momentum buffer is not Adam's: refused likewise.
  s.back() = {"state.0.momentum_buffer", zeros({2})};
  CHECK_THROWS_WITH_AS(opt.load_state_dict(s), doctest::Contains("unknown state entry 'state.0.momentum_buffer'"), Error);
  s.pop_back();
  CHECK_NOTHROW(opt.load_state_dict(s));
}

TEST_CASE("a malformed initial_lr names its key, and a file load names the file") {
  TempDir dir;
  Tensor w = ones({2}).requires_grad_();
  optim::SGD opt({w}, optim::SGDOptions(0.1));
  optim::StepLR sched(opt, 1);  // sets the groups' initial_lr
  NamedTensors s = opt.state_dict();
  for (auto& [k, t] : s)
    if (k == "param_groups.0.initial_lr") t = zeros({0}, DType::f64);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(s), doctest::Contains("'param_groups.0.initial_lr' has shape (0)"), Error);
  const std::string path = dir.file("sgd.safetensors");
  save_safetensors(path, s, {{"xgrad.optimizer", "SGD"}});
  CHECK_THROWS_WITH_AS(opt.load(path), doctest::Contains(("SGD: load: '" + path + "': load_state_dict: 'param_groups.0.initial_lr' has shape (0)").c_str()), Error);
  for (auto& [k, t] : s)
    if (k == "param_groups.0.initial_lr") t = full({}, NAN, DType::f64);
  CHECK_THROWS_WITH_AS(opt.load_state_dict(s), doctest::Contains("'param_groups.0.initial_lr' is nan"), Error);
}

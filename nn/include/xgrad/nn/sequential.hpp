#pragma once
/// \file
/// Sequential: a chain of one-in, one-out modules.
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xgrad/nn/module.hpp>

namespace xgrad::nn {

/// Applies its modules in order. Children are named "0", "1", … (PyTorch's state-dict keys
/// `0.weight`, `2.bias`) unless given a name.
///
/// It holds one-in, one-out modules (nn::UnaryModule: every layer, and your own module that
/// derives from it). A module with more inputs — a recurrent layer's (input, state,
/// lengths), a sequence model's (ids, lengths) — is called directly, or wrapped: a recurrent
/// layer goes in as `nn::SequenceOutput` (then `nn::LastStep`). `train::fit` takes either
/// kind (see its ForwardModule).
///
/// Example:
///
///     nn::Sequential mlp{std::make_shared<nn::Linear>(4, 16), std::make_shared<nn::ReLU>(),
///                        std::make_shared<nn::Linear>(16, 1)};
///     Tensor y = mlp(randn({8, 4}));             // (8, 1)
///     auto& head = mlp.at<nn::Linear>(2);        // typed access
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  /// The modules in order, registered as "0", "1", ... (PyTorch's keys: `0.weight`).
  Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules);

  /// Appends a module, named by its position.
  /// Example: `mlp.push_back(std::make_shared<nn::Tanh>());`
  Sequential& push_back(std::shared_ptr<UnaryModule> module);
  /// Appends a module under `name`.
  Sequential& push_back(std::string name, std::shared_ptr<UnaryModule> module);
  /// Constructs a module in place, appends it and returns it.
  /// Example: `auto& fc = mlp.emplace_back<nn::Linear>(16, 1);`
  template <class M, class... Args>
  M& emplace_back(Args&&... args) {
    auto m = std::make_shared<M>(std::forward<Args>(args)...);
    push_back(m);
    return *m;
  }

  /// Runs input through every module in order (the identity when empty).
  Tensor forward(const Tensor& input) override;

  /// The number of modules.
  std::size_t size() const { return modules_.size(); }
  /// True when it holds no module.
  bool empty() const { return modules_.empty(); }
  /// The i-th module; throws when out of range.
  UnaryModule& operator[](std::size_t i) const;
  /// The i-th module as M; throws when out of range or of another type.
  template <class M>
  M& at(std::size_t i) const {
    auto* m = dynamic_cast<M*>(&(*this)[i]);
    if (m == nullptr) throw Error("Sequential::at: module " + std::to_string(i) + " is a " + (*this)[i].type_name());
    return *m;
  }

 private:
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

}  // namespace xgrad::nn

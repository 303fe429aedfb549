#include <xgrad/nn/sequential.hpp>

namespace xgrad::nn {

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules) {
  for (const auto& m : modules) push_back(m);
}

Sequential& Sequential::push_back(std::shared_ptr<UnaryModule> module) {
  return push_back(std::to_string(modules_.size()), std::move(module));
}

Sequential& Sequential::push_back(std::string name, std::shared_ptr<UnaryModule> module) {
  if (!module) throw Error("Sequential::push_back: module '" + name + "' is null");
  register_module(std::move(name), module);
  modules_.push_back(std::move(module));
  return *this;
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (auto& m : modules_) x = m->forward(x);
  return x;
}

UnaryModule& Sequential::operator[](std::size_t i) const {
  if (i >= modules_.size())
    throw Error("Sequential: index " + std::to_string(i) + " is out of range for " + std::to_string(modules_.size()) +
                " modules");
  return *modules_[i];
}

}  // namespace xgrad::nn

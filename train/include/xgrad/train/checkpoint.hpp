#pragma once
/// \file
/// Training checkpoints: model, optimizer, scheduler, random generator and progress in
/// one safetensors file, so `--resume` continues exactly where the run stopped.
///
/// xgrad writes two kinds of safetensors file, and each loader refuses the other by name:
/// - a *weights file* (`Module::save`, `ModelCheckpoint`): the state dict alone, PyTorch's
///   keys; read it with `model.load(path)` (or PyTorch's `load_state_dict`);
/// - a *training checkpoint* (`save_checkpoint`, `FitOptions::checkpoint`): the weights
///   under "model." plus everything a resumed run needs; read it with `load_checkpoint`.
#include <cstdint>
#include <map>
#include <string>

#include <xgrad/nn/module.hpp>
#include <xgrad/optim/optimizer.hpp>
#include <xgrad/optim/scheduler.hpp>

namespace xgrad::train {

/// What a checkpoint holds besides tensors: the free-form `metadata` given to
/// save_checkpoint (epoch, step, best metric, ...). Values are text; the helpers convert.
struct CheckpointInfo {
  std::map<std::string, std::string> metadata;  ///< key → value, as given to save_checkpoint
  /// The value of `key` as an integer / number; throws naming the key when absent or not one.
  ///@{
  std::int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  ///@}
};

/// Writes `model`'s state dict (keys "model.<name>"), the optimizer's and scheduler's state
/// (when given; "optimizer.<name>", "scheduler.<name>"), the random generator's state and
/// `metadata` to one safetensors file, atomically. Python reads the model's weights with
/// `safetensors.torch.load_file` after stripping the "model." prefix.
/// Example: `train::save_checkpoint("ckpt.safetensors", model, &opt, nullptr, {{"epoch", "3"}});`
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer* optimizer = nullptr,
                     const optim::LRScheduler* scheduler = nullptr,
                     const std::map<std::string, std::string>& metadata = {});

/// Loads a training checkpoint written by save_checkpoint into `model` (strictly), `optimizer` and
/// `scheduler` (when given; the file must hold their state), restores the random generator
/// and returns the metadata. Throws naming the file and what is missing or mismatched;
/// nothing is half-loaded into the model when the model's part does not match. Handed a
/// weights file, throws naming `Module::load`.
CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer* optimizer = nullptr,
                               optim::LRScheduler* scheduler = nullptr);

}  // namespace xgrad::train

// The two kinds of file xgrad writes, a weights file and a training checkpoint: each loader
// reads its own kind and refuses the other, naming the loader that reads it.
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

using namespace xgrad;
using xgrad_test::TempDir;

TEST_CASE("a weights file and a training checkpoint each load with their own loader, and only with it") {
  TempDir dir;
  manual_seed(1);
  nn::Linear model(3, 2);
  optim::Adam opt(model.parameters(), optim::AdamOptions(1e-2));
  model.save(dir.file("weights.safetensors"));
  train::save_checkpoint(dir.file("checkpoint.safetensors"), model, &opt, nullptr, {{"epoch", "4"}});

  nn::Linear other(3, 2);
  CHECK_THROWS_WITH_AS(other.load(dir.file("checkpoint.safetensors")),
                       doctest::Contains("is a training checkpoint (weights, optimizer state and progress, written by "
                                         "train::save_checkpoint or FitOptions::checkpoint), not a weights file: load "
                                         "it with train::load_checkpoint(path, model)"),
                       Error);
  CHECK_THROWS_WITH_AS(train::load_checkpoint(dir.file("weights.safetensors"), other, &opt),
                       doctest::Contains("is not a training checkpoint (it has no 'xgrad.rng_state' metadata): a "
                                         "weights file, written by Module::save or ModelCheckpoint, loads with "
                                         "model.load(path)"),
                       Error);
  // Refused before anything changed: the model keeps its own weights.
  CHECK(other.weight.to_vector<float>() != model.weight.to_vector<float>());

  other.load(dir.file("weights.safetensors"));
  CHECK(other.weight.to_vector<float>() == model.weight.to_vector<float>());
  nn::Linear resumed(3, 2);
  optim::Adam resumed_opt(resumed.parameters(), optim::AdamOptions(1e-2));
  CHECK(train::load_checkpoint(dir.file("checkpoint.safetensors"), resumed, &resumed_opt).integer("epoch") == 4);
  CHECK(resumed.bias.to_vector<float>() == model.bias.to_vector<float>());
}

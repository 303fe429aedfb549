/// Fuzz target: `Vocabulary::load`, then every id looked up both ways and the vocabulary
/// saved and loaded again unchanged.
#include <xgrad/train/text.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = xgrad::fuzz::write_input(data, size);
  xgrad::fuzz::expect_xgrad_errors_only("Vocabulary::load", [&] {
    const auto vocab = xgrad::train::Vocabulary::load(path);
    for (std::int64_t id = 0; id < vocab.size(); ++id)
      if (vocab.id(vocab.token(id)) != id) std::abort();  // tokens are distinct
    vocab.save(path);
    if (xgrad::train::Vocabulary::load(path).tokens() != vocab.tokens()) std::abort();
  });
  return 0;
}

void write_seeds(const std::string& dir) {
  xgrad::train::Vocabulary::build({{"a", "fine", "film", "a"}, {"tab\there", "new\nline", "back\\slash", "\x01"}})
      .save(dir + "/words.vocab");
  xgrad::train::Vocabulary().save(dir + "/empty.vocab");
}

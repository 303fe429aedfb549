#pragma once
/// \file
/// Text to integer ids: a word tokeniser and a vocabulary built from training data.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace xgrad::train {

/// Lower-cases ASCII letters and splits on everything that is not a letter, digit or an
/// apostrophe inside a word: "Don't waste money!" → {"don't", "waste", "money"}. Bytes above
/// 127 (UTF-8) are kept inside words.
std::vector<std::string> tokenize_words(std::string_view text);

/// One token per byte: "ab" → {"a", "b"}. For character-level models.
std::vector<std::string> tokenize_chars(std::string_view text);

/// Maps tokens to ids 0..size()-1. Id 0 is "<pad>" and id 1 is "<unk>", which every token
/// not in the vocabulary maps to. Built from the training split only, so validation and
/// test text meet unknown words as real input would.
/// Example:
///
///     auto vocab = train::Vocabulary::build(train_docs, /*min_count=*/2);
///     std::vector<std::int64_t> ids = vocab.encode(train::tokenize_words("a fine film"));
class Vocabulary {
 public:
  static constexpr std::int64_t pad = 0;  ///< the id of "<pad>", the padding id
  static constexpr std::int64_t unk = 1;  ///< the id of "<unk>", for unknown tokens

  /// Only "<pad>" and "<unk>".
  Vocabulary();
  /// Tokens seen at least `min_count` times, most frequent first (ties in first-seen order),
  /// at most `max_size` ids in all when max_size > 0.
  static Vocabulary build(const std::vector<std::vector<std::string>>& documents, std::int64_t min_count = 1,
                          std::int64_t max_size = 0);
  /// The vocabulary listed in `tokens` (id = position), as written by `save`.
  static Vocabulary from_tokens(std::vector<std::string> tokens);

  /// The number of ids, "<pad>" and "<unk>" included.
  std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
  /// The id of `token`, or `unk`.
  std::int64_t id(const std::string& token) const;
  /// The token with id `id`; throws when it is out of range.
  const std::string& token(std::int64_t id) const;
  /// True when `token` has its own id.
  bool contains(const std::string& token) const { return ids_.count(token) != 0; }
  /// The id of each token (`unk` for unknown ones). Example: `vocab.encode({"a", "film"})`
  std::vector<std::int64_t> encode(const std::vector<std::string>& tokens) const;
  /// Every token, by id.
  const std::vector<std::string>& tokens() const { return tokens_; }

  /// One token per line with `\\`, `\n`, `\r`, `\t` and other control bytes escaped (so
  /// character vocabularies survive), written atomically; `load` reads it back.
  void save(const std::string& path) const;
  /// Reads a file written by `save`; throws naming the file and line of a malformed entry.
  static Vocabulary load(const std::string& path);

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
};

}  // namespace xgrad::train

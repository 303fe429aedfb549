// Word and character tokenisers and the vocabulary that maps tokens to ids.
#include <xgrad/train/text.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <xgrad/core/error.hpp>
#include <xgrad/core/io.hpp>
#include <xgrad/train/data.hpp>

namespace xgrad::train {

namespace {

bool word_byte(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 128; }

std::string escape(const std::string& token) {
  std::string out;
  for (unsigned char c : token) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 32 || c == 127) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else out += static_cast<char>(c);
  }
  return out;
}

std::string unescape(const std::string& line, const std::string& path, std::size_t line_no) {
  std::string out;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\\') {
      out += line[i];
      continue;
    }
    auto bad = [&] { return Error("Vocabulary::load: '" + path + "' line " + std::to_string(line_no) + ": bad escape in '" + line + "'"); };
    if (++i >= line.size()) throw bad();
    switch (line[i]) {
      case '\\': out += '\\'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'x': {
        if (i + 2 >= line.size()) throw bad();
        const std::string hex = line.substr(i + 1, 2);
        if (!std::isxdigit(static_cast<unsigned char>(hex[0])) || !std::isxdigit(static_cast<unsigned char>(hex[1]))) throw bad();
        out += static_cast<char>(std::stoi(hex, nullptr, 16));
        i += 2;
        break;
      }
      default: throw bad();
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> tokenize_words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    const unsigned char raw = i < text.size() ? static_cast<unsigned char>(text[i]) : ' ';
    const unsigned char c = (raw >= 'A' && raw <= 'Z') ? static_cast<unsigned char>(raw - 'A' + 'a') : raw;
    const bool inner_apostrophe = c == '\'' && !word.empty() && i + 1 < text.size() &&
                                  word_byte(static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(text[i + 1]))));
    if (word_byte(c) || inner_apostrophe) {
      word += static_cast<char>(c);
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  return words;
}

std::vector<std::string> tokenize_chars(std::string_view text) {
  std::vector<std::string> chars;
  chars.reserve(text.size());
  for (char c : text) chars.emplace_back(1, c);
  return chars;
}

Vocabulary::Vocabulary() : tokens_{"<pad>", "<unk>"}, ids_{{"<pad>", pad}, {"<unk>", unk}} {}

Vocabulary Vocabulary::from_tokens(std::vector<std::string> tokens) {
  Vocabulary v;
  v.ids_.clear();
  if (tokens.size() < 2 || tokens[0] != "<pad>" || tokens[1] != "<unk>")
    throw Error("Vocabulary: the first two tokens must be \"<pad>\" and \"<unk>\"");
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (!v.ids_.emplace(tokens[i], static_cast<std::int64_t>(i)).second)
      throw Error("Vocabulary: token '" + escape(tokens[i]) + "' appears twice (ids " + std::to_string(v.ids_.at(tokens[i])) +
                  " and " + std::to_string(i) + ")");
  v.tokens_ = std::move(tokens);
  return v;
}

Vocabulary Vocabulary::build(const std::vector<std::vector<std::string>>& documents, std::int64_t min_count,
                             std::int64_t max_size) {
  std::unordered_map<std::string, std::int64_t> counts;
  std::vector<std::string> first_seen;
  for (const auto& doc : documents)
    for (const auto& t : doc)
      if (counts[t]++ == 0 && t != "<pad>" && t != "<unk>") first_seen.push_back(t);
  std::stable_sort(first_seen.begin(), first_seen.end(),
                   [&](const std::string& a, const std::string& b) { return counts[a] > counts[b]; });
  std::vector<std::string> tokens{"<pad>", "<unk>"};
  for (const auto& t : first_seen) {
    if (counts[t] < min_count || (max_size > 0 && static_cast<std::int64_t>(tokens.size()) >= max_size)) break;
    tokens.push_back(t);
  }
  return from_tokens(std::move(tokens));
}

std::int64_t Vocabulary::id(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? unk : it->second;
}

const std::string& Vocabulary::token(std::int64_t id) const {
  if (id < 0 || id >= size())
    throw Error("Vocabulary::token: id " + std::to_string(id) + " is outside [0, " + std::to_string(size()) + ")");
  return tokens_[static_cast<std::size_t>(id)];
}

std::vector<std::int64_t> Vocabulary::encode(const std::vector<std::string>& tokens) const {
  std::vector<std::int64_t> ids;
  ids.reserve(tokens.size());
  for (const auto& t : tokens) ids.push_back(id(t));
  return ids;
}

void Vocabulary::save(const std::string& path) const {
  std::string text;
  for (const auto& t : tokens_) text += escape(t) + "\n";
  write_file_atomic(path, text);
}

Vocabulary Vocabulary::load(const std::string& path) {
  const std::string text = read_text(path);
  std::vector<std::string> tokens;
  std::size_t start = 0;
  for (std::size_t line_no = 1; start < text.size(); ++line_no) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    tokens.push_back(unescape(text.substr(start, end - start), path, line_no));
    start = end + 1;
  }
  try {
    return from_tokens(std::move(tokens));
  } catch (const Error& e) {
    throw Error("Vocabulary::load: '" + path + "': " + e.what());
  }
}

}  // namespace xgrad::train

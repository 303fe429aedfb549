// safetensors and .npy files: atomic writes, loaders that validate every field before they
// touch the data, so a malformed file is an Error, never a crash or an out-of-bounds read.
#include <xgrad/core/io.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "checks.hpp"
#include "strided.hpp"
#include "tensor_impl.hpp"

static_assert(std::endian::native == std::endian::little, "xgrad's file formats assume a little-endian host");

namespace xgrad {

namespace {

using json = nlohmann::ordered_json;

// A header larger than this is not a real checkpoint but a corrupt length field.
constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;

struct Piece {
  const void* data;
  std::size_t size;
};

// --- atomic writes ------------------------------------------------------------------------------
//
// A save writes <name>.tmp-<pid>-XXXXXX beside its target, holds an flock() on it until the
// rename, and renames it over the target. Several writers may save one path at once (two
// processes, or two threads): each has its own temporary and the last rename wins. A killed
// save leaves its temporary behind; the next save of the same file removes it, but only when
// it is provably abandoned: nobody holds its lock (the kernel drops a dead writer's lock) and
// either its owner pid no longer runs or it is older than kAbandonedAge. The pid rule covers
// the instant between a writer's mkstemp and its flock, when its file is not locked yet; the
// age rule covers a reused pid and names without a pid (older versions' .tmp-XXXXXX). A
// reused pid only delays the removal; it never removes a live writer's file.

constexpr auto kAbandonedAge = std::chrono::minutes(1);

// Whether the owner pid in a temporary's name (after the prefix: "<pid>-XXXXXX") is known to
// run no more; false when the name carries no pid.
bool owner_gone(std::string_view rest) {
  const auto dash = rest.find('-');
  if (dash == std::string_view::npos || dash == 0 || rest.size() - dash - 1 != 6) return false;
  pid_t pid = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + dash, pid);
  if (ec != std::errc() || end != rest.data() + dash || pid <= 0) return false;
  return pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Removes the temporary `file` when it is abandoned (see above); `rest` is its name after the
// "<name>.tmp-" prefix.
void remove_if_abandoned(const std::filesystem::path& file, std::string_view rest) {
  // O_NONBLOCK: a FIFO given a temporary's name must not block the save.
  const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {}, now {};
  const bool locked_by_us = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (locked_by_us) {
    const auto age = std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(st.st_mtime);
    // Still the file we locked (not a new one under a reused name), and nobody writes it.
    if ((owner_gone(rest) || age > kAbandonedAge) && ::lstat(file.c_str(), &now) == 0 && now.st_ino == st.st_ino &&
        now.st_dev == st.st_dev)
      ::unlink(file.c_str());
  }
  ::close(fd);  // releases our lock
}

// Removes the abandoned temporaries of saves of `target` (see above).
void remove_abandoned_temporaries(const std::filesystem::path& target) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const std::string prefix = target.filename().string() + ".tmp-";
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0)
      remove_if_abandoned(it->path(), std::string_view(name).substr(prefix.size()));
  }
}

// Makes a rename in `path`'s directory durable (the directory entry reaches the disk too).
void sync_directory(const std::string& path) {
  const std::filesystem::path target(path);
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);  // some filesystems refuse; the rename itself has happened either way
  ::close(fd);
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// The file a save of `path` replaces: `path`, or, when `path` is a symlink, the regular file
// it finally points to (as `cp` writes through a symlink). Anything else that is not a regular
// file (a device, a FIFO, a directory, a dangling symlink) is refused: a rename would replace
// /dev/null with a regular file.
std::string save_target(const std::string& path, const char* op) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return path;  // nothing there yet (mkstemp reports a bad directory)
  std::string target = path;
  if (S_ISLNK(st.st_mode)) {
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (resolved == nullptr)
      throw Error(std::string(op) + ": '" + path + "' is a symlink whose target cannot be resolved (" + std::strerror(errno) +
                  "); refusing to write through it");
    target = resolved;
    std::free(resolved);
    if (::stat(target.c_str(), &st) != 0)
      throw Error(std::string(op) + ": cannot inspect '" + target + "', the target of the symlink '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode))
    throw Error(std::string(op) + ": '" + path + "' is " + (target == path ? "" : "a symlink to '" + target + "', which is ") +
                file_kind(st.st_mode) + "; a save only replaces regular files");
  return target;
}

// Writes `pieces` to a temporary file beside `path` (beside its target when `path` is a
// symlink), flushes it to disk and renames it over the target: readers see the old file or
// the new one, never half of one.
void write_atomic(const std::string& path, const std::vector<Piece>& pieces, const char* op) {
  const std::string target = save_target(path, op);
  remove_abandoned_temporaries(target);
  std::string tmp = target + ".tmp-" + std::to_string(::getpid()) + "-XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) throw Error(std::string(op) + ": cannot create a file beside '" + target + "': " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::unlink(tmp.c_str());
    ::close(fd);
    throw Error(std::string(op) + ": " + what + " '" + path + "': " + std::strerror(err));
  };
  // Held until the rename: it tells other saves' clean-up that this temporary is in use. It
  // can wait only for another save's brief look at a just-created temporary.
  while (::flock(fd, LOCK_EX) != 0)
    if (errno != EINTR) fail("cannot lock the temporary file of");
  for (const Piece& p : pieces) {
    const char* c = static_cast<const char*>(p.data);
    std::size_t left = p.size;
    while (left > 0) {
      ssize_t n = ::write(fd, c, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail("cannot write");
      }
      c += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  // mkstemp creates 0600; give the file the mode a plain open() would (0666 less umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(fd, 0666 & ~mask) != 0 || ::fsync(fd) != 0) fail("cannot flush");
  if (std::rename(tmp.c_str(), target.c_str()) != 0) fail("cannot rename into");
  ::close(fd);  // the data reached the disk (fsync) and the target: the save has happened
  sync_directory(target);
}

std::vector<char> read_all(const std::string& path, const char* op) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw Error(std::string(op) + ": '" + path + "' is not a regular file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(std::string(op) + ": cannot open '" + path + "'");
  const std::streamsize size = in.tellg();
  if (size < 0) throw Error(std::string(op) + ": cannot read '" + path + "'");
  std::vector<char> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  if (!in.read(bytes.data(), size)) throw Error(std::string(op) + ": cannot read '" + path + "'");
  return bytes;
}

const char* safetensors_code(DType d) {
  switch (d) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::b8: return "BOOL";
  }
  return "?";
}

std::optional<DType> dtype_from_code(const std::string& code) {
  if (code == "F32") return DType::f32;
  if (code == "F64") return DType::f64;
  if (code == "I64") return DType::i64;
  if (code == "BOOL") return DType::b8;
  return std::nullopt;
}

// The most dimensions a loaded array may have: numpy 2's limit (NPY_MAXDIMS = 64). A file
// declaring thousands of extents is malformed, and each extent costs work downstream.
constexpr std::size_t kMaxDims = 64;

// Element count of `shape`, or nullopt when it overflows 64 bits.
std::optional<std::uint64_t> checked_numel(const std::vector<std::uint64_t>& shape) {
  std::uint64_t n = 1;
  for (auto e : shape) {
    if (e != 0 && n > std::numeric_limits<std::uint64_t>::max() / e) return std::nullopt;
    n *= e;
  }
  return n;
}

}  // namespace

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [key, t] : tensors)
    if (key == name) return t;
  std::string keys;
  for (const auto& [key, t] : tensors) keys += (keys.empty() ? "" : ", ") + key;
  throw Error("safetensors: no tensor named '" + name + "' (the file holds: " + keys + ")");
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  std::vector<Piece> data;
  std::vector<Tensor> dense_copies;  // views are written as their elements, in row-major order
  dense_copies.reserve(tensors.size());
  for (const auto& [name, t_in] : tensors) {
    if (!t_in.defined()) throw Error("save_safetensors: tensor '" + name + "' is undefined");
    const Tensor& t = dense_copies.emplace_back(dense(t_in));
    if (!t.defined()) throw Error("save_safetensors: tensor '" + name + "' is undefined");
    if (name == "__metadata__" || header.contains(name))
      throw Error("save_safetensors: duplicate or reserved tensor name '" + name + "'");
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", safetensors_code(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    data.push_back({impl_of(t).raw_bytes(), static_cast<std::size_t>(bytes)});
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  const std::uint64_t length = text.size();
  std::vector<Piece> pieces{{&length, 8}, {text.data(), text.size()}};
  pieces.insert(pieces.end(), data.begin(), data.end());
  write_atomic(path, pieces, "save_safetensors");
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  write_atomic(path, {{contents.data(), contents.size()}}, "write_file_atomic");
}

namespace {

// The JSON header of a safetensors file's bytes, checked: the 8-byte length fits the file,
// and the JSON parses into an object. `where` starts every error.
json parse_safetensors_header(const std::vector<char>& bytes, std::uint64_t& header_len, const std::string& where) {
  if (bytes.size() < 8)
    throw Error(where + "truncated: " + std::to_string(bytes.size()) + " bytes, but the file must start with an 8-byte header length");
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeaderBytes)
    throw Error(where + "header length " + std::to_string(header_len) + " is absurd (limit " + std::to_string(kMaxHeaderBytes) + ")");
  if (header_len > bytes.size() - 8)
    throw Error(where + "truncated: header length " + std::to_string(header_len) + " exceeds the " +
                std::to_string(bytes.size() - 8) + " bytes after it");
  // The header is parsed with a callback that bounds the nesting depth (a file of 100 000
  // nested arrays would otherwise take the recursive teardown of the JSON value past the end
  // of the stack) and refuses duplicate keys (the last would win silently).
  json header;
  std::vector<std::vector<std::string>> keys;  // per open object, the keys seen so far
  constexpr std::size_t kMaxDepth = 64;
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > static_cast<int>(kMaxDepth))
      throw Error(where + "header nests deeper than " + std::to_string(kMaxDepth) + " levels");
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    else if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    else if (event == json::parse_event_t::key && !keys.empty()) {
      const std::string key = parsed.get<std::string>();
      if (std::find(keys.back().begin(), keys.back().end(), key) != keys.back().end())
        throw Error(where + "header has the key '" + key + "' twice");
      keys.back().push_back(key);
    }
    return true;
  };
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_len), check);
  } catch (const json::exception& e) {
    throw Error(where + "header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) throw Error(where + "header is not a JSON object");
  return header;
}

// The header's __metadata__ entry into `metadata`: an object of strings.
void read_metadata(const json& info, std::map<std::string, std::string>& metadata, const std::string& where) {
  if (!info.is_object()) throw Error(where + "__metadata__ is not an object");
  for (const auto& [k, v] : info.items()) {
    if (!v.is_string()) throw Error(where + "__metadata__ value of '" + k + "' is not a string");
    metadata[k] = v.get<std::string>();
  }
}

// One tensor's header entry: its dtype, shape and byte range in the data section.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  std::uint64_t begin, end;
};

// The header entry `info` of tensor `name`, checked: a known dtype, a shape of at most
// kMaxDims non-negative extents, and data_offsets inside the data section that hold exactly
// the shape's bytes.
Entry read_entry(const std::string& name, const json& info, std::uint64_t data_size, const std::string& where) {
  const std::string what = where + "tensor '" + name + "': ";
  if (!info.is_object()) throw Error(what + "entry is not an object");
  if (!info.contains("dtype") || !info["dtype"].is_string()) throw Error(what + "missing or non-string dtype");
  const std::string code = info["dtype"].get<std::string>();
  const auto dtype = dtype_from_code(code);
  if (!dtype) throw Error(what + "unsupported dtype '" + code + "' (xgrad reads F32, F64, I64, BOOL)");
  if (!info.contains("shape") || !info["shape"].is_array()) throw Error(what + "missing or non-array shape");
  if (info["shape"].size() > kMaxDims)
    throw Error(what + "shape has " + std::to_string(info["shape"].size()) + " dimensions, more than " +
                std::to_string(kMaxDims) + " (numpy's limit)");
  std::vector<std::uint64_t> extents;
  for (const auto& e : info["shape"]) {
    if (!e.is_number_unsigned()) throw Error(what + "shape entries must be non-negative integers, got " + e.dump());
    extents.push_back(e.get<std::uint64_t>());
  }
  const auto& off = info.contains("data_offsets") ? info["data_offsets"] : json();
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    throw Error(what + "data_offsets must be two non-negative integers");
  const std::uint64_t begin = off[0].get<std::uint64_t>(), end = off[1].get<std::uint64_t>();
  if (begin > end || end > data_size)
    throw Error(what + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                "] out of range for a data section of " + std::to_string(data_size) + " bytes");
  const auto numel = checked_numel(extents);
  const std::uint64_t elem = dtype_size(*dtype);
  if (!numel || *numel > std::numeric_limits<std::uint64_t>::max() / elem || *numel * elem != end - begin)
    throw Error(what + "shape " + info["shape"].dump() + " of dtype " + code + " does not match the " +
                std::to_string(end - begin) + " bytes of its data_offsets");
  return {name, *dtype, Shape(extents.begin(), extents.end()), begin, end};
}

// Sorts the entries by offset and checks that the data section is exactly their byte ranges,
// back to back.
void check_tiling(std::vector<Entry>& entries, std::uint64_t data_size, const std::string& where) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  std::uint64_t cursor = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].begin < cursor)
      throw Error(where + "tensors '" + entries[i - 1].name + "' and '" + entries[i].name + "' overlap");
    if (entries[i].begin > cursor)
      throw Error(where + "a gap of " + std::to_string(entries[i].begin - cursor) + " bytes before tensor '" + entries[i].name + "'");
    cursor = entries[i].end;
  }
  if (cursor != data_size)
    throw Error(where + std::to_string(data_size - cursor) + " bytes after the last tensor are not described by the header");
}

// The tensor an entry describes, its bytes copied from the data section (BOOL bytes checked).
Tensor read_tensor(const Entry& e, const char* data, const std::string& where) {
  Tensor t = make_empty(e.shape, e.dtype);
  std::memcpy(impl_of(t).storage->data, data + e.begin, e.end - e.begin);
  if (e.dtype == DType::b8) {
    const auto* raw = reinterpret_cast<const unsigned char*>(data + e.begin);
    for (std::uint64_t i = 0; i < e.end - e.begin; ++i)
      if (raw[i] > 1) throw Error(where + "tensor '" + e.name + "': BOOL byte " + std::to_string(raw[i]) + " is neither 0 nor 1");
  }
  return t;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  const std::vector<char> bytes = read_all(path, "load_safetensors");
  const std::string where = "load_safetensors: '" + path + "': ";
  std::uint64_t header_len = 0;
  const json header = parse_safetensors_header(bytes, header_len, where);
  const char* data = bytes.data() + 8 + header_len;
  const std::uint64_t data_size = bytes.size() - 8 - header_len;

  std::vector<Entry> entries;
  SafetensorsFile file;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") read_metadata(info, file.metadata, where);
    else entries.push_back(read_entry(name, info, data_size, where));
  }
  check_tiling(entries, data_size, where);
  for (const Entry& e : entries) file.tensors.emplace_back(e.name, read_tensor(e, data, where));
  return file;
}

// --- .npy ----------------------------------------------------------------------------------------

namespace {
const char* npy_descr(DType d) {
  switch (d) {
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i64: return "<i8";
    case DType::b8: return "|b1";
  }
  return "?";
}
}  // namespace

void save_npy(const std::string& path, const Tensor& t) {
  require_defined(t, "save_npy");
  std::string shape = "(";
  for (auto e : t.shape()) shape += std::to_string(e) + ", ";
  if (t.dim() > 1) shape.resize(shape.size() - 2);
  if (t.dim() == 1) shape.resize(shape.size() - 1);
  shape += ")";
  std::string dict = std::string("{'descr': '") + npy_descr(t.dtype()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + dict, padded with spaces and a newline to 64 bytes.
  const std::size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string head = "\x93NUMPY";
  head += '\x01';
  head += '\x00';
  const std::uint16_t len = static_cast<std::uint16_t>(dict.size());
  head.append(reinterpret_cast<const char*>(&len), 2);
  head += dict;
  const Tensor d = dense(t);
  write_atomic(path, {{head.data(), head.size()}, {impl_of(d).raw_bytes(), static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype())}}, "save_npy");
}

namespace {

// The header of a .npy file, a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }, parsed by hand and strictly:
// exactly these three keys, once each, and non-negative decimal extents only.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;
};

NpyHeader parse_npy_header(std::string_view text, const std::string& where) {
  std::size_t i = 0;
  auto fail = [&](const std::string& what) {
    return Error(where + "malformed header at byte " + std::to_string(i) + ": " + what);
  };
  auto skip = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
  };
  // Takes `c` (after blanks) when it comes next.
  auto consume = [&](char c) {
    skip();
    if (i >= text.size() || text[i] != c) return false;
    ++i;
    return true;
  };
  auto expect = [&](char c) {
    if (!consume(c)) throw fail(std::string("expected '") + c + "'");
  };
  auto quoted = [&] {
    skip();
    if (i >= text.size() || (text[i] != '\'' && text[i] != '"')) throw fail("expected a quoted string");
    const char quote = text[i++];
    const std::size_t end = text.find(quote, i);
    if (end == std::string_view::npos) throw fail("unterminated string");
    std::string out(text.substr(i, end - i));
    i = end + 1;
    return out;
  };
  auto word = [&](std::string_view w) {
    if (text.substr(i, w.size()) != w) return false;
    i += w.size();
    return true;
  };
  NpyHeader h;
  bool seen[3] = {false, false, false};
  expect('{');
  while (!consume('}')) {
    const std::string key = quoted();
    expect(':');
    skip();
    int which = -1;
    if (key == "descr") {
      which = 0;
      h.descr = quoted();
    } else if (key == "fortran_order") {
      which = 1;
      if (word("True")) h.fortran_order = true;
      else if (word("False")) h.fortran_order = false;
      else throw fail("fortran_order must be True or False");
    } else if (key == "shape") {
      which = 2;
      expect('(');
      while (!consume(')')) {
        const std::size_t first = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
        if (i == first) throw fail("shape entries must be non-negative integers");
        if (i - first > 18) throw fail("absurd extent " + std::string(text.substr(first, i - first)));
        h.shape.push_back(std::stoull(std::string(text.substr(first, i - first))));
        if (h.shape.size() > kMaxDims)
          throw fail("the shape has more than " + std::to_string(kMaxDims) + " dimensions (numpy's limit)");
        if (!consume(',') && (i >= text.size() || text[i] != ')')) throw fail("expected ',' or ')' in the shape");
      }
    } else {
      throw fail("unexpected key '" + key + "'");
    }
    if (seen[which]) throw fail("the key '" + key + "' appears twice");
    seen[which] = true;
    if (!consume(',') && (i >= text.size() || text[i] != '}')) throw fail("expected ',' or '}'");
  }
  skip();
  if (i != text.size()) throw fail("trailing characters after the dict");
  if (!seen[0]) throw Error(where + "header has no descr");
  if (!seen[1]) throw Error(where + "header has no fortran_order");
  if (!seen[2]) throw Error(where + "header has no shape");
  return h;
}

}  // namespace

Tensor load_npy(const std::string& path) {
  const std::vector<char> bytes = read_all(path, "load_npy");
  const std::string where = "load_npy: '" + path + "': ";
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) throw Error(where + "not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, start = 0;
  if (major == 1) {
    std::uint16_t l;
    std::memcpy(&l, bytes.data() + 8, 2);
    header_len = l;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(where + "truncated header");
    std::uint32_t l;
    std::memcpy(&l, bytes.data() + 8, 4);
    header_len = l;
    start = 12;
  } else {
    throw Error(where + "unsupported .npy version " + std::to_string(major));
  }
  if (header_len > bytes.size() - start) throw Error(where + "truncated header");
  const NpyHeader h = parse_npy_header(std::string_view(bytes.data() + start, header_len), where);
  std::optional<DType> dtype;
  for (DType d : {DType::f32, DType::f64, DType::i64, DType::b8})
    if (h.descr == npy_descr(d)) dtype = d;
  if (!dtype) throw Error(where + "unsupported dtype '" + h.descr + "' (xgrad reads <f4, <f8, <i8, |b1)");
  if (h.fortran_order) throw Error(where + "Fortran-ordered arrays are not supported");
  const std::vector<std::uint64_t>& extents = h.shape;
  std::string dims;
  for (std::size_t i = 0; i < extents.size(); ++i) dims += (i ? ", " : "") + std::to_string(extents[i]);
  const auto numel = checked_numel(extents);
  const std::size_t data_size = bytes.size() - start - header_len;
  if (!numel || *numel > data_size / dtype_size(*dtype) || *numel * dtype_size(*dtype) != data_size)
    throw Error(where + "shape (" + dims + ") needs a different byte count than the " + std::to_string(data_size) + " data bytes");
  const char* data = bytes.data() + start + header_len;
  if (*dtype == DType::b8)
    for (std::size_t i = 0; i < data_size; ++i)
      if (static_cast<unsigned char>(data[i]) > 1)
        throw Error(where + "bool element " + std::to_string(i) + " has the byte value " +
                    std::to_string(static_cast<unsigned char>(data[i])) + " (only 0 and 1 are booleans)");
  Tensor t = make_empty(Shape(extents.begin(), extents.end()), *dtype);
  std::memcpy(impl_of(t).storage->data, data, data_size);
  return t;
}

}  // namespace xgrad

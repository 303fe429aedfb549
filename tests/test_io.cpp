// safetensors and .npy: round trips, the exact byte layout, atomic writes, and a clear
// error for every kind of corruption (the sanitizer build checks none reads out of bounds).
#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

#include "temp_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace xgrad;
using xgrad_test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a header text and a data section.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}

// An .npy file (format `version` 1: a 2-byte header length, or 2: 4 bytes) from its header
// dict, padded as numpy pads it, and a data section.
std::string npy_bytes(std::string dict, const std::string& data, int version = 1) {
  const std::size_t length_bytes = version == 1 ? 2 : 4;
  const std::size_t total = 8 + length_bytes + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string bytes = "\x93NUMPY";
  bytes += static_cast<char>(version);
  bytes += '\x00';
  const std::uint32_t len = static_cast<std::uint32_t>(dict.size());  // little-endian, as x86-64 stores it
  bytes.append(reinterpret_cast<const char*>(&len), length_bytes);
  return bytes + dict + data;
}

std::string load_error(const std::string& path) {
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("safetensors round-trips every dtype, shape and the metadata") {
  TempDir dir;
  manual_seed(1);
  NamedTensors tensors{{"lstm.weight_ih_l0", randn({8, 2})},
                       {"head.bias", randn({1}, DType::f64)},
                       {"step", scalar(7, DType::i64)},
                       {"mask", tensor({1, 0, 1}, DType::b8)},
                       {"empty", zeros({0, 3})}};
  save_safetensors(dir.file("m.safetensors"), tensors, {{"format", "pt"}});
  SafetensorsFile f = load_safetensors(dir.file("m.safetensors"));
  REQUIRE(f.tensors.size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    CHECK(f.tensors[i].first == tensors[i].first);  // file order is the order written
    CHECK(f.tensors[i].second.dtype() == tensors[i].second.dtype());
    CHECK(f.tensors[i].second.shape() == tensors[i].second.shape());
    CHECK(f.tensors[i].second.to_vector<double>() == tensors[i].second.to_vector<double>());
  }
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.at("step").item() == 7);
  CHECK_THROWS_WITH_AS(f.at("missing"), doctest::Contains("no tensor named 'missing'"), Error);
}

TEST_CASE("safetensors files have the documented byte layout") {
  TempDir dir;
  save_safetensors(dir.file("a.safetensors"), {{"w", tensor({1.0, 2.0})}});
  const std::string bytes = read_bytes(dir.file("a.safetensors"));
  std::uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);  // data section 8-byte aligned
  const std::string header = bytes.substr(8, n);
  CHECK(header.find(R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})") != std::string::npos);
  REQUIRE(bytes.size() == 8 + n + 8);
  float values[2];
  std::memcpy(values, bytes.data() + 8 + n, 8);
  CHECK(values[0] == 1.0f);
  CHECK(values[1] == 2.0f);
}

TEST_CASE("saving replaces a file atomically and leaves no temporary behind") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  save_safetensors(path, {{"w", zeros({2})}});
  save_safetensors(path, {{"w", ones({3})}});
  CHECK(load_safetensors(path).at("w").shape() == Shape{3});
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) files += e.is_regular_file();
  CHECK(files == 1);
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("no/such/dir/x.safetensors"), {{"w", zeros({1})}}),
                       doctest::Contains("save_safetensors: cannot create"), Error);
}

TEST_CASE("saving rejects duplicate names") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("d.safetensors"), {{"w", zeros({1})}, {"w", zeros({1})}}),
                       doctest::Contains("duplicate or reserved tensor name 'w'"), Error);
}

TEST_CASE("every kind of corrupt safetensors file is a clear error") {
  TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  const std::string good_data(8, '\0');  // two f32 zeros
  struct Corruption {
    const char* what;
    std::string bytes;
    const char* message;
  };
  std::string truncated = safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", good_data);
  truncated.resize(truncated.size() - 3);
  std::string absurd(8, '\xff');
  const Corruption cases[] = {
      {"empty file", "", "truncated: 0 bytes"},
      {"shorter than the length field", "abc", "truncated: 3 bytes"},
      {"absurd header length", absurd + "{}", "is absurd"},
      {"header longer than the file", safetensors_bytes("{}", "").substr(0, 8) + "{", "exceeds"},
      {"bad JSON", safetensors_bytes(R"({"w": {"dtype": )", ""), "not valid JSON"},
      {"header not an object", safetensors_bytes("[1, 2]", ""), "not a JSON object"},
      {"unknown dtype", safetensors_bytes(R"({"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "abcd"), "unsupported dtype 'F16'"},
      {"missing dtype", safetensors_bytes(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", good_data), "missing or non-string dtype"},
      {"negative extent", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", good_data), "non-negative integers"},
      {"offsets out of range", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", good_data), "out of range"},
      {"offsets reversed", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", good_data), "out of range"},
      {"shape not matching the byte count", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", good_data), "does not match the 8 bytes"},
      {"overflowing shape", safetensors_bytes(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", good_data), "does not match"},
      {"overlapping tensors", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", good_data), "overlap"},
      {"gap between tensors", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", good_data), "gap of 4 bytes"},
      {"trailing bytes", safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", good_data), "4 bytes after the last tensor"},
      {"truncated data", truncated, "out of range"},
      {"bad offsets type", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":"0-8"}})", good_data), "data_offsets must be"},
      {"bad metadata", safetensors_bytes(R"({"__metadata__":{"k":1}})", ""), "is not a string"},
      {"bool byte out of range", safetensors_bytes(R"({"m":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "\x07"), "neither 0 nor 1"},
  };
  for (const Corruption& c : cases) {
    CAPTURE(c.what);
    write_bytes(p, c.bytes);
    const std::string msg = load_error(p);
    CHECK_MESSAGE(msg.find(c.message) != std::string::npos, msg);
    CHECK(msg.find(p) != std::string::npos);  // the message names the file
  }
  CHECK(load_error(dir.file("missing.safetensors")).find("cannot open") != std::string::npos);
}

TEST_CASE("npy round-trips and matches numpy's header") {
  TempDir dir;
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  save_npy(dir.file("a.npy"), a);
  const std::string bytes = read_bytes(dir.file("a.npy"));
  CHECK(bytes.substr(1, 5) == "NUMPY");
  CHECK(bytes.find("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }") != std::string::npos);
  CHECK((bytes.size() - 48) % 64 == 0);  // header padded to 64 bytes, then 48 data bytes
  Tensor b = load_npy(dir.file("a.npy"));
  CHECK(b.shape() == a.shape());
  CHECK(b.to_vector<double>() == a.to_vector<double>());
  save_npy(dir.file("v.npy"), arange(4));
  CHECK(read_bytes(dir.file("v.npy")).find("'shape': (4,)") != std::string::npos);
  CHECK(load_npy(dir.file("v.npy")).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 2, 3});
  save_npy(dir.file("s.npy"), scalar(2.5));
  CHECK(load_npy(dir.file("s.npy")).shape().empty());
}

TEST_CASE("corrupt npy files are clear errors") {
  TempDir dir;
  const std::string p = dir.file("bad.npy");
  save_npy(p, ones({4}));
  std::string good = read_bytes(p);
  write_bytes(p, good.substr(0, good.size() - 2));
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("needs a different byte count"), Error);
  write_bytes(p, "not numpy at all");
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("bad magic"), Error);
  std::string f16 = good;
  f16.replace(f16.find("<f4"), 3, "<f2");
  write_bytes(p, f16);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("unsupported dtype '<f2'"), Error);
}

TEST_CASE("hostile safetensors headers and paths are clear errors") {
  const std::string dir = std::filesystem::temp_directory_path().string();
  CHECK_THROWS_WITH_AS(load_safetensors(dir), doctest::Contains("is not a regular file"), Error);
  auto write = [&](const std::string& name, const std::string& header) {
    std::string bytes(8, '\0');
    const std::uint64_t n = header.size();
    std::memcpy(bytes.data(), &n, 8);
    bytes += header;
    const std::string path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  };
  // 100 000 nested arrays: refused at depth 64, not a stack overflow.
  const std::string deep = write("xgrad_deep.safetensors", "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}");
  CHECK_THROWS_WITH_AS(load_safetensors(deep), doctest::Contains("nests deeper than 64 levels"), Error);
  const std::string dup = write("xgrad_dup.safetensors",
                                R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})");
  CHECK_THROWS_WITH_AS(load_safetensors(dup), doctest::Contains("has the key 'a' twice"), Error);
  std::filesystem::remove(deep);
  std::filesystem::remove(dup);
}

TEST_CASE("shapes whose element count or byte size overflows are clear errors, not tiny buffers") {
  CHECK_THROWS_WITH_AS(randn({std::int64_t{1} << 31, std::int64_t{1} << 31, 4}), doctest::Contains("more elements than an int64 can count"), Error);
  CHECK_THROWS_WITH_AS(zeros({std::int64_t{1} << 62}), doctest::Contains("needs more bytes than memory can address"), Error);
  CHECK_THROWS_WITH_AS(zeros({std::int64_t{1} << 50}), doctest::Contains("cannot allocate"), Error);  // 4 PB: beyond the address space
}

TEST_CASE("npy headers are parsed strictly by hand; bool data must be 0 or 1") {
  TempDir dir;
  const std::string p = dir.file("h.npy");
  // A v1 file with the given dict as its header (padded as numpy pads) and `data` after it.
  auto npy = [&](const std::string& dict, const std::string& data) { write_bytes(p, npy_bytes(dict, data)); };
  const std::string six_floats(24, '\0');
  npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", six_floats);
  CHECK(load_npy(p).shape() == Shape{3, 2});
  npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 2), }", six_floats);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("shape entries must be non-negative integers"), Error);
  npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", six_floats);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("expected ',' or ')' in the shape"), Error);
  npy("{'descr': '<f4', 'note': 'shape: (9,)', 'fortran_order': False, 'shape': (6,), }", six_floats);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("unexpected key 'note'"), Error);
  npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (6,), }", six_floats);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("appears twice"), Error);
  // A legal header with a 30 000-character descr (std::regex recursed per character).
  npy("{'descr': '" + std::string(30000, 'x') + "', 'fortran_order': False, 'shape': (6,), }", six_floats);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("unsupported dtype"), Error);
  npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\x01\x00\x07", 3));
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("bool element 2 has the byte value 7"), Error);
}

TEST_CASE("a save removes the temporaries that killed saves of the same file left behind") {
  TempDir dir;
  const std::string target = dir.file("w.safetensors");
  // A pid that ran and no longer runs: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = "w.safetensors.tmp-" + std::to_string(child) + "-a1B2c3";
  const std::string live = "w.safetensors.tmp-" + std::to_string(::getpid()) + "-d4E5f6";
  const auto long_ago = fs::file_time_type::clock::now() - std::chrono::hours(2);
  for (const std::string& name : {dead, live, std::string("w.safetensors.tmp-ZZZZZZ"), std::string("w.safetensors.tmp-YYYYYY")})
    std::ofstream(dir.file(name)) << "half a file";
  fs::last_write_time(dir.file("w.safetensors.tmp-ZZZZZZ"), long_ago);  // a name without pid, abandoned long ago
  std::ofstream(dir.file("other.safetensors.tmp-a1B2c3")) << "another target's";
  save_safetensors(target, {{"x", ones({2})}});
  CHECK_FALSE(fs::exists(dir.file(dead)));                          // its writer is gone
  CHECK_FALSE(fs::exists(dir.file("w.safetensors.tmp-ZZZZZZ")));    // unlocked for two hours
  CHECK(fs::exists(dir.file(live)));                                 // its owner (this process) runs
  CHECK(fs::exists(dir.file("w.safetensors.tmp-YYYYYY")));           // no pid, and new: maybe being created
  CHECK(fs::exists(dir.file("other.safetensors.tmp-a1B2c3")));
  CHECK(load_safetensors(target).at("x").to_vector<float>() == std::vector<float>{1, 1});
}

TEST_CASE("a temporary whose writer holds its lock is never removed, however old and whoever its pid") {
  TempDir dir;
  const std::string target = dir.file("w.safetensors");
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  REQUIRE(child > 0);
  ::waitpid(child, nullptr, 0);
  // Another host's writer (its pid means nothing here) that holds its lock: kept.
  const std::string busy = dir.file("w.safetensors.tmp-" + std::to_string(child) + "-q1W2e3");
  std::ofstream(busy) << "being written";
  fs::last_write_time(busy, fs::file_time_type::clock::now() - std::chrono::hours(2));
  const int fd = ::open(busy.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  save_safetensors(target, {{"x", ones({2})}});
  CHECK(fs::exists(busy));
  ::close(fd);
  save_safetensors(target, {{"x", ones({2})}});
  CHECK_FALSE(fs::exists(busy));  // the lock is gone and so is its pid
}

namespace {

// Saves `path` `count` times with `count` bytes of `fill`; returns how many saves threw.
int hammer(const std::string& path, char fill, int count) {
  int failures = 0;
  for (int i = 0; i < count; ++i) {
    try {
      write_file_atomic(path, std::string(4096 + static_cast<std::size_t>(i), fill));
    } catch (const Error&) {
      ++failures;
    }
  }
  return failures;
}

// The saves' temporaries still in `dir`.
int temporaries_in(const fs::path& dir) {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) n += entry.path().filename().string().find(".tmp-") != std::string::npos;
  return n;
}

// The file holds one whole save: one fill character throughout, of a length some save wrote.
bool one_whole_save(const std::string& path) {
  const std::string text = read_bytes(path);
  return text.size() >= 4096 && text.find_first_not_of(text[0]) == std::string::npos;
}

}  // namespace

TEST_CASE("two processes saving one file: every save succeeds and the last rename wins") {
  TempDir dir;
  const std::string target = dir.file("shared.txt");
  pid_t writers[2];
  for (int w = 0; w < 2; ++w) {
    writers[w] = ::fork();
    if (writers[w] == 0) ::_exit(std::min(hammer(target, w == 0 ? 'a' : 'b', 150), 255));
    REQUIRE(writers[w] > 0);
  }
  for (pid_t pid : writers) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK_MESSAGE(WEXITSTATUS(status) == 0, WEXITSTATUS(status), " of 150 saves failed");
  }
  CHECK(one_whole_save(target));
  CHECK(temporaries_in(dir.path) == 0);
}

TEST_CASE("two threads saving one file: every save succeeds and the last rename wins") {
  TempDir dir;
  const std::string target = dir.file("shared.txt");
  int failures[2] = {0, 0};
  std::thread a([&] { failures[0] = hammer(target, 'a', 150); });
  std::thread b([&] { failures[1] = hammer(target, 'b', 150); });
  a.join();
  b.join();
  CHECK(failures[0] == 0);
  CHECK(failures[1] == 0);
  CHECK(one_whole_save(target));
  CHECK(temporaries_in(dir.path) == 0);
}

TEST_CASE("a save refuses to replace a device, a FIFO or a directory, by name") {
  TempDir dir;
  // A character device of our own (the null device's numbers), so that a broken save run
  // as root replaces it rather than /dev/null; without the right to make one, /dev/null
  // itself, which such a process cannot replace either.
  std::string device = dir.file("null_device");
  if (::mknod(device.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) != 0) device = "/dev/null";
  CHECK_THROWS_WITH_AS(save_safetensors(device, {{"x", ones({2})}}),
                       doctest::Contains(("save_safetensors: '" + device + "' is a character device").c_str()), Error);
  CHECK_THROWS_WITH_AS(write_file_atomic(device, "x"), doctest::Contains(("'" + device + "' is a character device").c_str()), Error);
  CHECK(fs::is_character_file(device));
  const std::string fifo = dir.file("pipe");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(save_npy(fifo, ones({2})), doctest::Contains(("save_npy: '" + fifo + "' is a FIFO").c_str()), Error);
  CHECK(fs::is_fifo(fifo));
  CHECK_THROWS_WITH_AS(write_file_atomic(dir.path.string(), "x"), doctest::Contains("is a directory"), Error);
  CHECK(fs::is_directory(dir.path));
  CHECK(temporaries_in(dir.path) == 0);
}

TEST_CASE("a save through a symlink replaces the file it points to and keeps the link") {
  TempDir dir;
  fs::create_directories(dir.path / "real");
  const std::string real = dir.file("real/w.safetensors"), link = dir.file("w.safetensors");
  save_safetensors(real, {{"x", ones({2})}});
  fs::create_symlink(real, link);
  save_safetensors(link, {{"x", zeros({3})}});
  CHECK(fs::is_symlink(link));
  CHECK(load_safetensors(real).at("x").shape() == Shape{3});
  CHECK(temporaries_in(dir.path) == 0);
  CHECK(temporaries_in(dir.path / "real") == 0);
  // A link to a device, and a dangling link, are refused, naming the link.
  const std::string to_null = dir.file("null_link");
  fs::create_symlink("/dev/null", to_null);
  CHECK_THROWS_WITH_AS(write_file_atomic(to_null, "x"),
                       doctest::Contains(("'" + to_null + "' is a symlink to '/dev/null', which is a character device").c_str()), Error);
  CHECK(fs::is_symlink(to_null));
  const std::string dangling = dir.file("dangling");
  fs::create_symlink(dir.file("nowhere/file"), dangling);
  CHECK_THROWS_WITH_AS(write_file_atomic(dangling, "x"), doctest::Contains("symlink whose target cannot be resolved"), Error);
  CHECK(fs::is_symlink(dangling));
}

TEST_CASE("arrays with more than 64 dimensions (numpy 2's limit) are refused, naming the shape") {
  TempDir dir;
  const std::string p = dir.file("dims.npy");
  auto npy = [&](std::size_t rank) {
    std::string shape = "(";
    for (std::size_t i = 0; i < rank; ++i) shape += "1,";
    // Version 2: a 20 000-dimension header needs a 4-byte length.
    write_bytes(p, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + "), }", std::string(4, '\0'), 2));
  };
  npy(64);
  CHECK(load_npy(p).dim() == 64);
  npy(65);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("the shape has more than 64 dimensions"), Error);
  npy(20000);
  CHECK_THROWS_WITH_AS(load_npy(p), doctest::Contains("the shape has more than 64 dimensions"), Error);

  const std::string s = dir.file("dims.safetensors");
  auto st = [&](std::size_t rank) {
    std::string shape;
    for (std::size_t i = 0; i < rank; ++i) shape += i ? ",1" : "1";
    write_bytes(s, safetensors_bytes(R"({"w":{"dtype":"F32","shape":[)" + shape + R"(],"data_offsets":[0,4]}})", std::string(4, '\0')));
  };
  st(64);
  CHECK(load_safetensors(s).at("w").dim() == 64);
  st(65);
  CHECK_THROWS_WITH_AS(load_safetensors(s), doctest::Contains("tensor 'w': shape has 65 dimensions, more than 64"), Error);
}

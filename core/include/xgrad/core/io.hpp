#pragma once
/// \file
/// Saving and loading tensors: safetensors files (checkpoints) and numpy .npy arrays.
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <xgrad/core/tensor.hpp>

namespace xgrad {

/// Named tensors in a fixed order (a state dict, an optimizer state).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// The contents of a safetensors file: tensors in file order, and the free-form metadata.
struct SafetensorsFile {
  NamedTensors tensors;                          ///< name and tensor, in the file's order
  std::map<std::string, std::string> metadata;  ///< the header's "__metadata__" entries
  /// The tensor called `name`; throws naming the file's keys when it is absent.
  const Tensor& at(const std::string& name) const;
  /// True when the file holds a tensor called `name`.
  bool contains(const std::string& name) const;
};

/// Writes `tensors` as a safetensors file: an 8-byte little-endian header length, a JSON
/// header giving each tensor's dtype ("F32", "F64", "I64", "BOOL"), shape and data_offsets,
/// then the raw little-endian data. Readable by Python's `safetensors` and by
/// `load_safetensors`. The write is atomic: a temporary file in the same directory is
/// written, flushed and renamed over `path`, so an interrupted run never leaves a torn file;
/// concurrent saves of one path (processes or threads) all succeed and the last rename wins.
/// `path` must be a regular file or absent: a device, FIFO or directory is refused with an
/// Error naming it; a symlink is followed and the file it points to is replaced atomically
/// (a dangling symlink is refused). The same holds for `write_file_atomic` and `save_npy`.
/// Example: `save_safetensors("model.safetensors", {{"w", w}, {"b", b}});`
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads a safetensors file, validating every field: header length, JSON, dtypes, shapes,
/// offsets in range, byte counts matching shapes, no overlaps or gaps. A malformed or
/// truncated file throws an Error naming the file and the offending field.
SafetensorsFile load_safetensors(const std::string& path);

/// Writes `contents` to `path` atomically, as the savers above do: an interrupted run leaves
/// the previous file or the new one, never half of one; concurrent writers all succeed, the
/// last rename wins; a non-regular `path` is refused and a symlink followed, as for
/// `save_safetensors`. For logs, metrics and vocabularies.
/// Example: `write_file_atomic("metrics.json", text);`
void write_file_atomic(const std::string& path, std::string_view contents);

/// Writes one tensor as a numpy .npy file (format 1.0, little-endian, C order), atomically,
/// with `save_safetensors`' rules for concurrent writers, non-regular files and symlinks.
/// Example: `save_npy("x.npy", x);`
void save_npy(const std::string& path, const Tensor& t);
/// Reads a .npy file with dtype <f4, <f8, <i8 or |b1 in C order.
Tensor load_npy(const std::string& path);

}  // namespace xgrad

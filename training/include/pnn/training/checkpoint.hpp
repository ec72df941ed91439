#pragma once
/// Training checkpoints: a versioned, CRC-protected binary file written atomically.
///
/// The byte format is specified in docs/checkpoint-format.md. In short: magic "PNNCKPT\0",
/// format version (u32), body length (u64), length-prefixed records, CRC-32 (zlib) of everything
/// before it; all integers little-endian, doubles as their IEEE-754 bit patterns, so every value
/// (including NaN payloads and −0.0) round-trips bit-exactly.
///
/// `encode_checkpoint` / `decode_checkpoint` are the pure codec; `save_checkpoint` /
/// `load_checkpoint` add the file I/O. Thread rule: all functions are reentrant; concurrent saves
/// to the same path each write their own temporary file, and the last rename wins.
#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::training {

/// The state of one layer of a network.
struct LayerState {
  std::string kind;           ///< layer type, e.g. "oscillator" or "linear"
  std::string device_serial;  ///< serial number of the physical device (empty for digital layers)
  Vector theta;               ///< trainable parameters θ
  Vector twin_phi;            ///< calibrated physical parameters φ of the twin (may be empty)
};

/// The optimizer's state, e.g. kind "adam" with slots m and v per layer; the same shape holds a
/// learning rule's state (kind "spsa": its step counter; "mgd": integrators and phase).
struct OptimizerState {
  std::string kind;
  std::int64_t step = 0;
  std::vector<Vector> slots;
};

/// Everything needed to resume training.
struct Checkpoint {
  int epoch = 0;
  std::uint64_t seed = 0;
  std::vector<LayerState> layers;
  OptimizerState optimizer;
  /// The learning rule's state; kind "" (PAT, in-silico: no state) writes no record.
  OptimizerState rule;
  std::map<std::string, std::string> metadata;
};

/// Saving or loading failed. The message names the file and the problem.
class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The format version this build writes; it reads versions 1..kCheckpointFormatVersion.
inline constexpr std::uint32_t kCheckpointFormatVersion = 1;

/// Test hook for `save_checkpoint`.
struct SaveFaults {
  /// If ≥ 0 and the file is longer, the write stops after this many bytes and throws
  /// CheckpointError as a failing disk would. -1 = no fault.
  std::int64_t fail_after_bytes = -1;
};

/// Serialises `c` into the current format. Pure; throws CheckpointError only if a field exceeds
/// the format's limits (strings or vectors longer than 2^32 − 1 entries).
std::string encode_checkpoint(const Checkpoint& c);

/// Parses bytes produced by `encode_checkpoint`. `source` (usually the file name) prefixes every
/// error message. Validates magic, version, lengths (never allocating more than `bytes` holds),
/// record structure and CRC; throws CheckpointError on any problem.
Checkpoint decode_checkpoint(std::string_view bytes, const std::string& source);

/// Writes `c` to `path` atomically: the bytes go to a temporary file beside `path`
/// ("<path>.tmp.<pid>.<n>"), which is fsynced and renamed over `path`, then the directory is
/// fsynced. On any failure the temporary file is removed, `path` keeps its previous content (or
/// stays absent) and CheckpointError is thrown. The parent directory must exist.
void save_checkpoint(const Checkpoint& c, const std::filesystem::path& path,
                     const SaveFaults& faults = {});

/// Reads and validates the checkpoint at `path` (see `decode_checkpoint`). Throws
/// CheckpointError if the file is missing, unreadable, truncated, corrupt or from a newer version.
Checkpoint load_checkpoint(const std::filesystem::path& path);

}  // namespace pnn::training

#pragma once
/// Replaces a file so that a crash or power cut leaves either the old or the new content, never
/// a torn file: write a temporary file beside it ("<path>.tmp.<pid>.<n>", unique per call, so
/// concurrent writers of one path never share one), fsync it, rename it over the target, fsync
/// the directory. The one implementation for the whole project (plots, checkpoints).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace pnn::common {

struct AtomicWriteOptions {
  /// Create missing parent directories first; if false, a missing directory fails at
  /// Step::kCreateTemp.
  bool create_directories = true;
  /// Test hook: if ≥ 0 and the content is longer, writing stops after this many bytes and fails
  /// as a full disk would (Step::kWrite, injected()). -1 = no fault.
  std::int64_t fail_after_bytes = -1;
};

/// One step of `write_file_atomic` failed. Up to Step::kRename the target is untouched and the
/// temporary file has been removed; from Step::kOpenDirectory on, the target already holds the
/// new content but the rename may not survive a power loss. what(): "<path>: cannot write:
/// <step>: <reason> (check that the directory exists, is writable and has space)".
class AtomicWriteError : public std::runtime_error {
 public:
  enum class Step {
    kCreateDirectories,
    kCreateTemp,
    kWrite,
    kSyncFile,
    kCloseFile,
    kRename,
    kOpenDirectory,
    kSyncDirectory,
  };
  AtomicWriteError(const std::string& what, Step step, int os_error,
                   std::filesystem::path temp_path, std::size_t bytes_written)
      : std::runtime_error(what),
        step_(step),
        os_error_(os_error),
        temp_path_(std::move(temp_path)),
        bytes_written_(bytes_written) {}

  Step step() const noexcept { return step_; }
  /// The errno of the failed system call; 0 for a fault injected by fail_after_bytes.
  int os_error() const noexcept { return os_error_; }
  bool injected() const noexcept { return os_error_ == 0; }
  const std::filesystem::path& temp_path() const noexcept { return temp_path_; }
  /// Bytes of the content written to the temporary file before the failure.
  std::size_t bytes_written() const noexcept { return bytes_written_; }

 private:
  Step step_;
  int os_error_;
  std::filesystem::path temp_path_;
  std::size_t bytes_written_;
};

/// Writes `content` to `path` as described above. Throws AtomicWriteError (a
/// std::runtime_error) naming the file, the step that failed and the system's reason. A file
/// system that cannot fsync a directory (EINVAL, EROFS) is not an error. Thread-safe.
void write_file_atomic(const std::filesystem::path& path, std::string_view content,
                       const AtomicWriteOptions& options = {});

}  // namespace pnn::common

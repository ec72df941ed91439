#pragma once
/// Replaces a file so that a crash or power cut leaves either the old or the new content, never
/// a torn file: write a temporary file beside it, fsync it, rename it over the target, fsync the
/// directory. Creates missing parent directories.
#include <filesystem>
#include <string_view>

namespace pnn::common {

/// Throws std::runtime_error naming the file, the step that failed and the system's reason.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

}  // namespace pnn::common

#pragma once
// Small batches and parameter vectors for `pnnctl forward`, from JSON or CSV text.
#include <string>
#include <vector>

namespace pnnctl {

/// A row-major batch.
struct Batch {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> data;  ///< rows·cols values
};

/// The text of `path` ("-" = standard input). Throws UsageError naming `option` if unreadable.
std::string read_text_file(const std::string& path, const std::string& option);

/// A batch from JSON (`[[1, 2], [3, 4]]`, or a flat `[1, 2]` = one sample) or CSV (one sample
/// per line, values separated by commas or blanks; blank lines and `#` comments skipped).
/// Throws UsageError naming `what`, the row and the value for ragged rows, non-numbers and
/// non-finite values, and for an empty batch.
Batch parse_batch(const std::string& text, const std::string& what);

/// A vector from JSON (`[0.1, 0.2]`) or CSV/blank-separated numbers on any number of lines.
std::vector<double> parse_vector(const std::string& text, const std::string& what);

}  // namespace pnnctl

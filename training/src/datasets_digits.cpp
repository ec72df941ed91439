// The digits data set: scikit-learn's 1,797 8x8 images as gzipped CSV (64 pixels 0..16, then
// the label), split mod 4 into train and test.
#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "datasets_detail.hpp"

namespace pnn::training {
namespace {

using detail::fail;
using detail::kNumClasses;
using detail::kSklearnHint;

constexpr int kDigitsRows = 1797;
constexpr int kDigitsPixels = 64;
constexpr double kDigitsMaxPixel = 16.0;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string printable(std::string_view s) {
  constexpr std::size_t kMax = 20;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > kMax) out += "...";
  return out;
}

struct DigitsRow {
  std::array<double, kDigitsPixels> pixels;
  int label;
};

DigitsRow parse_digits_line(const std::string& file, std::string_view line, int line_number) {
  DigitsRow row{};
  const std::string where = "line " + std::to_string(line_number);
  int field = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    const std::string_view text =
        trim(line.substr(start, comma == std::string_view::npos ? line.npos : comma - start));
    if (field > kDigitsPixels) {
      fail(file, where + ": more than " + std::to_string(kDigitsPixels + 1) + " values",
           kSklearnHint.reinstall);
    }
    double value = 0.0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
        !std::isfinite(value)) {
      fail(file,
           where + ", column " + std::to_string(field + 1) + ": '" + printable(text) +
               "' is not a number",
           kSklearnHint.reinstall);
    }
    if (field < kDigitsPixels) {
      if (value < 0.0 || value > kDigitsMaxPixel) {
        fail(file,
             where + ", column " + std::to_string(field + 1) + ": pixel value " + printable(text) +
                 " is outside 0..16",
             kSklearnHint.reinstall);
      }
      row.pixels[static_cast<std::size_t>(field)] = value;
    } else {
      if (value != std::floor(value) || value < 0.0 || value >= kNumClasses) {
        fail(file,
             where + ": label " + printable(text) + " is not an integer class in 0.." +
                 std::to_string(kNumClasses - 1),
             kSklearnHint.reinstall);
      }
      row.label = static_cast<int>(value);
    }
    ++field;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (field != kDigitsPixels + 1) {
    fail(file,
         where + ": expected " + std::to_string(kDigitsPixels + 1) +
             " comma-separated values (64 pixels then the label), found " + std::to_string(field),
         kSklearnHint.reinstall);
  }
  return row;
}

}  // namespace

DatasetSplit load_digits(const std::string& path) {
  const std::vector<unsigned char> text = detail::read_gzip(path, kSklearnHint);
  const std::string_view all(reinterpret_cast<const char*>(text.data()), text.size());

  std::vector<DigitsRow> rows;
  rows.reserve(kDigitsRows);
  int line_number = 0;
  std::size_t start = 0;
  while (start < all.size()) {
    const std::size_t newline = all.find('\n', start);
    const std::size_t end = newline == std::string_view::npos ? all.size() : newline;
    const std::string_view line = all.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (trim(line).empty()) continue;  // tolerate blank lines, e.g. a doubled final newline
    if (rows.size() == kDigitsRows) {
      fail(path,
           "more than the expected " + std::to_string(kDigitsRows) + " rows (line " +
               std::to_string(line_number) + ")",
           kSklearnHint.reinstall);
    }
    rows.push_back(parse_digits_line(path, line, line_number));
  }
  if (rows.size() != kDigitsRows) {
    fail(path,
         "found " + std::to_string(rows.size()) + " rows, expected " + std::to_string(kDigitsRows),
         kSklearnHint.reinstall);
  }

  constexpr Index kTest = (kDigitsRows + 1) / 4;  // rows 3, 7, …, 1795: 449
  DatasetSplit split;
  split.split = "mod4";
  split.train = detail::make_dataset("digits", kDigitsRows - kTest, kDigitsPixels);
  split.test = detail::make_dataset("digits", kTest, kDigitsPixels);
  Index train_row = 0;
  Index test_row = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    Dataset& d = (i % 4 == 3) ? split.test : split.train;
    const Index r = (i % 4 == 3) ? test_row++ : train_row++;
    for (int j = 0; j < kDigitsPixels; ++j) {
      d.x(r, j) = rows[i].pixels[static_cast<std::size_t>(j)] / kDigitsMaxPixel;
    }
    d.labels(r) = rows[i].label;
  }
  return split;
}

}  // namespace pnn::training

#include "pnn/training/datasets.hpp"

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace pnn::training {
namespace {

namespace fs = std::filesystem;

// What to tell the user, per package: how to get a missing file, how to repair a corrupt one.
struct PackageHint {
  const char* install;
  const char* reinstall;
};

constexpr PackageHint kSklearnHint{
    "install the Debian package python3-sklearn: apt-get install python3-sklearn",
    "reinstall the Debian package python3-sklearn: apt-get install --reinstall python3-sklearn"};
constexpr PackageHint kFashionHint{
    "install the Debian package dataset-fashion-mnist: apt-get install dataset-fashion-mnist",
    "reinstall the Debian package dataset-fashion-mnist: apt-get install --reinstall "
    "dataset-fashion-mnist"};

constexpr int kDigitsRows = 1797;
constexpr int kDigitsPixels = 64;
constexpr double kDigitsMaxPixel = 16.0;
constexpr int kNumClasses = 10;

constexpr std::uint32_t kIdxImagesMagic = 2051;
constexpr std::uint32_t kIdxLabelsMagic = 2049;
constexpr int kFashionSide = 28;
constexpr std::size_t kFashionPixels = kFashionSide * kFashionSide;

// Far above the largest file (47 MB of Fashion-MNIST training images), far below trouble: a
// corrupt or hostile gzip stream cannot make the loader allocate without bound.
constexpr std::size_t kMaxDecompressedBytes = std::size_t{512} << 20;
constexpr std::uintmax_t kMaxCompressedBytes = std::uintmax_t{512} << 20;

[[noreturn]] void fail(const std::string& file, const std::string& what, const char* fix) {
  throw DatasetError(file + ": " + what + ". Fix: " + fix);
}

// Reads a whole file into memory. Reading the compressed bytes first and inflating from memory
// keeps every failure (missing, unreadable, truncated) distinguishable and gives exact messages.
std::vector<unsigned char> read_file(const std::string& file, const PackageHint& hint) {
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (ec || !fs::exists(status)) {
    fail(file, "file not found", hint.install);
  }
  if (!fs::is_regular_file(status)) {
    fail(file, "not a regular file", hint.reinstall);
  }
  const std::uintmax_t size = fs::file_size(file, ec);
  if (ec) {
    fail(file, "cannot read the file size (" + ec.message() + ")", hint.reinstall);
  }
  if (size > kMaxCompressedBytes) {
    fail(file, "file is " + std::to_string(size) + " bytes, larger than any data set file",
         hint.reinstall);
  }
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    fail(file, "cannot open the file for reading (check its permissions)", hint.reinstall);
  }
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::size_t>(in.gcount()) != bytes.size()) {
    fail(file, "read error (the file shrank or the disk failed while reading)", hint.reinstall);
  }
  return bytes;
}

// Decompresses a gzip file (one or more members) into memory.
std::vector<unsigned char> read_gzip(const std::string& file, const PackageHint& hint) {
  const std::vector<unsigned char> compressed = read_file(file, hint);
  if (compressed.empty()) {
    fail(file, "file is empty, expected gzip data", hint.reinstall);
  }
  if (compressed.size() < 2 || compressed[0] != 0x1f || compressed[1] != 0x8b) {
    fail(file, "not a gzip file (wrong magic bytes)", hint.reinstall);
  }

  z_stream zs{};
  // 16 + MAX_WBITS: accept the gzip wrapper only and verify its CRC-32 and length trailer.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    fail(file, "zlib could not be initialised (out of memory?)", hint.reinstall);
  }
  struct InflateEnd {
    z_stream* zs;
    ~InflateEnd() { inflateEnd(zs); }
  } guard{&zs};

  // The gzip trailer holds the uncompressed size mod 2^32: a good first guess for the buffer.
  const std::size_t n = compressed.size();
  std::size_t guess = 0;
  if (n >= 4) {
    guess = std::size_t{compressed[n - 4]} | (std::size_t{compressed[n - 3]} << 8) |
            (std::size_t{compressed[n - 2]} << 16) | (std::size_t{compressed[n - 1]} << 24);
  }
  guess = std::clamp<std::size_t>(guess, 4096, std::min(kMaxDecompressedBytes, n * 1032 + 4096));
  std::vector<unsigned char> out(guess);
  std::size_t produced = 0;
  std::size_t consumed = 0;

  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= kMaxDecompressedBytes) {
        fail(file,
             "decompresses to more than " + std::to_string(kMaxDecompressedBytes) +
                 " bytes, more than any data set file holds",
             hint.reinstall);
      }
      out.resize(std::min(out.size() * 2, kMaxDecompressedBytes));
    }
    const std::size_t in_chunk = std::min<std::size_t>(n - consumed, UINT_MAX);
    const std::size_t out_chunk = std::min<std::size_t>(out.size() - produced, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(compressed.data() + consumed);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    consumed += in_chunk - zs.avail_in;
    produced += out_chunk - zs.avail_out;

    if (rc == Z_STREAM_END) {
      if (consumed == n) break;
      // gzip allows several members back to back; anything else after a member is corruption.
      if (n - consumed >= 2 && compressed[consumed] == 0x1f && compressed[consumed + 1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      fail(file, std::to_string(n - consumed) + " bytes of garbage after the gzip data",
           hint.reinstall);
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR) {
      if (consumed == n) {
        fail(file, "truncated gzip data (the file ends before the compressed stream does)",
             hint.reinstall);
      }
      continue;  // the output buffer was full: grow it
    }
    if (rc == Z_MEM_ERROR) {
      fail(file, "out of memory while decompressing", hint.reinstall);
    }
    fail(file,
         std::string("corrupt gzip data (zlib: ") + (zs.msg != nullptr ? zs.msg : "unknown") + ")",
         hint.reinstall);
  }
  out.resize(produced);
  out.shrink_to_fit();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Digits (CSV)

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

// Asks the kernel to back a freshly allocated, not yet touched buffer with huge pages. Filling
// the full Fashion-MNIST matrix (376 MB of doubles) otherwise takes one page fault per 4 KiB,
// which dominated the load time (about 1 s of 1.7 s in a VM); with huge pages it is ~0.05 s.
// Advisory only: any failure just leaves ordinary pages.
void advise_huge_pages(void* data, std::size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr std::size_t kMinBytes = std::size_t{8} << 20;
  if (bytes < kMinBytes) return;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) return;
  const auto mask = static_cast<std::uintptr_t>(page) - 1;
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + mask) & ~mask;
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~mask;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

Dataset make_dataset(const std::string& name, Index rows, Index features) {
  Dataset d;
  d.name = name;
  d.x.resize(rows, features);
  advise_huge_pages(d.x.data(), static_cast<std::size_t>(d.x.size()) * sizeof(double));
  d.labels.resize(rows);
  d.num_classes = kNumClasses;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Fashion-MNIST (IDX)

std::uint32_t read_be32(const std::vector<unsigned char>& b, std::size_t offset) {
  return (std::uint32_t{b[offset]} << 24) | (std::uint32_t{b[offset + 1]} << 16) |
         (std::uint32_t{b[offset + 2]} << 8) | std::uint32_t{b[offset + 3]};
}

struct IdxImages {
  std::vector<unsigned char> bytes;  // header + count × 784 pixels
  std::size_t count = 0;
  const unsigned char* pixels() const { return bytes.data() + 16; }
};

struct IdxLabels {
  std::vector<unsigned char> bytes;  // header + count labels
  std::size_t count = 0;
  const unsigned char* labels() const { return bytes.data() + 8; }
};

IdxImages read_idx_images(const std::string& file) {
  IdxImages images;
  images.bytes = read_gzip(file, kFashionHint);
  const auto& b = images.bytes;
  if (b.size() >= 4 && read_be32(b, 0) != kIdxImagesMagic) {
    const std::uint32_t magic = read_be32(b, 0);
    fail(file,
         "wrong IDX magic number " + std::to_string(magic) + " (expected " +
             std::to_string(kIdxImagesMagic) + " for an image file" +
             (magic == kIdxLabelsMagic ? "; this is a label file" : "") + ")",
         kFashionHint.reinstall);
  }
  if (b.size() < 16) {
    fail(file,
         "decompressed data is " + std::to_string(b.size()) +
             " bytes, too short for the 16-byte IDX image header",
         kFashionHint.reinstall);
  }
  const std::uint32_t count = read_be32(b, 4);
  const std::uint32_t rows = read_be32(b, 8);
  const std::uint32_t cols = read_be32(b, 12);
  if (rows != kFashionSide || cols != kFashionSide) {
    fail(file,
         "images are " + std::to_string(rows) + "x" + std::to_string(cols) +
             ", Fashion-MNIST images are 28x28",
         kFashionHint.reinstall);
  }
  const std::uint64_t expected = 16 + std::uint64_t{count} * kFashionPixels;
  if (b.size() < expected) {
    fail(file,
         "truncated: the header declares " + std::to_string(count) + " images (" +
             std::to_string(expected) + " bytes) but the data holds only " +
             std::to_string(b.size()) + " bytes",
         kFashionHint.reinstall);
  }
  if (b.size() > expected) {
    fail(file,
         std::to_string(b.size() - expected) + " unexpected bytes after the " +
             std::to_string(count) + " images the header declares",
         kFashionHint.reinstall);
  }
  images.count = count;
  return images;
}

IdxLabels read_idx_labels(const std::string& file) {
  IdxLabels labels;
  labels.bytes = read_gzip(file, kFashionHint);
  const auto& b = labels.bytes;
  if (b.size() >= 4 && read_be32(b, 0) != kIdxLabelsMagic) {
    const std::uint32_t magic = read_be32(b, 0);
    fail(file,
         "wrong IDX magic number " + std::to_string(magic) + " (expected " +
             std::to_string(kIdxLabelsMagic) + " for a label file" +
             (magic == kIdxImagesMagic ? "; this is an image file" : "") + ")",
         kFashionHint.reinstall);
  }
  if (b.size() < 8) {
    fail(file,
         "decompressed data is " + std::to_string(b.size()) +
             " bytes, too short for the 8-byte IDX label header",
         kFashionHint.reinstall);
  }
  const std::uint32_t count = read_be32(b, 4);
  const std::uint64_t expected = 8 + std::uint64_t{count};
  if (b.size() < expected) {
    fail(file,
         "truncated: the header declares " + std::to_string(count) +
             " labels but the data holds only " + std::to_string(b.size() - 8),
         kFashionHint.reinstall);
  }
  if (b.size() > expected) {
    fail(file,
         std::to_string(b.size() - expected) + " unexpected bytes after the " +
             std::to_string(count) + " labels the header declares",
         kFashionHint.reinstall);
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (labels.labels()[i] >= kNumClasses) {
      fail(file,
           "label " + std::to_string(labels.labels()[i]) + " of sample " + std::to_string(i) +
               " is outside 0.." + std::to_string(kNumClasses - 1),
           kFashionHint.reinstall);
    }
  }
  labels.count = count;
  return labels;
}

// Per-axis area weights from 28 source pixels to `side` output pixels. Output pixel a covers
// [a·28/side, (a+1)·28/side) in source coordinates; scaling by `side` makes every boundary an
// integer, so the overlaps are exact integers and each weight is overlap / 28 exactly.
struct AxisWeights {
  struct Tap {
    int source;
    double weight;
  };
  std::vector<std::vector<Tap>> taps;  // taps[a]: the source pixels of output pixel a
};

AxisWeights make_axis_weights(int side) {
  AxisWeights w;
  w.taps.resize(static_cast<std::size_t>(side));
  for (int a = 0; a < side; ++a) {
    const int lo = a * kFashionSide;
    const int hi = (a + 1) * kFashionSide;
    for (int k = 0; k < kFashionSide; ++k) {
      const int overlap = std::min(hi, (k + 1) * side) - std::max(lo, k * side);
      if (overlap > 0) {
        w.taps[static_cast<std::size_t>(a)].push_back(
            {k, static_cast<double>(overlap) / kFashionSide});
      }
    }
  }
  return w;
}

// Fills `d` with the first d.size() images, scaled to [0, 1] and resampled to side × side.
void convert_images(const IdxImages& images, const IdxLabels& labels, int side, Dataset& d) {
  const Index n = d.size();
  const unsigned char* src = images.pixels();
  // Divide rather than multiply by 1/255: every pixel is then the correctly rounded p/255.
  constexpr double kMaxPixel = 255.0;
  if (side == kFashionSide) {
    // x is column-major with one sample per row: go through blocks of samples so that both the
    // source rows and the destination columns stay in cache.
    constexpr Index kBlock = 64;
    for (Index i0 = 0; i0 < n; i0 += kBlock) {
      const Index i1 = std::min(n, i0 + kBlock);
      for (Index j = 0; j < static_cast<Index>(kFashionPixels); ++j) {
        double* dst = d.x.col(j).data();
        for (Index i = i0; i < i1; ++i) {
          dst[i] = src[static_cast<std::size_t>(i) * kFashionPixels + static_cast<std::size_t>(j)] /
                   kMaxPixel;
        }
      }
    }
  } else {
    const AxisWeights w = make_axis_weights(side);
    const auto s = static_cast<std::size_t>(side);
    std::vector<double> horizontal(kFashionSide * s);  // 28 rows × side columns
    for (Index i = 0; i < n; ++i) {
      const unsigned char* img = src + static_cast<std::size_t>(i) * kFashionPixels;
      for (std::size_t r = 0; r < kFashionSide; ++r) {
        for (std::size_t b = 0; b < s; ++b) {
          double sum = 0.0;
          for (const auto& tap : w.taps[b]) {
            sum += tap.weight * img[r * kFashionSide + static_cast<std::size_t>(tap.source)];
          }
          horizontal[r * s + b] = sum;
        }
      }
      for (std::size_t a = 0; a < s; ++a) {
        for (std::size_t b = 0; b < s; ++b) {
          double sum = 0.0;
          for (const auto& tap : w.taps[a]) {
            sum += tap.weight * horizontal[static_cast<std::size_t>(tap.source) * s + b];
          }
          d.x(i, static_cast<Index>(a * s + b)) = sum / kMaxPixel;
        }
      }
    }
  }
  for (Index i = 0; i < n; ++i) {
    d.labels(i) = labels.labels()[static_cast<std::size_t>(i)];
  }
}

Dataset load_fashion_part(const fs::path& dir, const std::string& prefix, Index max_samples,
                          int side) {
  const std::string images_file = (dir / (prefix + "-images-idx3-ubyte.gz")).string();
  const std::string labels_file = (dir / (prefix + "-labels-idx1-ubyte.gz")).string();
  const IdxImages images = read_idx_images(images_file);
  const IdxLabels labels = read_idx_labels(labels_file);
  if (images.count != labels.count) {
    fail(images_file,
         "holds " + std::to_string(images.count) + " images but " + labels_file + " holds " +
             std::to_string(labels.count) + " labels (image/label count mismatch)",
         kFashionHint.reinstall);
  }
  Index n = static_cast<Index>(images.count);
  if (max_samples > 0) n = std::min(n, max_samples);
  Dataset d = make_dataset("fashion-mnist", n, static_cast<Index>(side) * side);
  convert_images(images, labels, side, d);
  return d;
}

void check_limits(const FashionMnistOptions& options) {
  if (options.max_train < 0 || options.max_test < 0) {
    throw DatasetError("dataset options: max_train (" + std::to_string(options.max_train) +
                       ") and max_test (" + std::to_string(options.max_test) +
                       ") must be >= 0 (0 = all samples)");
  }
}

Dataset head(Dataset d, Index max_samples) {
  if (max_samples > 0 && max_samples < d.size()) {
    d.x.conservativeResize(max_samples, Eigen::NoChange);
    d.labels.conservativeResize(max_samples);
  }
  return d;
}

}  // namespace

DatasetSplit load_digits(const std::string& path) {
  const std::vector<unsigned char> text = read_gzip(path, kSklearnHint);
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
  split.train = make_dataset("digits", kDigitsRows - kTest, kDigitsPixels);
  split.test = make_dataset("digits", kTest, kDigitsPixels);
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

DatasetSplit load_fashion_mnist(const FashionMnistOptions& options, const std::string& dir) {
  if (options.image_side < 1 || options.image_side > kFashionSide) {
    throw DatasetError("fashion-mnist options: image_side = " + std::to_string(options.image_side) +
                       " is invalid; it must be 1..28 (28 keeps the original images)");
  }
  check_limits(options);
  DatasetSplit split;
  split.split = "official";
  split.train = load_fashion_part(dir, "train", options.max_train, options.image_side);
  split.test = load_fashion_part(dir, "t10k", options.max_test, options.image_side);
  return split;
}

DatasetSplit load_dataset(const std::string& name, const FashionMnistOptions& options) {
  if (name == "digits") {
    if (options.image_side != kFashionSide && options.image_side != 8) {
      throw DatasetError("dataset 'digits': image_side = " + std::to_string(options.image_side) +
                         " is not supported; digits are 8x8 and never resampled (leave "
                         "image_side at its default)");
    }
    check_limits(options);
    DatasetSplit split = load_digits();
    split.train = head(std::move(split.train), options.max_train);
    split.test = head(std::move(split.test), options.max_test);
    return split;
  }
  if (name == "fashion-mnist") {
    return load_fashion_mnist(options);
  }
  throw DatasetError("unknown dataset '" + name + "'; valid names: digits, fashion-mnist");
}

}  // namespace pnn::training

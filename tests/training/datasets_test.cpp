#include "pnn/training/datasets.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>
#include "test_util.hpp"

namespace pnn::training {
namespace {

namespace fs = std::filesystem;

struct TempDir : ::pnn::test::TempDir {
  TempDir() : ::pnn::test::TempDir("pnn_datasets_test") {}
};

using Bytes = std::vector<unsigned char>;

void write_bytes(const std::string& file, const Bytes& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

Bytes read_bytes(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Bitwise CRC-32 (IEEE), independent of zlib, for the gzip trailer.
std::uint32_t crc32_ieee(const Bytes& data) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_le32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

// A valid gzip file using stored (uncompressed) deflate blocks, written by hand so that the test
// does not depend on the encoder the loader uses to decode.
Bytes gzip_stored(const Bytes& data) {
  Bytes out = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  std::size_t pos = 0;
  do {
    const std::size_t n = std::min<std::size_t>(data.size() - pos, 65535);
    const bool last = pos + n == data.size();
    out.push_back(last ? 1 : 0);
    out.push_back(static_cast<unsigned char>(n & 0xff));
    out.push_back(static_cast<unsigned char>(n >> 8));
    out.push_back(static_cast<unsigned char>(~n & 0xff));
    out.push_back(static_cast<unsigned char>((~n >> 8) & 0xff));
    out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
               data.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  } while (pos < data.size());
  put_le32(out, crc32_ieee(data));
  put_le32(out, static_cast<std::uint32_t>(data.size()));
  return out;
}

Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// The DatasetError message of `f`, or "" if it did not throw one.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DatasetError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// Synthetic digits CSV: 1797 valid rows; pixel j of row i is (i + j) % 17, label i % 10.
std::vector<std::string> digits_lines() {
  std::vector<std::string> lines;
  for (int i = 0; i < 1797; ++i) {
    std::string line;
    for (int j = 0; j < 64; ++j) line += std::to_string((i + j) % 17) + ",";
    line += std::to_string(i % 10);
    lines.push_back(line);
  }
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& line : lines) s += line + "\n";
  return s;
}

std::string write_digits(const TempDir& dir, const std::vector<std::string>& lines) {
  const std::string file = dir.file("digits.csv.gz");
  write_bytes(file, gzip_stored(text_bytes(join_lines(lines))));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Synthetic Fashion-MNIST IDX files.
void put_be32(Bytes& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

Bytes idx_images(std::uint32_t magic, std::uint32_t declared, std::uint32_t actual,
                 std::uint32_t side = 28) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, declared);
  put_be32(b, side);
  put_be32(b, side);
  for (std::uint32_t i = 0; i < actual * side * side; ++i) {
    b.push_back(static_cast<unsigned char>((i * 7 + i / 784) % 256));
  }
  return b;
}

Bytes idx_labels(std::uint32_t magic, const Bytes& labels) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, static_cast<std::uint32_t>(labels.size()));
  b.insert(b.end(), labels.begin(), labels.end());
  return b;
}

// A complete, valid directory: 3 training and 2 test samples.
void write_fashion(const TempDir& dir) {
  write_bytes(dir.file("train-images-idx3-ubyte.gz"), gzip_stored(idx_images(2051, 3, 3)));
  write_bytes(dir.file("train-labels-idx1-ubyte.gz"), gzip_stored(idx_labels(2049, {9, 0, 4})));
  write_bytes(dir.file("t10k-images-idx3-ubyte.gz"), gzip_stored(idx_images(2051, 2, 2)));
  write_bytes(dir.file("t10k-labels-idx1-ubyte.gz"), gzip_stored(idx_labels(2049, {1, 2})));
}

// Reference resampling, independent of the loader's overlap arithmetic: replicate every source
// pixel side×side times into a (28·side)² grid, in which each output pixel is exactly a 28×28
// block to average.
Matrix reference_resample(const Matrix& x28, int side) {
  Matrix out(x28.rows(), side * side);
  for (Index i = 0; i < x28.rows(); ++i) {
    for (int a = 0; a < side; ++a) {
      for (int b = 0; b < side; ++b) {
        double sum = 0.0;
        for (int u = a * 28; u < (a + 1) * 28; ++u) {
          for (int v = b * 28; v < (b + 1) * 28; ++v) {
            sum += x28(i, (u / side) * 28 + v / side);
          }
        }
        out(i, a * side + b) = sum / (28.0 * 28.0);
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("datasets: digits load with the mod4 split") {
  const DatasetSplit d = load_digits();
  CHECK(d.split == "mod4");
  CHECK(d.train.name == "digits");
  REQUIRE(d.train.size() == 1348);
  REQUIRE(d.test.size() == 449);
  CHECK(d.train.x.cols() == 64);
  CHECK(d.test.x.cols() == 64);
  CHECK(d.train.labels.size() == 1348);
  CHECK(d.test.labels.size() == 449);
  CHECK(d.train.num_classes == 10);
  for (const Dataset* s : {&d.train, &d.test}) {
    CHECK(s->x.minCoeff() == 0.0);
    CHECK(s->x.maxCoeff() == 1.0);
    CHECK(s->labels.minCoeff() == 0);
    CHECK(s->labels.maxCoeff() == 9);
  }
  // The first test sample is file row 3 (the 4th line of the CSV, a "3").
  const std::array<int, 8> row3_head = {0, 0, 7, 15, 13, 1, 0, 0};
  for (int j = 0; j < 8; ++j)
    CHECK(d.test.x(0, j) == row3_head[static_cast<std::size_t>(j)] / 16.0);
  CHECK(d.test.labels(0) == 3);
  // Train rows 0, 1, 2 are file rows 0, 1, 2 (labels 0, 1, 2); train row 3 is file row 4.
  CHECK(d.train.labels(0) == 0);
  CHECK(d.train.labels(1) == 1);
  CHECK(d.train.labels(2) == 2);
  CHECK(d.train.labels(3) == 4);
  CHECK(d.train.x(3, 4) == 11.0 / 16.0);
  // The last file row (1796) is the last training sample: "0,0,10,14,...,8".
  CHECK(d.train.x(1347, 2) == 10.0 / 16.0);
  CHECK(d.train.x(1347, 3) == 14.0 / 16.0);
  CHECK(d.train.labels(1347) == 8);
}

TEST_CASE("datasets: load_dataset by name, with sample limits") {
  const DatasetSplit d = load_dataset("digits", {.max_train = 100, .max_test = 20});
  CHECK(d.train.size() == 100);
  CHECK(d.test.size() == 20);
  CHECK(d.test.labels(0) == 3);

  const std::string unknown = error_of([] { load_dataset("mnist"); });
  CHECK(contains(unknown, "mnist"));
  CHECK(contains(unknown, "digits"));
  CHECK(contains(unknown, "fashion-mnist"));

  CHECK(contains(error_of([] { load_dataset("digits", {.image_side = 4}); }), "image_side"));
  CHECK(contains(error_of([] { load_dataset("digits", {.max_train = -1}); }), "max_train"));
}

TEST_CASE("datasets: fashion-mnist full official split") {
  const DatasetSplit d = load_fashion_mnist();
  CHECK(d.split == "official");
  CHECK(d.train.name == "fashion-mnist");
  REQUIRE(d.train.size() == 60000);
  REQUIRE(d.test.size() == 10000);
  CHECK(d.train.x.cols() == 784);
  CHECK(d.test.x.cols() == 784);
  CHECK(d.train.num_classes == 10);
  for (const Dataset* s : {&d.train, &d.test}) {
    CHECK(s->x.minCoeff() == 0.0);
    CHECK(s->x.maxCoeff() == 1.0);
    // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
    std::array<int, 10> counts{};
    for (Index i = 0; i < s->size(); ++i) {
      REQUIRE(s->labels(i) >= 0);
      REQUIRE(s->labels(i) < 10);
      ++counts[static_cast<std::size_t>(s->labels(i))];
    }
    for (int c : counts) CHECK(c == s->size() / 10);
  }
  // First labels of the files (train: ankle boot, t-shirt, t-shirt, dress; t10k: ankle boot).
  CHECK(d.train.labels(0) == 9);
  CHECK(d.train.labels(1) == 0);
  CHECK(d.train.labels(3) == 3);
  CHECK(d.test.labels(0) == 9);
  // Mean pixel intensity of the training set is about 0.286 (a well-known normalisation value).
  CHECK(d.train.x.mean() == doctest::Approx(0.2860).epsilon(0.001));
}

TEST_CASE("datasets: fashion-mnist image_side resamples by exact area averages") {
  const DatasetSplit full = load_fashion_mnist({.max_train = 50, .max_test = 7});
  REQUIRE(full.train.size() == 50);
  REQUIRE(full.test.size() == 7);
  for (int side : {8, 14, 5, 1}) {
    CAPTURE(side);
    const DatasetSplit small =
        load_fashion_mnist({.image_side = side, .max_train = 50, .max_test = 7});
    REQUIRE(small.train.x.rows() == 50);
    REQUIRE(small.train.x.cols() == side * side);
    REQUIRE(small.test.x.rows() == 7);
    CHECK(small.train.labels == full.train.labels);
    CHECK(small.test.labels == full.test.labels);
    CHECK(small.train.x.minCoeff() >= 0.0);
    CHECK(small.train.x.maxCoeff() <= 1.0);
    // Area averaging preserves every image's mean intensity.
    for (Index i = 0; i < 50; ++i) {
      CHECK(small.train.x.row(i).mean() ==
            doctest::Approx(full.train.x.row(i).mean()).epsilon(1e-12));
    }
    const Matrix expected = reference_resample(full.train.x, side);
    CHECK((small.train.x - expected).cwiseAbs().maxCoeff() < 1e-12);
    const Matrix expected_test = reference_resample(full.test.x, side);
    CHECK((small.test.x - expected_test).cwiseAbs().maxCoeff() < 1e-12);
  }
  // 14: plain 2×2 block means.
  const DatasetSplit half = load_fashion_mnist({.image_side = 14, .max_train = 1, .max_test = 1});
  const Matrix& x = full.train.x;
  CHECK(half.train.x(0, 5 * 14 + 6) == doctest::Approx((x(0, 10 * 28 + 12) + x(0, 10 * 28 + 13) +
                                                        x(0, 11 * 28 + 12) + x(0, 11 * 28 + 13)) /
                                                       4.0));
  // 8: ratio 3.5, output (0, 0) = source rows/cols 0..2 fully and row/col 3 half.
  const DatasetSplit eighth = load_fashion_mnist({.image_side = 8, .max_train = 1, .max_test = 1});
  double sum = 0.0;
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c)
      sum += (r == 3 ? 0.5 : 1.0) * (c == 3 ? 0.5 : 1.0) * x(0, r * 28 + c);
  }
  CHECK(eighth.train.x(0, 0) == doctest::Approx(sum / 12.25));
  // A full load at side 8 gives 64 features with the same overall mean as side 28.
  const DatasetSplit all8 = load_fashion_mnist({.image_side = 8});
  CHECK(all8.train.size() == 60000);
  CHECK(all8.test.size() == 10000);
  CHECK(all8.train.x.cols() == 64);
  CHECK(all8.train.x.mean() == doctest::Approx(0.2860).epsilon(0.001));
}

TEST_CASE("datasets: fashion-mnist options are validated") {
  for (int side : {0, -3, 29, 56}) {
    CAPTURE(side);
    const std::string msg = error_of([side] { load_fashion_mnist({.image_side = side}); });
    CHECK(contains(msg, "image_side"));
    CHECK(contains(msg, "1..28"));
  }
  CHECK(contains(error_of([] { load_fashion_mnist({.max_test = -5}); }), "max_test"));
}

TEST_CASE("datasets: missing files name the package to install") {
  const TempDir dir;
  const std::string digits = dir.file("nothing.csv.gz");
  const std::string msg = error_of([&] { load_digits(digits); });
  CHECK(contains(msg, digits));
  CHECK(contains(msg, "not found"));
  CHECK(contains(msg, "apt-get install python3-sklearn"));

  const std::string missing_dir = dir.file("no-such-dir");
  const std::string fmsg = error_of([&] { load_fashion_mnist({}, missing_dir); });
  CHECK(contains(fmsg, missing_dir));
  CHECK(contains(fmsg, "train-images-idx3-ubyte.gz"));
  CHECK(contains(fmsg, "apt-get install dataset-fashion-mnist"));

  // A directory where the file should be is not a data file either.
  fs::create_directories(dir.file("a-directory.csv.gz"));
  CHECK(contains(error_of([&] { load_digits(dir.file("a-directory.csv.gz")); }),
                 "not a regular file"));
}

TEST_CASE("datasets: truncated or non-gzip files are reported") {
  const TempDir dir;
  const Bytes real = read_bytes(kDigitsPath);
  REQUIRE(real.size() > 1000);
  // Cut in the deflate data, in the 8-byte trailer, and right after the gzip header.
  for (std::size_t keep : {real.size() / 2, real.size() - 3, std::size_t{12}}) {
    CAPTURE(keep);
    const std::string file = dir.file("cut.csv.gz");
    write_bytes(file, Bytes(real.begin(), real.begin() + static_cast<std::ptrdiff_t>(keep)));
    const std::string msg = error_of([&] { load_digits(file); });
    CHECK(contains(msg, file));
    CHECK(contains(msg, "truncated"));
    CHECK(contains(msg, "python3-sklearn"));
  }

  const std::string plain = dir.file("plain.csv.gz");
  write_bytes(plain, text_bytes(join_lines(digits_lines())));
  CHECK(contains(error_of([&] { load_digits(plain); }), "not a gzip file"));

  const std::string empty = dir.file("empty.csv.gz");
  write_bytes(empty, {});
  CHECK(contains(error_of([&] { load_digits(empty); }), "empty"));

  // A flipped byte inside the compressed data: zlib's CRC or block checks catch it.
  Bytes flipped = real;
  flipped[flipped.size() / 2] ^= 0x55;
  const std::string corrupt = dir.file("corrupt.csv.gz");
  write_bytes(corrupt, flipped);
  CHECK(!error_of([&] { load_digits(corrupt); }).empty());

  // Garbage after the gzip member.
  Bytes trailing = gzip_stored(text_bytes(join_lines(digits_lines())));
  trailing.push_back('x');
  trailing.push_back('y');
  const std::string garbage = dir.file("garbage.csv.gz");
  write_bytes(garbage, trailing);
  CHECK(contains(error_of([&] { load_digits(garbage); }), "garbage"));
}

TEST_CASE("datasets: digits CSV problems are reported with the line") {
  const TempDir dir;
  {
    // The synthetic file itself is valid: the checks below fail only for the planted problem.
    const DatasetSplit d = load_digits(write_digits(dir, digits_lines()));
    CHECK(d.train.size() == 1348);
    CHECK(d.test.x(0, 1) == 4.0 / 16.0);  // file row 3, pixel 1: (3 + 1) % 17
    CHECK(d.test.labels(0) == 3);
  }
  {
    // Decimal text ("4.0") and CRLF line ends are accepted.
    auto lines = digits_lines();
    for (auto& line : lines) line += "\r";
    lines[3] = "0.0,4.0" + lines[3].substr(lines[3].find(',', 2));
    const DatasetSplit d = load_digits(write_digits(dir, lines));
    CHECK(d.test.x(0, 1) == 4.0 / 16.0);
  }
  struct Case {
    std::string what;
    int line;  // 0-based
    std::string text;
    std::vector<std::string> expected;
  };
  auto line_with = [](int column, const std::string& value) {
    std::string line;
    for (int j = 0; j < 65; ++j) line += (j ? "," : "") + (j == column ? value : std::string("1"));
    return line;
  };
  const std::vector<Case> cases = {
      {"bad number", 4, line_with(7, "x7"), {"line 5", "column 8", "'x7' is not a number"}},
      {"empty field", 4, line_with(7, ""), {"line 5", "not a number"}},
      {"label out of range", 9, line_with(64, "10"), {"line 10", "label 10"}},
      {"negative label", 9, line_with(64, "-1"), {"line 10", "label -1"}},
      {"fractional label", 9, line_with(64, "2.5"), {"line 10", "label 2.5"}},
      {"pixel out of range", 0, line_with(3, "17"), {"line 1", "pixel value 17", "0..16"}},
      {"too few fields", 2, "1,2,3", {"line 3", "expected 65", "found 3"}},
      {"too many fields", 2, line_with(0, "1") + ",5", {"line 3", "more than 65"}},
      {"nan", 2, line_with(1, "nan"), {"line 3", "not a number"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto lines = digits_lines();
    lines[static_cast<std::size_t>(c.line)] = c.text;
    const std::string file = write_digits(dir, lines);
    const std::string msg = error_of([&] { load_digits(file); });
    CAPTURE(msg);
    CHECK(contains(msg, file));
    CHECK(contains(msg, "reinstall the Debian package python3-sklearn"));
    for (const auto& key : c.expected) CHECK(contains(msg, key));
  }
  {
    auto lines = digits_lines();
    lines.resize(10);
    const std::string msg = error_of([&] { load_digits(write_digits(dir, lines)); });
    CHECK(contains(msg, "found 10 rows, expected 1797"));
  }
  {
    auto lines = digits_lines();
    lines.push_back(lines.back());
    CHECK(contains(error_of([&] { load_digits(write_digits(dir, lines)); }), "more than"));
  }
}

TEST_CASE("datasets: fashion-mnist synthetic files load exactly") {
  const TempDir dir;
  write_fashion(dir);
  const DatasetSplit d = load_fashion_mnist({}, dir.path().string());
  REQUIRE(d.train.size() == 3);
  REQUIRE(d.test.size() == 2);
  const Bytes raw = idx_images(2051, 3, 3);
  for (Index i = 0; i < 3; ++i) {
    for (Index j = 0; j < 784; ++j) {
      REQUIRE(d.train.x(i, j) == raw[16 + static_cast<std::size_t>(i * 784 + j)] / 255.0);
    }
  }
  CHECK(d.train.labels(0) == 9);
  CHECK(d.train.labels(2) == 4);
  CHECK(d.test.labels(1) == 2);
  const DatasetSplit limited =
      load_fashion_mnist({.max_train = 2, .max_test = 100}, dir.path().string());
  CHECK(limited.train.size() == 2);
  CHECK(limited.test.size() == 2);
}

TEST_CASE("datasets: corrupt fashion-mnist files are reported") {
  struct Case {
    std::string what;
    const char* file;
    Bytes content;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"corrupt image magic",
       "train-images-idx3-ubyte.gz",
       gzip_stored(idx_images(2050, 3, 3)),
       {"magic number 2050", "2051"}},
      {"label file in place of images",
       "train-images-idx3-ubyte.gz",
       gzip_stored(idx_labels(2049, {1, 2, 3})),
       {"magic number 2049", "label file"}},
      {"corrupt label magic",
       "t10k-labels-idx1-ubyte.gz",
       gzip_stored(idx_labels(2048, {1, 2})),
       {"magic number 2048", "2049"}},
      {"label out of range",
       "train-labels-idx1-ubyte.gz",
       gzip_stored(idx_labels(2049, {1, 10, 3})),
       {"label 10", "sample 1"}},
      {"count mismatch",
       "t10k-labels-idx1-ubyte.gz",
       gzip_stored(idx_labels(2049, {1, 2, 3})),
       {"2 images", "3 labels", "mismatch"}},
      {"truncated pixels",
       "train-images-idx3-ubyte.gz",
       gzip_stored(idx_images(2051, 3, 2)),
       {"truncated", "3 images"}},
      {"huge declared count",
       "train-images-idx3-ubyte.gz",
       gzip_stored(idx_images(2051, 0xffffffffu, 1)),
       {"truncated", "4294967295 images"}},
      {"extra pixels",
       "train-images-idx3-ubyte.gz",
       gzip_stored(idx_images(2051, 2, 3)),
       {"unexpected bytes"}},
      {"wrong image size",
       "train-images-idx3-ubyte.gz",
       gzip_stored(idx_images(2051, 3, 3, 27)),
       {"27x27"}},
      {"short header", "t10k-images-idx3-ubyte.gz", gzip_stored({0, 0, 8}), {"too short"}},
      {"truncated gzip",
       "t10k-labels-idx1-ubyte.gz",
       [] {
         Bytes b = gzip_stored(idx_labels(2049, {1, 2}));
         b.erase(b.end() - 5, b.end());  // resize() trips a GCC 12 false -Wstringop-overflow
         return b;
       }(),
       {"truncated gzip"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const TempDir dir;
    write_fashion(dir);
    write_bytes(dir.file(c.file), c.content);
    const std::string msg = error_of([&] { load_fashion_mnist({}, dir.path().string()); });
    CAPTURE(msg);
    CHECK(contains(msg, dir.file(c.file)));
    CHECK(contains(msg, "dataset-fashion-mnist"));
    for (const auto& key : c.expected) CHECK(contains(msg, key));
  }
}

TEST_CASE("yin-yang: generated from the seed, balanced, features (x, y, 1-x, 1-y) in the disc") {
  const DatasetSplit a = make_yin_yang(3000, 300, 7);
  const DatasetSplit b = make_yin_yang(3000, 300, 7);
  CHECK(a.train.x == b.train.x);
  CHECK(a.train.labels == b.train.labels);
  CHECK(a.train.x != make_yin_yang(3000, 300, 8).train.x);
  CHECK(a.train.x.topRows(300) != a.test.x);  // test is its own stream
  REQUIRE(a.train.x.cols() == 4);
  CHECK(a.train.num_classes == 3);
  int count[3] = {0, 0, 0};
  for (Index i = 0; i < a.train.size(); ++i) {
    const double x = a.train.x(i, 0), y = a.train.x(i, 1);
    CHECK(std::abs(a.train.x(i, 2) - (1 - x)) < 1e-15);
    CHECK(std::abs(a.train.x(i, 3) - (1 - y)) < 1e-15);
    CHECK(std::hypot(x - 0.5, y - 0.5) <= 0.5);
    const double d_left = std::hypot(x - 0.25, y - 0.5), d_right = std::hypot(x - 0.75, y - 0.5);
    if (d_left < 0.1 || d_right < 0.1) CHECK(a.train.labels[i] == 2);
    // Upper half far from the right dot's disc is yin (1); lower half near the left dot's disc
    // (but outside its dot) is yin too; far from both on the lower half is yang (0).
    if (y > 0.5 && d_right > 0.25 && d_left >= 0.1) CHECK(a.train.labels[i] == 1);
    if (y < 0.5 && d_left > 0.25 && d_right > 0.1) CHECK(a.train.labels[i] == 0);
    ++count[a.train.labels[i]];
  }
  for (int c : count) CHECK(std::abs(c - 1000) < 100);
  const DatasetSplit named = load_dataset("yin-yang", {.max_train = 100, .max_test = 50});
  CHECK(named.train.size() == 100);
  CHECK(named.test.size() == 50);
  CHECK(named.train.x == make_yin_yang().train.x.topRows(100));
  CHECK(contains(error_of([] { load_dataset("yin-yung"); }), "yin-yang"));
  CHECK(contains(error_of([] { make_yin_yang(0, 10); }), "1..1e7"));
}

TEST_CASE("digits-8x4: the digits with each pair of columns averaged, for 32 event channels") {
  const DatasetSplit full = load_digits();
  const DatasetSplit pooled = load_dataset("digits-8x4", {.max_test = 10});
  CHECK(pooled.train.size() == full.train.size());
  CHECK(pooled.test.size() == 10);
  REQUIRE(pooled.train.x.cols() == 32);
  CHECK(pooled.train.labels == full.train.labels);
  // Row 2, column pair 3 (pixels 2·8 + 6 and 2·8 + 7) is feature 2·4 + 3.
  CHECK(pooled.train.x(5, 11) == doctest::Approx(0.5 * (full.train.x(5, 22) + full.train.x(5, 23))));
  CHECK(pooled.train.x.minCoeff() >= 0.0);
  CHECK(pooled.train.x.maxCoeff() <= 1.0);
  CHECK(contains(error_of([] { load_dataset("digits-8x4", {.image_side = 4}); }), "does not apply"));
}

}  // namespace pnn::training

#pragma once
// The pieces of the data set loaders (private to training/src): file reading and gunzip with
// messages that name the file and the fix (datasets_files.cpp), the IDX format of Fashion-MNIST
// (datasets_idx.cpp) and its resampling (datasets_resample.cpp). The digits CSV is read in
// datasets_digits.cpp, names are mapped to loaders in datasets.cpp.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pnn/training/datasets.hpp"

namespace pnn::training::detail {

// What to tell the user, per package: how to get a missing file, how to repair a corrupt one.
struct PackageHint {
  const char* install;
  const char* reinstall;
};

inline constexpr PackageHint kSklearnHint{
    "install the Debian package python3-sklearn: apt-get install python3-sklearn",
    "reinstall the Debian package python3-sklearn: apt-get install --reinstall python3-sklearn"};
inline constexpr PackageHint kFashionHint{
    "install the Debian package dataset-fashion-mnist: apt-get install dataset-fashion-mnist",
    "reinstall the Debian package dataset-fashion-mnist: apt-get install --reinstall "
    "dataset-fashion-mnist"};

inline constexpr int kNumClasses = 10;

/// Throws DatasetError "<file>: <what>. Fix: <fix>".
[[noreturn]] void fail(const std::string& file, const std::string& what, const char* fix);

/// The whole file; a missing, unreadable or implausibly large file fails naming `hint`.
std::vector<unsigned char> read_file(const std::string& file, const PackageHint& hint);
/// The decompressed content of a gzip file (one or more members), bounded in size.
std::vector<unsigned char> read_gzip(const std::string& file, const PackageHint& hint);

/// A data set of `rows` samples of `features` values (not yet filled), with kNumClasses classes.
Dataset make_dataset(const std::string& name, Index rows, Index features);

// --- Fashion-MNIST (IDX) ------------------------------------------------------------------------

inline constexpr std::uint32_t kIdxImagesMagic = 2051;
inline constexpr std::uint32_t kIdxLabelsMagic = 2049;
inline constexpr int kFashionSide = 28;
inline constexpr std::size_t kFashionPixels = kFashionSide * kFashionSide;

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

/// The images of a gzipped IDX image file, checked: magic, 28x28, size matching the count.
IdxImages read_idx_images(const std::string& file);
/// The labels of a gzipped IDX label file, checked: magic, size, every label a class.
IdxLabels read_idx_labels(const std::string& file);

/// Fills `d` with the first d.size() images, scaled to [0, 1] and resampled to side × side.
void convert_images(const IdxImages& images, const IdxLabels& labels, int side, Dataset& d);

}  // namespace pnn::training::detail

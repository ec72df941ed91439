// The IDX format of Fashion-MNIST (big-endian header: magic, count, rows, cols; then one byte
// per pixel or label), checked field by field against the Fashion-MNIST files.
#include <string>

#include "datasets_detail.hpp"
#include "pnn/common/bytes.hpp"

namespace pnn::training::detail {
namespace {

std::uint32_t read_be32(const std::vector<unsigned char>& b, std::size_t offset) {
  return common::load_be<std::uint32_t>(b.data() + offset);
}

}  // namespace

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

}  // namespace pnn::training::detail

// The data set registry: names to loaders, and the options every loader shares.
#include "pnn/training/datasets.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>

#include "datasets_detail.hpp"

namespace pnn::training {
namespace {

namespace fs = std::filesystem;

using detail::fail;
using detail::IdxImages;
using detail::IdxLabels;
using detail::kFashionHint;
using detail::kFashionSide;

Dataset load_fashion_part(const fs::path& dir, const std::string& prefix, Index max_samples,
                          int side) {
  const std::string images_file = (dir / (prefix + "-images-idx3-ubyte.gz")).string();
  const std::string labels_file = (dir / (prefix + "-labels-idx1-ubyte.gz")).string();
  const IdxImages images = detail::read_idx_images(images_file);
  const IdxLabels labels = detail::read_idx_labels(labels_file);
  if (images.count != labels.count) {
    fail(images_file,
         "holds " + std::to_string(images.count) + " images but " + labels_file + " holds " +
             std::to_string(labels.count) + " labels (image/label count mismatch)",
         kFashionHint.reinstall);
  }
  Index n = static_cast<Index>(images.count);
  if (max_samples > 0) n = std::min(n, max_samples);
  Dataset d = detail::make_dataset("fashion-mnist", n, static_cast<Index>(side) * side);
  detail::convert_images(images, labels, side, d);
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

namespace {

// A data set that is not resampled: image_side must be left at a default (28, that of
// FashionMnistOptions, or 8, that of a job's data section); `why` says what the data are.
DatasetSplit fixed_size(const std::string& name, const FashionMnistOptions& options,
                        const std::string& why, DatasetSplit split) {
  if (options.image_side != kFashionSide && options.image_side != 8) {
    throw DatasetError("dataset '" + name + "': image_side = " + std::to_string(options.image_side) +
                       " does not apply (" + why + "); leave image_side at its default");
  }
  check_limits(options);
  split.train = head(std::move(split.train), options.max_train);
  split.test = head(std::move(split.test), options.max_test);
  return split;
}

// Each pair of adjacent columns averaged: 8 rows × 4 columns, 32 features (the spiking chip's 32
// event channels).
DatasetSplit pool_digits_8x4(DatasetSplit split) {
  for (Dataset* d : {&split.train, &split.test}) {
    Matrix pooled(d->x.rows(), 32);
    for (Index r = 0; r < 8; ++r) {
      for (Index c = 0; c < 4; ++c) {
        pooled.col(r * 4 + c) = 0.5 * (d->x.col(r * 8 + 2 * c) + d->x.col(r * 8 + 2 * c + 1));
      }
    }
    d->x = std::move(pooled);
    d->name = "digits-8x4";
  }
  return split;
}

}  // namespace

DatasetSplit load_dataset(const std::string& name, const FashionMnistOptions& options) {
  if (name == "digits") {
    return fixed_size(name, options, "digits are 8x8 and never resampled", load_digits());
  }
  if (name == "digits-8x4") {
    return fixed_size(name, options, "the digits pooled to 8 rows × 4 columns",
                      pool_digits_8x4(load_digits()));
  }
  if (name == "fashion-mnist") {
    return load_fashion_mnist(options);
  }
  if (name == "yin-yang") {
    return fixed_size(name, options, "4 coordinates, not an image", make_yin_yang());
  }
  throw DatasetError("unknown dataset '" + name +
                     "'; valid names: digits, digits-8x4, fashion-mnist, yin-yang");
}

}  // namespace pnn::training

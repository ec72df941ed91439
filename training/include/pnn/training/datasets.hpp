#pragma once
/// Offline classification data sets read from Debian packages (PHYSICS.md "Data sets").
///
/// Every loader returns a fixed, documented train/test split with inputs scaled to [0, 1], one
/// sample per row. Loading is deterministic: the same file gives the same matrices, in file order.
///
/// Errors: every problem with a data file (missing, unreadable, not gzip, truncated, wrong magic
/// number, wrong size, unparsable number, label out of range, image/label count mismatch) throws
/// `DatasetError` whose message names the file, says what is wrong and how to fix it (usually
/// which Debian package to install or reinstall). Loaders never read out of bounds; sizes come
/// from the data actually decompressed, never from a header alone, and every buffer is capped at
/// 512 MiB per file, so a corrupt file cannot trigger a huge allocation.
///
/// Thread rule: the loaders are reentrant; concurrent calls share nothing.
#include <Eigen/Core>
#include <stdexcept>
#include <string>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::training {

/// One labelled set of samples.
struct Dataset {
  std::string name;        ///< "digits" or "fashion-mnist"
  Matrix x;                ///< size() × features, every entry in [0, 1]
  Eigen::VectorXi labels;  ///< size() entries, each in [0, num_classes)
  int num_classes = 0;

  /// Number of samples (rows of `x`).
  Index size() const { return x.rows(); }
};

/// A train/test split; `split` names how it was made ("mod4", "official").
struct DatasetSplit {
  Dataset train;
  Dataset test;
  std::string split;
};

/// A data file is missing or corrupt, or a loader option is invalid. The message names the file
/// (or option), the problem and the fix.
class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// scikit-learn's 8×8 digits, from the Debian package python3-sklearn.
inline constexpr const char* kDigitsPath =
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
/// Fashion-MNIST, from the Debian package dataset-fashion-mnist.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// Loads the digits from `path`: a gzip-compressed CSV without header of exactly 1797 rows, each
/// 64 pixel values in 0..16 then the label 0..9 (integers; "3.0"-style decimals are accepted).
/// Pixels are scaled by 1/16 (64 features in [0, 1]), 10 classes.
/// Split "mod4": sample i (0-based file row) goes to test iff i % 4 == 3, so train has 1348
/// samples (rows 0, 1, 2, 4, …) and test 449 (rows 3, 7, …), each in file order.
/// Throws DatasetError.
DatasetSplit load_digits(const std::string& path = kDigitsPath);

/// Options for Fashion-MNIST (and, in `load_dataset`, the sample limits for every data set).
struct FashionMnistOptions {
  /// Images are area-averaged from 28×28 to image_side×image_side (exact area weights, also for
  /// non-integer ratios such as 28/8 = 3.5), giving image_side² features in row-major pixel order.
  /// The mean intensity of each image is preserved. 28 keeps the original pixels. Must be 1..28.
  int image_side = 28;
  Index max_train = 0;  ///< keep only the first max_train training samples; 0 = all; must be ≥ 0
  Index max_test = 0;   ///< keep only the first max_test test samples; 0 = all; must be ≥ 0
};

/// Loads Fashion-MNIST from `dir`, which must hold train-images-idx3-ubyte.gz,
/// train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (gzip IDX,
/// magic 2051 for 28×28 images / 2049 for labels, big-endian; the shipped files hold 60000 and
/// 10000 samples, but any count consistent between a pair of files is accepted).
/// Pixels are scaled by 1/255 before resampling; 10 classes; split "official" (the files' own
/// train/t10k split, in file order). Throws DatasetError for bad files or options.
DatasetSplit load_fashion_mnist(const FashionMnistOptions& options = {},
                                const std::string& dir = kFashionMnistDir);

/// The Yin-Yang data set (Kriener et al. 2021), generated from `seed` (no file): points (x, y)
/// uniform in the disc of radius 0.5 centred at (0.5, 0.5), features (x, y, 1 − x, 1 − y), 3
/// classes (0 yang, 1 yin, 2 the dots), balanced by drawing the class first and then points
/// until one falls in it. Train from `seed`, test from a second stream derived from it; the same
/// seed gives the same matrices (std::mt19937_64, so not numpy's draws). Split "seeded". Throws
/// DatasetError for sizes outside 1..1e7.
DatasetSplit make_yin_yang(Index num_train = 5000, Index num_test = 1000,
                           std::uint64_t seed = 42);

/// Loads a data set by name from its default location: "digits" or "fashion-mnist", or generates
/// "yin-yang" (5,000 train / 1,000 test from seed 42, then max_train / max_test).
/// `options.max_train` / `max_test` apply to both data sets; `options.image_side` applies to
/// fashion-mnist only and must be left at 28 (or set to the native 8) for digits, which are never
/// resampled. An unknown name or a misapplied option throws DatasetError (listing the valid names).
DatasetSplit load_dataset(const std::string& name, const FashionMnistOptions& options = {});

}  // namespace pnn::training

// Fashion-MNIST images to doubles in [0, 1], at 28x28 or area-resampled to a smaller side.
#include <algorithm>
#include <vector>

#include "datasets_detail.hpp"

namespace pnn::training::detail {
namespace {

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

}  // namespace

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

}  // namespace pnn::training::detail

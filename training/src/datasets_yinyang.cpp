// The Yin-Yang data set (Kriener et al. 2021), generated procedurally from a seed.
#include <cmath>
#include <random>
#include <string>

#include "datasets_detail.hpp"
#include "pnn/training/datasets.hpp"

namespace pnn::training {
namespace {

constexpr double kRBig = 0.5;
constexpr double kRSmall = 0.1;

// The class of a point of the big disc: 0 yang, 1 yin, 2 dot (the paper's which_class).
int yin_yang_class(double x, double y) {
  const double d_right = std::hypot(x - 1.5 * kRBig, y - kRBig);
  const double d_left = std::hypot(x - 0.5 * kRBig, y - kRBig);
  if (d_right < kRSmall || d_left < kRSmall) return 2;
  const bool yin = d_right <= kRSmall || (d_left > kRSmall && d_left <= 0.5 * kRBig) ||
                   (y > kRBig && d_right > 0.5 * kRBig);
  return yin ? 1 : 0;
}

Dataset yin_yang_part(Index size, std::uint64_t seed) {
  Dataset d;
  d.name = "yin-yang";
  d.x.resize(size, 4);
  d.labels.resize(size);
  d.num_classes = 3;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> goal_class(0, 2);
  for (Index i = 0; i < size; ++i) {
    // Balanced classes: the class is drawn first, then points until one of it.
    const int goal = goal_class(rng);
    double x = 0.0, y = 0.0;
    for (;;) {
      x = unit(rng) * 2.0 * kRBig;
      y = unit(rng) * 2.0 * kRBig;
      if (std::hypot(x - kRBig, y - kRBig) > kRBig) continue;
      if (yin_yang_class(x, y) == goal) break;
    }
    d.x.row(i) << x, y, 1.0 - x, 1.0 - y;
    d.labels[i] = goal;
  }
  return d;
}

}  // namespace

DatasetSplit make_yin_yang(Index num_train, Index num_test, std::uint64_t seed) {
  if (num_train < 1 || num_test < 1 || num_train > 10'000'000 || num_test > 10'000'000) {
    throw DatasetError("yin-yang: sizes " + std::to_string(num_train) + " / " +
                       std::to_string(num_test) + " are invalid; train and test must be 1..1e7");
  }
  DatasetSplit split;
  split.split = "seeded";
  split.train = yin_yang_part(num_train, seed);
  split.test = yin_yang_part(num_test, seed ^ 0x9e3779b97f4a7c15ULL);
  return split;
}

}  // namespace pnn::training

#include "spd_reality.hpp"

#include <algorithm>
#include <cmath>

namespace pnn::drivers::sim {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Nearest code of a `bits`-bit modulator spanning [lo, hi].
Eigen::ArrayXXd quantize(const Eigen::ArrayXXd& v, double lo, double hi, int bits) {
  const double levels = std::ldexp(1.0, bits) - 1.0;
  return lo + ((v - lo) / (hi - lo) * levels).round() / levels * (hi - lo);
}

}  // namespace

SpdReality::SpdReality(const SpdRealityConfig& config) : config_(config), rng_(config.seed) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double eta = config.efficiency_mean * (1.0 + 0.05 * normal(rng_));
  efficiency_.resize(config.num_outputs);
  dark_.resize(config.num_outputs);
  for (Index i = 0; i < config.num_outputs; ++i) {
    efficiency_[i] = std::clamp(eta * (1.0 + config.efficiency_spread * normal(rng_)), 0.05, 0.99);
    // Dark counts vary a lot between pixels (hot pixels): exponential around the mean.
    dark_[i] = std::min(0.2, -config.dark_probability * std::log(1.0 - uniform(rng_)));
  }
}

Matrix SpdReality::run(const MatrixRef& x, const VectorRef& theta) {
  const Eigen::Map<const RowMajor> w_map(theta.data(), config_.num_outputs, config_.num_inputs);
  const Matrix w = quantize(w_map.array(), -1.0, 1.0, config_.modulator_bits).matrix();
  const Matrix xq = quantize(x.array(), 0.0, 1.0, config_.modulator_bits).matrix();
  const Eigen::ArrayXXd lambda = config_.photons_per_unit * (xq * w.transpose()).array().abs();
  // P(no click) = P(no dark click) · P(no detected photon).
  const Eigen::ArrayXXd no_click =
      (-(lambda.rowwise() * efficiency_.transpose().array())).exp().rowwise() *
      (1.0 - dark_.transpose().array());
  Matrix y(x.rows(), config_.num_outputs);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::lock_guard lock(mutex_);
  for (Index j = 0; j < y.cols(); ++j) {
    for (Index i = 0; i < y.rows(); ++i) y(i, j) = uniform(rng_) >= no_click(i, j) ? 1.0 : 0.0;
  }
  return y;
}

}  // namespace pnn::drivers::sim

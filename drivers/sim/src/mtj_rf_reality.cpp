#include "mtj_rf_reality.hpp"

#include <algorithm>
#include <cmath>

namespace pnn::drivers::sim {

MtjRfReality::MtjRfReality(const MtjRfRealityConfig& config) : config_(config), rng_(config.seed) {
  const auto& ds = config.datasheet;
  const Index n = ds.num_outputs, k_total = ds.num_inputs;
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  offset_.resize(n, k_total);
  width_.resize(n, k_total);
  sensitivity_.resize(n, k_total);
  for (Index i = 0; i < n; ++i) {
    for (Index k = 0; k < k_total; ++k) {
      offset_(i, k) = config.offset_mhz * normal(rng_);
      width_(i, k) = ds.linewidth_mhz * (1.0 + config.width_spread * uniform(rng_));
      sensitivity_(i, k) =
          ds.sensitivity_mv_per_uw * (1.0 + config.sensitivity_spread * uniform(rng_));
    }
  }
  zeta_bias_.resize(n);
  nonlinearity_.resize(n);
  for (Index i = 0; i < n; ++i) {
    zeta_bias_[i] = ds.zeta_bias * (1.0 + config.neuron_spread * uniform(rng_));
    nonlinearity_[i] = ds.nonlinearity * (1.0 + config.neuron_spread * uniform(rng_));
  }
}

Matrix MtjRfReality::weights(const VectorRef& theta) const {
  const auto& ds = config_.datasheet;
  const Index n = ds.num_outputs, k_total = ds.num_inputs;
  Matrix w = Matrix::Zero(n, k_total);
  for (Index j = 0; j < k_total; ++j) {
    for (Index k = 0; k < k_total; ++k) {
      const double offset = static_cast<double>(j - k) * ds.spacing_mhz;
      for (Index i = 0; i < n; ++i) {
        w(i, j) +=
            sensitivity_(i, k) * digital_twin::lorentzian_antisym(
                                     offset - theta[i * k_total + k] - offset_(i, k), width_(i, k));
      }
    }
  }
  return w;
}

Matrix MtjRfReality::run(const MatrixRef& x, const VectorRef& theta) {
  const auto& ds = config_.datasheet;
  Matrix v = x * weights(theta).transpose();
  std::lock_guard lock(mutex_);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (Index i = 0; i < v.size(); ++i) v.data()[i] += config_.rectification_noise_mv * normal(rng_);
  Matrix y(v.rows(), v.cols());
  for (Index c = 0; c < v.cols(); ++c) {
    for (Index r = 0; r < v.rows(); ++r) {
      const double z =
          std::clamp(zeta_bias_[c] + ds.zeta_per_mv * v(r, c), ds.zeta_min, ds.zeta_max);
      y(r, c) = (z - 1.0) / (z + nonlinearity_[c]) + config_.readout_noise * normal(rng_);
    }
  }
  return y;
}

}  // namespace pnn::drivers::sim

#include "oscillator_reality.hpp"

#include <cmath>

#include "fast_normal.hpp"

namespace pnn::drivers::sim {

OscillatorReality::OscillatorReality(const OscillatorRealityConfig& config)
    : config_(config), rng_(config.seed) {
  const Index n = config.num_oscillators;
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix j(n, n);
  for (Index i = 0; i < j.size(); ++i) j.data()[i] = config.gap.j_noise * normal(rng_);
  physics_ = std::make_unique<digital_twin::OscillatorModel>(digital_twin::OscillatorConfig{
      .num_oscillators = n,
      .kappa = 1.0 + config.gap.eta,
      .q_extra = digital_twin::coupling_to_q(j),
      .compute = config.compute});
}

Vector OscillatorReality::quantize(const VectorRef& theta) const {
  const double levels = std::ldexp(1.0, config_.dac_bits) - 1.0;
  const Eigen::ArrayXd span = (config_.theta_max - config_.theta_min).array();
  const Eigen::ArrayXd code = ((theta - config_.theta_min).array() / span * levels).round();
  return (config_.theta_min.array() + code / levels * span).matrix();
}

void OscillatorReality::add_noise(Matrix& m, double std) {
  std::lock_guard lock(rng_mutex_);
  add_gaussian(rng_, std, m.data(), m.size());
}

Matrix OscillatorReality::run(const MatrixRef& x, const VectorRef& theta) {
  Matrix x_noisy = x;
  add_noise(x_noisy, config_.input_noise_std);
  Matrix y = physics_->forward(x_noisy, quantize(theta));
  add_noise(y, config_.sensor_noise_std);
  return y;
}

}  // namespace pnn::drivers::sim

#include "shg_reality.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace pnn::drivers::sim {

ShgReality::ShgReality(const ShgRealityConfig& config)
    : config_(config),
      layout_(digital_twin::ShgLayout::make(
          config.datasheet.num_inputs, config.datasheet.num_params, config.datasheet.num_outputs)),
      rng_(config.seed) {
  // The datasheet σ as the twin resolves it (≤ 0 means the default width).
  const digital_twin::ShgModel datasheet(config.datasheet);
  const double sigma_ds = datasheet.config().bandwidth;
  const Index k_total = layout_.num_channels;
  const double half = 0.5 * static_cast<double>(k_total);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const ShgGap& gap = config.gap;

  gain_ = config.datasheet.gain * std::max(0.5, 1.0 + gap.gain_spread * normal(rng_));
  const double sigma = sigma_ds * std::max(0.5, 1.0 + gap.bandwidth_spread * normal(rng_));
  const double centre =
      0.5 * static_cast<double>(k_total - 1) + gap.centre_shift * (2.0 * uniform(rng_) - 1.0);
  // Ripple: a slow sinusoid (etalon-like) plus a little channel-to-channel roughness.
  const double ripple_period = half * (0.5 + 0.5 * uniform(rng_));
  const double ripple_phase = 2.0 * std::numbers::pi * uniform(rng_);
  const double sign = uniform(rng_) < 0.5 ? -1.0 : 1.0;
  const double beta = sign * gap.edge_phase_rad * (0.8 + 0.4 * uniform(rng_)) / (half * half);
  sqrt_s0_.resize(k_total);
  phase_.resize(k_total);
  for (Index k = 0; k < k_total; ++k) {
    const double d = static_cast<double>(k) - centre;
    const double ripple =
        gap.ripple *
        (0.7 * std::sin(2.0 * std::numbers::pi * static_cast<double>(k) / ripple_period +
                        ripple_phase) +
         0.3 * normal(rng_));
    sqrt_s0_[k] = std::sqrt(std::exp(-0.5 * d * d / (sigma * sigma)) * std::max(0.0, 1.0 + ripple));
    phase_[k] = beta * d * d;
  }

  const double blur = gap.crosstalk_channels * (0.8 + 0.4 * uniform(rng_));
  crosstalk_ = Matrix::Identity(k_total, k_total);
  if (blur > 0.0) {
    // Normalised like the infinite kernel, so edge channels lose the light that would have
    // leaked in from beyond the band (there is none).
    double norm = 0.0;
    for (Index l = -k_total; l <= k_total; ++l) {
      norm += std::exp(-0.5 * static_cast<double>(l * l) / (blur * blur));
    }
    for (Index i = 0; i < k_total; ++i) {
      for (Index j = 0; j < k_total; ++j) {
        const double d = static_cast<double>(i - j);
        crosstalk_(i, j) = std::exp(-0.5 * d * d / (blur * blur)) / norm;
      }
    }
  }
  drift_phase_ = 2.0 * std::numbers::pi * uniform(rng_);
}

Matrix ShgReality::quantize(const Matrix& m) const {
  const double levels = std::ldexp(1.0, config_.modulator_bits) - 1.0;
  return ((m.array().max(0.0).min(1.0) * levels).round() / levels).matrix();
}

Matrix ShgReality::run(const MatrixRef& x, const VectorRef& theta) {
  const Index b = x.rows(), k_total = layout_.num_channels;
  Matrix m(b, k_total);
  for (std::size_t i = 0; i < layout_.data_channels.size(); ++i) {
    m.col(layout_.data_channels[i]) = x.col(static_cast<Index>(i));
  }
  for (std::size_t i = 0; i < layout_.param_channels.size(); ++i) {
    m.col(layout_.param_channels[i]).setConstant(theta[static_cast<Index>(i)]);
  }
  const Matrix m_eff = quantize(m) * crosstalk_.transpose();

  std::lock_guard lock(mutex_);
  std::normal_distribution<double> normal(0.0, 1.0);
  Vector amp_scale(b);  // √(pulse energy) per sample
  for (Index r = 0; r < b; ++r) {
    amp_scale[r] = std::sqrt(std::max(0.0, 1.0 + config_.energy_jitter * normal(rng_)));
  }
  const Vector re = (sqrt_s0_.array() * phase_.array().cos()).matrix();
  const Vector im = (sqrt_s0_.array() * phase_.array().sin()).matrix();
  const Matrix ar = amp_scale.asDiagonal() * m_eff * re.asDiagonal();
  const Matrix ai = amp_scale.asDiagonal() * m_eff * im.asDiagonal();
  const Index start = layout_.window_start, size = layout_.window_size;
  // (ar + i ai) ⊛ (ar + i ai) = (ar⊛ar − ai⊛ai) + 2i (ar⊛ai).
  const Matrix b_re = digital_twin::spectral_convolution(ar, ar, start, size) -
                      digital_twin::spectral_convolution(ai, ai, start, size);
  const Matrix b_im = 2.0 * digital_twin::spectral_convolution(ar, ai, start, size);

  const double drift = 1.0 + config_.drift_amplitude *
                                 std::sin(2.0 * std::numbers::pi * static_cast<double>(calls_) /
                                              config_.drift_period_calls +
                                          drift_phase_);
  ++calls_;
  const double scale = gain_ * gain_ * drift * config_.counts_per_unit;
  Matrix counts = Matrix::Zero(b, config_.datasheet.num_outputs);
  for (Index i = 0; i < size; ++i) {
    counts.col(layout_.bin_of[static_cast<std::size_t>(i)]) +=
        scale * (b_re.col(i).cwiseAbs2() + b_im.col(i).cwiseAbs2());
  }
  for (Index i = 0; i < counts.size(); ++i) {
    const double mean = counts.data()[i];
    // Poisson photo-electrons; above 100 the normal approximation is indistinguishable.
    double n = mean <= 0.0    ? 0.0
               : mean < 100.0 ? static_cast<double>(std::poisson_distribution<long>(mean)(rng_))
                              : mean + std::sqrt(mean) * normal(rng_);
    n += config_.read_noise_counts * normal(rng_);
    counts.data()[i] = std::round(std::clamp(n, 0.0, config_.full_scale_counts));
  }
  return counts / config_.counts_per_unit;
}

}  // namespace pnn::drivers::sim

#include "plate_reality.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace pnn::drivers::sim {
namespace dt = pnn::digital_twin;

namespace {

// Rounds v to the nearest of the 2^bits codes spanning ±range (clipping outside).
double quantize(double v, int bits, double range) {
  const double codes = std::ldexp(1.0, bits) - 1.0;
  const double code = std::round((std::clamp(v, -range, range) + range) / (2.0 * range) * codes);
  return code / codes * 2.0 * range - range;
}

}  // namespace

PlateReality::PlateReality(const PlateRealityConfig& config) : config_(config) {
  if (config_.adc_samples_per_slot < 1 || config_.dac_bits < 1 || config_.adc_bits < 1 ||
      !(config_.dac_range_v > 0.0) || !(config_.adc_range_v > 0.0) ||
      !(config_.amp_saturation_v > 0.0) || !(config_.spread >= 0.0) ||
      !(config_.coil_tau_ms >= 0.0) || !(config_.mic_distance_mm >= 0.0)) {
    throw std::invalid_argument(
        "plate reality: sample rate, converter bits and ranges, amplifier saturation must be "
        "> 0; spread, coil lag and microphone distance ≥ 0");
  }
  // seed_seq spreads nearby seeds (serials differing in one character) over the whole state.
  std::seed_seq seq{static_cast<std::uint32_t>(config.seed),
                    static_cast<std::uint32_t>(config.seed >> 32)};
  rng_.seed(seq);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  auto vary = [&](double spread) { return 1.0 + config_.spread * spread * unit(rng_); };
  std::vector<dt::PlateMode> modes = dt::nominal_plate_modes();
  for (auto& m : modes) {
    // Frequency spread comes from stiffness (thickness, glue, clamping): b = force / modal mass
    // does not follow it; the geometric cubic stiffness does (α = ω² / q_nl²).
    const double f = vary(config_.freq_spread);
    m.freq_hz *= f;
    m.cubic *= f * f * vary(config_.cubic_spread);
    m.drive *= vary(config_.coupling_spread);
    m.damping *= vary(config_.damping_spread);
    m.mic *= vary(config_.coupling_spread);
  }
  // Unmodelled modes: between the modelled ones, coupled about a third as strongly.
  std::uniform_real_distribution<double> freq(200.0, 950.0), zeta(0.008, 0.02),
      deflection(0.8, 2.0), mic(0.005, 0.012);
  for (int e = 0; e < config_.extra_modes; ++e) {
    const double f_hz = freq(rng_);
    const double w = 2.0 * std::numbers::pi * f_hz * 1e-3;
    const double sign_b = unit(rng_) < 0.0 ? -1.0 : 1.0, sign_c = unit(rng_) < 0.0 ? -1.0 : 1.0;
    modes.push_back({f_hz, zeta(rng_), w * w / (dt::kPlateNonlinearUm * dt::kPlateNonlinearUm),
                     sign_b * w * w * deflection(rng_), sign_c * mic(rng_)});
  }
  const double tau_ms = config_.coil_tau_ms * vary(config_.coil_tau_spread);
  const double distance_mm =
      config_.mic_distance_mm + config_.spread * config_.mic_distance_spread_mm * unit(rng_);
  const dt::PlateConfig nominal;
  const double sample_ms = nominal.slot_ms / config_.adc_samples_per_slot;
  delay_samples_ = static_cast<Index>(
      std::lround(distance_mm / config_.sound_speed_m_per_s / sample_ms));  // mm/(m/s) = ms
  physics_ = std::make_unique<dt::PlateModel>(
      dt::PlateConfig{.num_slots = config_.num_slots,
                      .modes = std::move(modes),
                      .slot_ms = nominal.slot_ms,
                      .steps_per_slot = config_.adc_samples_per_slot,
                      .drive_tau_ms = std::max(0.0, tau_ms)});
}

Matrix PlateReality::run(const MatrixRef& x, const VectorRef& theta) {
  Matrix levels = physics_->drive_levels(x, theta);
  const double sat = config_.amp_saturation_v;
  std::normal_distribution<double> amp_noise(0.0, config_.amp_noise_v);
  for (Index i = 0; i < levels.size(); ++i) {
    const double v = quantize(levels.data()[i], config_.dac_bits, config_.dac_range_v);
    levels.data()[i] = sat * std::tanh(v / sat) + amp_noise(rng_);
  }
  const Matrix clean = physics_->microphone_signal(levels);
  // The microphone hears sample j − delay; the ADC records from the start of the drive.
  Matrix heard = Matrix::Zero(clean.rows(), clean.cols());
  const Index d = std::min(delay_samples_, clean.cols());
  heard.rightCols(clean.cols() - d) = clean.leftCols(clean.cols() - d);
  std::normal_distribution<double> mic_noise(0.0, config_.mic_noise_v);
  for (Index i = 0; i < heard.size(); ++i) {
    heard.data()[i] =
        quantize(heard.data()[i] + mic_noise(rng_), config_.adc_bits, config_.adc_range_v);
  }
  return physics_->window_means(heard);
}

}  // namespace pnn::drivers::sim

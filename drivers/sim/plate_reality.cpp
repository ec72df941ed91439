#include "plate_reality.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace pnn::drivers::sim {
namespace dt = pnn::digital_twin;

PlateReality::PlateReality(const PlateRealityConfig& config) : config_(config) {
  // seed_seq spreads nearby seeds (serials differing in one character) over the whole state.
  std::seed_seq seq{static_cast<std::uint32_t>(config.seed),
                    static_cast<std::uint32_t>(config.seed >> 32)};
  rng_.seed(seq);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  auto vary = [&](double spread) { return 1.0 + config_.spread * spread * unit(rng_); };
  std::vector<dt::PlateMode> modes = dt::nominal_plate_modes();
  for (auto& m : modes) {
    const double f = vary(config_.freq_spread);
    m.freq_hz *= f;
    m.drive *= f * f * vary(config_.coupling_spread);  // b = ω² · deflection per volt
    m.cubic *= f * f * vary(config_.cubic_spread);
    m.damping *= vary(config_.damping_spread);
    m.mic *= vary(config_.coupling_spread);
  }
  // Unmodelled modes: between the modelled ones, coupled about a third as strongly.
  std::uniform_real_distribution<double> freq(200.0, 950.0), zeta(0.008, 0.02),
      deflection(15.0, 40.0), mic(0.0008, 0.0020);
  for (int e = 0; e < config_.extra_modes; ++e) {
    const double f_hz = freq(rng_);
    const double w = 2.0 * std::numbers::pi * f_hz * 1e-3;
    const double sign_b = unit(rng_) < 0.0 ? -1.0 : 1.0, sign_c = unit(rng_) < 0.0 ? -1.0 : 1.0;
    modes.push_back({f_hz, zeta(rng_), w * w / (150.0 * 150.0), sign_b * w * w * deflection(rng_),
                     sign_c * mic(rng_)});
  }
  dt::PlateConfig physics{.num_slots = config_.num_slots, .modes = std::move(modes)};
  physics.steps_per_slot *= config_.oversample;
  physics_ = std::make_unique<dt::PlateModel>(std::move(physics));
}

Matrix PlateReality::run(const MatrixRef& x, const VectorRef& theta) {
  Matrix levels = physics_->drive_levels(x, theta);
  const double dac_levels = std::ldexp(1.0, config_.dac_bits) - 1.0;
  const double span = 2.0 * config_.dac_range_v, sat = config_.amp_saturation_v;
  std::normal_distribution<double> amp_noise(0.0, config_.amp_noise_v);
  for (Index i = 0; i < levels.size(); ++i) {
    double v = std::clamp(levels.data()[i], -config_.dac_range_v, config_.dac_range_v);
    v = std::round((v + config_.dac_range_v) / span * dac_levels) / dac_levels * span -
        config_.dac_range_v;
    levels.data()[i] = sat * std::tanh(v / sat) + amp_noise(rng_);
  }
  Matrix y = physics_->respond(levels);
  std::normal_distribution<double> mic_noise(0.0, config_.mic_noise_v);
  for (Index i = 0; i < y.size(); ++i) y.data()[i] += mic_noise(rng_);
  return y;
}

}  // namespace pnn::drivers::sim

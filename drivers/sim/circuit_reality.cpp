#include "circuit_reality.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace pnn::drivers::sim {
namespace dt = pnn::digital_twin;

namespace {

// SPICE junction temperature law: I_s(T) = I_s(T0) (T/T0)^{XTI/n} exp((E_g/(n V_T(T)))(T/T0 − 1)).
double saturation_at(double is_ref, double n, double t_ref, double t) {
  constexpr double kXti = 3.0, kEg = 1.11;
  return is_ref * std::pow(t / t_ref, kXti / n) *
         std::exp(kEg / (n * dt::thermal_voltage(t)) * (t / t_ref - 1.0));
}

}  // namespace

CircuitReality::CircuitReality(const CircuitRealityConfig& config) : config_(config) {
  // seed_seq spreads nearby seeds (serials differing in one character) over the whole state.
  std::seed_seq seq{static_cast<std::uint32_t>(config.seed), static_cast<std::uint32_t>(config.seed >> 32)};
  rng_.seed(seq);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  auto tol = [&] { return 1.0 + config_.tolerance * unit(rng_); };
  const dt::CircuitComponents nominal;
  components_ = nominal;
  components_.resistance_ohm *= tol();
  components_.inductance_h *= tol();
  components_.capacitance_f *= tol();
  components_.shunt_ohm *= tol();
  components_.saturation_a *= tol();
  components_.ideality *= tol();
  ambient_k_ = nominal.temperature_k + config_.ambient_spread_k * unit(rng_);
  drift_phase_ = std::numbers::pi * unit(rng_);
}

double CircuitReality::temperature_k() const {
  return ambient_k_ + config_.drift_amplitude_k *
                          std::sin(2.0 * std::numbers::pi * clock_s_ / config_.drift_period_s +
                                   drift_phase_);
}

double CircuitReality::quantize_dac(double v) const {
  const double levels = std::ldexp(1.0, config_.dac_bits) - 1.0;
  const double span = 2.0 * config_.dac_range_v;
  const double code = std::round((std::clamp(v, -config_.dac_range_v, config_.dac_range_v) +
                                  config_.dac_range_v) / span * levels);
  return code / levels * span - config_.dac_range_v;
}

Matrix CircuitReality::run(const MatrixRef& x, const VectorRef& theta) {
  const double temp = temperature_k();
  dt::CircuitConfig physics{.num_slots = config_.num_slots};
  physics.components = components_;
  physics.components.temperature_k = temp;
  physics.components.saturation_a =
      saturation_at(components_.saturation_a, components_.ideality,
                    components_.temperature_k, temp);
  physics.steps_per_sample *= config_.oversample;
  physics.drive_tau_s = config_.drive_tau_s;
  const dt::CircuitModel model(physics);

  Matrix levels = model.drive_levels(x, theta);
  levels = levels.unaryExpr([&](double v) { return quantize_dac(v); });
  Matrix samples = model.sample_voltages(levels);

  // ADC: noise and mains pickup at each sample's lab-clock time, then clip and quantize.
  std::normal_distribution<double> noise(0.0, config_.noise_v);
  const double w = 2.0 * std::numbers::pi * config_.mains_hz;
  const double adc_levels = std::ldexp(1.0, config_.adc_bits) - 1.0;
  const double adc_span = 2.0 * config_.adc_range_v;
  for (Index r = 0; r < samples.rows(); ++r) {
    const double t_row = clock_s_ + static_cast<double>(r) * config_.seconds_per_run;
    for (Index j = 0; j < samples.cols(); ++j) {
      const double t = t_row + static_cast<double>(j + 1) * physics.sample_period_s;
      double v = samples(r, j) + noise(rng_) + config_.mains_v * std::sin(w * t) +
                 (config_.mains_v / 3.0) * std::sin(3.0 * w * t + 0.7);
      v = std::clamp(v, -config_.adc_range_v, config_.adc_range_v);
      samples(r, j) =
          std::round((v + config_.adc_range_v) / adc_span * adc_levels) / adc_levels * adc_span -
          config_.adc_range_v;
    }
  }
  clock_s_ += static_cast<double>(x.rows()) * config_.seconds_per_run;

  return model.window_means(samples);
}

}  // namespace pnn::drivers::sim

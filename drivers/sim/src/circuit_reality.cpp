#include "circuit_reality.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

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
  std::seed_seq seq{static_cast<std::uint32_t>(config.seed),
                    static_cast<std::uint32_t>(config.seed >> 32)};
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
  return ambient_k_ +
         config_.drift_amplitude_k *
             std::sin(2.0 * std::numbers::pi * clock_s_ / config_.drift_period_s + drift_phase_);
}

double CircuitReality::adc_step_v() const {
  return 2.0 * config_.adc_range_v / (std::ldexp(1.0, config_.adc_bits) - 1.0);
}

double CircuitReality::adc_origin_v() const {
  return std::ldexp(1.0, config_.adc_bits - 1) * adc_step_v() - config_.adc_range_v;
}

Matrix CircuitReality::acquire(const MatrixRef& drive_v, double point_s, double sample_period_s) {
  if (!(std::isfinite(point_s) && point_s > 0.0 && std::isfinite(sample_period_s) &&
        sample_period_s > 0.0)) {
    throw std::invalid_argument("CircuitReality::acquire: point and sample periods must be > 0");
  }
  const double ratio = point_s / sample_period_s;
  const Index samples_per_point = static_cast<Index>(std::llround(ratio));
  if (samples_per_point < 1 ||
      std::abs(ratio - static_cast<double>(samples_per_point)) > 1e-9 * ratio) {
    throw std::invalid_argument(
        "CircuitReality::acquire: the point period must be a whole multiple of the sample period");
  }
  const Index runs = drive_v.rows(), points = drive_v.cols();
  if (points < 1) throw std::invalid_argument("CircuitReality::acquire: empty waveform");

  const double temp = temperature_k();
  // The circuit model plays slots in pairs; an odd waveform gets one 0 V point (the idle level)
  // appended whose samples are not kept.
  const Index pairs = (points + 1) / 2;
  const dt::CircuitConfig nominal;
  const double step_s =
      nominal.sample_period_s / nominal.steps_per_sample / static_cast<double>(config_.oversample);
  dt::CircuitConfig physics{.num_slots = pairs};
  physics.slot_s = point_s;
  physics.sample_period_s = sample_period_s;
  physics.steps_per_sample =
      static_cast<int>(std::max<long long>(1, std::llround(sample_period_s / step_s)));
  physics.components = components_;
  physics.components.temperature_k = temp;
  physics.components.saturation_a = saturation_at(components_.saturation_a, components_.ideality,
                                                  components_.temperature_k, temp);
  physics.drive_tau_s = config_.drive_tau_s;
  const dt::CircuitModel model(physics);

  Matrix levels = Matrix::Zero(runs, 2 * pairs);
  levels.leftCols(points) = drive_v;
  Matrix samples = model.sample_voltages(levels).leftCols(points * samples_per_point);

  // ADC: noise and mains pickup at each sample's lab-clock time, then clip and quantize.
  std::normal_distribution<double> noise(0.0, config_.noise_v);
  const double w = 2.0 * std::numbers::pi * config_.mains_hz;
  const double adc_levels = std::ldexp(1.0, config_.adc_bits) - 1.0;
  const double adc_span = 2.0 * config_.adc_range_v;
  const double code_offset = std::ldexp(1.0, config_.adc_bits - 1);
  const double step = adc_step_v(), origin = adc_origin_v();
  for (Index r = 0; r < samples.rows(); ++r) {
    const double t_row = clock_s_ + static_cast<double>(r) * config_.seconds_per_run;
    for (Index j = 0; j < samples.cols(); ++j) {
      const double t = t_row + static_cast<double>(j + 1) * sample_period_s;
      double v = samples(r, j) + noise(rng_) + config_.mains_v * std::sin(w * t) +
                 (config_.mains_v / 3.0) * std::sin(3.0 * w * t + 0.7);
      v = std::clamp(v, -config_.adc_range_v, config_.adc_range_v);
      const double code =
          std::round((v + config_.adc_range_v) / adc_span * adc_levels) - code_offset;
      samples(r, j) = code * step + origin;
    }
  }
  clock_s_ += static_cast<double>(runs) * config_.seconds_per_run;
  return samples;
}

}  // namespace pnn::drivers::sim

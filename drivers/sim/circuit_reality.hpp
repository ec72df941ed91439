#pragma once
/// Reality simulator of the nonlinear RLC-junction circuit (PHYSICS.md "Electronic"): what the
/// simulated instrument's firmware computes. Private to drivers.
///
/// Differs from the nominal twin (`digital_twin::CircuitModel` with datasheet values) by:
/// - component tolerances: R, L, C, R_p, I_s and n each off by a factor 1 ± `tolerance` (uniform,
///   drawn once from the device seed);
/// - junction temperature: ambient offset per seed plus a slow drift of the lab temperature with
///   time (each run takes `seconds_per_run` on the lab clock); V_T and I_s follow the temperature
///   (SPICE law, XTI = 3, E_g = 1.11 eV: I_s grows ≈ 8 % per kelvin);
/// - the drive amplifier's bandwidth: V_in follows each DAC level with a first-order lag
///   (τ = 0.8 µs, not in the twin: the largest single source of the gap at 1 µs slots);
/// - a finer integration step (the twin's discretisation is itself a model error);
/// - 16-bit DAC quantisation of every drive level over ±10 V;
/// - ADC: 1 mV rms white noise per sample, 50 Hz mains pickup (plus its third harmonic) with the
///   phase of the lab clock, 14-bit quantisation and clipping over ±5 V;
/// then the data-slot windows are averaged exactly as the twin does.
#include <cstdint>
#include <mutex>
#include <random>

#include "pnn/digital_twin/circuit.hpp"

namespace pnn::drivers::sim {

struct CircuitRealityConfig {
  Index num_slots = 32;
  std::uint64_t seed = 0;          ///< from the device serial: fixes the components
  double tolerance = 0.05;         ///< relative component tolerance (uniform ±)
  double ambient_spread_k = 1.5;   ///< per-seed ambient offset, uniform ± (kelvin)
  double drift_amplitude_k = 2.0;  ///< slow lab-temperature swing (kelvin)
  double drift_period_s = 600.0;
  double seconds_per_run = 1e-3;   ///< lab-clock time of one run (run + discharge dead time)
  int oversample = 2;              ///< integration steps per twin step
  /// Drive amplifier: first-order lag between DAC level and V_in (a 1 MHz-GBW power op-amp at
  /// gain 5, the ±2 V DAC to ±10 V: 200 kHz). The twin assumes ideal steps.
  double drive_tau_s = 0.8e-6;
  double noise_v = 1e-3;           ///< ADC input noise per sample, rms
  double mains_v = 4e-3;           ///< 50 Hz pickup amplitude at the ADC input
  double mains_hz = 50.0;
  int dac_bits = 16;
  double dac_range_v = 10.0;       ///< DAC output range ±
  int adc_bits = 14;
  double adc_range_v = 5.0;        ///< ADC input range ±
};

class CircuitReality {
 public:
  explicit CircuitReality(const CircuitRealityConfig& config);
  /// Window means of the measured data-slot samples, batch × K volts. Not thread-safe: the
  /// driver serializes calls. Advances the lab clock by batch × seconds_per_run.
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// The true components at the nominal temperature (for tests and `describe`).
  const digital_twin::CircuitComponents& components() const { return components_; }
  /// Junction temperature the next run will see.
  double temperature_k() const;
  double clock_s() const { return clock_s_; }

 private:
  double quantize_dac(double v) const;

  CircuitRealityConfig config_;
  digital_twin::CircuitComponents components_;  // true values at the reference temperature
  double ambient_k_ = 0.0;
  double drift_phase_ = 0.0;
  double clock_s_ = 0.0;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

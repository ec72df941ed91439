#pragma once
/// Reality simulator of the nonlinear RLC-junction circuit (PHYSICS.md "Electronic"): what the
/// simulated instrument's firmware computes. Private to drivers_sim.
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
/// - ADC: 1 mV rms white noise per sample, 50 Hz mains pickup (plus its third harmonic) with the
///   phase of the lab clock, 14-bit quantisation and clipping over ±5 V.
/// The drive is a waveform, as an arbitrary-waveform generator plays it: the reality does not
/// know about data and parameter slots (the driver lays them out; the simulated instrument turns
/// DAC codes into volts, with the AWG's 16-bit quantisation). The window averaging is the
/// driver's too: `acquire` returns every ADC sample, as a digitizer does.
#include <cstdint>
#include <random>

#include "pnn/digital_twin/circuit.hpp"

namespace pnn::drivers::sim {

struct CircuitRealityConfig {
  std::uint64_t seed = 0;          ///< from the device serial: fixes the components
  double tolerance = 0.05;         ///< relative component tolerance (uniform ±)
  double ambient_spread_k = 1.5;   ///< per-seed ambient offset, uniform ± (kelvin)
  double drift_amplitude_k = 2.0;  ///< slow lab-temperature swing (kelvin)
  double drift_period_s = 600.0;
  double seconds_per_run = 1e-3;  ///< lab-clock time of one run (run + discharge dead time)
  int oversample = 2;             ///< integration steps per twin step (the twin: 50 ns)
  /// Drive amplifier: first-order lag between DAC level and V_in (a 1 MHz-GBW power op-amp at
  /// gain 5, the ±2 V DAC to ±10 V: 200 kHz). The twin assumes ideal steps.
  double drive_tau_s = 0.8e-6;
  double noise_v = 1e-3;  ///< ADC input noise per sample, rms
  double mains_v = 4e-3;  ///< 50 Hz pickup amplitude at the ADC input
  double mains_hz = 50.0;
  int adc_bits = 14;
  double adc_range_v = 5.0;  ///< ADC input range ±
};

class CircuitReality {
 public:
  explicit CircuitReality(const CircuitRealityConfig& config);

  /// Plays one run per row of `drive_v` (runs × points, volts at the drive amplifier's input,
  /// each point held for `point_s`) into the circuit, each run starting discharged (the
  /// instruments re-arm between runs, at 0 V, for `seconds_per_run` of lab time), and digitizes
  /// the capacitor voltage every `sample_period_s`: returns runs × (points · point_s /
  /// sample_period_s) ADC readings in volts (noise, pickup, clipping and quantisation applied).
  /// Advances the lab clock by runs × seconds_per_run. Not thread-safe (the instrument
  /// serializes calls). Throws std::invalid_argument unless point_s is a whole multiple of
  /// sample_period_s, both positive, and drive_v has at least one column.
  Matrix acquire(const MatrixRef& drive_v, double point_s, double sample_period_s);
  /// The true components at the nominal temperature (for tests and `describe`).
  const digital_twin::CircuitComponents& components() const { return components_; }
  /// Junction temperature the next run will see.
  double temperature_k() const;
  double clock_s() const { return clock_s_; }
  /// ADC readings are `code · adc_step_v() + adc_origin_v()` for integer codes in
  /// [−2^(bits−1), 2^(bits−1) − 1] (14 bits: −8192 … 8191).
  double adc_step_v() const;
  double adc_origin_v() const;
  const CircuitRealityConfig& config() const { return config_; }

 private:
  CircuitRealityConfig config_;
  digital_twin::CircuitComponents components_;  // true values at the reference temperature
  double ambient_k_ = 0.0;
  double drift_phase_ = 0.0;
  double clock_s_ = 0.0;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

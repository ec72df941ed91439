#pragma once
/// Reality simulator of the speaker-driven plate (PHYSICS.md "Mechanical", second setup;
/// docs/setups/mechanical-plate.md): what the simulated instrument's firmware computes. Private
/// to drivers_sim.
///
/// Differs from the nominal twin (`digital_twin::PlateModel` with `nominal_plate_modes()`) by,
/// in signal order:
/// - the audio DAC: 16-bit quantisation of every slot level over ±1 V;
/// - the power amplifier: soft clipping F = V_sat tanh(V / V_sat) (V_sat = 1.5 V, 12 %
///   compression at full scale) and 3 mV rms noise on every slot's level;
/// - the speaker's voice coil: the force follows the amplifier voltage with the electrical lag
///   τ = L_e/R_e ≈ 50 µs (±20 % per device); the twin assumes an instantaneous force;
/// - per-device spread of every modelled mode: frequency ±2 %, damping ±25 %, cubic stiffness
///   ±10 %, speaker and microphone coupling ±10 % (uniform, times `spread`);
/// - two unmodelled modes (frequency, damping and couplings drawn from the seed);
/// - a finer time step than the twin's (one RK4 step per ADC sample);
/// - the acoustic path: the microphone, 34 ± 3 mm above the plate, hears it ≈ 0.1 ms late
///   (rounded to whole ADC samples);
/// - the microphone ADC: 48 kS/s, 2 mV rms noise per sample (room and capsule self-noise),
///   16-bit quantisation and clipping over ±10 V; each output is the mean of its window's
///   96 samples (the twin uses the exact bin mean of a delay-free signal).
/// All per-device values are drawn once from `seed` (the driver derives it from the serial).
#include <cstdint>
#include <random>

#include "pnn/digital_twin/plate.hpp"

namespace pnn::drivers::sim {

struct PlateRealityConfig {
  Index num_slots = 32;
  std::uint64_t seed = 0;  ///< from the device serial: fixes the plate
  double spread = 1.0;     ///< scales the per-device spreads (0: nominal modes, coil lag and
                           ///< microphone distance; the unmodelled modes stay)
  int extra_modes = 2;     ///< unmodelled modes
  double freq_spread = 0.02;
  double damping_spread = 0.25;
  double cubic_spread = 0.10;
  double coupling_spread = 0.10;
  int dac_bits = 16;
  double dac_range_v = 1.0;       ///< DAC output range ± (the amplifier input range)
  double amp_saturation_v = 1.5;  ///< amplifier soft-clipping level (input-referred volts)
  double amp_noise_v = 3e-3;      ///< amplifier noise on each slot level, rms
  double coil_tau_ms = 0.05;      ///< nominal voice-coil lag L_e/R_e (0.2 mH / 4 Ω)
  double coil_tau_spread = 0.2;   ///< relative, uniform ±
  double mic_distance_mm = 34.0;  ///< microphone above the plate
  double mic_distance_spread_mm = 3.0;
  double sound_speed_m_per_s = 343.0;
  int adc_samples_per_slot = 48;  ///< 48 kS/s at 1 ms slots; also the RK4 steps per slot
  double mic_noise_v = 2e-3;      ///< per ADC sample, rms
  int adc_bits = 16;
  double adc_range_v = 10.0;  ///< ADC input range ± (a +22 dBu line input)
};

class PlateReality {
 public:
  /// Throws std::invalid_argument on a configuration no real rig could have (see the .cpp).
  explicit PlateReality(const PlateRealityConfig& config);
  /// Binned microphone readings, batch × K volts. Not thread-safe: the driver serializes calls.
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// The true modes (modelled ones first, then the unmodelled ones).
  const std::vector<digital_twin::PlateMode>& modes() const { return physics_->config().modes; }
  /// This device's voice-coil lag (ms) and acoustic delay (whole ADC samples).
  double coil_tau_ms() const { return physics_->config().drive_tau_ms; }
  Index delay_samples() const { return delay_samples_; }

 private:
  PlateRealityConfig config_;
  std::unique_ptr<digital_twin::PlateModel> physics_;
  Index delay_samples_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

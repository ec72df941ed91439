#pragma once
/// Reality simulator of the speaker-driven plate (PHYSICS.md "Mechanical", second setup): what
/// the simulated instrument's firmware computes. Private to drivers.
///
/// Differs from the nominal twin (`digital_twin::PlateModel` with `nominal_plate_modes()`) by:
/// - per-seed spread of every modelled mode: frequency ±2 %, damping ±25 %, cubic stiffness
///   ±10 %, speaker and microphone coupling ±10 % (uniform, times `spread`);
/// - two unmodelled modes (frequency, damping and couplings drawn from the seed);
/// - the power amplifier: soft clipping F = V_sat tanh(V / V_sat) (V_sat = 1.5 V, 12 %
///   compression at full scale) and 3 mV rms noise on every slot's level;
/// - 16-bit audio DAC quantisation over ±1 V, a finer RK4 step than the twin's;
/// - microphone and preamp noise, 2 mV rms on every binned output.
#include <cstdint>
#include <random>

#include "pnn/digital_twin/plate.hpp"

namespace pnn::drivers::sim {

struct PlateRealityConfig {
  Index num_slots = 32;
  std::uint64_t seed = 0;          ///< from the device serial: fixes the modes
  double spread = 1.0;             ///< scales every per-seed spread (0 = nominal modes)
  int extra_modes = 2;             ///< unmodelled modes
  double freq_spread = 0.02;
  double damping_spread = 0.25;
  double cubic_spread = 0.10;
  double coupling_spread = 0.10;
  double amp_saturation_v = 1.5;   ///< amplifier soft-clipping level (input-referred volts)
  double amp_noise_v = 3e-3;       ///< amplifier noise on each slot level, rms
  double mic_noise_v = 2e-3;       ///< on each binned output, rms
  int dac_bits = 16;
  double dac_range_v = 1.0;        ///< DAC output range ±
  int oversample = 2;              ///< RK4 steps per twin step
};

class PlateReality {
 public:
  explicit PlateReality(const PlateRealityConfig& config);
  /// Binned microphone readings, batch × K volts. Not thread-safe: the driver serializes calls.
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// The true modes (modelled ones first, then the unmodelled ones).
  const std::vector<digital_twin::PlateMode>& modes() const { return physics_->config().modes; }

 private:
  PlateRealityConfig config_;
  std::unique_ptr<digital_twin::PlateModel> physics_;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

#pragma once
/// Reality simulator of the MTJ spin-diode RF synapse chains with STNO neurons (PHYSICS.md
/// "Spintronic (b)"). Private to drivers_sim.
///
/// Same physics as the twin (digital_twin::MtjRfModel), but every junction is its own device:
///   - resonance offset o_ik ~ N(0, offset_mhz²): f_r,ik = f_k + δ_ik + o_ik (fabrication);
///   - linewidth w_ik = w (1 + u), u uniform within ±width_spread;
///   - rectification sensitivity κ_ik = κ (1 + u), u uniform within ±sensitivity_spread;
///   - each STNO neuron's bias ζ_0,i and Q_i within ±neuron_spread;
///   - rectification noise: Gaussian on each chain voltage, per sample (mV RMS);
///   - readout noise on the neuron powers.
/// All per-device values are drawn from the serial's seed.
#include <cstdint>
#include <mutex>
#include <random>

#include "pnn/digital_twin/mtj_rf.hpp"

namespace pnn::drivers::sim {

struct MtjRfRealityConfig {
  digital_twin::MtjRfConfig datasheet;
  std::uint64_t seed = 0;
  double offset_mhz = 8.0;  ///< RMS resonance offset per junction (w = 10 MHz)
  double width_spread = 0.2;
  double sensitivity_spread = 0.1;
  double neuron_spread = 0.05;
  double rectification_noise_mv = 0.05;
  double readout_noise = 0.003;  ///< units of p
};

class MtjRfReality {
 public:
  explicit MtjRfReality(const MtjRfRealityConfig& config);
  /// x: RF powers (batch × channels) in µW; θ: detunings δ (MHz), the twin's layout. Returns the
  /// measured neuron powers (batch × chains). Thread-safe.
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// The true synaptic weights κ_ik-weighted (mV/µW) at θ (for tests of the simulator itself).
  Matrix weights(const VectorRef& theta) const;

 private:
  MtjRfRealityConfig config_;
  Matrix offset_, width_, sensitivity_;  // chains × junctions
  Vector zeta_bias_, nonlinearity_;      // per neuron
  std::mutex mutex_;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

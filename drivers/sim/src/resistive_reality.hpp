#pragma once
/// Reality simulator of the nonlinear resistive network (docs/setups/resistive-network.md).
/// Private to drivers_sim.
///
/// Same circuit as the twin (digital_twin/resistive_network.hpp), but built from real parts:
///   - every conductance is set by a 10-bit DAC over [g_min, g_max] (θ quantised to 1023 steps)
///     and is off by its own mismatch factor (1 + σ·N(0, 1)), fixed per device;
///   - each diode pair's threshold is v(1 + s·u), u uniform in [−1, 1], fixed per device;
///   - the network relaxes with time constant tau_us; a settle reads after settle_us, so what is
///     read is v* + (v₀ − v*)·exp(−settle_us/tau_us) from its start v₀ (0 V cold, its last state
///     of the same batch warm); when that residual exceeds settle_tolerance_mv the settle has not
///     converged within its time budget (nullopt: the firmware answers "not settled");
///   - every node reading carries Gaussian readout noise (noise_mv RMS).
/// forward = the logits of a cold free settle. All per-device values come from the serial's seed.
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>

#include "pnn/digital_twin/resistive_network.hpp"

namespace pnn::drivers::sim {

struct ResistiveRealityConfig {
  digital_twin::ResistiveNetworkConfig datasheet;
  std::uint64_t seed = 0;
  double mismatch = 0.02;         ///< relative RMS conductance mismatch
  double threshold_spread = 0.1;  ///< relative spread of the diode thresholds
  double noise_mv = 0.1;          ///< readout noise per node reading, RMS
  double settle_us = 10.0;        ///< time budget of one settle
  double tau_us = 1.0;            ///< the network's relaxation time constant
  double settle_tolerance_mv = 1.0;
  int dac_bits = 10;
};

class ResistiveReality {
 public:
  explicit ResistiveReality(const ResistiveRealityConfig& config);
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  std::optional<Matrix> settle(const MatrixRef& x, const VectorRef& theta,
                               const digital_twin::SettleBoundary& boundary, bool warm_start);
  /// The conductances the network really has at θ (quantised, with mismatch), θ layout.
  Vector conductances(const VectorRef& theta) const;
  const Vector& thresholds() const { return thresholds_; }

 private:
  // The state as the physics leaves it after settle_us (no readout noise), and whether it is
  // within the settle tolerance of the equilibrium.
  struct Relaxed {
    Matrix nodes;
    bool settled = false;
  };
  Relaxed relax(const MatrixRef& x, const VectorRef& theta,
                const digital_twin::SettleBoundary& boundary, const Matrix* start);
  void add_noise(Matrix& m);

  ResistiveRealityConfig config_;
  Vector mismatch_;    // per conductance
  Vector thresholds_;  // per hidden node
  std::mutex mutex_;
  std::mt19937_64 rng_;
  Matrix last_x_, last_nodes_;  // the last equilibrium and its batch (warm starts)
};

}  // namespace pnn::drivers::sim

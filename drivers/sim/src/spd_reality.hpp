#pragma once
/// Reality simulator of the single-photon-detection layer (PHYSICS.md "Optical (b)"): optical
/// matrix-vector product read by an array of single-photon detectors, one shot per inference.
/// Private to drivers_sim.
///
/// Differs from the twin (the click probability 1 − exp(−N_ph |Wx|)) by:
///   - a binary click per detector and inference, y ~ Bernoulli(P(click)) (one shot);
///   - detector efficiency η_i < 1 with a per-pixel spread (drawn per device seed);
///   - dark clicks with probability p_d,i per inference window (per pixel, drawn per seed);
///   - 8-bit quantisation of the input and weight modulators.
#include <cstdint>
#include <mutex>
#include <random>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::drivers::sim {

struct SpdRealityConfig {
  Index num_inputs = 0;
  Index num_outputs = 0;
  double photons_per_unit = 1.0;   ///< N_ph: mean photons at a detector per unit |Wx|
  std::uint64_t seed = 0;          ///< from the device serial: pixel efficiencies, noise stream
  double efficiency_mean = 0.7;    ///< mean detector efficiency (device-to-device ±5 %)
  double efficiency_spread = 0.1;  ///< relative RMS pixel-to-pixel spread of η
  double dark_probability = 0.01;  ///< mean dark-click probability per inference window
  int modulator_bits = 8;          ///< input (over [0, 1]) and weight (over [−1, 1]) modulators
};

class SpdReality {
 public:
  explicit SpdReality(const SpdRealityConfig& config);
  /// One shot per sample: returns batch × outputs of 0 / 1 clicks. x in [0, 1], θ = W in [−1, 1].
  /// Thread-safe (the noise stream is serialized).
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// Per-pixel efficiencies and dark-click probabilities (for tests of the simulator itself).
  const Vector& efficiencies() const { return efficiency_; }
  const Vector& dark_probabilities() const { return dark_; }

 private:
  SpdRealityConfig config_;
  Vector efficiency_;
  Vector dark_;
  std::mutex mutex_;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

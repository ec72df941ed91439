#pragma once
/// Reality simulator of the coupled-oscillator setup (PHYSICS.md "Mechanical"): what the
/// simulated instrument's firmware computes. Private to drivers_sim: training code can reach it only
/// through a driver.
///
/// Differs from the twin by: sin((1+η) q) in place of sin q; a fixed extra coupling
/// Q_noise = C2Q(J_noise · N(0,1)) drawn from the device seed; input noise N(0, 0.02²) on q(0);
/// DAC quantisation of θ (12 bit over the hard-limit range); sensor noise.
#include <cstdint>
#include <mutex>
#include <random>

#include "pnn/digital_twin/oscillator.hpp"

namespace pnn::drivers::sim {

struct GapLevel {
  double eta;
  double j_noise;
};
inline constexpr GapLevel kSmallGap{0.1, 0.2};
inline constexpr GapLevel kLargeGap{0.3, 0.5};

struct OscillatorRealityConfig {
  Index num_oscillators = 0;
  std::uint64_t seed = 0;  ///< from the device serial: fixes Q_noise; noise streams start here
  GapLevel gap = kSmallGap;
  double input_noise_std = 0.02;   ///< rad, on q(0)
  double sensor_noise_std = 0.005; ///< rad, on q(t_end)
  int dac_bits = 12;
  Vector theta_min;  ///< DAC range per θ entry (the hard limits)
  Vector theta_max;
  /// The simulator's arithmetic (address option compute=float32|float64).
  digital_twin::Precision compute = digital_twin::Precision::kFloat64;
};

class OscillatorReality {
 public:
  explicit OscillatorReality(const OscillatorRealityConfig& config);
  /// Runs the physics on a batch. Thread-safe (noise generation is serialized).
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// θ as the DAC realises it.
  Vector quantize(const VectorRef& theta) const;
  const Matrix& q_noise() const { return physics_->config().q_extra; }

 private:
  /// m += std · N(0, 1), element-wise (fast_normal.hpp).
  void add_noise(Matrix& m, double std);

  OscillatorRealityConfig config_;
  std::unique_ptr<digital_twin::OscillatorModel> physics_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

#pragma once
/// Reality simulator of the ultrafast SHG setup (PHYSICS.md "Optical (a)"): pulse shaper → χ(2)
/// crystal → spectrometer, as the simulated instrument's firmware computes it. Private to drivers_sim.
///
/// Same channel layout and spectrometer binning as the twin (`digital_twin::ShgLayout`), but:
///   - true gain κ, spectral width σ and centre drawn per device seed around the datasheet values,
///     plus a spectral ripple on S0 (the twin's S0 is a clean Gaussian);
///   - 8-bit modulator quantisation of every channel's transmission (data and θ);
///   - neighbour crosstalk: the transmission pattern is blurred by a Gaussian of width
///     `crosstalk_channels` (electrode fringing fields);
///   - residual quadratic spectral phase β (k − c)² on the amplitudes (complex A, complex B);
///   - 1 % pulse-energy jitter per sample (SH power ∝ energy²);
///   - slow drift of the laser power with the call counter (a slow sinusoid in SH gain);
///   - shot noise (Poisson in detector counts), read noise, 16-bit full-scale saturation.
#include <cstdint>
#include <mutex>
#include <random>

#include "pnn/digital_twin/shg.hpp"

namespace pnn::drivers::sim {

/// How far the true physics departs from the datasheet (the twin); drawn per device seed.
struct ShgGap {
  double gain_spread;         ///< relative RMS error of κ
  double bandwidth_spread;    ///< relative RMS error of σ
  double centre_shift;        ///< max |offset| of the spectrum centre, channels
  double ripple;              ///< relative amplitude of the spectral ripple on S0
  double edge_phase_rad;      ///< |β| (K/2)²: residual phase at the band edge
  double crosstalk_channels;  ///< Gaussian blur σ of the modulator pattern, channels
};
inline constexpr ShgGap kShgSmallGap{0.05, 0.03, 0.5, 0.03, 0.3, 0.3};
inline constexpr ShgGap kShgLargeGap{0.15, 0.10, 2.0, 0.10, 1.6, 0.7};

struct ShgRealityConfig {
  digital_twin::ShgConfig datasheet;  ///< sizes and the datasheet κ, σ (the nominal twin's)
  std::uint64_t seed = 0;             ///< from the device serial: true parameters, noise streams
  ShgGap gap = kShgLargeGap;
  int modulator_bits = 8;
  double energy_jitter = 0.01;         ///< relative RMS pulse-energy jitter per sample
  double drift_amplitude = 0.03;       ///< relative amplitude of the slow SH-gain drift
  double drift_period_calls = 4000.0;  ///< period of the drift, in forward calls
  double counts_per_unit = 1000.0;     ///< detector counts per output unit (kcounts)
  double read_noise_counts = 5.0;      ///< RMS read noise per bin
  double full_scale_counts = 65535.0;  ///< 16-bit ADC: readings saturate here
};

class ShgReality {
 public:
  explicit ShgReality(const ShgRealityConfig& config);
  /// Runs the physics on a batch: x in [0, 1] (batch × inputs), θ in [0, 1]. Returns
  /// batch × outputs in kcounts. Thread-safe (the noise stream and call counter are serialized).
  Matrix run(const MatrixRef& x, const VectorRef& theta);

 private:
  Matrix quantize(const Matrix& m) const;

  ShgRealityConfig config_;
  digital_twin::ShgLayout layout_;
  double gain_ = 0.0;  // true κ
  Vector sqrt_s0_;     // true √S0 (with ripple)
  Vector phase_;       // residual spectral phase per channel, rad
  Matrix crosstalk_;   // K × K blur: m_eff = m · crosstalk_ᵀ
  double drift_phase_ = 0.0;
  std::mutex mutex_;
  std::mt19937_64 rng_;
  std::uint64_t calls_ = 0;
};

}  // namespace pnn::drivers::sim

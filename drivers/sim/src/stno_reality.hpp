#pragma once
/// Reality simulator of the STNO recurrent network (PHYSICS.md "Spintronic (a)"), as the
/// simulated instrument computes it. Private to drivers_sim.
///
/// Each oscillator is integrated as a complex amplitude c (p = |c|²):
///
///   dc/dt = −i ω(p) c − Γ+(p) c + Γ−(p) c + ξ(t),
///   Γ+ = Γ_G,i (1 + Q_i p),  Γ− = Γ_G,i ζ_i (1 − p),  ω = 2π (f0 + N_f p),
///
/// with complex white thermal noise ⟨ξ ξ*⟩ = ε δ(t) (so d⟨p⟩/dt has the twin's +ε floor and the
/// power equation holds on average). Differences from the twin (digital_twin::StnoModel):
///   - per-oscillator Γ_G,i and Q_i drawn uniformly within ±`spread` of the datasheet values
///     (device-to-device spread, seeded by the serial);
///   - thermal phase and amplitude noise (Euler–Maruyama, `substeps_factor` finer than the twin);
///   - Gaussian readout noise on the measured power at the end of the sequence.
/// The drive ζ_i is formed and clamped to [ζ_min, ζ_max] exactly as in the twin (the current
/// source's compliance limit).
#include <cstdint>
#include <mutex>
#include <random>

#include "pnn/digital_twin/stno.hpp"

namespace pnn::drivers::sim {

struct StnoRealityConfig {
  digital_twin::StnoConfig datasheet;  ///< sizes and nominal physics (the twin's)
  std::uint64_t seed = 0;              ///< from the serial: per-oscillator spread, noise stream
  double spread = 0.10;                ///< relative half-width of the uniform Γ_G, Q spread
  double readout_noise = 0.005;        ///< RMS noise of the power readout, units of p
  double f0_ghz = 5.0;                 ///< free-running frequency
  double nonlinear_shift_ghz = 1.0;    ///< N_f: frequency shift per unit power
  Index substeps_factor = 2;           ///< reality steps per twin Euler step
};

class StnoReality {
 public:
  explicit StnoReality(const StnoRealityConfig& config);
  /// Runs one sequence per row: x (batch × steps·inputs_per_step) in [0, 1], θ in µA as the
  /// twin's layout. Returns the measured p at the end (batch × neurons). Thread-safe.
  Matrix run(const MatrixRef& x, const VectorRef& theta);
  /// The drawn per-oscillator Γ_G,i (1/ns) and Q_i (for tests of the simulator itself).
  const Vector& damping() const { return damping_; }
  const Vector& nonlinearity() const { return nonlinearity_; }

 private:
  StnoRealityConfig config_;
  Vector damping_, nonlinearity_;
  std::mutex mutex_;
  std::mt19937_64 rng_;
};

}  // namespace pnn::drivers::sim

#pragma once
/// Magnetic-tunnel-junction (MTJ) spin-diode RF synapse chains with STNO neurons,
/// PHYSICS.md "Spintronic (b)".
///
/// Input j is an RF power P_j (µW) at frequency f_j = f_0 + j Δf (frequency multiplexed on one
/// line). Chain i holds one junction per input channel, junction k with resonance
/// f_r,ik = f_k + δ_ik; every junction rectifies every tone (spin-diode effect), so
///
///   V_i  = κ Σ_j P_j W_ij,   W_ij = Σ_k L_a(f_j − f_r,ik),   L_a(Δ) = −Δ w / (Δ² + w²)
///   ζ_i  = clamp(ζ_0 + g V_i, ζ_min, ζ_max)                     (drive of STNO neuron i)
///   y_i  = p0(ζ_i) = (ζ_i − 1) / (ζ_i + Q)                       (its steady-state power)
///
/// L_a is the antisymmetric Lorentzian scaled to a peak |L_a| = 1/2 at Δ = ∓w; the off-resonant
/// tails (cross-talk between channels) are kept exactly. The clamp's gradient is zero outside.
///
/// Units: P in µW, frequencies and δ in MHz, κ in mV/µW, g in 1/mV (ζ is in units of I_th),
/// y in 1. θ layout: δ_ik, row-major chains × junctions (num_outputs × num_inputs).
/// Physical parameters φ = (κ, w). Reverse mode is exact (`vjp`, `physical_vjp`).
#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

struct MtjRfConfig {
  Index num_inputs = 64;               ///< frequency channels (junctions per chain)
  Index num_outputs = 64;              ///< chains (= STNO neurons)
  double spacing_mhz = 50.0;           ///< Δf between input tones
  double linewidth_mhz = 10.0;         ///< w (half width at half maximum of the resonance)
  double sensitivity_mv_per_uw = 1.0;  ///< κ
  double zeta_bias = 2.5;              ///< ζ_0: neuron bias current / I_th
  double zeta_per_mv = 0.5;            ///< g
  double nonlinearity = 2.0;           ///< Q of the STNO neurons
  double zeta_min = 1.0;               ///< neuron current compliance, units of I_th
  double zeta_max = 4.0;
};

/// L_a(Δ) = −Δ w / (Δ² + w²) and its partial derivatives (shared with the reality simulator).
double lorentzian_antisym(double detuning, double width);
double lorentzian_antisym_d_detuning(double detuning, double width);
double lorentzian_antisym_d_width(double detuning, double width);

class MtjRfModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on sizes < 1, non-positive Δf or w, non-finite κ, g, Q,
  /// or zeta_min ≥ zeta_max.
  explicit MtjRfModel(MtjRfConfig config);

  std::string name() const override { return "mtj-rf"; }
  Index num_inputs() const override { return config_.num_inputs; }
  Index num_outputs() const override { return config_.num_outputs; }
  Index num_params() const override { return config_.num_inputs * config_.num_outputs; }
  /// δ uniform in [−w, w] (each junction on the steep flank of its channel's resonance, so its
  /// weight L_a(−δ) spans the whole [−1/2, 1/2]), deterministic in `seed`.
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return 2; }
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  const MtjRfConfig& config() const { return config_; }
  /// The effective synaptic weights W (num_outputs × num_inputs) at θ.
  Matrix weights(const VectorRef& theta) const;

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  /// ∂L/∂V (batch × outputs) through the neurons.
  Matrix voltage_bar(const Matrix& v, const MatrixRef& y_bar) const;
  Index min_rows_per_shard() const override { return 256; }

  MtjRfConfig config_;
};

}  // namespace pnn::digital_twin

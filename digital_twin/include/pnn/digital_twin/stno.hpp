#pragma once
/// Recurrent network of spin-torque nano-oscillators (STNOs), PHYSICS.md "Spintronic (a)".
///
/// Each neuron i is an auto-oscillator whose normalised power p_i obeys (Slavin–Tiberkevich)
///
///   dp_i/dt = −2 Γ_G [1 + Q p_i − ζ_i (1 − p_i)] p_i + ε
///   ζ_i(t)  = clamp( (b_i + Σ_j W_ij u_j(t) + Σ_k R_ik p_k(t)) / I_th , 1, 4 )
///
/// with the drive current in units of the threshold current I_th (clamped to the device's safe
/// range [1, 4]·I_th; the clamp's gradient is zero outside). A sample is a sequence of
/// `num_steps` input vectors u(t) of `inputs_per_step` entries each, held for one input period
/// each; the row of the batch holds them concatenated (step-major), so sequential digits are the
/// 64-pixel row vector read as 8 rows of 8 pixels. The output is p at the end of the sequence.
///
/// Integration: explicit Euler with `substeps` steps of dt = period / substeps per input period,
/// p(0) = `p_initial` (the oscillators are reset to their bias point before each sequence).
/// `vjp` is the exact discrete adjoint of this scheme (backpropagation through time).
///
/// Units: time in ns, Γ_G in 1/ns, ε in 1/ns, currents (θ) in µA, I_th in µA, u and p in 1.
/// θ layout: [ b (N) | W (N × M, row-major) | R (N × N, row-major) ], N = num_neurons,
/// M = inputs_per_step. Physical parameters φ = (Γ_G, Q); calibration may fit both.
#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

struct StnoConfig {
  Index num_neurons = 64;       ///< N
  Index num_steps = 8;          ///< input periods per sequence
  Index inputs_per_step = 8;    ///< M
  Index substeps = 4;           ///< Euler steps per input period (≥ 1)
  double period_ns = 0.5;       ///< input period (the relaxation time 1/(2Γ_G p0 (Q + ζ)) is
                                ///< 0.5 ns at ζ = 2: the state keeps a few periods of memory)
  double damping_per_ns = 1.0;  ///< Γ_G
  double nonlinearity = 2.0;    ///< Q
  double floor_per_ns = 0.01;   ///< ε (thermal floor of the power)
  double threshold_ua = 10.0;   ///< I_th
  double zeta_min = 1.0;        ///< clamp of ζ (device safety limit, units of I_th)
  double zeta_max = 4.0;
  double p_initial = 0.25;  ///< p(0), the bias point at ζ = 2 (p0 = (ζ−1)/(ζ+Q))
};

class StnoModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on non-positive sizes, steps or rates, or zeta_min ≥ zeta_max.
  explicit StnoModel(StnoConfig config);

  std::string name() const override { return "stno-rnn"; }
  Index num_inputs() const override { return config_.num_steps * config_.inputs_per_step; }
  Index num_outputs() const override { return config_.num_neurons; }
  Index num_params() const override;
  /// b ≈ 2 I_th ± 5 % (above threshold, so gradients flow), W ~ N(0, (1.5 I_th / √M)²) truncated
  /// at 2.5 σ and R ~ N(0, (0.3 I_th / √N)²), deterministic in `seed`.
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return 2; }
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  const StnoConfig& config() const { return config_; }
  /// Euler step in ns.
  double dt_ns() const { return config_.period_ns / static_cast<double>(config_.substeps); }

 private:
  struct Trajectory;
  Trajectory run(const MatrixRef& x, const VectorRef& theta, bool keep) const;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  /// Shared reverse sweep: fills the cotangents and, if phi_bar is given, ∂L/∂(Γ_G, Q).
  void reverse(const Trajectory& f, const MatrixRef& x, const VectorRef& theta,
               const MatrixRef& y_bar, Cotangents* out, Vector* phi_bar) const;
  Index min_rows_per_shard() const override { return 16; }

  StnoConfig config_;
};

}  // namespace pnn::digital_twin

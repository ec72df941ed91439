#pragma once
/// Coupled nonlinear oscillators (pendula / plate modes), PHYSICS.md "Mechanical".
///
///   q̇ = p,   ṗ_i = −sin(κ q_i) + Σ_j Q_ij sin(κ q_j) + e_i,   Q = C2Q(C) + Q_extra
///
/// Encoding q(0) = x, p(0) = 0; readout q(t_end); fixed-step RK4. Reverse mode is exact through
/// the integrator (discrete adjoint of the same RK4 steps, not a continuous adjoint).
///
/// θ layout: C (n×n, row-major, n² entries) then e (n entries). Only the symmetric part of C
/// matters, and its diagonal does not enter Q.
/// Physical parameter φ = (κ), nominal 1: the nonlinearity scale of the restoring force. One global
/// scale, not one per oscillator: per-oscillator scales are unidentifiable for inputs that never
/// leave 0 (blank pixels) and soak up unmodelled coupling when calibrated.
#include <memory>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

struct OscillatorConfig {
  Index num_oscillators = 0;
  double dt = 0.1;
  int num_steps = 5;
  /// Nonlinearity scale κ (1 for the nominal twin).
  double kappa = 1.0;
  /// Fixed extra coupling added to Q (a reality simulator's unmodelled coupling); empty = none.
  /// Must be n×n and symmetric.
  Matrix q_extra;
};

/// Q = C2Q(C): J = (C + Cᵀ)/2, off-diagonal Q = J, Q_ii = −Σ_{j≠i} J_ij.
Matrix coupling_to_q(const MatrixRef& c);

class OscillatorModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on n < 1, dt ≤ 0, steps < 1, wrong κ / Q_extra sizes.
  explicit OscillatorModel(OscillatorConfig config);

  std::string name() const override { return "oscillators"; }
  Index num_inputs() const override { return config_.num_oscillators; }
  Index num_outputs() const override { return config_.num_oscillators; }
  Index num_params() const override { return n() * n() + n(); }
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return 1; }
  Vector physical_params() const override { return Vector::Constant(1, config_.kappa); }
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  const OscillatorConfig& config() const { return config_; }

 private:
  struct Backward;
  Index n() const { return config_.num_oscillators; }
  /// A = C2Q(C) + Q_extra − I, so that ṗ = sin(κ∘q)·A + e for a row batch.
  Matrix stiffness(const VectorRef& theta) const;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Backward backward(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar) const;

  OscillatorConfig config_;
};

}  // namespace pnn::digital_twin

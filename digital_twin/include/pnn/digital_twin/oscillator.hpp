#pragma once
/// Coupled nonlinear oscillators (pendula / plate modes), PHYSICS.md "Mechanical".
///
///   q̇ = p,   ṗ_i = −sin(κ_i q_i) + Σ_j Q_ij sin(κ_j q_j) + e_i,   Q = C2Q(C) + Q_extra
///
/// Encoding q(0) = x, p(0) = 0; readout q(t_end); fixed-step RK4. Reverse mode is exact through
/// the integrator (discrete adjoint of the same RK4 steps, not a continuous adjoint).
///
/// θ layout: C (n×n, row-major, n² entries) then e (n entries). Only the symmetric part of C
/// matters, and its diagonal does not enter Q.
/// Physical parameters, by `OscillatorPhi`:
/// - kKappa (the nominal twin): φ = (κ), nominal 1, one nonlinearity scale for every oscillator.
///   One global scale is what short calibrations on the job's own inputs can identify:
///   per-oscillator scales are unidentifiable for inputs that never leave 0 (blank pixels) and
///   soak up unmodelled coupling when the coupling is not fitted with them.
/// - kGreyBox (the learned grey-box twin, learned_twins.hpp): φ = (κ_1 … κ_n, J_ij for i < j),
///   per-oscillator scales and a symmetric stray coupling with Q_extra = C2Q(J); n + n(n−1)/2
///   entries. Fitted on samples spread over the input range, with an L2 pull toward nominal.
#include <memory>
#include <mutex>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// Which constants of the model are its physical parameters φ (see the file comment).
enum class OscillatorPhi { kKappa, kGreyBox };

struct OscillatorConfig {
  Index num_oscillators = 0;
  double dt = 0.1;
  int num_steps = 5;
  /// Nonlinearity scale κ (1 for the nominal twin), used for every oscillator unless `kappas`.
  double kappa = 1.0;
  /// Per-oscillator scales κ_i (size n; kGreyBox only); empty = `kappa` for all. Finite.
  Vector kappas;
  /// Fixed extra coupling added to Q (a reality simulator's unmodelled coupling); empty = none.
  /// Must be n×n and symmetric; for kGreyBox also of the form C2Q(J) (zero row sums).
  Matrix q_extra;
  OscillatorPhi phi = OscillatorPhi::kKappa;
  /// The arithmetic of forward and vjp (model.hpp): float32 runs the integrator, its adjoint
  /// and the stiffness in float, converting at the boundary; θ, φ and the results stay double.
  Precision compute = Precision::kFloat64;
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

  Index num_physical_params() const override;
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;
  Precision compute() const override { return config_.compute; }
  ModelPtr copy_with_compute(Precision compute) const override;
  /// The oscillators' nonlinearity scales κ_i (size n).
  Vector kappas() const { return kappa_row_.transpose(); }

  const OscillatorConfig& config() const { return config_; }

 private:
  struct Backward;
  Index n() const { return config_.num_oscillators; }
  /// A = C2Q(C) + Q_extra − I, so that ṗ = sin(κ∘q)·A + e for a row batch. Computed once per θ:
  /// the batch shards of one call, and the forward and vjp of one training step, share it.
  struct Stiffness {
    Matrix a, at;                // A and Aᵀ (the reverse sweep multiplies by Aᵀ)
    Eigen::MatrixXf a32, at32;  // the same in float, for Precision::kFloat32 only
  };
  std::shared_ptr<const Stiffness> stiffness(const VectorRef& theta) const;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Backward backward(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar) const;

  /// The last θ's stiffness (O(n²) to build, as much memory traffic as a small batch's GEMMs).
  /// Copies start empty; shared by the threads of the batch shards under its mutex.
  struct StiffnessCache {
    StiffnessCache() = default;
    StiffnessCache(const StiffnessCache&) {}
    StiffnessCache& operator=(const StiffnessCache&) { return *this; }
    std::mutex mutex;
    Vector theta;
    std::shared_ptr<const Stiffness> a;
  };

  OscillatorConfig config_;
  Eigen::RowVectorXd kappa_row_;  // κ_i as a row, multiplied into each batch row
  mutable StiffnessCache stiffness_cache_;
};

}  // namespace pnn::digital_twin

#pragma once
/// Neural-ODE twin of the STNO recurrent network (issue 13, the Spin-Neural-ODE idea): the drive
/// of each neuron is formed exactly as in the physics twin (stno.hpp), and the power of each
/// neuron follows a learned vector field, integrated by fixed-step classical RK4:
///
///   ζ_i(t)  = clamp( (b_i + Σ_j W_ij u_j(t) + Σ_k R_ik p_k(t)) / I_th , ζ_min, ζ_max )
///   dp_i/dt = s_i · ( F(p_i, ζ_i) + Γ_G · h_ψ(p̂_i, ζ̂_i) ) + o_i
///
/// - h_ψ: a small tanh MLP (2 inputs, `hidden`, 1 output) shared by all neurons, on the
///   normalised p̂ = 2p − 1 and ζ̂ = (ζ − ζ_mid) / ζ_half (ζ_mid, ζ_half: middle and half-width of
///   the clamp range); its output is scaled by the datasheet Γ_G (1/ns) so unit outputs are rates
///   of the device's own size;
/// - F: the datasheet power equation −2Γ_G[1 + Qp − ζ(1 − p)]p + ε if `physics_prior`, else 0
///   (then the field is learned entirely);
/// - s_i (1) and o_i (1/ns): a per-neuron scale and offset (device-to-device spread of Γ_G, ε).
///
/// F and h see p clamped to its physical range [0, 1] (no gradient outside): the field is then
/// bounded, so the integration stays finite wherever a fitted field extrapolates (for p < 0 the
/// power equation itself diverges in finite time). The drive's R p uses p itself.
///
/// θ is the device's own θ, with the physics twin's layout [ b (N) | W (N×M) | R (N×N) ] in µA,
/// so PAT trains the device's parameters through this twin. The fitted parameters ψ are the
/// model's physical parameters φ: [ MLP weights (mlp_twin.hpp layout) | s (N) | o (N) ];
/// `physical_vjp` is exact, so digital_twin::calibrate (or Adam) fits them.
///
/// Output: p at the end of the sequence (N, as the device reads it), or with `trajectory` the
/// powers at the end of every input period, period-major (num_steps · N): what the fit compares
/// with measured trajectories. `vjp` and `physical_vjp` are the exact discrete adjoint of the RK4
/// scheme (backpropagation through every stage); the clamp passes no gradient outside its range.
/// Units as stno.hpp: time ns, θ µA, u and p 1. Stateless, const, thread-safe.
#include <vector>

#include "pnn/digital_twin/stno.hpp"

namespace pnn::digital_twin {

struct NeuralOdeConfig {
  StnoConfig stno;            ///< sizes, period, I_th, clamp, p(0) and the prior's Γ_G, Q, ε
  Index rk4_steps = 2;        ///< RK4 steps per input period (≥ 1); stno.substeps is not used
  std::vector<Index> hidden = {16};  ///< hidden layers of h_ψ (each ≥ 1)
  bool physics_prior = true;  ///< F is the datasheet power equation (else 0)
  bool trajectory = false;    ///< output p after every period instead of only the last
  /// ψ = [MLP weights | s | o]; empty: Glorot-uniform hidden layers from `seed`, the last layer
  /// zero if physics_prior (so the unfitted twin is the datasheet physics under RK4), s = 1, o = 0.
  Vector psi;
  std::uint64_t seed = 0;
};

class NeuralOdeTwin final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on what StnoModel refuses, rk4_steps < 1, a hidden size < 1,
  /// or a ψ of the wrong size or not finite.
  explicit NeuralOdeTwin(NeuralOdeConfig config);

  std::string name() const override { return "neural-ode-stno"; }
  Index num_inputs() const override { return c_.stno.num_steps * c_.stno.inputs_per_step; }
  Index num_outputs() const override {
    return c_.trajectory ? c_.stno.num_steps * c_.stno.num_neurons : c_.stno.num_neurons;
  }
  Index num_params() const override;
  /// The physics twin's recipe (StnoModel::initial_params), so a job starts θ where it would.
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return c_.psi.size(); }
  Vector physical_params() const override { return c_.psi; }
  ModelPtr with_physical_params(const VectorRef& psi) const override;

  /// The same twin with the other readout (trajectory or end of sequence).
  std::shared_ptr<const NeuralOdeTwin> with_trajectory(bool trajectory) const;
  const NeuralOdeConfig& config() const { return c_; }
  /// Number of MLP weights at the head of ψ.
  Index num_mlp_weights() const;
  /// RK4 step in ns.
  double step_ns() const { return c_.stno.period_ns / static_cast<double>(c_.rk4_steps); }

 private:
  struct Field;
  struct FieldStage;
  /// Integrates the sequence; keeps every stage in `stages` if given (for the reverse sweep).
  Matrix run(const MatrixRef& x, const VectorRef& theta, const Field& field,
             std::vector<FieldStage>* stages) const;
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  void reverse(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar,
               Cotangents* out, Vector* psi_bar) const;
  Index min_rows_per_shard() const override { return 8; }

  NeuralOdeConfig c_;
  std::vector<Index> sizes_;  ///< MLP layer sizes 2, hidden…, 1
  Vector mlp_weights_;        ///< head of ψ (the MLP keeps a reference to it)
};

}  // namespace pnn::digital_twin

#pragma once
/// A nonlinear resistive network that settles to the minimum of its power dissipation (the
/// deep-resistive-network / coupled-learning setups: Kendall et al. 2020, Scellier 2024, Stern et
/// al. 2021); docs/setups/resistive-network.md.
///
/// Topology (one hidden layer, bipartite, so the equilibrium is cheap to find):
///   sources  s = [x, −x, +V_b, −V_b]        (2·inputs + 2 voltage sources, volts)
///   hidden   h_j, j < H: a conductance G1_jk to every source k, and a bidirectional diode pair
///            to ground with threshold v_j (current g_d·(h − v)₊ − g_d·(−h − v)₊)
///   outputs  o_m, m < 2·outputs: a conductance G2_mj to every hidden node; output pair
///            (o_m, o_{outputs+m}) reads out logit_m = a·(o_m − o_{outputs+m})
/// The node voltages v = [h, o] minimise the co-content (half the dissipated power for the
/// linear part)
///   E(v; θ, x) = ½ Σ_jk G1_jk (h_j − s_k)² + ½ Σ_mj G2_mj (o_m − h_j)²
///              + Σ_j ½ g_d [(h_j − v_j)₊² + (−h_j − v_j)₊²]
/// (convex in v for G ≥ 0: one equilibrium). Boundaries: free (as above), nudged
/// E + β·½‖logit − target‖², and clamped (the output nodes held at given voltages, only h free).
/// ∂E/∂G1_jk = ½(h_j − s_k)², ∂E/∂G2_mj = ½(o_m − h_j)²: what a rule measures locally.
///
/// Units: volts, conductances in mS (currents in mA). θ layout: G1 row-major (H × sources), then
/// G2 row-major (2·outputs × H), within [g_min, g_max].
#include <cstdint>
#include <optional>
#include <string>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

struct ResistiveNetworkConfig {
  Index num_inputs = 64;
  Index num_hidden = 64;
  Index num_outputs = 10;   ///< logits; the network has 2·num_outputs output nodes
  double bias_volts = 1.0;  ///< V_b of the two bias sources
  double g_min_ms = 1e-3;   ///< conductance range of every trainable element
  double g_max_ms = 1.0;
  double diode_threshold_volts = 0.1;      ///< nominal v_j
  double diode_on_conductance_ms = 100.0;  ///< g_d
  double readout_gain = 20.0;              ///< a: logit per volt of output-pair difference

  Index num_sources() const { return 2 * num_inputs + 2; }
  Index num_output_nodes() const { return 2 * num_outputs; }
  Index num_nodes() const { return num_hidden + num_output_nodes(); }
  Index num_params() const { return num_hidden * num_sources() + num_output_nodes() * num_hidden; }
};

/// Throws std::invalid_argument naming the field: sizes < 1, 0 < g_min < g_max finite, positive
/// threshold, diode conductance, gain and bias.
void validate(const ResistiveNetworkConfig& config);

/// How a settle ends at the output nodes.
struct SettleBoundary {
  enum class Kind : std::uint8_t { kFree = 0, kNudged = 1, kClamped = 2 };
  Kind kind = Kind::kFree;
  double beta = 0.0;  ///< nudged: the strength β (either sign)
  /// nudged: batch × num_outputs logit targets; clamped: batch × num_output_nodes voltages;
  /// free: empty.
  Matrix values;

  static SettleBoundary free() { return {}; }
  static SettleBoundary nudged(double beta, Matrix target) {
    return {Kind::kNudged, beta, std::move(target)};
  }
  static SettleBoundary clamped(Matrix output_volts) {
    return {Kind::kClamped, 0.0, std::move(output_volts)};
  }
};
/// "free", "nudged", "clamped".
const char* to_string(SettleBoundary::Kind kind);
/// What is wrong with `b` for a batch of `rows` on a network with `num_outputs` logits and
/// `num_output_nodes` output nodes, as a sentence; "" if nothing: a known kind, values of the
/// boundary's shape, finite, 0 < |β| ≤ 10 for nudged, no values and β for free.
std::string boundary_problem(Index num_outputs, Index num_output_nodes, const SettleBoundary& b,
                             Index rows);

struct SettleOptions {
  double tolerance_volts = 1e-9;  ///< converged when every Newton correction is below this
  int max_iterations = 100;       ///< Newton iterations per sample
};

/// One settle of a batch.
struct SettleOutcome {
  Matrix nodes;           ///< batch × num_nodes: [h, o] per row
  int iterations = 0;     ///< most Newton iterations any row took
  bool converged = true;  ///< every row converged within max_iterations
};

/// The equilibrium of the network with conductances `g_ms` (θ layout) and diode thresholds
/// `thresholds` (num_hidden; the nominal config's when empty) for the sources of `x` (batch ×
/// inputs), by Newton's method with backtracking on E (exact: the Hessian's bipartite structure
/// makes each step an H-diagonal solve and a 2·outputs Schur system). `start` (batch ×
/// num_nodes) is the warm start; null: every node at 0 V. Preconditions (checked by callers):
/// shapes, finite values, g within limits, boundary_problem empty. Rows run on the thread pool.
SettleOutcome settle_network(const ResistiveNetworkConfig& config, const VectorRef& thresholds,
                             const MatrixRef& x, const VectorRef& g_ms,
                             const SettleBoundary& boundary, const Matrix* start,
                             const SettleOptions& options = {});

/// E(v) of every row (batch) at the node voltages `nodes`, with the boundary's cost term.
Vector network_energy(const ResistiveNetworkConfig& config, const VectorRef& thresholds,
                      const MatrixRef& x, const VectorRef& g_ms, const SettleBoundary& boundary,
                      const MatrixRef& nodes);
/// ∂E/∂v per row (batch × num_nodes), same arguments: zero at an equilibrium (for clamped
/// boundaries only the hidden entries are).
Matrix network_energy_grad(const ResistiveNetworkConfig& config, const VectorRef& thresholds,
                           const MatrixRef& x, const VectorRef& g_ms,
                           const SettleBoundary& boundary, const MatrixRef& nodes);
/// Σ over rows of ∂E/∂θ at the node voltages `nodes` (θ layout): ½(ΔV)² of every conductance.
/// Independent of θ: what each element's own voltage drop gives (the EP / coupled-learning
/// update is a difference of two of these).
Vector energy_theta_grad(const ResistiveNetworkConfig& config, const MatrixRef& x,
                         const MatrixRef& nodes);
/// The logits a·(o_m − o_{outputs+m}) of node voltages `nodes` (batch × num_outputs).
Matrix readout(const ResistiveNetworkConfig& config, const MatrixRef& nodes);
/// The output-node voltages (batch × num_output_nodes) that move each logit of the free state
/// `free_nodes` to `target` (each pair shifted symmetrically): the "desired output" y of coupled
/// learning, clamped at y_F + η(y − y_F).
Matrix output_nodes_for(const ResistiveNetworkConfig& config, const MatrixRef& free_nodes,
                        const MatrixRef& target);

/// The nominal twin: logits of the free equilibrium of the ideal network (no mismatch, nominal
/// thresholds, exact settle). vjp by implicit differentiation at the equilibrium
/// (θ̄ = −λᵀ ∂_θ∇_vE with ∇²_vE λ = ∂L/∂v), exact wherever no diode sits at its threshold.
class ResistiveNetworkModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument (validate).
  explicit ResistiveNetworkModel(ResistiveNetworkConfig config);

  std::string name() const override { return "resistive-network"; }
  Index num_inputs() const override { return config_.num_inputs; }
  Index num_outputs() const override { return config_.num_outputs; }
  Index num_params() const override { return config_.num_params(); }
  /// G uniform in [g_min, 0.2·g_max] (a hidden node starts near the mean of its sources, within
  /// the diodes' linear range), deterministic in `seed`.
  Vector initial_params(std::uint64_t seed) const override;

  const ResistiveNetworkConfig& config() const { return config_; }
  /// The nominal diode thresholds (num_hidden).
  const Vector& thresholds() const { return thresholds_; }

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 1 << 30; }  // settle_network shards itself

  ResistiveNetworkConfig config_;
  Vector thresholds_;
};

}  // namespace pnn::digital_twin

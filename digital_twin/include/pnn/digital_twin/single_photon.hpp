#pragma once
/// Single-photon-detection layer (SPDNN), PHYSICS.md "Optical (b)": an optical matrix-vector
/// product whose outputs are read by single-photon detectors.
///
///   z = W x,   λ_i = N_ph · |z_i|,   P(click_i) = 1 − (1 − p_d) · exp(−η λ_i)
///
/// The twin returns the click probability, i.e. the expectation of the binary detector output.
/// Physics-aware training feeds it the clicks measured on the hardware and back-propagates through
/// this expectation (a straight-through estimator on the expectation, as in the SPDNN paper).
///
/// Units: x is the input modulator's intensity transmission in [0, 1]; W is the weight
/// modulator's field transmission in [−1, 1] (sign by a 0/π phase); N_ph is the mean number of
/// photons reaching a detector per unit |z|; y is a probability (clicks per inference).
///
/// Non-smoothness of |z|: the model is continuous but has a cusp at z_i = 0, where its gradient
/// jumps from −η N_ph to +η N_ph (times the no-click probability). `vjp` returns the derivative for
/// z_i ≠ 0 exactly and the subgradient 0 at z_i = 0 exactly (sign(0) = 0): the mid-point of the
/// two one-sided derivatives, so a neuron sitting exactly at zero is not pushed either way. Exact
/// zeros occur only for all-zero inputs or weights. Finite-difference checks must stay away from
/// the cusp (|z_i| ≫ step).
///
/// θ layout: W (num_outputs × num_inputs, row-major).
/// Physical parameters φ = (η, p_d): detector efficiency and dark-click probability per inference
/// window. The nominal twin is ideal (η = 1, p_d = 0), i.e. exactly 1 − exp(−λ); calibration fits
/// both. Reverse mode is exact (`vjp`, `physical_vjp`).
#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

struct SinglePhotonConfig {
  Index num_inputs = 0;           ///< ≥ 1
  Index num_outputs = 0;          ///< detectors (neurons), ≥ 1
  double photons_per_unit = 1.0;  ///< N_ph, > 0: mean photons at a detector per unit |z|
  double efficiency = 1.0;        ///< η, finite (physically in (0, 1])
  double dark_probability = 0.0;  ///< p_d, finite (physically in [0, 1))
};

class SinglePhotonModel final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on sizes < 1, N_ph ≤ 0 or non-finite values.
  explicit SinglePhotonModel(SinglePhotonConfig config);

  std::string name() const override { return "optical-spd"; }
  Index num_inputs() const override { return config_.num_inputs; }
  Index num_outputs() const override { return config_.num_outputs; }
  Index num_params() const override { return config_.num_inputs * config_.num_outputs; }
  /// Uniform(±w) with w = min(1, 2 / (N_ph √inputs)): about one photon per neuron for inputs of a
  /// few lit pixels, so that neither almost all nor almost no detectors click at the start.
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return 2; }
  Vector physical_params() const override;
  ModelPtr with_physical_params(const VectorRef& phi) const override;

  const SinglePhotonConfig& config() const { return config_; }
  /// Mean photons λ = N_ph |x Wᵀ| arriving at each detector (before the efficiency η):
  /// batch × num_outputs. Same shape checks as `forward`.
  Matrix photons(const MatrixRef& x, const VectorRef& theta) const;

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Matrix pre_activation(const MatrixRef& x, const VectorRef& theta) const;
  Index min_rows_per_shard() const override { return 256; }

  SinglePhotonConfig config_;
};

}  // namespace pnn::digital_twin

#pragma once
/// Twins learned from measurements that contain a small multilayer perceptron (issue 13):
///
/// - `MlpTwin` (black box): y = y_offset + y_scale ∘ mlp([x̂, θ̂]) with x̂ = (x − x_offset) / x_scale
///   and θ̂ likewise: θ acts as an input of the network (the PAT reference's DNN twins). For
///   setups with few parameters, or where θ is input-like (the SHG pulse shaper).
/// - `ResidualTwin`: y = physics(x; θ) + y_scale ∘ mlp([x̂, θ̂ if uses_theta]): a physics twin
///   plus a correction fitted on the measured residuals. The last layer starts at zero, so an
///   unfitted residual twin is its physics twin.
///
/// The MLP has tanh hidden layers and a linear output; its weights are the model's physical
/// parameters φ (`physical_vjp` is exact), so the calibration machinery (calibration.hpp) fits
/// them like any other φ. Weight layout: per layer W (outputs × inputs, row-major), then b.
/// Normalisation constants are fixed at construction (the fit sets them from the samples).
#include <vector>

#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// An affine normalisation per entry: v̂ = (v − offset) / scale. Scales must be > 0.
struct Normalizer {
  Vector offset;
  Vector scale;
};

/// Number of weights of an MLP with layer sizes `sizes` (inputs, hidden…, outputs).
Index mlp_num_weights(const std::vector<Index>& sizes);
/// Glorot-uniform weights, zero biases; the last layer zero if `zero_last`.
Vector mlp_initial_weights(const std::vector<Index>& sizes, std::uint64_t seed, bool zero_last);

struct MlpTwinConfig {
  Index num_inputs = 0;
  Index num_params = 0;
  Index num_outputs = 0;
  std::vector<Index> hidden = {64, 64};
  Normalizer x, theta, y;  ///< sizes num_inputs, num_params, num_outputs
  Vector weights;          ///< empty: mlp_initial_weights(…, seed, false)
  std::uint64_t seed = 0;
};

class MlpTwin final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument on sizes < 1 (inputs, outputs, hidden), a normaliser of the
  /// wrong size or with a scale ≤ 0, or a weight vector of the wrong size.
  explicit MlpTwin(MlpTwinConfig config);

  std::string name() const override { return "mlp-twin"; }
  Index num_inputs() const override { return config_.num_inputs; }
  Index num_outputs() const override { return config_.num_outputs; }
  Index num_params() const override { return config_.num_params; }
  /// The middle of the normalised range (θ = theta.offset).
  Vector initial_params(std::uint64_t seed) const override;

  Index num_physical_params() const override { return config_.weights.size(); }
  Vector physical_params() const override { return config_.weights; }
  ModelPtr with_physical_params(const VectorRef& phi) const override;
  const MlpTwinConfig& config() const { return config_; }

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 32; }
  std::vector<Index> sizes_;
  MlpTwinConfig config_;
};

struct ResidualTwinConfig {
  ModelPtr physics;             ///< the physics twin (not null)
  std::vector<Index> hidden = {64};
  bool uses_theta = false;      ///< θ̂ is an input of the correction
  Normalizer x, theta;          ///< theta only if uses_theta
  Vector y_scale;               ///< size num_outputs, > 0
  Vector weights;               ///< empty: mlp_initial_weights(…, seed, true)
  std::uint64_t seed = 0;
};

class ResidualTwin final : public DifferentiableModel {
 public:
  /// Throws std::invalid_argument as MlpTwin does, and on a null physics twin.
  explicit ResidualTwin(ResidualTwinConfig config);

  std::string name() const override { return "residual-" + config_.physics->name(); }
  Index num_inputs() const override { return config_.physics->num_inputs(); }
  Index num_outputs() const override { return config_.physics->num_outputs(); }
  Index num_params() const override { return config_.physics->num_params(); }
  Vector initial_params(std::uint64_t seed) const override {
    return config_.physics->initial_params(seed);
  }

  Index num_physical_params() const override { return config_.weights.size(); }
  Vector physical_params() const override { return config_.weights; }
  ModelPtr with_physical_params(const VectorRef& phi) const override;
  const ResidualTwinConfig& config() const { return config_; }

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  /// The physics twin shards the batch itself; the correction is cheap next to it.
  Index min_rows_per_shard() const override { return 1 << 20; }
  std::vector<Index> sizes_;
  ResidualTwinConfig config_;
};

}  // namespace pnn::digital_twin

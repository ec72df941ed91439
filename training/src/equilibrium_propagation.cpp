// Equilibrium propagation and coupled learning on an energy-based physical layer
// (learning_rule.hpp; docs/learning-rules.md). Both rules only settle the device and take
// differences of each conductance's ½(ΔV)² between two equilibria: no twin, no backward pass.
#include <cmath>

#include "rules_detail.hpp"

namespace pnn::training {

namespace dt = digital_twin;

namespace detail {

const dt::ResistiveNetworkModel* energy_structure(const drivers::PhysicalSystem& device) {
  // The nominal twin is the datasheet's and lives as long as the device.
  return dynamic_cast<const dt::ResistiveNetworkModel*>(device.nominal_twin().get());
}

}  // namespace detail

bool can_settle(const drivers::PhysicalSystem& device) {
  return device.spec().settle_nodes > 0 && detail::energy_structure(device) != nullptr;
}

namespace {

// What both rules share: one settling layer, the free phase, and the readout.
class SettleRule : public LearningRule {
 public:
  Capabilities needs(bool /*physical*/) const override { return kSettle; }
  Mode mode() const override { return Mode::kHardware; }

  void check_network(const Network& network) const override {
    if (network.layers().size() != 1) {
      throw RuleError("rule '" + name() +
                      "' trains a network of exactly one energy-based "
                      "physical layer (the resistive network's inputs and logits are the "
                      "network's); this network has " +
                      std::to_string(network.layers().size()) + " layers");
    }
  }

  Result<RuleStep> step(const Network& network, const Batch& batch) override {
    const Layer& layer = network.layers().front();
    const dt::ResistiveNetworkModel* energy = detail::energy_structure(*layer.device);
    if (energy == nullptr) throw std::logic_error("check_rule_fits lets no non-settling layer in");
    const dt::ResistiveNetworkConfig& c = energy->config();
    if (batch.num_classes != c.num_outputs) {
      throw RuleError("rule '" + name() + "': " + std::to_string(batch.num_classes) +
                      " classes, but layer '" + layer.name + "' reads " +
                      std::to_string(c.num_outputs) + " logits");
    }
    const Matrix target = one_hot(batch.labels, batch.num_classes);
    auto free = network.settle_layer(0, batch.x, dt::SettleBoundary::free(), false);
    if (!free) return free.error();
    const Matrix& v0 = free.value();
    auto grad = contrast(network, batch.x, target, v0);
    if (!grad) return grad.error();
    RuleStep out;
    out.output = dt::readout(c, v0);
    out.loss = 0.5 * (out.output - target).squaredNorm() / static_cast<double>(batch.x.rows());
    out.grads = std::vector<Vector>{std::move(grad).value() / static_cast<double>(batch.x.rows())};
    return out;
  }

 protected:
  // Σ over the batch of the gradient estimate from the free state v0 (further settles as needed).
  virtual Result<Vector> contrast(const Network& network, const MatrixRef& x, const Matrix& target,
                                  const Matrix& v0) const = 0;

  static const dt::ResistiveNetworkConfig& config_of(const Network& network) {
    return detail::energy_structure(*network.layers().front().device)->config();
  }
  // ∂E/∂θ at the node voltages `v`, summed over the batch; x clipped as the device saw it.
  static Vector energy_grad(const Network& network, const MatrixRef& x, const Matrix& v) {
    const Layer& layer = network.layers().front();
    const auto& spec = layer.device->spec();
    const Matrix sent = x.cwiseMax(spec.input_min).cwiseMin(spec.input_max);
    return dt::energy_theta_grad(config_of(network), sent, v);
  }
};

class EquilibriumPropagation final : public SettleRule {
 public:
  explicit EquilibriumPropagation(EpConfig config) : config_(config) {}
  std::string name() const override { return "ep"; }

 private:
  Result<Vector> contrast(const Network& network, const MatrixRef& x, const Matrix& target,
                          const Matrix& v0) const override {
    const double beta = config_.beta;
    auto nudged = [&](double b) {
      return network.settle_layer(0, x, dt::SettleBoundary::nudged(b, target), config_.warm_start);
    };
    using N = EpConfig::Nudging;
    if (config_.nudging == N::kCentred) {
      auto plus = nudged(beta);
      if (!plus) return plus.error();
      auto minus = nudged(-beta);
      if (!minus) return minus.error();
      return Vector(
          (energy_grad(network, x, plus.value()) - energy_grad(network, x, minus.value())) /
          (2.0 * beta));
    }
    const double sign = config_.nudging == N::kPositive ? 1.0 : -1.0;
    auto v = nudged(sign * beta);
    if (!v) return v.error();
    return Vector(sign * (energy_grad(network, x, v.value()) - energy_grad(network, x, v0)) / beta);
  }

  EpConfig config_;
};

class CoupledLearning final : public SettleRule {
 public:
  explicit CoupledLearning(CoupledLearningConfig config) : config_(config) {}
  std::string name() const override { return "coupled-learning"; }

 private:
  Result<Vector> contrast(const Network& network, const MatrixRef& x, const Matrix& target,
                          const Matrix& v0) const override {
    const auto& c = config_of(network);
    const Matrix y_free = v0.rightCols(c.num_output_nodes());
    const Matrix y = dt::output_nodes_for(c, v0, target);
    auto clamped = network.settle_layer(
        0, x, dt::SettleBoundary::clamped(y_free + config_.eta * (y - y_free)), config_.warm_start);
    if (!clamped) return clamped.error();
    return Vector((energy_grad(network, x, clamped.value()) - energy_grad(network, x, v0)) /
                  config_.eta);
  }

  CoupledLearningConfig config_;
};

}  // namespace

const char* to_string(EpConfig::Nudging nudging) {
  switch (nudging) {
    case EpConfig::Nudging::kPositive:
      return "positive";
    case EpConfig::Nudging::kNegative:
      return "negative";
    case EpConfig::Nudging::kCentred:
      return "centred";
  }
  return "?";
}

namespace detail {

std::unique_ptr<LearningRule> make_ep(const EpConfig& config) {
  return std::make_unique<EquilibriumPropagation>(config);
}

std::unique_ptr<LearningRule> make_coupled_learning(const CoupledLearningConfig& config) {
  return std::make_unique<CoupledLearning>(config);
}

}  // namespace detail

}  // namespace pnn::training

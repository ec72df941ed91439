// Predictive coding (learning_rule.hpp, PcConfig): iterative inference of the layers' latent
// values, then a local update per layer from its own prediction error.
#include "rules_detail.hpp"

namespace pnn::training::detail {
namespace {

class PredictiveCoding final : public LearningRule {
 public:
  explicit PredictiveCoding(const PcConfig& config) : config_(config) {}
  std::string name() const override { return "pc"; }
  // Predictions are measured (hardware forward); the local errors travel through the twins'
  // vjp, as PAT's backward pass does.
  Capabilities needs(bool physical) const override {
    return physical ? kHardwareForward | kModelVjp : kModelForward | kModelVjp;
  }
  Mode mode() const override { return Mode::kHardware; }

  Result<RuleStep> step(const Network& net, const Batch& batch) override {
    const bool strict = config_.variant == PcConfig::Variant::kStrict;
    const std::size_t n = net.layers().size();
    auto traced = net.forward(batch.x, Mode::kHardware);
    if (!traced) return traced.error();
    const Trace& feed = traced.value();
    const LossValue first = batch.evaluate(feed.output);

    // mu[i]: layer i's prediction, starting at the feed-forward pass; v[i] (i < n − 1): the
    // latent value of layer i's output, starting at its prediction (all errors zero).
    std::vector<Matrix> mu(n);
    for (std::size_t i = 0; i + 1 < n; ++i) mu[i] = feed.inputs[i + 1];
    mu[n - 1] = feed.output;
    std::vector<Matrix> v(mu.begin(), mu.end() - 1);
    // Layer i's input: the data for the first layer; the latent below it (strict) or the
    // recorded feed-forward input (fixed prediction: Jacobians stay at the feed-forward pass).
    auto input_of = [&](std::size_t i) -> const Matrix& {
      if (i == 0) return feed.inputs[0];
      return strict ? v[i - 1] : feed.inputs[i];
    };

    const int steps = config_.iterations > 0 ? config_.iterations : static_cast<int>(n) - 1;
    const double eta = config_.inference_rate;
    std::vector<Matrix> eps(n);
    for (int k = 0;; ++k) {
      eps[n - 1] = (k == 0 || !strict) ? first.grad : batch.evaluate(mu[n - 1]).grad;
      for (std::size_t i = 0; i + 1 < n; ++i) eps[i] = mu[i] - v[i];
      if (k == steps) break;
      // One descent step on the energy for every latent at once, from this step's errors:
      // ∂F/∂v_i = −ε_i + J_{i+1}ᵀ ε_{i+1}.
      for (std::size_t i = 0; i + 1 < n; ++i) {
        const auto cot = net.vjp_layer(i + 1, input_of(i + 1), eps[i + 1]);
        v[i] -= eta * (cot.x_bar - eps[i]);
      }
      if (!strict) continue;
      // The layers above the first predict from the new latents; the first layer's input is the
      // data, so its prediction does not change.
      for (std::size_t i = 1; i < n; ++i) {
        auto y = net.forward_layer(i, v[i - 1], Mode::kHardware);
        if (!y) return y.error();
        mu[i] = std::move(y).value();
      }
    }

    RuleStep out;
    std::vector<Vector> grads(n);
    for (std::size_t i = 0; i < n; ++i) {
      grads[i] = net.vjp_layer(i, input_of(i), eps[i]).theta_bar;
    }
    out.grads = std::move(grads);
    out.loss = first.loss;
    out.output = feed.output;
    return out;
  }

 private:
  PcConfig config_;
};

}  // namespace

std::unique_ptr<LearningRule> make_pc(const PcConfig& config) {
  return std::make_unique<PredictiveCoding>(config);
}

}  // namespace pnn::training::detail

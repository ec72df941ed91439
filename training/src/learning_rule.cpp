// The rule interface, the gradient rules (PAT, in-silico) and the rule factory; the zeroth-order
// rules are in zeroth_order.cpp, predictive coding in predictive_coding.cpp.
#include "pnn/training/learning_rule.hpp"

#include <cmath>

#include "rules_detail.hpp"

namespace pnn::training {

LayerSummary summarize(const Layer& layer) {
  Capabilities c = 0;
  if (layer.is_physical()) c |= kHardwareForward;
  if (layer.has_model()) c |= kModelForward | kModelVjp;
  if (layer.is_physical() && can_settle(*layer.device)) c |= kSettle;
  return {layer.name, layer.is_physical(), c};
}

std::vector<LayerSummary> summarize(const Network& network) {
  std::vector<LayerSummary> out;
  for (const auto& l : network.layers()) out.push_back(summarize(l));
  return out;
}

std::string describe(Capabilities c, bool physical) {
  const std::string model = physical ? "twin" : "model";
  std::string out;
  auto add = [&](Capabilities bit, const std::string& what) {
    if (c & bit) out += (out.empty() ? "" : ", ") + what;
  };
  add(kHardwareForward, "hardware forward");
  add(kModelForward, model + " forward");
  add(kModelVjp, model + " vjp");
  add(kSettle, "settle");
  return out.empty() ? "nothing" : out;
}

LossValue Batch::evaluate(const MatrixRef& output) const {
  return loss == LossKind::kCrossEntropy ? softmax_cross_entropy(output, labels)
                                         : mean_squared_error(output, one_hot(labels, num_classes));
}

void LearningRule::set_state(const RuleState& state) {
  if (!state.kind.empty()) {
    throw RuleError("the checkpoint holds the state of rule '" + state.kind +
                    "', but this run's rule '" + name() +
                    "' keeps none (resume with the rule the checkpoint was trained with)");
  }
}

void LearningRule::check_network(const Network& /*network*/) const {}

void check_rule_fits(const LearningRule& rule, const std::vector<LayerSummary>& layers) {
  std::string problems;
  for (const auto& layer : layers) {
    const Capabilities missing = rule.needs(layer.physical) & ~layer.provides;
    if (missing == 0) continue;
    problems += std::string(problems.empty() ? "" : "; ") + "layer '" + layer.name + "' (" +
                (layer.physical ? "physical" : "digital") +
                (layer.physical && !(layer.provides & kModelVjp) ? ", no twin" : "") +
                ") cannot provide " + describe(missing, layer.physical);
  }
  if (problems.empty()) return;
  std::string fix = "give those layers a twin";
  if (rule.needs(true) & kSettle) {
    fix = "settle is a call of energy-based setups only (resistive-network), and rule '" +
          rule.name() + "' trains a network of one such layer";
  }
  std::string twin_free;
  for (const auto& name : rule_names()) {
    const auto candidate = make_learning_rule(default_rule_config(name), 0);
    bool fits = true;
    for (const auto& layer : layers)
      fits &= (candidate->needs(layer.physical) & ~layer.provides) == 0;
    if (fits) twin_free += (twin_free.empty() ? "" : ", ") + name;
  }
  throw RuleError(
      problems + ", which rule '" + rule.name() + "' needs (" +
      (twin_free.empty() ? fix : fix + ", or use a rule these layers support: " + twin_free) + ")");
}

namespace {

// Backpropagation through the layers' models at the recorded inputs: through the twins after a
// hardware forward (PAT), or after a twin forward (in-silico).
class GradientRule final : public LearningRule {
 public:
  explicit GradientRule(Mode mode) : mode_(mode) {}
  std::string name() const override { return mode_ == Mode::kHardware ? "pat" : "in-silico"; }
  Capabilities needs(bool physical) const override {
    if (physical && mode_ == Mode::kHardware) return kHardwareForward | kModelVjp;
    return kModelForward | kModelVjp;
  }
  Mode mode() const override { return mode_; }
  Result<RuleStep> step(const Network& network, const Batch& batch) override {
    auto trace = network.forward(batch.x, mode_);
    if (!trace) return trace.error();
    const LossValue loss = batch.evaluate(trace.value().output);
    RuleStep out;
    out.grads = network.backward(trace.value(), loss.grad);
    out.loss = loss.loss;
    out.output = std::move(trace.value().output);
    return out;
  }

 private:
  Mode mode_;
};

void require(bool ok, const std::string& rule, const std::string& option, const std::string& what) {
  if (!ok) throw RuleError(rule + "." + option + ": " + what);
}

void validate(const SpsaConfig& c) {
  require(std::isfinite(c.a) && c.a > 0.0, "spsa", "a", "must be > 0 (the gain numerator)");
  require(std::isfinite(c.c) && c.c > 0.0, "spsa", "c",
          "must be > 0 (perturbation size in θ units)");
  require(std::isfinite(c.A) && c.A >= 0.0, "spsa", "A", "must be ≥ 0");
  require(c.alpha > 0.0 && c.alpha <= 1.0, "spsa", "alpha", "must be in (0, 1] (Spall: 0.602)");
  require(c.gamma > 0.0 && c.gamma <= 0.5, "spsa", "gamma", "must be in (0, 0.5] (Spall: 0.101)");
  require(c.perturbations >= 1 && c.perturbations <= 100000, "spsa", "perturbations",
          "must be 1..100000");
}

void validate(const MgdConfig& c) {
  require(std::isfinite(c.amplitude) && c.amplitude > 0.0, "mgd", "amplitude",
          "must be > 0 (Δθ in θ units)");
  require(c.tau_x >= 1, "mgd", "tau_x", "must be ≥ 1 (time steps per batch)");
  require(c.tau_theta >= 1 && c.tau_theta % c.tau_x == 0, "mgd", "tau_theta",
          "must be a multiple of tau_x (" + std::to_string(c.tau_x) +
              "): updates happen at the end of a batch");
  require(std::isfinite(c.tau_hp) && c.tau_hp >= 1.0, "mgd", "tau_hp",
          "must be ≥ 1 (time steps; 1 = the previous cost is the baseline)");
}

void validate(const PcConfig& c) {
  require(c.iterations >= 0 && c.iterations <= 100000, "pc", "iterations",
          "must be 0..100000 (0 = the number of layers − 1)");
  require(std::isfinite(c.inference_rate) && c.inference_rate > 0.0 && c.inference_rate <= 1.0,
          "pc", "inference_rate", "must be in (0, 1] (1 with variant fixed equals backprop)");
}

void validate(const ForwardForwardOptions& c, const std::string& rule) {
  require(std::isfinite(c.threshold) && c.threshold >= 0.0, rule, "threshold",
          "must be ≥ 0 (τ per output unit)");
  require(c.head >= 1 && c.head <= 1000, rule, "head", "must be 1..1000 (readout layers)");
}

}  // namespace

const char* to_string(PcConfig::Variant variant) {
  return variant == PcConfig::Variant::kStrict ? "strict" : "fixed";
}

const char* to_string(MgdConfig::Code code) {
  switch (code) {
    case MgdConfig::Code::kCdma:
      return "cdma";
    case MgdConfig::Code::kFdma:
      return "fdma";
    case MgdConfig::Code::kTdma:
      return "tdma";
  }
  return "?";
}

std::string to_string(const RuleConfig& rule) { return rule_names()[rule.index()]; }

const std::vector<std::string>& rule_names() {
  // In the order of RuleConfig's alternatives (to_string indexes it).
  static const std::vector<std::string> names = {
      "pat", "in-silico", "spsa", "mgd", "pc", "ff", "scff", "probe", "ep", "coupled-learning"};
  return names;
}

RuleConfig default_rule_config(const std::string& name) {
  if (name == "pat") return PatConfig{};
  if (name == "in-silico") return InSilicoConfig{};
  if (name == "spsa") return SpsaConfig{};
  if (name == "mgd") return MgdConfig{};
  if (name == "pc") return PcConfig{};
  if (name == "ff") return FfConfig{};
  if (name == "scff") return ScffConfig{};
  if (name == "probe") return ProbeConfig{};
  if (name == "ep") return EpConfig{};
  if (name == "coupled-learning") return CoupledLearningConfig{};
  std::string known;
  for (const auto& n : rule_names()) known += (known.empty() ? "" : ", ") + n;
  throw RuleError("unknown learning rule '" + name + "' (rules: " + known + ")");
}

std::unique_ptr<LearningRule> make_learning_rule(const RuleConfig& config, std::uint64_t seed) {
  struct Make {
    std::uint64_t seed;
    std::unique_ptr<LearningRule> operator()(const PatConfig&) const {
      return std::make_unique<GradientRule>(Mode::kHardware);
    }
    std::unique_ptr<LearningRule> operator()(const InSilicoConfig&) const {
      return std::make_unique<GradientRule>(Mode::kTwin);
    }
    std::unique_ptr<LearningRule> operator()(const SpsaConfig& c) const {
      validate(c);
      return detail::make_spsa(c, seed);
    }
    std::unique_ptr<LearningRule> operator()(const MgdConfig& c) const {
      validate(c);
      return detail::make_mgd(c, seed);
    }
    std::unique_ptr<LearningRule> operator()(const PcConfig& c) const {
      validate(c);
      return detail::make_pc(c);
    }
    std::unique_ptr<LearningRule> operator()(const FfConfig& c) const {
      validate(c, "ff");
      require(std::isfinite(c.label_scale) && c.label_scale > 0.0, "ff", "label_scale",
              "must be > 0");
      return detail::make_forward_forward(c, seed);
    }
    std::unique_ptr<LearningRule> operator()(const ScffConfig& c) const {
      validate(c, "scff");
      return detail::make_forward_forward(c, seed);
    }
    std::unique_ptr<LearningRule> operator()(const ProbeConfig& c) const {
      require(c.head >= 1 && c.head <= 1000, "probe", "head", "must be 1..1000 (readout layers)");
      return detail::make_forward_forward(c, seed);
    }
    std::unique_ptr<LearningRule> operator()(const EpConfig& c) const {
      require(std::isfinite(c.beta) && c.beta > 0.0 && c.beta <= 1.0, "ep", "beta",
              "must be in (0, 1] mS (the nudging strength; small β, e.g. 0.002, for the gradient)");
      return detail::make_ep(c);
    }
    std::unique_ptr<LearningRule> operator()(const CoupledLearningConfig& c) const {
      require(std::isfinite(c.eta) && c.eta > 0.0 && c.eta <= 1.0, "coupled-learning", "eta",
              "must be in (0, 1] (the clamping fraction)");
      return detail::make_coupled_learning(c);
    }
  };
  return std::visit(Make{seed}, config);
}

}  // namespace pnn::training

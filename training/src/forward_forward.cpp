// Forward-forward (ff), self-contrastive forward-forward (scff) and the readout on frozen features
// (probe): learning_rule.hpp, ForwardForwardOptions. Every gradient is local: a feature block's
// from its own goodness, the readout's from the cross-entropy through the readout alone.
#include <cmath>

#include "pnn/digital_twin/digital_layers.hpp"
#include "rules_detail.hpp"

namespace pnn::training::detail {
namespace {

enum class Kind { kFf, kScff, kProbe };

// Where things are in the network (layer indices).
struct Plan {
  std::size_t head_start = 0;  // the readout: [head_start, n)
  std::size_t make_at = 0;     // the pad (ff) or duplicate (scff) layer whose output is varied
  struct Block {
    std::size_t first, last;  // layers [first, last]; `first` is the trained one
  };
  std::vector<Block> blocks;
};

double softplus(double z) { return std::max(z, 0.0) + std::log1p(std::exp(-std::abs(z))); }
double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

class ForwardForward final : public LearningRule {
 public:
  ForwardForward(Kind kind, ForwardForwardOptions options, double label_scale, std::uint64_t seed)
      : kind_(kind), options_(options), label_scale_(label_scale), seed_(seed) {}

  std::string name() const override {
    return kind_ == Kind::kFf ? "ff" : kind_ == Kind::kScff ? "scff" : "probe";
  }
  Capabilities needs(bool physical) const override {
    if (!physical) return kModelForward | kModelVjp;
    const bool trained = kind_ != Kind::kProbe && options_.train_physical;
    return kHardwareForward | (trained ? kModelVjp : 0u);
  }
  Mode mode() const override { return Mode::kHardware; }
  void check_network(const Network& net) const override { (void)plan(net); }

  RuleState state() const override {
    if (kind_ == Kind::kProbe) return {};
    return {name(), step_, {}};
  }
  void set_state(const RuleState& s) override {
    if (kind_ == Kind::kProbe) return LearningRule::set_state(s);
    if (s.kind != name() || !s.slots.empty() || s.step < 0) {
      throw RuleError("the checkpoint's learning-rule state is '" + s.kind + "', not " + name() +
                      "'s (resume with the rule the checkpoint was trained with)");
    }
    step_ = s.step;
  }

  Result<RuleStep> step(const Network& net, const Batch& batch) override {
    const Plan p = plan(net);
    const std::size_t n = net.layers().size();
    auto traced = net.forward(batch.x, Mode::kHardware);
    if (!traced) return traced.error();
    const Trace& plain = traced.value();
    std::vector<Vector> grads;
    for (const auto& l : net.layers()) grads.push_back(Vector::Zero(l.theta.size()));
    RuleStep out;

    // The readout: cross-entropy through the last layers only, on the detached features.
    const LossValue ce = batch.evaluate(plain.output);
    Matrix g = ce.grad;
    for (std::size_t i = n; i-- > p.head_start;) {
      auto cot = net.vjp_layer(i, plain.inputs[i], g);
      grads[i] = std::move(cot.theta_bar);
      g = std::move(cot.x_bar);
    }
    out.loss = ce.loss;
    out.output = plain.output;
    const Index rows = batch.x.rows();
    if (kind_ == Kind::kProbe || rows < 2) {  // a one-sample batch has no other sample to contrast
      out.grads = std::move(grads);
      return out;
    }

    // Positive and negative samples at the output of the layer that builds them.
    auto rng = stream(seed_, step_, 0);
    const Matrix& built = plain.inputs[p.make_at + 1];
    Matrix neg = built;
    std::vector<Matrix> pos_in,
        neg_in;  // inputs of layers make_at+1 .. head_start (index − make_at − 1)
    if (kind_ == Kind::kScff) {
      const Index half = built.cols() / 2;
      const Index shift = 1 + static_cast<Index>(rng() % static_cast<std::uint64_t>(rows - 1));
      for (Index r = 0; r < rows; ++r)
        neg.row(r).tail(half) = built.row((r + shift) % rows).head(half);
      for (std::size_t i = p.make_at + 1; i <= p.head_start; ++i) pos_in.push_back(plain.inputs[i]);
    } else {
      const Index first = net.layers()[p.make_at].model->num_inputs();
      if (batch.num_classes < 2) throw RuleError("ff: needs at least two classes");
      if (built.cols() - first < batch.num_classes) {
        throw RuleError("ff: the pad layer '" + net.layers()[p.make_at].name + "' appends " +
                        std::to_string(built.cols() - first) + " zeros, fewer than the " +
                        std::to_string(batch.num_classes) + " classes (make it pad: " +
                        std::to_string(batch.num_classes) + " or more)");
      }
      Matrix pos = built;
      for (Index r = 0; r < rows; ++r) {
        const int wrong = static_cast<int>(
            (batch.labels[r] + 1 +
             static_cast<int>(rng() % static_cast<std::uint64_t>(batch.num_classes - 1))) %
            batch.num_classes);
        pos(r, first + batch.labels[r]) = label_scale_;
        neg(r, first + wrong) = label_scale_;
      }
      auto run = run_features(net, p, std::move(pos));
      if (!run) return run.error();
      pos_in = std::move(run).value();
    }
    auto run = run_features(net, p, std::move(neg));
    if (!run) return run.error();
    neg_in = std::move(run).value();

    // Each block: its goodness loss, back through the block's own layers only.
    const double scale = 1.0 / static_cast<double>(rows);
    for (const auto& block : p.blocks) {
      const std::size_t end = block.last + 1 - (p.make_at + 1);
      const double offset = options_.threshold * static_cast<double>(pos_in[end].cols());
      for (const double sign : {1.0, -1.0}) {  // positives, negatives
        const std::vector<Matrix>& in = sign > 0 ? pos_in : neg_in;
        const Matrix& a = in[end];
        const Vector z = sign * (a.rowwise().squaredNorm().array() - offset).matrix();
        // loss = softplus(−z) per sample; ∂/∂a = −σ(−z)·sign·2a / rows.
        Matrix ga(a.rows(), a.cols());
        for (Index r = 0; r < a.rows(); ++r) {
          out.loss += softplus(-z[r]) * scale;
          ga.row(r) = (-sigmoid(-z[r]) * sign * 2.0 * scale) * a.row(r);
        }
        for (std::size_t i = block.last + 1; i-- > block.first;) {
          auto cot = net.vjp_layer(i, in[i - (p.make_at + 1)], ga);
          if (cot.theta_bar.size() > 0) grads[i] += cot.theta_bar;
          ga = std::move(cot.x_bar);
        }
      }
    }
    ++step_;
    out.grads = std::move(grads);
    return out;
  }

 private:
  bool trained(const Layer& l) const {
    return l.theta.size() > 0 && (!l.is_physical() || options_.train_physical);
  }

  Plan plan(const Network& net) const {
    const auto& layers = net.layers();
    const std::size_t n = layers.size();
    const int head = options_.head;
    if (static_cast<std::size_t>(head) >= n) {
      throw RuleError(name() + ": the readout (head = " + std::to_string(head) +
                      " layers) leaves no feature layers in a network of " + std::to_string(n) +
                      " (set head lower, or add layers)");
    }
    Plan p;
    p.head_start = n - static_cast<std::size_t>(head);
    for (std::size_t i = p.head_start; i < n; ++i) {
      if (layers[i].is_physical()) {
        throw RuleError(name() + ": the readout (the last " + std::to_string(head) +
                        " layers) must be digital, but layer '" + layers[i].name +
                        "' is physical (set head lower)");
      }
    }
    if (kind_ == Kind::kProbe) return p;
    std::size_t first = p.head_start;
    for (std::size_t i = 0; i < p.head_start && first == p.head_start; ++i) {
      if (trained(layers[i])) first = i;
    }
    if (first == p.head_start) {
      throw RuleError(name() + ": no layer with parameters to train in front of the readout");
    }
    const bool found = [&] {
      for (std::size_t i = first; i-- > 0;) {
        const auto* model = layers[i].model.get();
        const bool builds =
            kind_ == Kind::kScff
                ? dynamic_cast<const digital_twin::DuplicateModel*>(model) != nullptr
                : dynamic_cast<const digital_twin::PadModel*>(model) != nullptr;
        if (builds && !layers[i].is_physical()) {
          p.make_at = i;
          return true;
        }
      }
      return false;
    }();
    if (!found) {
      throw RuleError(kind_ == Kind::kScff
                          ? "scff: needs a duplicate layer in front of the first trained layer '" +
                                layers[first].name + "' (it makes the pairs [x, x] and [x, x'])"
                          : "ff: needs a pad layer in front of the first trained layer '" +
                                layers[first].name + "' (the label is written into its zeros)");
    }
    for (std::size_t i = first; i < p.head_start; ++i) {
      if (!trained(layers[i])) continue;
      std::size_t last = i;
      while (last + 1 < p.head_start && layers[last + 1].theta.size() == 0 &&
             !layers[last + 1].is_physical()) {
        ++last;
      }
      p.blocks.push_back({i, last});
    }
    return p;
  }

  // The layers after the building one up to the readout, on `h`: the input of each of them and
  // of the readout (index i − make_at − 1).
  Result<std::vector<Matrix>> run_features(const Network& net, const Plan& p, Matrix h) const {
    std::vector<Matrix> inputs;
    for (std::size_t i = p.make_at + 1; i < p.head_start; ++i) {
      auto y = net.forward_layer(i, h, Mode::kHardware);
      if (!y) return y.error();
      inputs.push_back(std::move(h));
      h = std::move(y).value();
    }
    inputs.push_back(std::move(h));
    return inputs;
  }

  Kind kind_;
  ForwardForwardOptions options_;
  double label_scale_;
  std::uint64_t seed_;
  std::int64_t step_ = 0;  // updates made: the position of the draws' stream
};

}  // namespace

std::unique_ptr<LearningRule> make_forward_forward(const RuleConfig& config, std::uint64_t seed) {
  if (const auto* ff = std::get_if<FfConfig>(&config)) {
    return std::make_unique<ForwardForward>(Kind::kFf, *ff, ff->label_scale, seed);
  }
  if (const auto* scff = std::get_if<ScffConfig>(&config)) {
    return std::make_unique<ForwardForward>(Kind::kScff, *scff, 0.0, seed);
  }
  const auto& probe = std::get<ProbeConfig>(config);
  ForwardForwardOptions options;
  options.head = probe.head;
  return std::make_unique<ForwardForward>(Kind::kProbe, options, 0.0, seed);
}

}  // namespace pnn::training::detail

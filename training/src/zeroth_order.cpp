// The zeroth-order rules: SPSA and MGD. Forward passes only, no twin; every perturbed θ is
// clipped into the layers' limit box before it is sent.
#include <cmath>
#include <complex>
#include <numbers>
#include <random>

#include "rules_detail.hpp"

namespace pnn::training::detail {

// Signs come from raw generator bits (mt19937_64 and seed_seq are specified exactly;
// distributions are not).
std::mt19937_64 stream(std::uint64_t seed, std::int64_t step, std::uint32_t salt) {
  const auto k = static_cast<std::uint64_t>(step);
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32), salt};
  return std::mt19937_64(seq);
}

namespace {

double rademacher(std::mt19937_64& rng) { return (rng() >> 63) != 0 ? 1.0 : -1.0; }

// θ + scale·d clipped into each layer's box.
std::vector<Vector> clipped(const Network& net, const std::vector<Vector>& theta,
                            const std::vector<Vector>& d, double scale) {
  std::vector<Vector> out(theta.size());
  for (std::size_t l = 0; l < theta.size(); ++l) {
    const Layer& layer = net.layers()[l];
    out[l] = (theta[l] + scale * d[l]).cwiseMax(layer.theta_min).cwiseMin(layer.theta_max);
  }
  return out;
}

std::vector<Vector> zeros_like(const std::vector<Vector>& v) {
  std::vector<Vector> out;
  for (const auto& x : v) out.push_back(Vector::Zero(x.size()));
  return out;
}

Index total_size(const std::vector<Vector>& v) {
  Index n = 0;
  for (const auto& x : v) n += x.size();
  return n;
}

// What both rules need: forwards on the hardware (and of the digital layers' models), no twin.
class ForwardOnlyRule : public LearningRule {
 public:
  Capabilities needs(bool physical) const final {
    return physical ? kHardwareForward : kModelForward;
  }
  Mode mode() const final { return Mode::kHardware; }
};

class Spsa final : public ForwardOnlyRule {
 public:
  Spsa(const SpsaConfig& config, std::uint64_t seed) : config_(config), seed_(seed) {}
  std::string name() const override { return "spsa"; }

  Result<RuleStep> step(const Network& net, const Batch& batch) override {
    const double k = static_cast<double>(step_);
    const double a_k = config_.a / std::pow(k + 1.0 + config_.A, config_.alpha);
    const double c_k = config_.c / std::pow(k + 1.0, config_.gamma);
    const std::vector<Vector> theta = net.thetas();
    std::vector<Vector> g = zeros_like(theta);
    std::vector<Vector> delta = zeros_like(theta);
    RuleStep out;
    const int m_count = config_.perturbations;
    for (int m = 0; m < m_count; ++m) {
      auto rng = stream(seed_, step_, static_cast<std::uint32_t>(m));
      for (auto& d : delta) {
        for (Index i = 0; i < d.size(); ++i) d[i] = rademacher(rng);
      }
      const std::vector<Vector> plus = clipped(net, theta, delta, c_k);
      const std::vector<Vector> minus = clipped(net, theta, delta, -c_k);
      auto yp = net.forward(batch.x, Mode::kHardware, plus);
      if (!yp) return yp.error();
      auto ym = net.forward(batch.x, Mode::kHardware, minus);
      if (!ym) return ym.error();
      const double lp = batch.evaluate(yp.value().output).loss;
      const double lm = batch.evaluate(ym.value().output).loss;
      // (θ⁺ − θ⁻)/(4c²) = Δ/(2c) where nothing was clipped: Spall's (L⁺ − L⁻)/(2cΔ_i).
      const double coef = (lp - lm) / (4.0 * c_k * c_k * m_count);
      for (std::size_t l = 0; l < g.size(); ++l) g[l] += coef * (plus[l] - minus[l]);
      out.loss += 0.5 * (lp + lm) / m_count;
      const Matrix mean_out = 0.5 * (yp.value().output + ym.value().output) / m_count;
      out.output = m == 0 ? mean_out : Matrix(out.output + mean_out);
    }
    out.grads = std::move(g);
    out.learning_rate = a_k;
    ++step_;  // only after every call succeeded: a failed step is retried with the same draws
    return out;
  }

  RuleState state() const override { return {name(), step_, {}}; }
  void set_state(const RuleState& s) override {
    if (s.kind != name() || !s.slots.empty() || s.step < 0) {
      throw RuleError("the checkpoint's learning-rule state is '" + s.kind +
                      "', not spsa's (resume with the rule the checkpoint was trained with)");
    }
    step_ = s.step;
  }

 private:
  SpsaConfig config_;
  std::uint64_t seed_;
  std::int64_t step_ = 0;  // k: updates made
};

class Mgd final : public ForwardOnlyRule {
 public:
  Mgd(const MgdConfig& config, std::uint64_t seed) : config_(config), seed_(seed) {}
  std::string name() const override { return "mgd"; }

  Result<RuleStep> step(const Network& net, const Batch& batch) override {
    const std::vector<Vector> theta = net.thetas();
    const Index num_params = total_size(theta);
    if (g_.empty()) g_ = zeros_like(theta);
    if (g_.size() != theta.size() || total_size(g_) != num_params) {
      throw RuleError(
          "mgd: the restored integrator state does not fit this network (resume with "
          "the network the checkpoint was trained with)");
    }
    // Work on copies: a device fault mid-batch leaves the rule's state as it was.
    std::vector<Vector> g = g_;
    double c_lp = c_lp_;
    bool has_baseline = has_baseline_;
    std::int64_t t = t_, integrated = integrated_;
    const double sigma2 = power(num_params);
    std::vector<Vector> code = zeros_like(theta);
    std::vector<Vector> inv_gain;
    if (config_.code == MgdConfig::Code::kFdma) inv_gain = fdma_inverse_gains(theta, num_params);
    RuleStep out;
    for (int s = 0; s < config_.tau_x; ++s, ++t) {
      perturbation(t, num_params, code);
      const std::vector<Vector> sent = clipped(net, theta, code, 1.0);
      auto y = net.forward(batch.x, Mode::kHardware, sent);
      if (!y) return y.error();
      const double cost = batch.evaluate(y.value().output).loss;
      if (has_baseline) {
        const double c_hp = cost - c_lp;
        for (std::size_t l = 0; l < g.size(); ++l) {
          const Vector sent_perturbation = sent[l] - theta[l];
          if (inv_gain.empty()) {
            g[l] += (c_hp / sigma2) * sent_perturbation;
          } else {
            g[l] += (c_hp / sigma2) * sent_perturbation.cwiseProduct(inv_gain[l]);
          }
        }
        c_lp += (cost - c_lp) / config_.tau_hp;
      } else {
        c_lp = cost;
        has_baseline = true;
      }
      ++integrated;
      out.loss += cost / config_.tau_x;
      out.output = s == 0 ? Matrix(y.value().output / config_.tau_x)
                          : Matrix(out.output + y.value().output / config_.tau_x);
    }
    if (integrated >= config_.tau_theta) {
      for (auto& v : g) v /= static_cast<double>(integrated);
      out.grads = std::move(g);
      g = zeros_like(theta);
      integrated = 0;
    }
    g_ = std::move(g);
    c_lp_ = c_lp;
    has_baseline_ = has_baseline;
    t_ = t;
    integrated_ = integrated;
    return out;
  }

  // Slots: G per layer, then [C_lp, baseline started (0/1), steps integrated].
  RuleState state() const override {
    RuleState s{name(), t_, g_};
    Vector tail(3);
    tail << c_lp_, has_baseline_ ? 1.0 : 0.0, static_cast<double>(integrated_);
    s.slots.push_back(tail);
    return s;
  }
  void set_state(const RuleState& s) override {
    if (s.kind != name() || s.slots.empty() || s.slots.back().size() != 3 || s.step < 0) {
      throw RuleError("the checkpoint's learning-rule state is '" + s.kind +
                      "', not mgd's (resume with the rule the checkpoint was trained with)");
    }
    g_.assign(s.slots.begin(), s.slots.end() - 1);
    const Vector& tail = s.slots.back();
    c_lp_ = tail[0];
    has_baseline_ = tail[1] != 0.0;
    integrated_ = static_cast<std::int64_t>(tail[2]);
    t_ = s.step;
  }

 private:
  // σ²: the mean power of one parameter's perturbation over a code period.
  double power(Index num_params) const {
    const double a2 = config_.amplitude * config_.amplitude;
    switch (config_.code) {
      case MgdConfig::Code::kCdma:
        return a2;
      case MgdConfig::Code::kFdma:
        return a2 / 2.0;
      case MgdConfig::Code::kTdma:
        return a2 / static_cast<double>(num_params);
    }
    return a2;
  }

  // θ̃(t) into `code` (same shapes as θ).
  void perturbation(std::int64_t t, Index num_params, std::vector<Vector>& code) const {
    const double amp = config_.amplitude;
    switch (config_.code) {
      case MgdConfig::Code::kCdma: {
        auto rng = stream(seed_, t, 0);
        for (auto& v : code) {
          for (Index i = 0; i < v.size(); ++i) v[i] = amp * rademacher(rng);
        }
        return;
      }
      case MgdConfig::Code::kFdma: {
        const double period = 2.0 * static_cast<double>(num_params) + 2.0;
        Index flat = 0;
        for (auto& v : code) {
          for (Index i = 0; i < v.size(); ++i, ++flat) {
            // k·t reduced modulo the period first, so the phase stays exact for long runs.
            const auto kt =
                static_cast<double>(((flat + 1) * t) % static_cast<std::int64_t>(period));
            v[i] = amp * std::sin(2.0 * std::numbers::pi * kt / period);
          }
        }
        return;
      }
      case MgdConfig::Code::kTdma: {
        auto rng = stream(seed_, t, 0);
        const double sign = rademacher(rng);
        Index active = static_cast<Index>(t % num_params);
        for (auto& v : code) {
          v.setZero();
          if (active >= 0 && active < v.size()) v[active] = amp * sign;
          active -= v.size();
        }
        return;
      }
    }
  }

  // 1 / Re H(ω) of the high-pass C̃(t) = C(t) − C_lp(t−1) at each parameter's frequency:
  // H(ω) = (1 − z⁻¹) / (1 − (1 − β) z⁻¹), z = e^{iω}, β = 1/τ_hp.
  std::vector<Vector> fdma_inverse_gains(const std::vector<Vector>& theta, Index num_params) const {
    const double period = 2.0 * static_cast<double>(num_params) + 2.0;
    const double beta = 1.0 / config_.tau_hp;
    std::vector<Vector> out = zeros_like(theta);
    Index flat = 0;
    for (auto& v : out) {
      for (Index i = 0; i < v.size(); ++i, ++flat) {
        const double w = 2.0 * std::numbers::pi * static_cast<double>(flat + 1) / period;
        const std::complex<double> zinv = std::polar(1.0, -w);
        v[i] = 1.0 / ((1.0 - zinv) / (1.0 - (1.0 - beta) * zinv)).real();
      }
    }
    return out;
  }

  MgdConfig config_;
  std::uint64_t seed_;
  std::vector<Vector> g_;  // G, the integrated estimate of the current window
  double c_lp_ = 0.0;      // the low-passed cost (baseline)
  bool has_baseline_ = false;
  std::int64_t t_ = 0;  // time steps so far: the code's phase and random stream
  std::int64_t integrated_ = 0;
};

}  // namespace

std::unique_ptr<LearningRule> make_spsa(const SpsaConfig& config, std::uint64_t seed) {
  return std::make_unique<Spsa>(config, seed ^ 0x5350534152554c45ull);
}

std::unique_ptr<LearningRule> make_mgd(const MgdConfig& config, std::uint64_t seed) {
  return std::make_unique<Mgd>(config, seed ^ 0x4d4744434f444553ull);
}

}  // namespace pnn::training::detail

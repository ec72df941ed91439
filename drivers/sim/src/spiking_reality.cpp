#include "spiking_reality.hpp"

#include <algorithm>
#include <cmath>

namespace pnn::drivers::sim {

namespace dt = digital_twin;

namespace {

// Fixed-pattern spreads (relative unless noted) of the two gap levels.
struct Spread {
  double threshold, leak, reset, tau, gain, ro_offset, ro_gain, noise, jitter;
  int max_refractory;
};
constexpr Spread kSmall{0.02, 0.01, 0.01, 0.05, 0.05, 0.02, 0.02, 0.01, 0.3, 0};
constexpr Spread kLarge{0.10, 0.05, 0.05, 0.20, 0.25, 0.10, 0.10, 0.02, 0.5, 2};
constexpr Spread kNone{0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

}  // namespace

SpikingReality::SpikingReality(const SpikingRealityConfig& config)
    : config_(config), rng_(config.seed) {
  const dt::SpikingLifConfig& c = config.datasheet;
  const Spread& s = config.gap == "large" ? kLarge : config.gap == "small" ? kSmall : kNone;
  std::normal_distribution<double> n01(0.0, 1.0);
  const auto spread = [&](Index n, double mean, double rel) {
    Vector v(n);
    for (Index i = 0; i < n; ++i) v[i] = mean * std::max(0.3, 1.0 + rel * n01(rng_));
    return v;
  };
  const auto offset = [&](Index n, double sigma) {
    Vector v(n);
    for (Index i = 0; i < n; ++i) v[i] = sigma * n01(rng_);
    return v;
  };
  const auto decay = [&](Index n, double tau) {
    Vector v = spread(n, tau, s.tau);
    for (Index i = 0; i < n; ++i) v[i] = std::exp(-c.dt_us / v[i]);
    return v;
  };
  const Index H = c.num_hidden, O = c.num_outputs;
  threshold_ = spread(H, c.threshold, s.threshold);
  leak_ = offset(H, s.leak);
  reset_ = offset(H, s.reset);
  alpha_h_ = decay(H, c.tau_syn_us);
  beta_h_ = decay(H, c.tau_mem_us);
  alpha_o_ = decay(O, c.tau_syn_us);
  beta_o_ = decay(O, c.tau_mem_us);
  refractory_.resize(H);
  std::uniform_int_distribution<int> refr(0, s.max_refractory);
  for (Index j = 0; j < H; ++j) refractory_[j] = refr(rng_);
  row_in_ = spread(c.num_channels(), 1.0, s.gain);
  col_hidden_ = spread(H, 1.0, s.gain);
  row_hidden_ = spread(H, 1.0, s.gain);
  col_out_ = spread(O, 1.0, s.gain);
  ro_offset_ = offset(O, s.ro_offset);
  ro_gain_ = spread(O, 1.0, s.ro_gain);
  noise_ = config.noise >= 0.0 ? config.noise : s.noise;
  jitter_ = config.jitter >= 0.0 ? config.jitter : s.jitter;
}

Matrix SpikingReality::run(const MatrixRef& x, const VectorRef& theta) {
  const dt::SpikingLifConfig& c = config_.datasheet;
  std::vector<std::vector<dt::InputEvent>> events(static_cast<std::size_t>(x.rows()));
  for (Index r = 0; r < x.rows(); ++r) events[r] = dt::encode_events(c, x.row(r).transpose());
  return spike_run(events, theta).outputs;
}

ChipRun SpikingReality::spike_run(const std::vector<std::vector<dt::InputEvent>>& events,
                                  const VectorRef& theta) {
  std::lock_guard lock(mutex_);
  const dt::SpikingLifConfig& c = config_.datasheet;
  const Index B = static_cast<Index>(events.size()), C = c.num_channels(), H = c.num_hidden,
              O = c.num_outputs, T = c.num_steps;
  // Effective synapses: whole levels × row gain × column gain × the nominal current per level.
  Matrix w_in(H, C), w_out(O, H);
  for (Index j = 0; j < H; ++j)
    for (Index k = 0; k < C; ++k)
      w_in(j, k) = std::round(theta[j * C + k]) * row_in_[k] * col_hidden_[j] * c.weight_scale_in;
  for (Index o = 0; o < O; ++o)
    for (Index j = 0; j < H; ++j)
      w_out(o, j) = std::round(theta[c.num_in_weights() + o * H + j]) * row_hidden_[j] *
                    col_out_[o] * c.weight_scale_out;
  // Input spikes per step (jittered), as T matrices B × C, kept sparse as lists.
  std::normal_distribution<double> n01(0.0, 1.0);
  std::vector<std::vector<std::pair<Index, Index>>> at_step(static_cast<std::size_t>(T));
  for (Index b = 0; b < B; ++b) {
    for (const dt::InputEvent& e : events[b]) {
      const double shifted = e.step + (jitter_ > 0.0 ? jitter_ * n01(rng_) : 0.0);
      const Index t = std::clamp<Index>(std::lround(shifted), 0, T - 1);
      at_step[t].push_back({b, e.channel});
    }
  }
  ChipRun out{Matrix(), Matrix::Zero(B, T * H), Matrix(B, T * O), config_.readout.lo,
              config_.readout.hi};
  Matrix i = Matrix::Zero(B, H), v = leak_.transpose().replicate(B, 1), z = Matrix::Zero(B, H);
  Eigen::MatrixXi hold = Eigen::MatrixXi::Zero(B, H);
  Matrix j = Matrix::Zero(B, O), u = Matrix::Zero(B, O);
  Matrix noise(B, H);
  for (Index t = 0; t < T; ++t) {
    i = i * alpha_h_.asDiagonal();
    for (const auto& [b, k] : at_step[t]) i.row(b) += w_in.col(k).transpose();
    for (Index q = 0; q < noise.size(); ++q) noise.data()[q] = noise_ * n01(rng_);
    for (Index h = 0; h < H; ++h) {
      for (Index b = 0; b < B; ++b) {
        if (z(b, h) > 0.0) {  // spiked last step: reset, then hold for the refractory time
          v(b, h) = reset_[h];
          hold(b, h) = refractory_[h];
        }
        if (hold(b, h) > 0) {
          --hold(b, h);
          z(b, h) = 0.0;
          continue;
        }
        v(b, h) = leak_[h] + beta_h_[h] * (v(b, h) - leak_[h]) + (1.0 - beta_h_[h]) * i(b, h) +
                  noise(b, h);
        z(b, h) = v(b, h) >= threshold_[h] ? 1.0 : 0.0;
      }
    }
    out.hidden_spikes.middleCols(t * H, H) = z;
    j = j * alpha_o_.asDiagonal() + z * w_out.transpose();
    for (Index o = 0; o < O; ++o) {
      for (Index b = 0; b < B; ++b) {
        u(b, o) = beta_o_[o] * u(b, o) + (1.0 - beta_o_[o]) * j(b, o) + noise_ * n01(rng_);
        const double read = u(b, o) * ro_gain_[o] + ro_offset_[o];
        const double code = std::round((read - config_.readout.lo) /
                                       (config_.readout.hi - config_.readout.lo) *
                                       config_.readout.max_code());
        out.output_codes(b, t * O + o) = std::clamp(code, 0.0, double(config_.readout.max_code()));
      }
    }
  }
  Matrix traces(B, T * O);
  for (Index q = 0; q < traces.size(); ++q) {
    traces.data()[q] = config_.readout.to_membrane(static_cast<int>(out.output_codes.data()[q]));
  }
  out.outputs = dt::max_over_time(c, traces);
  return out;
}

}  // namespace pnn::drivers::sim

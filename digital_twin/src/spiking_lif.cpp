#include "pnn/digital_twin/spiking_lif.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <stdexcept>

#include "pnn/digital_twin/parallel.hpp"

namespace pnn::digital_twin {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("spiking LIF config: " + what);
}

// σ(u) and σ′(u) of the configured surrogate: each σ is a smooth step from 0 to 1 whose
// derivative is the surrogate (peak k/2, integral 1).
struct SpikeFn {
  Surrogate kind;
  double k;
  double value(double u) const {
    if (kind == Surrogate::kFastSigmoid) return 0.5 + 0.5 * k * u / (1.0 + k * std::abs(u));
    return 0.5 + std::atan(0.5 * std::numbers::pi * k * u) / std::numbers::pi;
  }
  double slope(double u) const {
    if (kind == Surrogate::kFastSigmoid) {
      const double d = 1.0 + k * std::abs(u);
      return 0.5 * k / (d * d);
    }
    const double a = 0.5 * std::numbers::pi * k * u;
    return 0.5 * k / (1.0 + a * a);
  }
};

Vector or_constant(const Vector& v, Index n, double value) {
  return v.size() == 0 ? Vector::Constant(n, value) : v;
}

// One sample's trajectory (step-major arrays): what the backward pass needs.
struct Trajectory {
  Matrix v;   // T × H membranes before the spike decision
  Matrix z;   // T × H spikes
  Matrix dz;  // T × H ∂z/∂V (σ′; the surrogate in spiking mode)
  Matrix u;   // T × O output membranes
};

// The network at one θ, shared by every sample of a batch.
class Net {
 public:
  Net(const SpikingLifConfig& c, const VectorRef& theta)
      : c_(c),
        w_in_(theta.data(), c.num_hidden, c.num_channels()),
        w_out_(theta.data() + c.num_in_weights(), c.num_outputs, c.num_hidden),
        fn_{c.surrogate, c.surrogate_slope},
        alpha_(c.alpha()),
        beta_(c.beta()),
        channel_gain_(or_constant(c.channel_gain, c.num_channels(), 1.0)),
        threshold_(or_constant(c.hidden_threshold, c.num_hidden, c.threshold)),
        output_gain_(or_constant(c.output_gain, c.num_outputs, 1.0)),
        output_offset_(or_constant(c.output_offset, c.num_outputs, 0.0)) {}

  // Input spike counts per step (T × C) of one sample, each channel weighted by its gain.
  Matrix inputs(const VectorRef& features) const {
    Matrix s = Matrix::Zero(c_.num_steps, c_.num_channels());
    for (const InputEvent& e : encode_events(c_, features)) {
      s(e.step, e.channel) += channel_gain_[e.channel];
    }
    return s;
  }

  // The forward recursion. With `measured` (the chip's spikes of this sample, T·H, and its output
  // traces, T·O) the spikes are the measured ones and the output membranes the measured traces;
  // the membranes V are the twin's, reset by those spikes.
  Trajectory run(const Matrix& s, const double* measured_z, const double* measured_u) const {
    const Index T = c_.num_steps, H = c_.num_hidden, O = c_.num_outputs;
    Trajectory tr{Matrix(T, H), Matrix(T, H), Matrix(T, H), Matrix(T, O)};
    Vector i = Vector::Zero(H), v = Vector::Zero(H), z = Vector::Zero(H);
    Vector j = Vector::Zero(O), u = Vector::Zero(O);
    const Matrix drive = c_.weight_scale_in * (s * w_in_.transpose());  // T × H
    for (Index t = 0; t < T; ++t) {
      i = alpha_ * i + drive.row(t).transpose();
      v = beta_ * v.cwiseProduct(Vector::Ones(H) - z) + (1.0 - beta_) * i;
      for (Index h = 0; h < H; ++h) {
        const double d = v[h] - threshold_[h];
        if (measured_z) {
          z[h] = measured_z[t * H + h];
        } else {
          z[h] = c_.smooth ? fn_.value(d) : (d >= 0.0 ? 1.0 : 0.0);
        }
        tr.dz(t, h) = fn_.slope(d);
      }
      tr.v.row(t) = v.transpose();
      tr.z.row(t) = z.transpose();
      j = alpha_ * j + c_.weight_scale_out * (w_out_ * z);
      u = beta_ * u + (1.0 - beta_) * j;
      if (measured_u) {
        for (Index o = 0; o < O; ++o) tr.u(t, o) = measured_u[t * O + o];
      } else {
        tr.u.row(t) = (output_gain_.cwiseProduct(u) + output_offset_).transpose();
      }
    }
    return tr;
  }

  // BPTT of one sample with output cotangent y_bar (O): adds θ̄ into `theta_bar`.
  void backward(const Matrix& s, const Trajectory& tr, const Eigen::Ref<const Vector>& y_bar,
                Vector& theta_bar) const {
    const Index T = c_.num_steps, H = c_.num_hidden, O = c_.num_outputs, C = c_.num_channels();
    Matrix u_direct = Matrix::Zero(T, O);
    for (Index o = 0; o < O; ++o) {
      Index best = 0;
      tr.u.col(o).maxCoeff(&best);
      u_direct(best, o) = c_.readout_scale * output_gain_[o] * y_bar[o];
    }
    Eigen::Map<RowMatrix> g_in(theta_bar.data(), H, C);
    Eigen::Map<RowMatrix> g_out(theta_bar.data() + c_.num_in_weights(), O, H);
    Vector gu = Vector::Zero(O), gj = Vector::Zero(O);
    Vector gv_next = Vector::Zero(H), gi = Vector::Zero(H);
    Matrix gi_t(T, H);
    for (Index t = T - 1; t >= 0; --t) {
      gu = u_direct.row(t).transpose() + beta_ * gu;
      gj = (1.0 - beta_) * gu + alpha_ * gj;
      g_out.noalias() += c_.weight_scale_out * gj * tr.z.row(t);
      Vector gz = c_.weight_scale_out * (w_out_.transpose() * gj);
      Vector gv = gv_next;  // becomes ∂L/∂V[t]
      if (t + 1 < T) {
        // V[t+1] = β V[t] (1 − z[t]) + …
        gz -= beta_ * tr.v.row(t).transpose().cwiseProduct(gv_next);
        gv = beta_ * gv_next.cwiseProduct(Vector::Ones(H) - tr.z.row(t).transpose());
      } else {
        gv.setZero();
      }
      gv += gz.cwiseProduct(tr.dz.row(t).transpose());
      gi = (1.0 - beta_) * gv + alpha_ * gi;
      gi_t.row(t) = gi.transpose();
      gv_next = gv;
    }
    g_in.noalias() += c_.weight_scale_in * gi_t.transpose() * s;
  }

 private:
  const SpikingLifConfig& c_;
  ConstRowMap w_in_, w_out_;
  SpikeFn fn_;
  double alpha_, beta_;
  Vector channel_gain_, threshold_, output_gain_, output_offset_;

 public:
  const SpikeFn& spike_fn() const { return fn_; }
  const Vector& threshold() const { return threshold_; }
  const Vector& output_gain() const { return output_gain_; }
};

}  // namespace

const char* to_string(Surrogate s) {
  return s == Surrogate::kFastSigmoid ? "fast-sigmoid" : "arctan";
}
const char* to_string(SpikeEncoding e) { return e == SpikeEncoding::kLatency ? "latency" : "rate"; }

double SpikingLifConfig::alpha() const { return std::exp(-dt_us / tau_syn_us); }
double SpikingLifConfig::beta() const { return std::exp(-dt_us / tau_mem_us); }

void validate(const SpikingLifConfig& c) {
  const auto positive = [](double v) { return std::isfinite(v) && v > 0.0; };
  require(c.num_features >= 1 && c.num_bias >= 0 && c.num_channels() <= 32,
          "features ≥ 1 and features + bias ≤ 32 (5-bit event address), got " +
              std::to_string(c.num_features) + " + " + std::to_string(c.num_bias));
  require(c.num_hidden >= 1 && c.num_hidden <= 512, "hidden must be in [1, 512]");
  require(c.num_outputs >= 1 && c.num_outputs <= 32, "outputs must be in [1, 32]");
  require(c.num_steps >= 2 && c.num_steps <= 255, "steps must be in [2, 255]");
  require(c.t_early >= 0 && c.t_early < c.t_late && c.t_late < c.num_steps,
          "need 0 ≤ t_early < t_late < steps");
  require(c.bias_step >= 0 && c.bias_step < c.num_steps, "bias_step must be < steps");
  require(positive(c.dt_us) && positive(c.tau_mem_us) && positive(c.tau_syn_us),
          "dt and time constants must be positive");
  require(positive(c.threshold) && positive(c.weight_scale_in) && positive(c.weight_scale_out) &&
              positive(c.readout_scale),
          "threshold and scales must be positive");
  require(positive(c.surrogate_slope), "surrogate slope must be positive");
  require(c.max_rate_spikes >= 1 && c.max_rate_spikes <= c.t_late - c.t_early + 1,
          "max_rate_spikes must be in [1, t_late − t_early + 1]");
  const auto per_neuron = [&](const Vector& v, Index n, const char* name, bool must_be_positive) {
    require(v.size() == 0 || v.size() == n,
            std::string(name) + " must be empty or have " + std::to_string(n) + " entries, got " +
                std::to_string(v.size()));
    for (Index i = 0; i < v.size(); ++i) {
      require(std::isfinite(v[i]) && (!must_be_positive || v[i] > 0.0),
              std::string(name) + "[" + std::to_string(i) + "] must be " +
                  (must_be_positive ? "positive and finite" : "finite") + ", got " +
                  std::to_string(v[i]));
    }
  };
  per_neuron(c.channel_gain, c.num_channels(), "channel_gain", true);
  per_neuron(c.hidden_threshold, c.num_hidden, "hidden_threshold", true);
  per_neuron(c.output_gain, c.num_outputs, "output_gain", true);
  per_neuron(c.output_offset, c.num_outputs, "output_offset", false);
}

std::vector<InputEvent> encode_events(const SpikingLifConfig& c, const VectorRef& features) {
  std::vector<InputEvent> events;
  const auto add = [&](Index channel, Index step) {
    events.push_back({static_cast<std::uint16_t>(channel), static_cast<std::uint16_t>(step)});
  };
  const double span = static_cast<double>(c.t_late - c.t_early);
  for (Index k = 0; k < c.num_features; ++k) {
    const double x = std::clamp(std::isfinite(features[k]) ? features[k] : 0.0, 0.0, 1.0);
    if (c.encoding == SpikeEncoding::kLatency) {
      add(k, c.t_early + static_cast<Index>(std::lround(x * span)));
      continue;
    }
    const Index n = static_cast<Index>(std::lround(x * static_cast<double>(c.max_rate_spikes)));
    for (Index m = 0; m < n; ++m) {
      add(k, c.t_early + static_cast<Index>(std::floor((static_cast<double>(m) + 0.5) *
                                                       (span + 1.0) / static_cast<double>(n))));
    }
  }
  for (Index b = 0; b < c.num_bias; ++b) add(c.num_features + b, c.bias_step);
  std::sort(events.begin(), events.end(), [](const InputEvent& a, const InputEvent& b) {
    return a.step != b.step ? a.step < b.step : a.channel < b.channel;
  });
  return events;
}

Matrix max_over_time(const SpikingLifConfig& c, const MatrixRef& traces) {
  Matrix y(traces.rows(), c.num_outputs);
  for (Index r = 0; r < traces.rows(); ++r) {
    for (Index o = 0; o < c.num_outputs; ++o) {
      double m = traces(r, o);
      for (Index t = 1; t < c.num_steps; ++t) m = std::max(m, traces(r, t * c.num_outputs + o));
      y(r, o) = c.readout_scale * m;
    }
  }
  return y;
}

SpikingLifModel::SpikingLifModel(SpikingLifConfig config) : config_(config) { validate(config_); }

Vector SpikingLifModel::initial_params(std::uint64_t seed) const {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  Vector theta(num_params());
  // Input synapses scaled to the channel count (the Yin-Yang chip's 5 channels: N(8, 12²)), so
  // a wider input layer starts with about the same drive per neuron.
  const double wide = 5.0 / static_cast<double>(config_.num_channels());
  for (Index i = 0; i < theta.size(); ++i) {
    const bool in = i < config_.num_in_weights();
    const double mean = in ? 8.0 * wide : 0.0, sd = in ? 12.0 * std::sqrt(wide) : 12.0;
    theta[i] = std::clamp(mean + sd * n01(rng), -63.0, 63.0);
  }
  return theta;
}

SpikeRecord SpikingLifModel::record(const MatrixRef& x, const VectorRef& theta) const {
  check_input(x, theta);
  return record_with(x, theta, nullptr);
}

SpikeRecord SpikingLifModel::replay(const MatrixRef& x, const VectorRef& theta,
                                    const MatrixRef& hidden_spikes) const {
  check_input(x, theta);
  const Index cols = config_.num_steps * config_.num_hidden;
  if (hidden_spikes.rows() != x.rows() || hidden_spikes.cols() != cols) {
    throw std::invalid_argument("replay: hidden spikes must be " + std::to_string(x.rows()) +
                                "×" + std::to_string(cols) + " (batch × steps·hidden), got " +
                                std::to_string(hidden_spikes.rows()) + "×" +
                                std::to_string(hidden_spikes.cols()));
  }
  return record_with(x, theta, &hidden_spikes);
}

SpikeRecord SpikingLifModel::record_with(const MatrixRef& x, const VectorRef& theta,
                                         const MatrixRef* hidden_spikes) const {
  const SpikingLifConfig& c = config_;
  const Index H = c.num_hidden, O = c.num_outputs;
  SpikeRecord rec{Matrix(x.rows(), c.num_steps * H), Matrix(x.rows(), c.num_steps * O)};
  const Net net(c, theta);
  parallel_for(static_cast<std::size_t>(x.rows()), [&](std::size_t r) {
    const Index row = static_cast<Index>(r);
    Vector given;
    if (hidden_spikes) given = hidden_spikes->row(row).transpose();
    const Trajectory tr = net.run(net.inputs(x.row(row).transpose()),
                                  hidden_spikes ? given.data() : nullptr, nullptr);
    for (Index t = 0; t < c.num_steps; ++t) {
      rec.hidden_spikes.row(row).segment(t * H, H) = tr.z.row(t);
      rec.output_traces.row(row).segment(t * O, O) = tr.u.row(t);
    }
  });
  rec.outputs = max_over_time(c, rec.output_traces);
  return rec;
}

Matrix SpikingLifModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const Net net(config_, theta);
  Matrix y(x.rows(), config_.num_outputs);
  for (Index r = 0; r < x.rows(); ++r) {
    const Trajectory tr = net.run(net.inputs(x.row(r).transpose()), nullptr, nullptr);
    y.row(r) = config_.readout_scale * tr.u.colwise().maxCoeff();
  }
  return y;
}

Cotangents SpikingLifModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                   const MatrixRef& y_bar) const {
  const Net net(config_, theta);
  Cotangents out{Matrix::Zero(x.rows(), x.cols()), Vector::Zero(num_params())};
  for (Index r = 0; r < x.rows(); ++r) {
    const Matrix s = net.inputs(x.row(r).transpose());
    net.backward(s, net.run(s, nullptr, nullptr), y_bar.row(r).transpose(), out.theta_bar);
  }
  return out;
}

Vector SpikingLifModel::physical_params() const {
  return Vector{{std::log(config_.weight_scale_in), std::log(config_.weight_scale_out),
                 std::log(config_.readout_scale)}};
}

ModelPtr SpikingLifModel::with_physical_params(const VectorRef& phi) const {
  if (phi.size() != 3 || !phi.allFinite() || phi.cwiseAbs().maxCoeff() > 50.0) {
    throw std::invalid_argument(
        "spiking LIF: φ must be 3 finite logarithms within ±50 (input synapse scale, output "
        "synapse scale, readout scale), got " + std::to_string(phi.size()) + " entries");
  }
  SpikingLifConfig c = config_;
  c.weight_scale_in = std::exp(phi[0]);
  c.weight_scale_out = std::exp(phi[1]);
  c.readout_scale = std::exp(phi[2]);
  return std::make_shared<SpikingLifModel>(c);
}

// Each scale multiplies its weights (or the readout) and nothing else, so the cotangent of its
// logarithm is the weights' cotangent contracted with the weights (the readout's: ȳ·y).
Vector SpikingLifModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                        const MatrixRef& y_bar) const {
  const Index n_in = config_.num_in_weights();
  const Vector t_bar = do_vjp(x, theta, y_bar).theta_bar;
  const Matrix y = do_forward(x, theta);
  Vector phi_bar(3);
  phi_bar[0] = t_bar.head(n_in).dot(theta.head(n_in));
  phi_bar[1] = t_bar.tail(theta.size() - n_in).dot(theta.tail(theta.size() - n_in));
  phi_bar[2] = y_bar.cwiseProduct(y).sum();
  return phi_bar;
}

void SpikingLifModel::check_record(const MatrixRef& x, const SpikeRecord& rec) const {
  const SpikingLifConfig& c = config_;
  if (rec.hidden_spikes.rows() != x.rows() || rec.output_traces.rows() != x.rows() ||
      rec.hidden_spikes.cols() != c.num_steps * c.num_hidden ||
      rec.output_traces.cols() != c.num_steps * c.num_outputs) {
    throw std::invalid_argument(
        "vjp_at_record: the spike record must have one row per sample (" +
        std::to_string(x.rows()) + "), steps·hidden = " + std::to_string(c.num_steps * c.num_hidden) +
        " spike columns and steps·outputs = " + std::to_string(c.num_steps * c.num_outputs) +
        " trace columns; got " + std::to_string(rec.hidden_spikes.rows()) + "×" +
        std::to_string(rec.hidden_spikes.cols()) + " and " +
        std::to_string(rec.output_traces.rows()) + "×" + std::to_string(rec.output_traces.cols()));
  }
}

Cotangents SpikingLifModel::vjp_at_record(const MatrixRef& x, const VectorRef& theta,
                                          const SpikeRecord& rec, const MatrixRef& y_bar) const {
  check_cotangent(x, theta, y_bar);
  check_record(x, rec);
  const SpikingLifConfig& c = config_;
  const Net net(c, theta);
  const std::size_t shards = static_cast<std::size_t>(std::max(1, num_threads()));
  std::vector<Vector> partial(shards, Vector::Zero(num_params()));
  parallel_for(shards, [&](std::size_t s) {
    for (Index r = static_cast<Index>(s); r < x.rows(); r += static_cast<Index>(shards)) {
      // Row-major copies: the record's rows are step-major vectors.
      const Vector z = rec.hidden_spikes.row(r).transpose();
      const Vector u = rec.output_traces.row(r).transpose();
      const Matrix in = net.inputs(x.row(r).transpose());
      net.backward(in, net.run(in, z.data(), u.data()), y_bar.row(r).transpose(), partial[s]);
    }
  });
  Cotangents out{Matrix::Zero(x.rows(), x.cols()), Vector::Zero(num_params())};
  for (const Vector& p : partial) out.theta_bar += p;
  return out;
}

Cotangents SpikingLifModel::vjp_spike_train(const MatrixRef& x, const VectorRef& theta,
                                            const SpikeRecord& rec, const MatrixRef& y_bar) const {
  check_cotangent(x, theta, y_bar);
  check_record(x, rec);
  const SpikingLifConfig& c = config_;
  const Index T = c.num_steps, H = c.num_hidden, O = c.num_outputs, C = c.num_channels();
  const Net net(c, theta);
  const Vector& threshold = net.threshold();
  const Vector& out_gain = net.output_gain();
  const ConstRowMap w_out(theta.data() + c.num_in_weights(), O, H);
  // κ(τ): the membrane τ steps after one unit of synaptic current (the twin's α, β; hidden and
  // output neurons share them), no reset.
  Vector kernel(T);
  {
    double i = 1.0, v = 0.0;
    for (Index t = 0; t < T; ++t) {
      if (t > 0) i *= c.alpha();
      v = c.beta() * v + (1.0 - c.beta()) * i;
      kernel[t] = v;
    }
  }
  const std::size_t shards = static_cast<std::size_t>(std::max(1, num_threads()));
  std::vector<Vector> partial(shards, Vector::Zero(num_params()));
  parallel_for(shards, [&](std::size_t shard) {
    Vector& g = partial[shard];
    Eigen::Map<RowMatrix> g_in(g.data(), H, C);
    Eigen::Map<RowMatrix> g_out(g.data() + c.num_in_weights(), O, H);
    std::vector<Index> peak(static_cast<std::size_t>(O));
    for (Index r = static_cast<Index>(shard); r < x.rows(); r += static_cast<Index>(shards)) {
      const Matrix s = net.inputs(x.row(r).transpose());  // T × C, channel gains applied
      const Vector z = rec.hidden_spikes.row(r).transpose();
      const Vector u = rec.output_traces.row(r).transpose();
      // With the measured traces tr.u is them; tr.v holds the membranes of the silent neurons
      // (the twin's, reset by the measured spikes).
      const Trajectory tr = net.run(s, z.data(), u.data());
      for (Index o = 0; o < O; ++o) tr.u.col(o).maxCoeff(&peak[static_cast<std::size_t>(o)]);
      for (Index j = 0; j < H; ++j) {
        // j's spikes (t, weight): measured ones, or one virtual spike at the membrane's peak.
        std::vector<std::pair<Index, double>> spikes;
        for (Index t = 0; t < T; ++t) {
          if (z[t * H + j] > 0.5) spikes.push_back({t, 1.0});
        }
        const bool silent = spikes.empty();
        if (silent) {
          Index best = 0;
          tr.v.col(j).maxCoeff(&best);
          const double w = threshold[j] * net.spike_fn().slope(tr.v(best, j) - threshold[j]);
          if (!(w > 1e-12)) continue;
          spikes.push_back({best, w});
        }
        double dn = 0.0;  // ∂L/∂n_j: the mean PSP of one of j's spikes at each output's peak
        for (Index o = 0; o < O; ++o) {
          const Index tp = peak[static_cast<std::size_t>(o)];
          double psp = 0.0;  // of j's spikes at o's peak (a virtual spike's w weighs the input side)
          for (const auto& [t, w] : spikes) {
            if (t <= tp) psp += kernel[tp - t];
          }
          const double dy = c.readout_scale * out_gain[o] * y_bar(r, o) * c.weight_scale_out;
          if (!silent) g_out(o, j) += dy * psp;  // the exact output gradient at the record
          dn += dy * w_out(o, j) * psp / static_cast<double>(spikes.size());
        }
        // e_jc: the PSP of c's events since j's previous reset, at each spike of j.
        Index since = 0;
        for (const auto& [t, w] : spikes) {
          for (Index tc = since; tc <= t; ++tc) {
            for (Index k = 0; k < C; ++k) {
              if (s(tc, k) != 0.0) {
                g_in(j, k) += dn * w * c.weight_scale_in * s(tc, k) * kernel[t - tc] / threshold[j];
              }
            }
          }
          since = t + 1;
        }
      }
    }
  });
  Cotangents out{Matrix::Zero(x.rows(), x.cols()), Vector::Zero(num_params())};
  for (const Vector& p : partial) out.theta_bar += p;
  return out;
}

}  // namespace pnn::digital_twin

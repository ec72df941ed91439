#include "pnn/training/learned_twin.hpp"

#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <tuple>

#include "pnn/digital_twin/mlp_twin.hpp"
#include "pnn/digital_twin/neural_ode.hpp"
#include "pnn/digital_twin/oscillator.hpp"

namespace pnn::training {

namespace dt = digital_twin;

std::string to_string(TwinFamily family) {
  switch (family) {
    case TwinFamily::kGreyBox: return "grey-box";
    case TwinFamily::kResidual: return "residual";
    case TwinFamily::kBlackBox: return "mlp";
    case TwinFamily::kNeuralOde: return "neural-ode";
  }
  return "?";
}

TwinFamily parse_twin_family(const std::string& name) {
  for (auto f : {TwinFamily::kGreyBox, TwinFamily::kResidual, TwinFamily::kBlackBox,
                 TwinFamily::kNeuralOde}) {
    if (name == to_string(f)) return f;
  }
  throw std::invalid_argument("unknown twin family '" + name +
                              "' (accepted: grey-box, residual, mlp, neural-ode)");
}

dt::ModelPtr grey_box_of(const dt::ModelPtr& nominal) {
  if (!nominal) throw std::invalid_argument("grey-box twin: the device has no nominal twin");
  if (const auto* osc = dynamic_cast<const dt::OscillatorModel*>(nominal.get())) {
    dt::OscillatorConfig c = osc->config();
    c.kappas = osc->kappas();
    c.phi = dt::OscillatorPhi::kGreyBox;
    return std::make_shared<dt::OscillatorModel>(std::move(c));
  }
  if (nominal->num_physical_params() == 0) {
    throw std::invalid_argument("grey-box twin: the " + nominal->name() +
                                " twin has no physical parameters to fit; use family residual or mlp");
  }
  return nominal;
}

namespace {

const dt::StnoModel& stno_twin_of(const dt::ModelPtr& nominal) {
  const auto* stno = dynamic_cast<const dt::StnoModel*>(nominal.get());
  if (stno == nullptr) {
    throw std::invalid_argument(
        "neural-ode twin: built on the STNO network's twin (stno-rnn), not on the " +
        (nominal ? nominal->name() : std::string("missing")) +
        " twin: fit the grey-box, residual or mlp family instead");
  }
  return *stno;
}

}  // namespace

dt::ModelPtr neural_ode_of(const dt::ModelPtr& nominal, const TwinFitOptions& options,
                           bool trajectory) {
  return std::make_shared<dt::NeuralOdeTwin>(dt::NeuralOdeConfig{
      .stno = stno_twin_of(nominal).config(), .rk4_steps = options.ode_rk4_steps,
      .hidden = options.hidden, .physics_prior = options.ode_physics_prior,
      .trajectory = trajectory, .psi = {}, .seed = options.seed});
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void check_options(const TwinFitOptions& o) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("fit_twin: " + what); };
  if (o.samples < 1) bad("samples must be ≥ 1");
  if (o.batch < 1) bad("batch must be ≥ 1");
  if (o.repeats < 1) bad("repeats must be ≥ 1");
  if (!(o.validation_fraction >= 0.0 && o.validation_fraction < 1.0)) {
    bad("validation_fraction must be in [0, 1)");
  }
  if (!(o.input_fraction > 0.0 && o.input_fraction <= 1.0)) bad("input_fraction must be in (0, 1]");
  if (!(o.theta_fraction >= 0.0 && o.theta_fraction <= 1.0)) bad("theta_fraction must be in [0, 1]");
  if (!(o.l2 >= 0.0) || !std::isfinite(o.l2)) bad("l2 must be a finite number ≥ 0");
  if (o.max_iterations < 1) bad("max_iterations must be ≥ 1");
  if (o.adam_epochs < 0 || o.adam_calls_per_step < 1 || !(o.adam_learning_rate > 0.0)) {
    bad("adam_epochs must be ≥ 0, adam_calls_per_step ≥ 1 and adam_learning_rate > 0");
  }
}

// Per-entry normaliser of a range: offset the middle, scale the half-width (1 where it is 0).
dt::Normalizer range_normalizer(const Vector& lo, const Vector& hi) {
  dt::Normalizer n{0.5 * (lo + hi), 0.5 * (hi - lo)};
  for (Index i = 0; i < n.scale.size(); ++i) {
    if (!(n.scale[i] > 0.0)) n.scale[i] = 1.0;
  }
  return n;
}

// Mean and standard deviation (floored) of each output over the measurements, of y − base(x).
dt::Normalizer output_stats(const std::vector<dt::Measurement>& data, const dt::ModelPtr& base) {
  const Index m = data.front().y.cols();
  Vector sum = Vector::Zero(m), sq = Vector::Zero(m);
  double rows = 0.0;
  for (const auto& d : data) {
    const Matrix r = base ? Matrix(d.y - base->forward(d.x, d.theta)) : d.y;
    sum += r.colwise().sum().transpose();
    sq += r.array().square().matrix().colwise().sum().transpose();
    rows += static_cast<double>(r.rows());
  }
  const Vector mean = sum / rows;
  Vector sd = (sq / rows - mean.cwiseProduct(mean)).cwiseMax(0.0).cwiseSqrt();
  const double floor = 1e-3 * std::max(sd.maxCoeff(), 1e-9);
  return {mean, sd.cwiseMax(floor)};
}

// The sizes a fitted twin must have: the nominal twin's, or the spec's for a device without one.
struct TwinShape {
  Index inputs = 0, params = 0, outputs = 0;
  std::string name;  // for messages
};

void check_data(const TwinShape& shape, const std::vector<dt::Measurement>& data) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto& d = data[i];
    const std::string where = "fit_twin: measurement " + std::to_string(i) + ": ";
    if (d.x.cols() != shape.inputs || d.theta.size() != shape.params ||
        d.y.rows() != d.x.rows() || d.y.cols() != shape.outputs) {
      throw std::invalid_argument(
          where + "x " + shape_string(d.x) + ", θ of " + std::to_string(d.theta.size()) +
          ", y " + shape_string(d.y) + " do not fit the " + shape.name + " (batch×" +
          std::to_string(shape.inputs) + ", " + std::to_string(shape.params) +
          ", batch×" + std::to_string(shape.outputs) + "): measure the same device kind");
    }
    if (!d.x.allFinite() || !d.theta.allFinite() || !d.y.allFinite()) {
      throw std::invalid_argument(where + "contains NaN or Inf; drop the faulty readings (or "
                                  "re-measure) before fitting");
    }
  }
}

// Mini-batch Adam on φ (the MLP weights) with an L2 pull toward zero; the learning rate decays
// linearly to 10 %. Returns the fitted model; `mse` the final fit MSE.
dt::ModelPtr fit_by_adam(const dt::ModelPtr& start, const std::vector<dt::Measurement>& fit,
                         const TwinFitOptions& o, int& steps, double& mse) {
  Vector phi = start->physical_params();
  Vector m = Vector::Zero(phi.size()), v = Vector::Zero(phi.size());
  std::vector<std::size_t> order(fit.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(o.seed ^ 0xADA3ull);
  const auto per_step = static_cast<std::size_t>(o.adam_calls_per_step);
  const std::size_t steps_per_epoch = (fit.size() + per_step - 1) / per_step;
  const double total = static_cast<double>(steps_per_epoch) * o.adam_epochs;
  const double beta1 = 0.9, beta2 = 0.999;
  steps = 0;
  for (int epoch = 0; epoch < o.adam_epochs; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t begin = 0; begin < fit.size(); begin += per_step) {
      const dt::ModelPtr model = start->with_physical_params(phi);
      Index count = 0;
      for (std::size_t k = begin; k < std::min(fit.size(), begin + per_step); ++k) count += fit[order[k]].y.size();
      Vector grad = 2.0 * o.l2 * phi;
      for (std::size_t k = begin; k < std::min(fit.size(), begin + per_step); ++k) {
        const auto& d = fit[order[k]];
        const Matrix residual = model->forward(d.x, d.theta) - d.y;
        grad += model->physical_vjp(d.x, d.theta, (2.0 / static_cast<double>(count)) * residual);
      }
      ++steps;
      const double lr = o.adam_learning_rate * (1.0 - 0.9 * static_cast<double>(steps - 1) / total);
      m = beta1 * m + (1.0 - beta1) * grad;
      v = beta2 * v + (1.0 - beta2) * grad.cwiseProduct(grad);
      const double c1 = 1.0 - std::pow(beta1, steps), c2 = 1.0 - std::pow(beta2, steps);
      phi.array() -= lr * (m.array() / c1) / ((v.array() / c2).sqrt() + 1e-8);
    }
  }
  const dt::ModelPtr out = start->with_physical_params(phi);
  mse = dt::twin_mse(*out, fit);
  return out;
}

Index count_rows(const std::vector<dt::Measurement>& data) {
  Index rows = 0;
  for (const auto& d : data) rows += d.x.rows();
  return rows;
}

// Σ‖predict(x, θ) − y‖² / Σ‖y − ȳ‖² over the measurements.
template <class Predict>
double nmse_of(const std::vector<dt::Measurement>& data, Predict predict) {
  if (data.empty()) return 0.0;
  const dt::Normalizer stats = output_stats(data, nullptr);
  double err = 0.0, var = 0.0;
  for (const auto& d : data) {
    err += (predict(d.x, d.theta) - d.y).squaredNorm();
    var += (d.y.rowwise() - stats.offset.transpose()).squaredNorm();
  }
  return var > 0.0 ? err / var : 0.0;
}

// The STNO twin's trajectory (batch × T·N, period-major): its runs of 1 … T periods on the
// prefixes of x, as measure_trajectories measures the device.
Matrix stno_trajectory(const dt::StnoModel& twin, const Matrix& x, const Vector& theta) {
  dt::StnoConfig c = twin.config();
  const Index periods = c.num_steps, n = c.num_neurons, m = c.inputs_per_step;
  Matrix y(x.rows(), periods * n);
  for (Index k = 1; k <= periods; ++k) {
    c.num_steps = k;
    y.middleCols((k - 1) * n, n) = dt::StnoModel(c).forward(x.leftCols(k * m), theta);
  }
  return y;
}

}  // namespace

double twin_nmse(const dt::DifferentiableModel& model, const std::vector<dt::Measurement>& data) {
  return nmse_of(data,
                 [&](const Matrix& x, const Vector& theta) { return model.forward(x, theta); });
}

namespace {

// Draws the (x, θ) of one call as measure_samples documents: x uniform in the middle
// input_fraction of the input range, one θ uniform in theta_center ± theta_fraction · half-span,
// both clipped to the limits again after the arithmetic so rounding can never step outside.
class CallSampler {
 public:
  CallSampler(const drivers::DeviceSpec& spec, const TwinFitOptions& options)
      : spec_(spec), lo_limit_(spec.param_min()), hi_limit_(spec.param_max()),
        rng_(options.seed ^ 0x7E4A1ull) {
    if (spec.max_batch > 0 && options.batch > spec.max_batch) {
      throw std::invalid_argument("fit_twin: batch " + std::to_string(options.batch) +
                                  " exceeds the device's max batch " +
                                  std::to_string(spec.max_batch));
    }
    const Vector center = options.theta_center.size() != 0
                              ? options.theta_center
                              : Vector(0.5 * (lo_limit_ + hi_limit_));
    if (center.size() != lo_limit_.size()) {
      throw std::invalid_argument("fit_twin: theta_center has " + std::to_string(center.size()) +
                                  " entries, the device has " + std::to_string(lo_limit_.size()) +
                                  " parameters");
    }
    const Vector half = 0.5 * options.theta_fraction * (hi_limit_ - lo_limit_);
    lo_ = (center - half).cwiseMax(lo_limit_).cwiseMin(hi_limit_);
    hi_ = (center + half).cwiseMax(lo_limit_).cwiseMin(hi_limit_);
    x_mid_ = 0.5 * (spec.input_min + spec.input_max);
    x_half_ = 0.5 * options.input_fraction * (spec.input_max - spec.input_min);
  }

  dt::Measurement draw(Index rows) {
    dt::Measurement m{Matrix(rows, spec_.num_inputs), Vector(lo_.size()), Matrix()};
    for (Index i = 0; i < m.x.size(); ++i) {
      m.x.data()[i] = std::clamp(x_mid_ + x_half_ * (2.0 * unit_(rng_) - 1.0), spec_.input_min,
                                 spec_.input_max);
    }
    for (Index i = 0; i < m.theta.size(); ++i) {
      m.theta[i] = std::clamp(lo_[i] + (hi_[i] - lo_[i]) * unit_(rng_), lo_limit_[i], hi_limit_[i]);
    }
    return m;
  }

 private:
  const drivers::DeviceSpec& spec_;
  Vector lo_limit_, hi_limit_, lo_, hi_;
  double x_mid_ = 0.0, x_half_ = 0.0;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
};

// The average of `repeats` readings of device at (x, θ); device_calls counts each call.
drivers::Result<Matrix> read_averaged(drivers::PhysicalSystem& device, const Matrix& x,
                                      const Vector& theta, int repeats, std::int64_t& device_calls,
                                      const DeviceExecutor& executor) {
  Matrix sum;
  for (int r = 0; r < repeats; ++r) {
    auto y = on_device(executor, [&] { return device.forward(x, theta); });
    ++device_calls;
    if (!y) return y.error();
    if (r == 0) sum = std::move(y).value();
    else sum += y.value();
  }
  return Matrix(sum / static_cast<double>(repeats));
}

}  // namespace

drivers::Result<std::vector<dt::Measurement>> measure_samples(drivers::PhysicalSystem& device,
                                                              const TwinFitOptions& options,
                                                              std::int64_t& device_calls,
                                                              const DeviceExecutor& executor) {
  check_options(options);
  CallSampler sampler(device.spec(), options);
  std::vector<dt::Measurement> data;
  for (Index begin = 0; begin < options.samples; begin += options.batch) {
    dt::Measurement m = sampler.draw(std::min(options.batch, options.samples - begin));
    auto y = read_averaged(device, m.x, m.theta, options.repeats, device_calls, executor);
    if (!y) return y.error();
    m.y = std::move(y).value();
    data.push_back(std::move(m));
    if (options.on_measured) options.on_measured(begin + data.back().x.rows(), options.samples);
  }
  return data;
}

drivers::Result<std::vector<dt::Measurement>> measure_trajectories(
    const std::vector<drivers::PhysicalSystem*>& prefixes, const TwinFitOptions& options,
    std::int64_t& device_calls, const DeviceExecutor& executor) {
  check_options(options);
  if (prefixes.empty() || std::find(prefixes.begin(), prefixes.end(), nullptr) != prefixes.end()) {
    throw std::invalid_argument("measure_trajectories: give the device run for 1 … T input "
                                "periods, one PhysicalSystem per length (none null)");
  }
  const auto& full = prefixes.back()->spec();
  const auto periods = static_cast<Index>(prefixes.size());
  const Index per_period = full.num_inputs / periods, n = full.num_outputs;
  for (Index k = 0; k < periods; ++k) {
    const auto& s = prefixes[static_cast<std::size_t>(k)]->spec();
    if (s.kind != full.kind || s.serial != full.serial || s.num_outputs != n ||
        s.num_inputs != (k + 1) * per_period || full.num_inputs != periods * per_period ||
        s.param_min() != full.param_min() || s.param_max() != full.param_max()) {
      throw std::invalid_argument(
          "measure_trajectories: device " + std::to_string(k) + " (" + s.kind + " " + s.serial +
          ", " + std::to_string(s.num_inputs) + " inputs) is not the " + full.kind + " " +
          full.serial + " run for " + std::to_string(k + 1) + " of " + std::to_string(periods) +
          " periods (" + std::to_string((k + 1) * per_period) + " inputs, the same outputs and "
          "limits): open the same device once per sequence length, shortest first");
    }
    if (s.max_batch > 0 && options.batch > s.max_batch) {
      throw std::invalid_argument("fit_twin: batch " + std::to_string(options.batch) +
                                  " exceeds the device's max batch " + std::to_string(s.max_batch));
    }
  }
  CallSampler sampler(full, options);
  std::vector<dt::Measurement> data;
  for (Index begin = 0; begin < options.samples; begin += options.batch) {
    dt::Measurement m = sampler.draw(std::min(options.batch, options.samples - begin));
    m.y.resize(m.x.rows(), periods * n);
    for (Index k = 0; k < periods; ++k) {
      const Matrix prefix = m.x.leftCols((k + 1) * per_period);
      auto y = read_averaged(*prefixes[static_cast<std::size_t>(k)], prefix, m.theta,
                             options.repeats, device_calls, executor);
      if (!y) return y.error();
      m.y.middleCols(k * n, n) = y.value();
    }
    data.push_back(std::move(m));
    if (options.on_measured) options.on_measured(begin + data.back().x.rows(), options.samples);
  }
  return data;
}

namespace {

// fit_twin_to with the twin's sizes given: `nominal` may be null for the black-box family (a
// device that describes itself has no twin), and then twin_nmse_nominal is NaN.
FittedTwin fit_shaped(const dt::ModelPtr& nominal, const TwinShape& shape, double input_min,
                      double input_max, const Vector& theta_min, const Vector& theta_max,
                      const std::vector<dt::Measurement>& data, const TwinFitOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  check_options(options);
  const bool ode = options.family == TwinFamily::kNeuralOde;
  if (!nominal && options.family != TwinFamily::kBlackBox) {
    throw std::invalid_argument("fit_twin: the device has no nominal twin, which the " +
                                to_string(options.family) + " family builds on: fit the mlp "
                                "(black-box) family instead");
  }
  if (data.empty()) throw std::invalid_argument("fit_twin: no measurements given: measure first");
  check_data(shape, data);
  const auto calls = static_cast<Index>(data.size());
  const Index held_out = options.validation_fraction > 0.0
      ? std::max<Index>(1, std::llround(options.validation_fraction * static_cast<double>(calls)))
      : 0;
  if (calls - held_out < 1) {
    throw std::invalid_argument("fit_twin: " + std::to_string(calls) + " measured batch(es) leave "
                                "none to fit after holding out " + std::to_string(held_out) +
                                " for validation: measure more samples or use a smaller batch");
  }
  const std::vector<dt::Measurement> fit(data.begin(), data.end() - held_out);
  const std::vector<dt::Measurement> val(data.end() - held_out, data.end());
  constexpr Index kMinTrajectories = 4;
  if (ode && count_rows(fit) < kMinTrajectories) {
    throw std::invalid_argument(
        "fit_twin: too few trajectories: " + std::to_string(count_rows(fit)) + " left to fit "
        "after holding out " + std::to_string(count_rows(val)) + " (the neural-ode family needs "
        "at least " + std::to_string(kMinTrajectories) + "): measure more trajectories");
  }

  dt::ModelPtr start;
  dt::CalibrationOptions calib;
  calib.max_iterations = options.max_iterations;
  calib.l2 = options.l2;
  calib.tolerance = 1e-12;
  const dt::Normalizer x_norm = range_normalizer(Vector::Constant(shape.inputs, input_min),
                                                 Vector::Constant(shape.inputs, input_max));
  const dt::Normalizer theta_norm = range_normalizer(theta_min, theta_max);
  switch (options.family) {
    case TwinFamily::kGreyBox:
      start = grey_box_of(nominal);
      break;
    case TwinFamily::kResidual:
      start = std::make_shared<dt::ResidualTwin>(dt::ResidualTwinConfig{
          .physics = nominal, .hidden = options.hidden, .uses_theta = options.residual_uses_theta,
          .x = x_norm, .theta = theta_norm, .y_scale = output_stats(fit, nominal).scale,
          .weights = {}, .seed = options.seed});
      calib.phi_prior = Vector::Zero(start->num_physical_params());
      break;
    case TwinFamily::kBlackBox:
      start = std::make_shared<dt::MlpTwin>(dt::MlpTwinConfig{
          .num_inputs = shape.inputs, .num_params = shape.params,
          .num_outputs = shape.outputs, .hidden = options.hidden, .x = x_norm,
          .theta = theta_norm, .y = output_stats(fit, nullptr), .weights = {},
          .seed = options.seed});
      calib.phi_prior = Vector::Zero(start->num_physical_params());
      break;
    case TwinFamily::kNeuralOde: {
      start = neural_ode_of(nominal, options, true);
      // Weight decay on the MLP, the per-neuron scales pulled toward 1 and offsets toward 0.
      calib.phi_prior = start->physical_params();
      calib.phi_prior.head(static_cast<const dt::NeuralOdeTwin&>(*start).num_mlp_weights())
          .setZero();
      break;
    }
  }
  const Index equations = count_rows(fit) * shape.outputs;
  if (equations < 2 * start->num_physical_params()) {
    throw std::invalid_argument(
        "fit_twin: too few samples: " + std::to_string(count_rows(fit)) + " fit samples × " +
        std::to_string(shape.outputs) + " outputs = " + std::to_string(equations) +
        " values for the " + std::to_string(start->num_physical_params()) + " parameters of the " +
        to_string(options.family) + " twin (at least 2 per parameter): raise samples to ≥ " +
        std::to_string((2 * start->num_physical_params() + shape.outputs - 1) /
                       shape.outputs * calls / std::max<Index>(1, calls - held_out)) +
        " or use smaller hidden layers");
  }
  dt::CalibrationResult r;
  if (options.adam_epochs > 0 && options.family != TwinFamily::kGreyBox) {
    r.model = fit_by_adam(start, fit, options, r.iterations, r.mse_after);
  } else {
    r = dt::calibrate(*start, fit, calib);
  }
  FittedTwin out{r.model, {}};
  out.report.family = options.family;
  out.report.samples = count_rows(data);
  out.report.validation_samples = count_rows(val);
  const auto& check = val.empty() ? fit : val;
  out.report.twin_nmse = twin_nmse(*r.model, check);
  if (ode) {
    const dt::StnoModel& stno = stno_twin_of(nominal);
    out.report.twin_nmse_nominal = nmse_of(check, [&](const Matrix& x, const Vector& theta) {
      return stno_trajectory(stno, x, theta);
    });
    // The device reads p at the end of the sequence: so does the twin a job uses.
    out.model = static_cast<const dt::NeuralOdeTwin&>(*r.model).with_trajectory(false);
  } else {
    out.report.twin_nmse_nominal =
        nominal ? twin_nmse(*nominal, check) : std::numeric_limits<double>::quiet_NaN();
  }
  // On what was measured (for a neural ODE: the trajectories).
  per_output_fit(*r.model, check, out.report.nmse_per_output, out.report.r2_per_output);
  out.report.data_hash = measurement_hash(data);
  {
    constexpr Index kScatter = 500;
    Index values = 0;
    for (const auto& d : check) values += d.y.size();
    const Index stride = std::max<Index>(1, (values + kScatter - 1) / kScatter);
    Index k = 0;
    for (const auto& d : check) {
      const Matrix y_hat = r.model->forward(d.x, d.theta);
      for (Index i = 0; i < d.y.rows(); ++i) {
        for (Index j = 0; j < d.y.cols(); ++j, ++k) {
          if (k % stride != 0) continue;
          out.report.scatter_measured.push_back(d.y(i, j));
          out.report.scatter_predicted.push_back(y_hat(i, j));
        }
      }
    }
  }
  out.report.train_mse = r.mse_after;
  out.report.iterations = r.iterations;
  out.report.num_phi = start->num_physical_params();
  out.report.fit_s = seconds_since(t0);
  return out;
}

}  // namespace

FittedTwin fit_twin_to(const dt::ModelPtr& nominal, double input_min, double input_max,
                       const Vector& theta_min, const Vector& theta_max,
                       const std::vector<dt::Measurement>& data, const TwinFitOptions& options) {
  if (!nominal) throw std::invalid_argument("fit_twin: the device has no nominal twin");
  TwinShape shape{nominal->num_inputs(), nominal->num_params(), nominal->num_outputs(),
                  nominal->name() + " twin"};
  if (options.family == TwinFamily::kNeuralOde) {
    const Index periods = stno_twin_of(nominal).config().num_steps;
    shape.outputs *= periods;
    shape.name += "'s trajectories (p after each of the " + std::to_string(periods) + " periods)";
  }
  return fit_shaped(nominal, shape, input_min, input_max, theta_min, theta_max, data, options);
}

FittedTwin fit_twin_for(const drivers::DeviceSpec& spec, const dt::ModelPtr& nominal,
                        const std::vector<dt::Measurement>& data, const TwinFitOptions& options) {
  const TwinShape shape{spec.num_inputs, spec.num_params(), spec.num_outputs,
                        "device " + spec.serial + " (" + spec.kind + ")"};
  return fit_shaped(nominal, shape, spec.input_min, spec.input_max, spec.param_min(),
                    spec.param_max(), data, options);
}

TwinFitOptions default_fit_options(TwinFamily family, Index samples, Index max_batch) {
  TwinFitOptions o;
  o.family = family;
  o.samples = samples;
  o.batch = default_fit_batch(samples, max_batch);
  switch (family) {
    case TwinFamily::kGreyBox:
    case TwinFamily::kNeuralOde:
      break;
    case TwinFamily::kResidual:  // learned-twin-oscillator --family residual
      o.hidden = {32};
      o.l2 = 1e-5;
      o.max_iterations = 200;
      break;
    case TwinFamily::kBlackBox:  // learned-twin-shg, own-device-digits: many θ draws, Adam
      o.batch = std::min<Index>(o.batch, 20);
      o.hidden = {64, 64};
      o.l2 = 1e-7;
      o.adam_epochs = 100;
      o.adam_calls_per_step = 16;
      o.adam_learning_rate = 1e-3;
      break;
  }
  return o;
}

drivers::Result<FittedTwin> fit_twin(drivers::PhysicalSystem& device, const TwinFitOptions& options,
                                     const DeviceExecutor& executor) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.family == TwinFamily::kBlackBox || options.family == TwinFamily::kResidual) {
    // The MLP's size against the values measured, before the device is used (fit_shaped checks
    // the exact count again).
    const auto& spec = device.spec();
    std::vector<Index> sizes{spec.num_inputs + (options.family == TwinFamily::kBlackBox ||
                                                        options.residual_uses_theta
                                                    ? static_cast<Index>(spec.num_params()) : 0)};
    sizes.insert(sizes.end(), options.hidden.begin(), options.hidden.end());
    sizes.push_back(spec.num_outputs);
    const Index weights = dt::mlp_num_weights(sizes);
    const auto fit_rows = static_cast<Index>(static_cast<double>(options.samples) *
                                             (1.0 - options.validation_fraction));
    if (fit_rows * spec.num_outputs < 2 * weights) {
      throw std::invalid_argument(
          "fit_twin: too few samples for the " + to_string(options.family) + " twin of " +
          spec.serial + ": about " + std::to_string(fit_rows) + " fit samples × " +
          std::to_string(spec.num_outputs) + " outputs for its " + std::to_string(weights) +
          " weights (at least 2 values per weight): raise samples to ≥ " +
          std::to_string(static_cast<Index>(2.0 * static_cast<double>(weights) /
                                            static_cast<double>(spec.num_outputs) /
                                            (1.0 - options.validation_fraction)) + 1) +
          " or use smaller hidden layers; nothing was measured");
    }
  }
  if (options.family == TwinFamily::kNeuralOde) {
    throw std::invalid_argument("fit_twin: the neural-ode family fits trajectories, and one run "
                                "of " + device.spec().serial + " reads only the end of the "
                                "sequence: use fit_trajectory_twin with the device opened once "
                                "per sequence length 1 … T");
  }
  std::int64_t calls = 0;
  auto data = measure_samples(device, options, calls, executor);
  if (!data) return data.error();
  const double measure_s = seconds_since(t0);
  const auto& spec = device.spec();
  FittedTwin out = fit_twin_for(spec, device.nominal_twin(), data.value(), options);
  if (options.jacobian_points > 0) {
    if (auto r = measure_jacobian_agreement(device, out, options, executor); !r) return r.error();
  }
  out.report.device_calls += calls;
  out.report.measure_s = measure_s;
  out.report.fit_s = seconds_since(t0);
  return out;
}

void per_output_fit(const dt::DifferentiableModel& model, const std::vector<dt::Measurement>& data,
                    std::vector<double>& nmse, std::vector<double>& r2) {
  nmse.clear();
  r2.clear();
  if (data.empty()) return;
  const dt::Normalizer stats = output_stats(data, nullptr);
  const Index m = stats.offset.size();
  Eigen::ArrayXd err = Eigen::ArrayXd::Zero(m), var = Eigen::ArrayXd::Zero(m);
  for (const auto& d : data) {
    err += (model.forward(d.x, d.theta) - d.y).array().square().colwise().sum().transpose();
    var += (d.y.rowwise() - stats.offset.transpose()).array().square().colwise().sum().transpose();
  }
  for (Index i = 0; i < m; ++i) {
    const double e = var[i] > 0.0 ? err[i] / var[i]
                                  : (err[i] == 0.0 ? 0.0 : std::numeric_limits<double>::infinity());
    nmse.push_back(e);
    r2.push_back(1.0 - e);
  }
}

std::string measurement_hash(const std::vector<dt::Measurement>& data) {
  if (sodium_init() < 0) throw std::runtime_error("measurement_hash: libsodium failed to initialise");
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
  const auto feed = [&](const void* p, std::size_t n) {
    crypto_generichash_update(&state, static_cast<const unsigned char*>(p), n);
  };
  const auto feed_int = [&](std::int64_t v) {  // little-endian, whatever the host
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(v) >> (8 * i));
    feed(b, 8);
  };
  const auto feed_doubles = [&](const double* p, Index n) {
    for (Index i = 0; i < n; ++i) {
      std::uint64_t bits;
      std::memcpy(&bits, p + i, 8);
      feed_int(static_cast<std::int64_t>(bits));
    }
  };
  feed_int(static_cast<std::int64_t>(data.size()));
  for (const auto& d : data) {
    // Row-major, so that the bytes do not depend on Eigen's storage order.
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> x = d.x, y = d.y;
    feed_int(x.rows()), feed_int(x.cols()), feed_doubles(x.data(), x.size());
    feed_int(d.theta.size()), feed_doubles(d.theta.data(), d.theta.size());
    feed_int(y.rows()), feed_int(y.cols()), feed_doubles(y.data(), y.size());
  }
  unsigned char out[crypto_generichash_BYTES];
  crypto_generichash_final(&state, out, sizeof out);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : out) hex += {kHex[c >> 4], kHex[c & 15]};
  return hex;
}

drivers::Result<void> measure_jacobian_agreement(drivers::PhysicalSystem& device,
                                                 FittedTwin& fitted,
                                                 const TwinFitOptions& options,
                                                 const DeviceExecutor& executor) {
  // At the middle of the sampled θ and over the sampled input range.
  const auto& spec = device.spec();
  const Vector theta = options.theta_center.size() != 0
                           ? options.theta_center
                           : Vector(0.5 * (spec.param_min() + spec.param_max()));
  const double x_mid = 0.5 * (spec.input_min + spec.input_max);
  const double x_half = 0.5 * options.input_fraction * (spec.input_max - spec.input_min);
  const auto nominal = device.nominal_twin();
  auto cos = jacobian_agreement(device, *fitted.model, nominal.get(), theta, x_mid - x_half,
                                x_mid + x_half, options.jacobian_points, options.seed + 31,
                                fitted.report.device_calls, executor);
  if (!cos) return cos.error();
  std::tie(fitted.report.jacobian_cosine, fitted.report.jacobian_cosine_nominal) = cos.value();
  return {};
}

drivers::Result<std::pair<double, double>> jacobian_agreement(
    drivers::PhysicalSystem& device, const dt::DifferentiableModel& twin,
    const dt::DifferentiableModel* nominal, const Vector& theta, double x_lo, double x_hi,
    int points, std::uint64_t seed, std::int64_t& device_calls, const DeviceExecutor& executor) {
  const auto& spec = device.spec();
  const Index n = spec.num_inputs, m = spec.num_outputs;
  const Index max_batch = spec.max_batch > 0 ? spec.max_batch : 4096;
  const Index repeats = std::max<Index>(1, max_batch / (2 * n));
  const int calls_per_point = static_cast<int>((256 + repeats - 1) / repeats);  // ≥ 256 repeats
  const double eps = 0.05 * (spec.input_max - spec.input_min);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::normal_distribution<double> normal(0.0, 1.0);
  double sum_twin = 0.0, sum_nominal = 0.0;
  int count = 0;
  constexpr int kDirections = 4;
  for (int p = 0; p < points; ++p) {
    Vector x(n);
    for (Index i = 0; i < n; ++i) {
      x[i] = std::clamp(x_lo + (x_hi - x_lo) * unit(rng), spec.input_min, spec.input_max);
    }
    Matrix batch(2 * n * repeats, n);
    for (Index j = 0; j < n; ++j) {
      Vector up = x, down = x;
      up[j] = std::min(x[j] + eps, spec.input_max);
      down[j] = std::max(x[j] - eps, spec.input_min);
      for (Index r = 0; r < repeats; ++r) {
        batch.row((2 * j) * repeats + r) = up.transpose();
        batch.row((2 * j + 1) * repeats + r) = down.transpose();
      }
    }
    Matrix y = Matrix::Zero(batch.rows(), m);
    for (int k = 0; k < calls_per_point; ++k) {
      auto yk = on_device(executor, [&] { return device.forward(batch, theta); });
      ++device_calls;
      if (!yk) return yk.error();
      y += yk.value();
    }
    y /= static_cast<double>(calls_per_point);
    Matrix jac(m, n);  // J(:, j) = ∂y/∂x_j
    for (Index j = 0; j < n; ++j) {
      const double h = batch((2 * j) * repeats, j) - batch((2 * j + 1) * repeats, j);
      jac.col(j) = (y.middleRows(2 * j * repeats, repeats).colwise().mean() -
                    y.middleRows((2 * j + 1) * repeats, repeats).colwise().mean())
                       .transpose() / h;
    }
    for (int d = 0; d < kDirections; ++d) {
      Matrix y_bar(1, m);
      for (Index i = 0; i < m; ++i) y_bar(0, i) = normal(rng);
      const Vector measured = jac.transpose() * y_bar.row(0).transpose();
      auto cosine = [&](const dt::DifferentiableModel& model) {
        const Vector g = model.vjp(x.transpose(), theta, y_bar).x_bar.row(0).transpose();
        return g.dot(measured) / std::max(g.norm() * measured.norm(), 1e-300);
      };
      sum_twin += cosine(twin);
      sum_nominal += nominal ? cosine(*nominal) : std::numeric_limits<double>::quiet_NaN();
      ++count;
    }
  }
  if (count == 0) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return std::pair{nan, nan};
  }
  return std::pair{sum_twin / count, sum_nominal / count};
}

drivers::Result<FittedTwin> fit_trajectory_twin(
    const std::vector<drivers::PhysicalSystem*>& prefixes, const TwinFitOptions& options,
    const DeviceExecutor& executor) {
  const auto t0 = std::chrono::steady_clock::now();
  if (options.family != TwinFamily::kNeuralOde) {
    throw std::invalid_argument("fit_trajectory_twin: fits the neural-ode family, not " +
                                to_string(options.family) + ": use fit_twin for that");
  }
  std::int64_t calls = 0;
  auto data = measure_trajectories(prefixes, options, calls, executor);
  if (!data) return data.error();
  const double measure_s = seconds_since(t0);
  const auto& device = *prefixes.back();
  const auto& spec = device.spec();
  FittedTwin out = fit_twin_to(device.nominal_twin(), spec.input_min, spec.input_max,
                               spec.param_min(), spec.param_max(), data.value(), options);
  out.report.device_calls = calls;
  out.report.measure_s = measure_s;
  out.report.fit_s = seconds_since(t0);
  return out;
}

}  // namespace pnn::training

#include "pnn/training/spiking_fit.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace pnn::training {

namespace dt = digital_twin;
using drivers::Errc;
using drivers::make_error;

Matrix spike_counts(const MatrixRef& hidden_spikes, Index steps, Index hidden) {
  Matrix n = Matrix::Zero(hidden_spikes.rows(), hidden);
  for (Index t = 0; t < steps; ++t) n += hidden_spikes.middleCols(t * hidden, hidden);
  return n;
}

namespace {

struct ChipRuns {
  std::vector<dt::SpikeRecord> runs;
  Matrix mean_counts;  // probe × H
  Matrix mean_outputs;
};

// The spike counts (probe × H) of the twin built from `c`.
Matrix twin_counts(const dt::SpikingLifConfig& c, const MatrixRef& probe, const VectorRef& theta) {
  const dt::SpikingLifModel model(c);
  return spike_counts(model.record(probe, theta).hidden_spikes, c.num_steps, c.num_hidden);
}

// mean |n_twin − n̄_chip|.
double spike_error(const Matrix& counts, const Matrix& mean_counts) {
  return (counts - mean_counts).cwiseAbs().mean();
}

// Mean square of (twin traces replayed from each run's hidden spikes − the run's traces).
double trace_mse(const dt::SpikingLifModel& model, const MatrixRef& probe, const VectorRef& theta,
                 const ChipRuns& chip) {
  double sum = 0.0;
  for (const dt::SpikeRecord& r : chip.runs) {
    sum += (model.replay(probe, theta, r.hidden_spikes).output_traces - r.output_traces)
               .squaredNorm() /
           static_cast<double>(r.output_traces.size());
  }
  return sum / static_cast<double>(chip.runs.size());
}

// Hidden thresholds and channel gains (step 1 of the header's procedure) fitted into `c`.
// Returns the fitted twin's spike-count error.
double fit_hidden(dt::SpikingLifConfig& c, const MatrixRef& probe, const VectorRef& theta,
                  const Matrix& mean_counts, int iterations) {
  const Index H = c.num_hidden, C = c.num_channels();
  if (c.hidden_threshold.size() == 0) c.hidden_threshold = Vector::Constant(H, c.threshold);
  if (c.channel_gain.size() == 0) c.channel_gain = Vector::Ones(C);
  const Vector chip_rate = mean_counts.colwise().mean().transpose();
  Matrix counts = twin_counts(c, probe, theta);  // always those of `c`
  dt::SpikingLifConfig best = c;
  double best_error = spike_error(counts, mean_counts);
  for (int it = 0; it < iterations; ++it) {
    // Thresholds: more spikes in the twin than on the chip → raise ϑ, and the reverse. The
    // square root and the step bound keep the fixed point from overshooting.
    const Vector twin_rate = counts.colwise().mean().transpose();
    for (Index j = 0; j < H; ++j) {
      if (twin_rate[j] == 0.0 && chip_rate[j] == 0.0) continue;
      const double ratio = std::sqrt((twin_rate[j] + 0.02) / (chip_rate[j] + 0.02));
      c.hidden_threshold[j] = std::clamp(c.hidden_threshold[j] * std::clamp(ratio, 0.85, 1.18),
                                         0.3 * c.threshold, 3.0 * c.threshold);
    }
    counts = twin_counts(c, probe, theta);
    double error = spike_error(counts, mean_counts);
    // Channel gains: a coordinate search, ±10 % per round, kept where the error falls.
    for (Index k = 0; k < C; ++k) {
      for (const double f : {0.9, 1.0 / 0.9}) {
        dt::SpikingLifConfig trial = c;
        trial.channel_gain[k] = std::clamp(c.channel_gain[k] * f, 0.3, 3.0);
        Matrix trial_counts = twin_counts(trial, probe, theta);
        const double e = spike_error(trial_counts, mean_counts);
        if (e < error) {
          c = std::move(trial);
          counts = std::move(trial_counts);
          error = e;
          break;
        }
      }
    }
    if (error < best_error) {
      best = c;
      best_error = error;
    }
  }
  c = best;
  return best_error;
}

// Readout gain and offset per output (step 2): least squares over every run, sample and step
// whose chip trace is not at the ADC's rails (the extremes of all traces, where they repeat).
void fit_readout(dt::SpikingLifConfig& c, const MatrixRef& probe, const VectorRef& theta,
                 const ChipRuns& chip) {
  const Index O = c.num_outputs, T = c.num_steps;
  c.output_gain = Vector::Ones(O);
  c.output_offset = Vector::Zero(O);
  const dt::SpikingLifModel model(c);
  double lo = chip.runs.front().output_traces.minCoeff();
  double hi = chip.runs.front().output_traces.maxCoeff();
  for (const auto& r : chip.runs) {
    lo = std::min(lo, r.output_traces.minCoeff());
    hi = std::max(hi, r.output_traces.maxCoeff());
  }
  Vector n = Vector::Zero(O), st = Vector::Zero(O), sc = Vector::Zero(O), stt = Vector::Zero(O),
         stc = Vector::Zero(O);
  for (const dt::SpikeRecord& r : chip.runs) {
    const Matrix twin = model.replay(probe, theta, r.hidden_spikes).output_traces;
    for (Index b = 0; b < twin.rows(); ++b) {
      for (Index t = 0; t < T; ++t) {
        for (Index o = 0; o < O; ++o) {
          const double y = r.output_traces(b, t * O + o), u = twin(b, t * O + o);
          if (y <= lo || y >= hi) continue;  // a rail: the reading says only "at least"
          n[o] += 1.0;
          st[o] += u;
          sc[o] += y;
          stt[o] += u * u;
          stc[o] += u * y;
        }
      }
    }
  }
  for (Index o = 0; o < O; ++o) {
    if (n[o] < 10.0) continue;  // nothing to fit: nominal
    const double mt = st[o] / n[o], mc = sc[o] / n[o];
    const double var = stt[o] / n[o] - mt * mt, cov = stc[o] / n[o] - mt * mc;
    if (!(var > 1e-12)) continue;
    const double a = cov / var;
    if (!(a > 0.05) || !std::isfinite(a)) continue;  // a readout that does not follow: nominal
    c.output_gain[o] = a;
    c.output_offset[o] = mc - a * mt;
  }
}

}  // namespace

drivers::Result<MockFitResult> mock_fit(drivers::PhysicalSystem& device,
                                        const dt::SpikingLifModel& twin, const MatrixRef& probe,
                                        const VectorRef& theta, const MockFitOptions& options,
                                        const DeviceExecutor& executor) {
  if (options.repeats < 2) {
    throw std::invalid_argument("mock_fit: repeats must be ≥ 2 (the noise floor compares runs), got " +
                                std::to_string(options.repeats));
  }
  const auto& spec = device.spec();
  const dt::SpikingLifConfig& nominal = twin.config();
  if (spec.spike_channels <= 0) {
    return make_error(Errc::kWrongState, "mock fit of " + spec.serial + ": a " + spec.kind +
                                             " setup records no spikes; the mock fit is for "
                                             "spiking setups (use calibration)");
  }
  if (spec.spike_hidden != nominal.num_hidden || spec.spike_steps != nominal.num_steps ||
      spec.num_outputs != nominal.num_outputs || spec.num_inputs != nominal.num_features) {
    return make_error(Errc::kShapeMismatch,
                      "mock fit of " + spec.serial + ": the twin (" +
                          std::to_string(nominal.num_features) + " features, " +
                          std::to_string(nominal.num_hidden) + " hidden, " +
                          std::to_string(nominal.num_steps) + " steps) does not match the chip; "
                          "fit the chip's own nominal twin");
  }
  const Index H = nominal.num_hidden, T = nominal.num_steps;
  ChipRuns chip;
  MockFitReport report;
  for (int r = 0; r < options.repeats; ++r) {
    auto rec = on_device(executor, [&] { return device.spike_run(probe, theta); });
    ++report.chip_runs;
    if (!rec) return rec.error();
    chip.runs.push_back(std::move(rec).value());
  }
  const double R = static_cast<double>(options.repeats);
  std::vector<Matrix> counts;
  chip.mean_counts = Matrix::Zero(probe.rows(), H);
  chip.mean_outputs = Matrix::Zero(probe.rows(), nominal.num_outputs);
  for (const auto& r : chip.runs) {
    counts.push_back(spike_counts(r.hidden_spikes, T, H));
    chip.mean_counts += counts.back() / R;
    chip.mean_outputs += r.outputs / R;
  }
  for (const Matrix& n : counts) {
    const Matrix others = (R * chip.mean_counts - n) / (R - 1.0);
    report.spike_error_floor += (n - others).cwiseAbs().mean() / R;
  }
  report.chip_spikes_per_neuron = chip.mean_counts.mean();
  report.spike_error_before = spike_error(twin_counts(nominal, probe, theta), chip.mean_counts);
  report.trace_mse_before = trace_mse(twin, probe, theta, chip);
  report.output_mse_before = (twin.forward(probe, theta) - chip.mean_outputs).squaredNorm() /
                             static_cast<double>(chip.mean_outputs.size());

  dt::SpikingLifConfig fitted = nominal;
  // The readout's gain and offset do not change the hidden spikes, so the error stays.
  report.spike_error_after = fit_hidden(fitted, probe, theta, chip.mean_counts, options.iterations);
  fit_readout(fitted, probe, theta, chip);
  auto model = std::make_shared<const dt::SpikingLifModel>(fitted);
  report.trace_mse_after = trace_mse(*model, probe, theta, chip);
  report.output_mse_after = (model->forward(probe, theta) - chip.mean_outputs).squaredNorm() /
                            static_cast<double>(chip.mean_outputs.size());
  return MockFitResult{std::move(model), report};
}

}  // namespace pnn::training

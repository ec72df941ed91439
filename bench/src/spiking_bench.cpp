// spiking-yinyang: the simulated analog spiking chip (docs/setups/spiking-chip.md) on the
// Yin-Yang data set (Kriener et al. 2021; 5,000 train / 1,000 test): 4 coordinates + 1 bias
// channel as latency-coded spike times → 120 hidden LIF neurons → 3 leaky-integrator outputs read
// as their peak membrane. The twin is first mock-fitted to the chip (per-neuron corrections,
// training/spiking_fit.hpp); PAT then runs each batch on the chip as a spike run and
// backpropagates surrogate gradients through the twin at the chip's recorded spikes and traces
// (the hxtorch pattern); in-silico training uses the fitted twin alone and is then measured on
// the chip. Large gap by default (--gap small for the other); --backward spike-train uses the
// spike-train-level rule at the chip's record, --backward twin the twin's own activity, and
// --mock-fit off trains with the nominal twin.
#include "bench_common.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/spiking_fit.hpp"

namespace pnn::bench::detail {

using training::JobConfig;
using training::LayerSpec;

// The chip of the benchmarks: `shape` its sizes ("features=4&bias=1&hidden=120&outputs=3"),
// `extra` further options ("&noise=0&jitter=0": the same mismatch without trial noise).
std::string spiking_chip_address(const std::string& shape, const std::string& gap,
                                 std::uint64_t seed, const std::string& extra = "") {
  return "sim://spiking-chip?" + shape + "&weights=round&gap=" + gap +
         "&seed=" + std::to_string(seed + 1) + extra;
}

// The chip as the one layer of the network, the twin mock-fitted first, PAT (the chip's record
// in the backward by default) against in silico from the same start.
JobConfig spiking_job(const std::string& name, const std::string& dataset, const std::string& address,
                      int epochs, std::uint64_t seed, const std::string& backward, bool fit,
                      long fit_samples) {
  JobConfig c;
  c.source = name;
  c.name = name;
  c.seed = seed;
  c.dataset = dataset;
  c.devices = {{"chip", address}};
  LayerSpec chip{LayerSpec::Kind::kPhysical, "chip"};
  chip.backward_at_record = backward != "twin";
  chip.spike_train_rule = backward == "spike-train";
  c.network = {chip};
  // θ is in weight levels (±63): Adam steps of a fraction of a level, annealed (cosine).
  c.training = pat_options(0.3, epochs, seed);
  c.training.batch_size = 50;
  c.training.lr_schedule = training::TrainOptions::Schedule::kCosine;
  c.training.evaluate_each_epoch = true;  // the 5-epoch figure comes from the history
  c.calibrate = fit;
  c.calibration_samples = fit_samples > 0 ? fit_samples : 500;
  c.compare_in_silico = true;
  return c;
}

namespace {

// Mean spikes per hidden neuron per input of the chip at θ on `x` (a fresh connection to the same
// chip: the serial fixes its mismatch).
double spikes_per_neuron(const std::string& address, const MatrixRef& x, const VectorRef& theta) {
  auto chip = drivers::make_physical_system(address);
  if (auto r = chip->configure(); !r) throw std::runtime_error(r.error().message);
  if (auto r = chip->activate(); !r) throw std::runtime_error(r.error().message);
  const auto& spec = chip->spec();
  double total = 0.0;
  for (Index at = 0; at < x.rows(); at += spec.max_batch) {
    const Index n = std::min<Index>(spec.max_batch, x.rows() - at);
    const auto rec = unwrap(chip->spike_run(x.middleRows(at, n), theta));
    total += rec.hidden_spikes.sum();
  }
  chip->shutdown();
  return total / static_cast<double>(x.rows() * spec.spike_hidden);
}

// The record of one spiking job: job_record's keys, the backward, the 5-epoch figures, the
// chip's mean spikes per hidden neuron per test input at the PAT-trained θ, the mock fit.
nlohmann::json spiking_record(const JobConfig& c, const training::JobResult& r,
                              const std::string& gap, const std::string& backward) {
  nlohmann::json j = job_record(c, r, gap);
  j["backward"] = backward;
  j["mock_fit"] = c.calibrate;
  j["address"] = c.devices[0].address;
  if (const auto* pat = r.phase("pat")) {
    if (pat->history.size() >= 5) j["acc_pat_reality_5ep"] = pat->history[4].test_accuracy;
    const training::Dataset test = training::load_dataset(c.dataset).test;
    j["spikes_per_neuron"] = spikes_per_neuron(c.devices[0].address, test.x, pat->thetas.at(0));
  }
  if (const auto* p = r.phase("in-silico"); p && p->history.size() >= 5) {
    j["acc_insilico_reality_5ep"] = p->history[4].test_accuracy;
  }
  if (!r.calibration.empty() && r.calibration.front().mock_fit) {
    const training::MockFitReport& m = *r.calibration.front().mock_fit;
    j["mock_fit_spike_error_before"] = m.spike_error_before;
    j["mock_fit_spike_error_after"] = m.spike_error_after;
    j["mock_fit_spike_error_floor"] = m.spike_error_floor;
    j["mock_fit_trace_mse_before"] = m.trace_mse_before;
    j["mock_fit_trace_mse_after"] = m.trace_mse_after;
    j["mock_fit_output_mse_before"] = m.output_mse_before;
    j["mock_fit_output_mse_after"] = m.output_mse_after;
  }
  return j;
}

}  // namespace

std::vector<nlohmann::json> spiking_yinyang(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 20;
  const std::string backward = options.backward.empty() ? "measured" : options.backward;
  const bool fit = options.mock_fit != "off";
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  const std::string shape = "features=4&bias=1&hidden=120&outputs=3";
  std::vector<nlohmann::json> out;
  // The chip as specified, then the same chip without its trial-to-trial noise (membrane noise
  // and input jitter off, the fixed-pattern mismatch unchanged): what the mismatch alone costs.
  for (const std::string extra : {"", "&noise=0&jitter=0"}) {
    const JobConfig c = spiking_job("spiking-yinyang", "yin-yang",
                                    spiking_chip_address(shape, gap, options.seed, extra), epochs,
                                    options.seed, backward, fit, options.samples);
    out.push_back(spiking_record(c, run_job_quietly(c, gap, options), gap, backward));
    out.back()["trial_noise"] = extra.empty();
  }
  return out;
}

std::vector<nlohmann::json> spiking_digits(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 30;
  const bool fit = options.mock_fit != "off";
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  // 8×4 pooled digits: 32 features, the chip's 32 event channels (no bias channel).
  const std::string shape = "features=32&bias=0&hidden=120&outputs=10";
  std::vector<nlohmann::json> out;
  // Surrogate gradients and the spike-train-level rule side by side at the chip's record.
  const std::vector<std::string> rules =
      options.backward.empty() ? std::vector<std::string>{"measured", "spike-train"}
                               : std::vector<std::string>{options.backward};
  for (const std::string& backward : rules) {
    JobConfig c = spiking_job("spiking-digits", "digits-8x4",
                              spiking_chip_address(shape, gap, options.seed), epochs,
                              options.seed, backward, fit, options.samples);
    c.compare_in_silico = backward == rules.front();
    out.push_back(spiking_record(c, run_job_quietly(c, gap, options), gap, backward));
  }
  return out;
}

}  // namespace pnn::bench::detail

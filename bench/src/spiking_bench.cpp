// spiking-yinyang: the simulated analog spiking chip (docs/setups/spiking-chip.md) on the
// Yin-Yang data set (Kriener et al. 2021; 5,000 train / 1,000 test): 4 coordinates + 1 bias
// channel as latency-coded spike times → 120 hidden LIF neurons → 3 leaky-integrator outputs read
// as their peak membrane. The twin is first mock-fitted to the chip (per-neuron corrections,
// training/spiking_fit.hpp); PAT then runs each batch on the chip as a spike run and
// backpropagates surrogate gradients through the twin at the chip's recorded spikes and traces
// (the hxtorch pattern); in-silico training uses the fitted twin alone and is then measured on
// the chip. Large gap by default (--gap small for the other); --backward twin and --mock-fit off
// give the variants without the chip's record or without the fit.
#include "bench_common.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/spiking_fit.hpp"

namespace pnn::bench::detail {

using training::JobConfig;
using training::LayerSpec;

std::string spiking_chip_address(const std::string& gap, std::uint64_t seed) {
  return "sim://spiking-chip?features=4&bias=1&hidden=120&outputs=3&weights=round&gap=" + gap +
         "&seed=" + std::to_string(seed + 1);
}

JobConfig spiking_yinyang_job(const std::string& gap, int epochs, std::uint64_t seed,
                              bool at_record, bool fit) {
  JobConfig c;
  c.source = "spiking-yinyang";
  c.name = "spiking-yinyang";
  c.seed = seed;
  c.dataset = "yin-yang";
  c.devices = {{"chip", spiking_chip_address(gap, seed)}};
  LayerSpec chip{LayerSpec::Kind::kPhysical, "chip"};
  chip.backward_at_record = at_record;
  c.network = {chip};
  // θ is in weight levels (±63): Adam steps of a fraction of a level.
  c.training = pat_options(0.1, epochs, seed);
  c.training.batch_size = 50;
  c.training.evaluate_each_epoch = true;  // the 5-epoch figure comes from the history
  c.calibrate = fit;
  c.calibration_samples = 500;
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

}  // namespace

std::vector<nlohmann::json> spiking_yinyang(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 20;
  const bool at_record = options.backward != "twin";
  const bool fit = options.mock_fit != "off";
  std::vector<nlohmann::json> out;
  const std::string gap = options.gap.empty() ? "large" : options.gap;
  const JobConfig c = spiking_yinyang_job(gap, epochs, options.seed, at_record, fit);
  const training::JobResult r = run_job_quietly(c, gap, options);
  nlohmann::json j = job_record(c, r, gap);
  j["backward"] = at_record ? "measured" : "twin";
  j["mock_fit"] = fit;
  if (const auto* pat = r.phase("pat")) {
    if (pat->history.size() >= 5) j["acc_pat_reality_5ep"] = pat->history[4].test_accuracy;
    const training::Dataset test = training::load_dataset("yin-yang").test;
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
  out.push_back(std::move(j));
  return out;
}

}  // namespace pnn::bench::detail

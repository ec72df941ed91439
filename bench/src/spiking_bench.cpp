// spiking-yinyang: the simulated analog spiking chip (docs/setups/spiking-chip.md) on the
// Yin-Yang data set (Kriener et al. 2021; 5,000 train / 1,000 test): 4 coordinates + 1 bias
// channel as latency-coded spike times → 120 hidden LIF neurons → 3 leaky-integrator outputs read
// as their peak membrane. PAT runs each batch on the chip and backpropagates surrogate gradients
// through the LIF twin; in-silico training uses the twin alone and is then measured on the chip.
// Both at the large mismatch gap; the small gap is run too when asked for (--gap small).
#include "bench_common.hpp"

namespace pnn::bench::detail {

using training::JobConfig;
using training::LayerSpec;

JobConfig spiking_yinyang_job(const std::string& gap, int epochs, std::uint64_t seed) {
  JobConfig c;
  c.source = "spiking-yinyang";
  c.name = "spiking-yinyang";
  c.seed = seed;
  c.dataset = "yin-yang";
  c.devices = {{"chip", "sim://spiking-chip?features=4&bias=1&hidden=120&outputs=3&weights=round"
                        "&gap=" +
                            gap + "&seed=" + std::to_string(seed + 1)}};
  c.network = {{LayerSpec::Kind::kPhysical, "chip"}};
  // θ is in weight levels (±63): Adam steps of a fraction of a level.
  c.training = pat_options(0.1, epochs, seed);
  c.training.batch_size = 50;
  c.calibrate = false;
  c.compare_in_silico = true;
  return c;
}

std::vector<nlohmann::json> spiking_yinyang(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 20;
  std::vector<nlohmann::json> out;
  const std::vector<std::string> gaps =
      options.gap.empty() ? std::vector<std::string>{"large"} : std::vector<std::string>{options.gap};
  for (const std::string& gap : gaps) {
    const JobConfig c = spiking_yinyang_job(gap, epochs, options.seed);
    const training::JobResult r = run_job_quietly(c, gap, options);
    out.push_back(job_record(c, r, gap));
  }
  return out;
}

}  // namespace pnn::bench::detail

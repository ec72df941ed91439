// ep-resistive-digits: centred equilibrium propagation trains the simulated resistive network on
// the digits (docs/learning-rules.md, docs/setups/resistive-network.md), measured on the
// simulated hardware; PAT on the same device (its nominal twin) from the same θ for comparison.
#include "bench_common.hpp"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;

training::JobConfig resistive_job(const std::string& name, const training::RuleConfig& rule,
                                  int epochs, std::uint64_t seed) {
  training::JobConfig c;
  c.source = name;
  c.name = name;
  c.seed = seed;
  c.dataset = "digits";
  c.devices = {{"resnet", "sim://resistive-network?inputs=64&hidden=128&outputs=10&seed=" +
                              std::to_string(seed + 1)}};
  c.network = {{training::LayerSpec::Kind::kPhysical, "resnet"}};
  c.training = pat_options(0.01, epochs, seed);
  c.training.method = rule;
  c.compare_in_silico = false;
  c.digital_hidden = 0;
  return c;
}

}  // namespace

// Options from short runs (docs/learning-rules.md): β = 0.006 mS, large enough that the nudged
// node voltages move well above the 0.1 mV readout noise (β = 0.002 reached 95.1 %), small enough
// that the negative phase stays convex (2βa² below the output nodes' conductance); Adam at
// 0.01 mS (≈ 10 DAC steps), batch 32, 60 epochs (30 reached 95.8 %).
std::vector<json> ep_resistive_digits(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 60;
  training::EpConfig ep;  // centred, β = 0.006 mS, warm-started nudged phases
  const training::JobConfig c = resistive_job("ep-resistive-digits", ep, epochs, options.seed);
  const training::JobResult r = run_job_quietly(c, "", options);
  const training::PhaseResult& p = r.phases.front();
  const training::JobConfig cp =
      resistive_job("ep-resistive-digits-pat", training::PatConfig{}, epochs, options.seed);
  const training::JobResult rp = run_job_quietly(cp, "", options);
  const training::PhaseResult& pp = rp.phases.front();

  const Index train_rows = 1348;  // digits mod4 split: 1,797 − 449
  const Index batches = (train_rows + c.training.batch_size - 1) / c.training.batch_size;
  const double calls_per_batch =
      static_cast<double>(p.hardware_calls) / static_cast<double>(epochs * batches);
  json j{{"name", "ep-resistive-digits"},
         {"dataset", c.dataset},
         {"split", r.split},
         {"seed", c.seed},
         {"rule", "ep"},
         {"nudging", training::to_string(ep.nudging)},
         {"beta", ep.beta},
         {"acc_ep_reality", p.acc_hardware},
         {"acc_pat_reality", pp.acc_hardware},
         {"acc_pat_twin", pp.acc_twin},
         {"hardware_calls", p.hardware_calls},
         {"hardware_calls_pat", pp.hardware_calls},
         // Each settle call settles the whole batch: per training sample and epoch, one free
         // settle and (calls per batch − 1) nudged ones.
         {"free_settles_per_sample", 1.0},
         {"nudged_settles_per_sample", calls_per_batch - 1.0},
         {"epochs", epochs},
         {"wall_s", r.wall_seconds},
         {"wall_s_pat", rp.wall_seconds},
         {"threads", r.threads}};
  return {j};
}

}  // namespace pnn::bench::detail

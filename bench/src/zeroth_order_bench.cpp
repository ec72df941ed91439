// spsa-oscillator-digits and mgd-oscillator-digits: the pat-oscillator-digits network on the
// large-gap devices trained with no twin at all (docs/learning-rules.md). Accuracy is measured on
// the hardware after every epoch, against the device calls the training has made; the in-silico
// baseline (twin-trained, deployed on the same devices) is trained in the same run for the
// comparison the issue asks for.
#include "bench_common.hpp"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;

training::JobConfig twin_free_job(const std::string& name, int epochs, std::uint64_t seed,
                                  const training::RuleConfig& rule, Index batch_size,
                                  const std::string& optimizer, double learning_rate) {
  training::JobConfig c = oscillator_job(name, "digits", "large", epochs, seed, 8);
  for (auto& layer : c.network) layer.twin = false;  // no twin at all: forward on the devices only
  c.training.method = rule;
  c.training.optimizer = optimizer;
  c.training.learning_rate = learning_rate;
  c.training.batch_size = batch_size;
  c.training.evaluate_each_epoch = true;  // the accuracy-vs-calls curve
  c.compare_in_silico = false;            // impossible without twins: trained separately below
  c.digital_hidden = 0;
  return c;
}

std::vector<json> zeroth_order_bench(const std::string& name, const std::string& rule_name,
                                     const training::RuleConfig& rule, int default_epochs,
                                     Index batch_size, const std::string& optimizer,
                                     double learning_rate, const BenchOptions& options) {
  if (!options.gap.empty() && options.gap != "large") {
    throw std::invalid_argument(name + " runs on the large-gap devices only");
  }
  const int epochs = options.epochs > 0 ? options.epochs : default_epochs;
  const training::JobConfig c =
      twin_free_job(name, epochs, options.seed, rule, batch_size, optimizer, learning_rate);
  const training::JobResult r = run_job_quietly(c, "large", options);
  const training::PhaseResult& p = r.phases.front();
  json curve = json::array();
  for (const auto& e : p.history) curve.push_back({e.hardware_calls, e.test_accuracy});

  // The baseline to beat: the same network and start trained on the twins alone, deployed.
  training::JobConfig insilico =
      oscillator_job(name + "-insilico", "digits", "large", 40, options.seed, 8);
  insilico.training.method = training::InSilicoConfig{};
  insilico.compare_in_silico = false;
  insilico.digital_hidden = 0;
  const training::JobResult ri = run_job_quietly(insilico, "large", options);

  json j{{"name", name},
         {"dataset", c.dataset},
         {"split", r.split},
         {"seed", c.seed},
         {"gap", "large"},
         {"rule", training::to_string(rule)},
         {"acc_" + rule_name + "_reality", p.acc_hardware},
         {"hardware_calls", p.hardware_calls},
         {"acc_insilico_reality", ri.phases.front().acc_hardware},
         {"acc_curve", curve},  // [hardware calls, test accuracy on the hardware] per epoch
         {"batch_size", batch_size},
         {"optimizer", optimizer},
         {"epochs", epochs},
         {"wall_s", r.wall_seconds},
         {"wall_s_insilico", ri.wall_seconds},
         {"threads", r.threads}};
  return {j};
}

}  // namespace

// The rules' default options are these benchmarks' (learning_rule.hpp), chosen from short runs
// (docs/learning-rules.md, "Choosing the options"): c and Δθ well above the θ DAC step (4.9e-4)
// and the readout noise, plain SGD (at Spall's a_k for SPSA), 32-sample batches (the device's
// cost per call grows with the batch; the estimate's noise is dominated by the P ≈ 9,700
// perturbed parameters, not by the batch). Both rules get the same budget, 120,400 device calls:
// SPSA 700 epochs × 43 updates × 2 forwards × 2 layers; MGD 175 epochs × 43 batches × τ_x = 8
// time steps × 2 layers, one update per batch.
std::vector<json> spsa_oscillator_digits(const BenchOptions& options) {
  return zeroth_order_bench("spsa-oscillator-digits", "spsa", training::SpsaConfig{}, 700, 32,
                            "sgd", 1.0, options);
}

std::vector<json> mgd_oscillator_digits(const BenchOptions& options) {
  return zeroth_order_bench("mgd-oscillator-digits", "mgd", training::MgdConfig{}, 175, 32, "sgd",
                            0.1, options);
}

}  // namespace pnn::bench::detail

#include "pnn/training/learning_rule.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/training/job.hpp"
#include "pnn/training/job_summary.hpp"
#include "pnn/training/trainer.hpp"
#include "rule_test_util.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;

namespace {

const char* kJob = R"(name: rules
seed: 3
data: {name: digits, max_train: 96, max_test: 64}
devices:
  osc-a: sim://mechanical-oscillators?seed=1&n=64&gap=large
  osc-b: sim://mechanical-oscillators?seed=2&n=74&gap=large
network:
  - physical: {device: osc-a, twin: none}
  - pad: 10
  - physical: osc-b
  - slice: {first: 64, count: 10, gain: 3.0}
training:
  method: {name: spsa, a: 2, c: 0.1, A: 10, perturbations: 2}
  optimizer: sgd
  batch_size: 32
  epochs: 1
compare: {in_silico: true}
)";

std::string job(const std::string& from, const std::string& to) {
  return test::replaced(kJob, from, to);
}

}  // namespace

TEST_CASE("learning rules: training.method names a rule and its options") {
  const JobConfig c = parse_job_config(kJob, "rules.yaml");
  const auto* spsa = std::get_if<SpsaConfig>(&c.training.method);
  REQUIRE(spsa != nullptr);
  CHECK(spsa->a == 2.0);
  CHECK(spsa->c == 0.1);
  CHECK(spsa->A == 10.0);
  CHECK(spsa->alpha == 0.602);  // Spall's defaults where not given
  CHECK(spsa->gamma == 0.101);
  CHECK(spsa->perturbations == 2);
  CHECK_FALSE(c.network[0].twin);
  CHECK(c.network[2].twin);
  CHECK(to_string(c.training.method) == "spsa");

  const JobConfig m = parse_job_config(
      job("{name: spsa, a: 2, c: 0.1, A: 10, perturbations: 2}",
          "{name: mgd, code: tdma, amplitude: 0.05, tau_x: 2, tau_theta: 6, tau_hp: 3}"),
      "rules.yaml");
  const auto* mgd = std::get_if<MgdConfig>(&m.training.method);
  REQUIRE(mgd != nullptr);
  CHECK(mgd->code == MgdConfig::Code::kTdma);
  CHECK(mgd->amplitude == 0.05);
  CHECK(mgd->tau_x == 2);
  CHECK(mgd->tau_theta == 6);
  CHECK(mgd->tau_hp == 3.0);
  // The scalar form is the rule with its defaults.
  const JobConfig s = parse_job_config(
      job("{name: spsa, a: 2, c: 0.1, A: 10, perturbations: 2}", "mgd"), "rules.yaml");
  CHECK(std::holds_alternative<MgdConfig>(s.training.method));
  CHECK(std::get<MgdConfig>(s.training.method).code == MgdConfig::Code::kCdma);
}

TEST_CASE("learning rules: an unknown rule or option names the valid ones") {
  const std::string rule = "{name: spsa, a: 2, c: 0.1, A: 10, perturbations: 2}";
  const std::pair<const char*, const char*> cases[] = {
      {"spsaa",
       "unknown learning rule 'spsaa' (rules: pat, in-silico, spsa, mgd, pc, ff, scff, probe, ep, "
       "coupled-learning) (did "
       "you mean 'spsa'?)"},
      {"{name: backprop}",
       "rules.yaml:13: 'training.method': unknown learning rule 'backprop' (rules: pat, in-silico, "
       "spsa, mgd, pc, ff, scff, probe, ep, coupled-learning)"},
      {"{name: spsa, alfa: 0.6}",
       "'training.method.alfa': unknown key (did you mean 'alpha'?) (allowed here: name, a, c, A, "
       "alpha, gamma, perturbations)"},
      {"{name: mgd, code: wdma}", "'wdma' is not one of cdma, fdma, tdma"},
      {"{name: mgd, tau: 2}", "(allowed here: name, code, amplitude, tau_x, tau_theta, tau_hp)"},
      {"{name: pat, a: 1}", "(allowed here: name)"},
      {"{a: 1}",
       "needs name: RULE (one of pat, in-silico, spsa, mgd, pc, ff, scff, probe, ep, "
       "coupled-learning)"},
      // Options out of range name the option and the range.
      {"{name: spsa, c: 0}", "spsa.c: must be > 0"},
      {"{name: spsa, alpha: 1.5}", "spsa.alpha: must be in (0, 1]"},
      {"{name: mgd, tau_x: 4, tau_theta: 6}", "mgd.tau_theta: must be a multiple of tau_x (4)"},
  };
  for (const auto& [method, message] : cases) {
    CAPTURE(method);
    CHECK_THROWS_WITH_AS(parse_job_config(job(rule, method), "rules.yaml"),
                         doctest::Contains(message), ConfigError);
  }
  // SPSA schedules the learning rate itself.
  CHECK_THROWS_WITH_AS(
      parse_job_config(job("optimizer: sgd", "optimizer: sgd\n  learning_rate: 0.1"), "rules.yaml"),
      doctest::Contains("set training.method.a instead"), ConfigError);
  CHECK_THROWS_WITH_AS(
      make_learning_rule(default_rule_config("mgd"), 0)->set_state({"spsa", 3, {}}),
      doctest::Contains("not mgd's"), RuleError);
  CHECK_THROWS_WITH_AS(default_rule_config("eqprop"),
                       "unknown learning rule 'eqprop' (rules: pat, in-silico, spsa, mgd, pc, ff, "
                       "scff, probe, ep, coupled-learning)",
                       RuleError);
}

TEST_CASE("learning rules: a rule a layer cannot provide is refused before anything runs") {
  const JobConfig c = parse_job_config(
      job("{name: spsa, a: 2, c: 0.1, A: 10, perturbations: 2}", "pat"), "rules.yaml");
  // The caller's devices, counted: the refusal must come before any call reaches them.
  test::TwinDevice a("sim://mechanical-oscillators?seed=1&n=64"),
      b("sim://mechanical-oscillators?seed=2&n=74");
  test::RecordingDevice ra(a), rb(b);
  JobOptions options;
  options.write_outputs = false;
  options.external_devices = {{"osc-a", &ra}, {"osc-b", &rb}};
  CHECK_THROWS_WITH_AS(
      run_job(c, {}, options),
      doctest::Contains("rules.yaml: training.method: layer 'osc-a' (physical, no twin) cannot "
                        "provide twin vjp, which rule 'pat' needs (give those layers a twin, or "
                        "use a rule these layers support: spsa, mgd, probe)"),
      ConfigError);
  CHECK(ra.sent.empty());
  CHECK(rb.sent.empty());

  // The same check guards the Trainer for code that builds networks itself.
  Network net;
  net.add_physical("osc", ra, nullptr, Vector::Zero(ra.spec().num_params()));
  net.add_digital("slice", std::make_shared<dt::SliceModel>(64, 0, 10, 3.0), Vector());
  for (const RuleConfig& rule : {RuleConfig{PatConfig{}}, RuleConfig{InSilicoConfig{}}}) {
    TrainOptions options_for_rule;
    options_for_rule.method = rule;
    CHECK_THROWS_WITH_AS(Trainer(net, options_for_rule),
                         doctest::Contains("layer 'osc' (physical, no twin) cannot provide"),
                         RuleError);
  }
  CHECK(ra.sent.empty());
  TrainOptions spsa;
  spsa.method = SpsaConfig{};
  CHECK_NOTHROW(Trainer(net, spsa));
}

TEST_CASE(
    "learning rules: run_job trains with spsa from a config, counts device calls and reports "
    "acc_spsa_reality") {
  // One twin-free layer and one with a twin: SPSA needs neither twin; the in-silico comparison
  // needs both, so it is skipped (and logged).
  JobConfig c = parse_job_config(kJob, "rules.yaml");
  std::vector<std::string> logs;
  JobCallbacks cb;
  cb.on_log = [&](const std::string& m) { logs.push_back(m); };
  const JobResult r = run_job(c, cb, {.write_outputs = false}).value();
  REQUIRE(r.phases.size() == 1);
  CHECK(r.phases[0].phase == "spsa");
  // 96 samples / 32 = 3 updates, each 2 perturbations × (θ⁺, θ⁻) × 2 physical layers.
  CHECK(r.phases[0].hardware_calls == 3 * 2 * 2 * 2);
  CHECK(r.phases[0].history.back().hardware_calls == 24);
  CHECK(r.phases[0].acc_hardware >= 0.0);
  CHECK(r.phases[0].acc_twin == -1.0);  // no twin to measure it on
  CHECK(std::find(logs.begin(), logs.end(), "no in-silico comparison: a layer has no twin") !=
        logs.end());
  const auto summary = nlohmann::json::parse(job_summary_json(c, r));
  CHECK(summary["acc_spsa_reality"] == r.phases[0].acc_hardware);
  CHECK(summary["hardware_calls"] == 24);
  CHECK_FALSE(summary.contains("acc_pat_reality"));
}

TEST_CASE(
    "learning rules: PAT through the rule interface is the twin's backward pass at the measured "
    "trace") {
  test::TwinDevice dev("sim://mechanical-oscillators?seed=5&n=8");  // deterministic: re-measurable
  Network net;
  net.add_physical("osc", dev, dev.nominal_twin(), dev.nominal_twin()->initial_params(1));
  net.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
  Batch batch{test::uniform_matrix(6, 8, -1.0, 1.0, 3), Eigen::VectorXi(6), 4,
              LossKind::kCrossEntropy};
  batch.labels << 0, 1, 2, 3, 0, 1;
  auto rule = make_learning_rule(PatConfig{}, 0);
  CHECK(rule->mode() == Mode::kHardware);
  CHECK(rule->needs(true) == (kHardwareForward | kModelVjp));
  CHECK(rule->needs(false) == (kModelForward | kModelVjp));
  const RuleStep step = rule->step(net, batch).value();
  CHECK(net.hardware_calls() == 1);
  REQUIRE(step.grads);
  CHECK_FALSE(step.learning_rate);
  const Trace trace = net.forward(batch.x, Mode::kHardware).value();
  const LossValue loss = batch.evaluate(trace.output);
  const std::vector<Vector> grads = net.backward(trace, loss.grad);
  CHECK(step.loss == loss.loss);
  CHECK(step.output == trace.output);
  CHECK((*step.grads)[0] == grads[0]);
  CHECK(grads[0].norm() > 0.0);
  // In-silico is the same on the twins, with no device call.
  const RuleStep twin_step = make_learning_rule(InSilicoConfig{}, 0)->step(net, batch).value();
  CHECK(net.hardware_calls() == 2);
  CHECK((*twin_step.grads)[0].isApprox((*step.grads)[0], 1e-12));  // the device is the twin here
}

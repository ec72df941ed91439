// Equilibrium propagation and coupled learning on the simulated resistive network: parity with
// the exact gradient of the network's energy model on the noise-free simulator, the job-config
// options and refusals, and a settle timeout that applies no update.
#include <doctest/doctest.h>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/job.hpp"
#include "pnn/training/learning_rule.hpp"
#include "pnn/training/trainer.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::training;

namespace {

const std::string kIdeal =
    "sim://resistive-network?inputs=8&hidden=12&outputs=3&seed=2&mismatch=0&threshold_spread=0"
    "&noise_mv=0";

// A one-layer network on `address` with θ on the 10-bit DAC grid (the noise-free board's
// conductances are then exactly the twin's) and a batch of 12 samples of 3 classes.
struct Setup {
  explicit Setup(const std::string& address) : dev(test::active_device(address)) {
    Vector theta = dev->nominal_twin()->initial_params(3);
    const Matrix r = test::random_matrix(theta.size(), 1, 1.0, 4);
    for (Index i = 0; i < theta.size(); i += 5) theta[i] = 0.4 + 0.5 * std::abs(r(i, 0));
    theta = (theta.array().min(1.0) * 1023.0).round() / 1023.0;
    theta = theta.cwiseMax(dev->spec().param_min()).cwiseMin(dev->spec().param_max());
    net.add_physical("resnet", *dev, dev->nominal_twin(), theta);
    batch.x = test::random_matrix(12, 8, 1.0, 5).cwiseAbs().cwiseMin(1.0);
    batch.labels.resize(12);
    for (Index i = 0; i < 12; ++i) batch.labels[i] = static_cast<int>(i % 3);
    batch.num_classes = 3;
    batch.loss = LossKind::kMse;
  }
  // ∂/∂θ of ½‖logits − target‖², mean over the batch, through the twin's exact vjp.
  Vector exact() const {
    const Layer& l = net.layers()[0];
    const Matrix y = l.model->forward(batch.x, l.theta);
    const Matrix bar = (y - one_hot(batch.labels, 3)) / static_cast<double>(batch.x.rows());
    return l.model->vjp(batch.x, l.theta, bar).theta_bar;
  }
  Vector estimate(const RuleConfig& rule) {
    const RuleStep s = make_learning_rule(rule, 0)->step(net, batch).value();
    REQUIRE(s.grads);
    return (*s.grads)[0];
  }
  drivers::PhysicalSystemPtr dev;
  Network net;
  Batch batch;
};

double cosine(const Vector& a, const Vector& b) { return a.dot(b) / (a.norm() * b.norm()); }

const char* kJob = R"(name: ep
seed: 1
data: {name: digits, max_train: 256, max_test: 128}
devices:
  resnet: sim://resistive-network?seed=3
network:
  - physical: {device: resnet}
training:
  method: METHOD
  learning_rate: 0.01
  batch_size: 32
  epochs: 2
)";

}  // namespace

TEST_CASE("ep: centred nudging at small beta matches the exact gradient on the noise-free board") {
  Setup s(kIdeal);
  const Vector g = s.exact();
  const std::int64_t before = s.net.hardware_calls();
  EpConfig centred;
  centred.beta = 1e-4;
  const Vector e = s.estimate(centred);
  CHECK(s.net.hardware_calls() - before == 3);  // free + two nudged settles
  CAPTURE(cosine(e, g));
  CHECK(cosine(e, g) >= 0.99);
  CHECK(e.norm() == doctest::Approx(g.norm()).epsilon(0.05));
  // One-sided nudging: one nudged settle, bias O(β).
  for (auto nudging : {EpConfig::Nudging::kPositive, EpConfig::Nudging::kNegative}) {
    EpConfig one = centred;
    one.nudging = nudging;
    const std::int64_t calls = s.net.hardware_calls();
    const Vector o = s.estimate(one);
    CAPTURE(to_string(nudging));
    CHECK(s.net.hardware_calls() - calls == 2);
    CHECK(cosine(o, g) >= 0.98);
  }
  // At a large β the centred estimate still points along the gradient (β = 0.006 of the
  // benchmark would make this 12-node network's negative phase non-convex: 2βa² > Σ G_out).
  EpConfig large;
  large.beta = 1e-3;
  CHECK(cosine(s.estimate(large), g) >= 0.95);
}

TEST_CASE(
    "coupled learning: clamping the outputs part of the way to the target descends the cost") {
  Setup s(kIdeal);
  const Vector g = s.exact();
  CoupledLearningConfig cl;
  cl.eta = 0.01;
  const std::int64_t before = s.net.hardware_calls();
  const Vector e = s.estimate(cl);
  CHECK(s.net.hardware_calls() - before == 2);  // free + clamped
  CAPTURE(cosine(e, g));
  CHECK(cosine(e, g) >= 0.8);
}

TEST_CASE("ep: job configs reach the rules, and bad options name the valid ones") {
  const JobConfig c = parse_job_config(
      test::replaced(kJob, "METHOD",
                     "{name: ep, nudging: positive, beta: 0.01, warm_start: false}"),
      "ep.yaml");
  const auto& ep = std::get<EpConfig>(c.training.method);
  CHECK(ep.nudging == EpConfig::Nudging::kPositive);
  CHECK(ep.beta == 0.01);
  CHECK_FALSE(ep.warm_start);
  const JobConfig cl = parse_job_config(
      test::replaced(kJob, "METHOD", "{name: coupled-learning, eta: 0.2}"), "cl.yaml");
  CHECK(std::get<CoupledLearningConfig>(cl.training.method).eta == 0.2);
  const std::pair<const char*, const char*> cases[] = {
      {"{name: ep, nudging: sideways}", "'sideways' is not one of positive, negative, centred"},
      {"{name: ep, gamma: 1}", "(allowed here: name, nudging, beta, warm_start)"},
      {"{name: ep, beta: 0}", "ep.beta: must be in (0, 1] mS"},
      {"{name: coupled-learning, eta: 2}", "coupled-learning.eta: must be in (0, 1]"},
      {"{name: coupled-learning, beta: 1}", "(allowed here: name, eta, warm_start)"},
  };
  for (const auto& [method, message] : cases) {
    CAPTURE(method);
    CHECK_THROWS_WITH_AS(parse_job_config(test::replaced(kJob, "METHOD", method), "ep.yaml"),
                         doctest::Contains(message), ConfigError);
  }
}

TEST_CASE("ep: a layer that cannot settle is refused before anything runs") {
  const std::string osc =
      test::replaced(test::replaced(kJob, "resnet: sim://resistive-network?seed=3",
                                    "osc: sim://mechanical-oscillators?seed=1&n=64"),
                     "  - physical: {device: resnet}",
                     "  - physical: {device: osc}\n  - slice: {first: 0, count: 10, gain: 3}");
  for (const char* rule : {"ep", "coupled-learning"}) {
    CAPTURE(rule);
    const JobConfig c = parse_job_config(test::replaced(osc, "METHOD", rule), "osc.yaml");
    JobOptions options;
    options.write_outputs = false;
    const std::string message =
        "osc.yaml: training.method: layer 'osc' (physical) cannot provide settle; layer 'slice' "
        "(digital) cannot provide settle, which rule '" +
        std::string(rule) +
        "' needs (settle is a call of energy-based setups only (resistive-network)";
    CHECK_THROWS_WITH_AS(run_job(c, {}, options), doctest::Contains(message.c_str()), ConfigError);
  }
  // A settling layer behind another layer: the rule trains one energy-based layer only.
  Setup s(kIdeal);
  Network two = s.net;
  two.add_digital("slice", std::make_shared<digital_twin::SliceModel>(3, 0, 3, 1.0), Vector());
  TrainOptions options;
  options.method = EpConfig{};
  CHECK_THROWS_WITH_AS(Trainer(two, options), doctest::Contains("cannot provide settle"),
                       RuleError);
}

TEST_CASE("ep: a settle that does not converge in time is a timeout and applies no update") {
  Setup s(kIdeal + "&settle_us=0.5");
  const Vector before = s.net.layers()[0].theta;
  auto step = make_learning_rule(EpConfig{}, 0)->step(s.net, s.batch);
  REQUIRE_FALSE(step);
  CHECK(step.error().code == drivers::Errc::kTimeout);
  CHECK(step.error().message.find("layer 'resnet'") != std::string::npos);
  CHECK(s.net.hardware_calls() == 1);  // the free settle, counted once; nothing after it
  CHECK(s.net.layers()[0].theta == before);
}

TEST_CASE("ep: a short job trains the simulated resistive network from its config") {
  const JobConfig c = parse_job_config(test::replaced(kJob, "METHOD", "ep"), "ep.yaml");
  JobOptions options;
  options.write_outputs = false;
  const JobResult r = run_job(c, {}, options).value();
  const PhaseResult& p = r.phases.front();
  CHECK(p.phase == "ep");
  CHECK(p.hardware_calls == 2 * 8 * 3);  // 2 epochs × 8 batches × (free + 2 nudged)
  CAPTURE(p.acc_hardware);
  CHECK(p.acc_hardware > 0.5);  // from chance (0.1) in 16 updates
}

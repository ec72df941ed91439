// SPSA and MGD (training/src/zeroth_order.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/job.hpp"
#include "pnn/training/learning_rule.hpp"
#include "pnn/training/trainer.hpp"
#include "rule_test_util.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;

namespace {

// 8 oscillators (P = 64 couplings + 8 drives = 72) and logits = 3·q of the first 4.
struct SmallNet {
  explicit SmallNet(drivers::PhysicalSystem& dev) {
    net.add_physical("osc", dev, dev.nominal_twin(), dev.nominal_twin()->initial_params(7));
    net.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
    batch.x = test::uniform_matrix(16, 8, -1.5, 1.5, 11);
    batch.labels.resize(16);
    for (Index i = 0; i < 16; ++i) batch.labels[i] = static_cast<int>(i % 4);
    batch.num_classes = 4;
  }
  // The exact gradient: the twin's backward (the device is the twin).
  Vector exact_gradient() const {
    const Trace trace = net.forward(batch.x, Mode::kHardware).value();
    return net.backward(trace, batch.evaluate(trace.output).grad)[0];
  }
  Network net;
  Batch batch;
};

double cosine(const Vector& a, const Vector& b) { return a.dot(b) / (a.norm() * b.norm()); }

Vector estimate(const RuleConfig& config, SmallNet& s) {
  const RuleStep step = make_learning_rule(config, 42)->step(s.net, s.batch).value();
  REQUIRE(step.grads);
  return (*step.grads)[0];
}

// The parity tests' setting: the twin as the device, its exact gradient, the calls so far.
struct Parity {
  test::TwinDevice dev{"sim://mechanical-oscillators?seed=3&n=8"};
  SmallNet s{dev};
  Vector g = s.exact_gradient();
  std::int64_t calls_before = s.net.hardware_calls();
};

}  // namespace

// Theory (linear regime, noise-free): one two-sided SPSA estimate is (g·Δ)Δ, unbiased, with
// E‖ĝ − g‖² = (P − 1)‖g‖²; the mean of M is unbiased with 1/M of that, so its cosine with g is
// ≈ 1/sqrt(1 + (P − 1)/M) = sqrt(M / (M + P − 1)).
TEST_CASE_FIXTURE(Parity,
                  "spsa parity: on a noise-free device the averaged estimate's cosine with the "
                  "exact twin gradient meets sqrt(M/(M+P-1))") {
  const double p = static_cast<double>(g.size());
  REQUIRE(p == 72);
  for (int m : {50, 400}) {
    SpsaConfig spsa;
    spsa.c = 1e-3;
    spsa.perturbations = m;
    const double bound = std::sqrt(m / (m + p - 1.0));  // 0.64 for M = 50, 0.92 for M = 400
    const double cos = cosine(estimate(spsa, s), g);
    MESSAGE("M = " << m << ": cosine " << cos << ", theory " << bound);
    CHECK(cos > bound - 0.08);
    CHECK(cos < 1.0 - 1e-3);  // an estimate, not the gradient itself
  }
  // Each update costs 2·M forwards of the one physical layer.
  CHECK(s.net.hardware_calls() - calls_before == 2 * (50 + 400));
}

// MGD on a fixed batch, one update after N time steps. CDMA with the previous cost as baseline
// (τ_hp = 1): each step's term is (g·(b(t) − b(t−1))) b(t)/Δθ, unbiased with variance ≈ 2‖g‖² per
// component, so cosine ≈ sqrt(N / (N + 2P)). TDMA with random signs: after K sweeps of the P
// parameters, cosine ≈ sqrt(K / (K + 1)). FDMA over one full period (T = 2P + 2) is exact in the
// linear regime: cosine → 1.
TEST_CASE_FIXTURE(
    Parity, "mgd parity: cdma, tdma and fdma estimates on a noise-free device meet their bounds") {
  const int p = static_cast<int>(g.size());
  auto mgd = [&](MgdConfig::Code code, int steps, double amplitude) {
    MgdConfig c;
    c.code = code;
    c.amplitude = amplitude;
    c.tau_x = steps;
    c.tau_theta = steps;
    c.tau_hp = 1.0;
    return cosine(estimate(c, s), g);
  };
  const int n = 800;
  const double cdma = mgd(MgdConfig::Code::kCdma, n, 1e-3);
  const double cdma_bound = std::sqrt(n / (n + 2.0 * p));  // 0.92
  MESSAGE("cdma: cosine " << cdma << ", theory " << cdma_bound);
  CHECK(cdma > cdma_bound - 0.08);
  const int sweeps = 16;
  const double tdma = mgd(MgdConfig::Code::kTdma, sweeps * p, 1e-3);
  const double tdma_bound = std::sqrt(sweeps / (sweeps + 1.0));  // 0.97
  MESSAGE("tdma: cosine " << tdma << ", theory " << tdma_bound);
  CHECK(tdma > tdma_bound - 0.05);
  const double fdma = mgd(MgdConfig::Code::kFdma, 2 * p + 2, 1e-4);
  MESSAGE("fdma: cosine " << fdma);
  CHECK(fdma > 0.99);
  CHECK(s.net.hardware_calls() - calls_before == n + sweeps * p + 2 * p + 2);
}

TEST_CASE("spsa and mgd: a perturbed θ at the hard limit is clipped before it is sent") {
  test::TwinDevice twin("sim://mechanical-oscillators?seed=3&n=8");
  test::RecordingDevice dev(twin);  // the device's own limit check refuses anything outside
  SmallNet s(dev);
  Vector& theta = s.net.layers()[0].theta;
  theta[0] = 1.0;    // at the upper hard limit
  theta[1] = -1.0;   // at the lower one
  theta[2] = 0.995;  // inside, but θ + c is not
  const double lo = -1.0, hi = 1.0;
  REQUIRE(s.net.layers()[0].theta_max[0] == hi);

  SpsaConfig spsa;
  spsa.c = 0.02;  // c_0 = c
  const RuleStep step = make_learning_rule(spsa, 1)->step(s.net, s.batch).value();
  REQUIRE(dev.sent.size() == 2);  // θ⁺ and θ⁻, both accepted by the device
  const Vector& plus = dev.sent[0];
  const Vector& minus = dev.sent[1];
  CHECK(plus.maxCoeff() <= hi);
  CHECK(minus.minCoeff() >= lo);
  for (const Vector* sent : {&plus, &minus}) {
    CHECK(sent->maxCoeff() <= hi);
    CHECK(sent->minCoeff() >= lo);
  }
  // Entry 0: one side at the limit, the other side c below it.
  CHECK(std::max(plus[0], minus[0]) == hi);
  CHECK(std::min(plus[0], minus[0]) == doctest::Approx(hi - 0.02));
  CHECK(std::min(plus[1], minus[1]) == lo);
  CHECK(std::max(plus[2], minus[2]) == hi);
  CHECK(std::min(plus[2], minus[2]) == doctest::Approx(0.975));
  // Unclipped entries got the full ±c.
  CHECK(std::abs(plus[5] - minus[5]) == doctest::Approx(0.04));
  // The estimate uses the displacement actually sent: half weight where one side was clipped.
  const double coef = (*step.grads)[0][5] / (plus[5] - minus[5]);
  CHECK((*step.grads)[0][0] == doctest::Approx(coef * (plus[0] - minus[0])));

  dev.sent.clear();
  MgdConfig mgd;
  mgd.amplitude = 0.02;
  mgd.tau_x = 8;
  mgd.tau_theta = 8;
  REQUIRE(make_learning_rule(mgd, 1)->step(s.net, s.batch));
  REQUIRE(dev.sent.size() == 8);
  int clipped = 0, below = 0;
  for (const Vector& sent : dev.sent) {
    CHECK(sent.maxCoeff() <= hi);
    CHECK(sent.minCoeff() >= lo);
    // θ + Δθ·b with b = ±1: at the limit when b = +1 (clipped), Δθ below it otherwise.
    if (sent[0] == hi) {
      ++clipped;
    } else {
      CHECK(sent[0] == doctest::Approx(hi - 0.02));
      ++below;
    }
  }
  CHECK(clipped > 0);
  CHECK(below > 0);
}

namespace {

const char* kResumeJob = R"(name: resume
seed: 5
data: {name: digits, max_train: 320, max_test: 64}
devices:
  osc-a: sim://mechanical-oscillators?seed=1&n=64
  osc-b: sim://mechanical-oscillators?seed=2&n=74
network:
  - physical: {device: osc-a, twin: none}
  - pad: 10
  - physical: {device: osc-b, twin: none}
  - slice: {first: 64, count: 10, gain: 3.0}
training:
  method: METHOD
  optimizer: adam
  batch_size: 32
  epochs: 3
)";

// Runs the job on fresh noise-free devices (so separate runs can be compared bit for bit).
JobResult run_on_twins(JobConfig c, const std::filesystem::path& dir,
                       std::optional<std::string> resume = std::nullopt) {
  test::TwinDevice a("sim://mechanical-oscillators?seed=1&n=64"),
      b("sim://mechanical-oscillators?seed=2&n=74");
  c.output_dir = dir.string();
  JobOptions options;
  options.external_devices = {{"osc-a", &a}, {"osc-b", &b}};
  options.resume_checkpoint = std::move(resume);
  return run_job(c, {}, options).value();
}

}  // namespace

TEST_CASE(
    "spsa and mgd: a resumed run continues the same sequence, bit-identical to an uninterrupted "
    "one") {
  // MGD's τ_θ = 3 batches does not divide the 10 batches of an epoch: the checkpoint after epoch 1
  // is taken with a window half integrated.
  for (const std::string method :
       {"{name: spsa, a: 0.5, c: 0.05, A: 10, perturbations: 2}",
        "{name: mgd, code: cdma, amplitude: 0.05, tau_x: 2, tau_theta: 6, tau_hp: 2}"}) {
    CAPTURE(method);
    test::TempDir tmp("pnn-rule-resume");
    const JobConfig whole =
        parse_job_config(test::replaced(kResumeJob, "METHOD", method), "resume.yaml");
    const JobResult uninterrupted = run_on_twins(whole, tmp.path() / "whole");
    JobConfig first = whole;
    first.training.epochs = 1;
    const JobResult part = run_on_twins(first, tmp.path() / "part");
    const Checkpoint mid = load_checkpoint(part.checkpoint_path);
    CHECK(mid.rule.kind == to_string(whole.training.method));
    CHECK(mid.rule.step > 0);
    const JobResult resumed = run_on_twins(whole, tmp.path() / "resumed", part.checkpoint_path);

    const Checkpoint a = load_checkpoint(uninterrupted.checkpoint_path);
    const Checkpoint b = load_checkpoint(resumed.checkpoint_path);
    REQUIRE(a.layers.size() == b.layers.size());
    for (std::size_t i = 0; i < a.layers.size(); ++i) CHECK(a.layers[i].theta == b.layers[i].theta);
    CHECK(a.rule.step == b.rule.step);
    REQUIRE(a.rule.slots.size() == b.rule.slots.size());
    for (std::size_t i = 0; i < a.rule.slots.size(); ++i) CHECK(a.rule.slots[i] == b.rule.slots[i]);
    CHECK(a.optimizer.slots == b.optimizer.slots);
    CHECK(uninterrupted.phases[0].history.back().test_accuracy ==
          resumed.phases[0].history.back().test_accuracy);
    CHECK(uninterrupted.phases[0].history.back().train_loss ==
          resumed.phases[0].history.back().train_loss);
    CHECK(uninterrupted.phases[0].hardware_calls == resumed.phases[0].hardware_calls);
    // And the sequence did move: θ changed from the checkpoint to the end.
    CHECK(a.layers[0].theta != mid.layers[0].theta);
  }
}

TEST_CASE(
    "mgd: updates come every tau_theta time steps and each time step is one forward per physical "
    "layer") {
  test::TwinDevice dev("sim://mechanical-oscillators?seed=3&n=8");
  SmallNet s(dev);
  MgdConfig c;
  c.tau_x = 2;
  c.tau_theta = 6;
  auto rule = make_learning_rule(c, 0);
  int updates = 0;
  for (int batch = 0; batch < 9; ++batch)
    updates += rule->step(s.net, s.batch).value().grads ? 1 : 0;
  CHECK(updates == 3);  // after batches 3, 6 and 9
  CHECK(s.net.hardware_calls() == 18);
  const RuleState state = rule->state();
  CHECK(state.kind == "mgd");
  CHECK(state.step == 18);  // time steps: the code's phase and random stream
}

// Predictive coding (training/src/predictive_coding.cpp).
#include <doctest/doctest.h>

#include <algorithm>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/training/datasets.hpp"
#include "pnn/training/job.hpp"
#include "pnn/training/learning_rule.hpp"
#include "pnn/training/trainer.hpp"
#include "rule_test_util.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;

namespace {

// in → 16 → tanh → 12 → relu → classes: five layers, so four latents between them.
Network digital_net(Index in, int classes, std::uint64_t seed) {
  Network net;
  auto a1 = std::make_shared<dt::AffineModel>(in, 16);
  auto a2 = std::make_shared<dt::AffineModel>(16, 12);
  auto a3 = std::make_shared<dt::AffineModel>(12, classes);
  net.add_digital("a1", a1, a1->initial_params(seed));
  net.add_digital("tanh", std::make_shared<dt::ActivationModel>(dt::Activation::kTanh, 16),
                  Vector());
  net.add_digital("a2", a2, a2->initial_params(seed + 1));
  net.add_digital("relu", std::make_shared<dt::ActivationModel>(dt::Activation::kRelu, 12),
                  Vector());
  net.add_digital("a3", a3, a3->initial_params(seed + 2));
  return net;
}

Dataset random_set(Index rows, Index cols, int classes, std::uint64_t seed) {
  Dataset d{"random", test::uniform_matrix(rows, cols, 0.0, 1.0, seed), Eigen::VectorXi(rows),
            classes};
  for (Index i = 0; i < rows; ++i) d.labels[i] = static_cast<int>((i * 7 + i / 3) % classes);
  return d;
}

Batch batch_of(const Dataset& d) { return {d.x, d.labels, d.num_classes, LossKind::kCrossEntropy}; }

double max_difference(const std::vector<Vector>& a, const std::vector<Vector>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    if (a[i].size() > 0) m = std::max(m, (a[i] - b[i]).cwiseAbs().maxCoeff());
  }
  return m;
}

double max_magnitude(const std::vector<Vector>& a) {
  double m = 0.0;
  for (const auto& v : a)
    if (v.size() > 0) m = std::max(m, v.cwiseAbs().maxCoeff());
  return m;
}

std::vector<Vector> grads_of(const RuleConfig& rule, const Network& net, const Batch& batch) {
  auto step = make_learning_rule(rule, 0)->step(net, batch);
  REQUIRE(step);
  REQUIRE(step.value().grads);
  return *step.value().grads;
}

double cosine(const std::vector<Vector>& a, const std::vector<Vector>& b) {
  double dot = 0.0, na = 0.0, nb = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    dot += a[i].dot(b[i]);
    na += a[i].squaredNorm();
    nb += b[i].squaredNorm();
  }
  return dot / std::sqrt(na * nb);
}

const char* kPcJob = R"(name: pc
seed: 3
data: {name: digits, max_train: 64, max_test: 32}
devices:
  osc-a: sim://mechanical-oscillators?seed=1&n=64&gap=large
network:
  - physical: {device: osc-a, twin: none}
  - slice: {first: 0, count: 10, gain: 3.0}
training:
  method: {name: pc, variant: strict, iterations: 12, inference_rate: 0.2}
  epochs: 1
)";

}  // namespace

TEST_CASE("pc: fixed prediction equals backprop to rounding after one epoch") {
  const Dataset train = random_set(96, 8, 4, 5);
  for (const std::string optimizer : {"sgd", "adam"}) {
    CAPTURE(optimizer);
    Network bp = digital_net(8, 4, 11), pc = digital_net(8, 4, 11);
    TrainOptions o;
    o.optimizer = optimizer;
    o.learning_rate = optimizer == "sgd" ? 0.5 : 0.01;
    o.batch_size = 16;
    o.epochs = 1;
    o.evaluate_each_epoch = false;
    o.method = InSilicoConfig{};
    REQUIRE(Trainer(bp, o).fit(train, nullptr));
    o.method = PcConfig{};  // variant fixed, η = 1, T = layers − 1 = 4
    REQUIRE(Trainer(pc, o).fit(train, nullptr));
    const std::vector<Vector> start = digital_net(8, 4, 11).thetas();
    // θ moved by training (so the comparison means something), and identically up to rounding.
    CHECK(max_difference(bp.thetas(), start) > 1e-2);
    CHECK(max_difference(bp.thetas(), pc.thetas()) < 1e-12);
  }
}

TEST_CASE("pc: the errors reach layer i only after enough inference steps") {
  const Dataset d = random_set(16, 8, 4, 6);
  const Network net = digital_net(8, 4, 12);
  const std::vector<Vector> bp = grads_of(InSilicoConfig{}, net, batch_of(d));
  PcConfig c;
  c.iterations = 4;  // layers − 1: exact
  CHECK(max_difference(grads_of(c, net, batch_of(d)), bp) < 1e-14 * (1.0 + max_magnitude(bp)));
  c.iterations = 40;  // further steps keep the fixed point
  CHECK(max_difference(grads_of(c, net, batch_of(d)), bp) < 1e-12 * (1.0 + max_magnitude(bp)));
  c.iterations = 2;  // the output error has reached a2's output but not a1's
  const std::vector<Vector> short_of = grads_of(c, net, batch_of(d));
  CHECK(short_of[0].norm() == 0.0);
  CHECK(max_difference({short_of[4]}, {bp[4]}) < 1e-14 * (1.0 + max_magnitude(bp)));
  c.iterations = 4;
  c.inference_rate = 0.5;  // η < 1 has not converged after layers − 1 steps
  CHECK(max_difference(grads_of(c, net, batch_of(d)), bp) > 1e-3 * max_magnitude(bp));
}

TEST_CASE(
    "pc: fixed prediction on a physical layer is PAT, with the twin's vjp at the measured input") {
  // A real (noisy, large-gap) simulated device: the measured outputs are not the twin's.
  auto device = test::active_device("sim://mechanical-oscillators?seed=3&n=8&gap=large");
  Network net;
  auto a = std::make_shared<dt::AffineModel>(6, 8);
  net.add_digital("a", a, a->initial_params(2));
  net.add_physical("osc", *device, device->nominal_twin(),
                   device->nominal_twin()->initial_params(7));
  net.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
  const Dataset d = random_set(16, 6, 4, 8);
  // The device's noise differs call to call: compare PAT's backward at PC's own measured trace.
  auto trace = net.forward(d.x, Mode::kHardware).value();
  const Batch batch = batch_of(d);
  const std::vector<Vector> pat = net.backward(trace, batch.evaluate(trace.output).grad);
  // PC's step makes its own forward: replay the same measurements through a recording device.
  struct Replay final : public drivers::PhysicalSystem {
    Replay(drivers::PhysicalSystem& inner, Matrix y)
        : PhysicalSystem(inner.spec()), y_(std::move(y)) {
      REQUIRE(configure());
      REQUIRE(activate());
    }
    digital_twin::ModelPtr nominal_twin() const override { return nullptr; }
    drivers::Result<Matrix> do_forward(const MatrixRef&, const VectorRef&) override { return y_; }
    Matrix y_;
  } replay(*device, trace.inputs[2]);
  Network same;
  same.add_digital("a", a, net.layers()[0].theta);
  same.add_physical("osc", replay, device->nominal_twin(), net.layers()[1].theta);
  same.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
  const std::vector<Vector> pc = grads_of(PcConfig{}, same, batch);
  CHECK(same.hardware_calls() == 1);  // fixed prediction: the feed-forward pass only
  CHECK(max_difference(pc, pat) < 1e-13 * (1.0 + max_magnitude(pat)));
  CHECK(max_magnitude(pat) > 1e-3);
}

TEST_CASE("pc: strict inference approximates backprop and trains a network measurably") {
  const Dataset d = random_set(32, 8, 4, 9);
  const Network net = digital_net(8, 4, 13);
  PcConfig strict;
  strict.variant = PcConfig::Variant::kStrict;
  strict.iterations = 20;
  strict.inference_rate = 0.1;
  const double c =
      cosine(grads_of(strict, net, batch_of(d)), grads_of(InSilicoConfig{}, net, batch_of(d)));
  CAPTURE(c);
  CHECK(c > 0.9);

  const DatasetSplit digits = load_digits();
  Network trained = digital_net(64, 10, 21);
  TrainOptions o;
  o.method = strict;
  o.optimizer = "adam";
  o.learning_rate = 0.01;
  o.epochs = 3;
  o.evaluate_each_epoch = false;
  const double before = evaluate(trained, digits.test, Mode::kTwin).value();
  auto history = Trainer(trained, o).fit(digits.train, nullptr);
  REQUIRE(history);
  const double after = evaluate(trained, digits.test, Mode::kTwin).value();
  CAPTURE(before);
  CAPTURE(after);
  CHECK(after > 0.8);
  CHECK(after > before + 0.5);
  CHECK(history.value().back().train_loss < history.value().front().train_loss);
}

TEST_CASE("pc: strict inference runs a physical layer above the first on its device every step") {
  test::TwinDevice dev("sim://mechanical-oscillators?seed=3&n=8");
  Network net;
  auto a = std::make_shared<dt::AffineModel>(6, 8);
  net.add_digital("a", a, a->initial_params(2));
  net.add_physical("osc", dev, dev.nominal_twin(), dev.nominal_twin()->initial_params(7));
  net.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
  PcConfig strict;
  strict.variant = PcConfig::Variant::kStrict;
  strict.iterations = 7;
  strict.inference_rate = 0.2;
  const Dataset d = random_set(16, 6, 4, 10);
  const std::vector<Vector> g = grads_of(strict, net, batch_of(d));
  CHECK(net.hardware_calls() == 1 + 7);  // the feed-forward pass, then one prediction per step
  CHECK(cosine(g, grads_of(InSilicoConfig{}, net, batch_of(d))) > 0.9);
}

TEST_CASE("pc: training.method parses its options and refuses bad ones naming the valid ones") {
  const JobConfig c = parse_job_config(kPcJob, "pc.yaml");
  const auto* pc = std::get_if<PcConfig>(&c.training.method);
  REQUIRE(pc != nullptr);
  CHECK(pc->variant == PcConfig::Variant::kStrict);
  CHECK(pc->iterations == 12);
  CHECK(pc->inference_rate == 0.2);
  CHECK(to_string(c.training.method) == "pc");
  CHECK(c.training.optimizer == "adam");  // a gradient rule: Adam by default
  const std::string method = "{name: pc, variant: strict, iterations: 12, inference_rate: 0.2}";
  const std::pair<const char*, const char*> cases[] = {
      {"{name: pc, variant: loose}", "'loose' is not one of fixed, strict"},
      {"{name: pc, steps: 3}", "(allowed here: name, variant, iterations, inference_rate)"},
      {"{name: pc, inference_rate: 1.5}", "pc.inference_rate: must be in (0, 1]"},
      {"{name: pc, iterations: -1}", "pc.iterations: must be 0..100000"},
      {"{name: pcc}",
       "unknown learning rule 'pcc' (rules: pat, in-silico, spsa, mgd, pc, ff, scff, probe, ep, "
       "coupled-learning)"},
  };
  for (const auto& [bad, message] : cases) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(parse_job_config(test::replaced(kPcJob, method, bad), "pc.yaml"),
                         doctest::Contains(message), ConfigError);
  }
  // No state of its own: a checkpoint of another rule's state is refused.
  auto rule = make_learning_rule(PcConfig{}, 0);
  CHECK(rule->state().kind.empty());
  CHECK_THROWS_AS(rule->set_state({"spsa", 3, {}}), RuleError);
}

TEST_CASE("pc: a layer without a twin is refused before anything runs") {
  const JobConfig c = parse_job_config(kPcJob, "pc.yaml");
  test::TwinDevice a("sim://mechanical-oscillators?seed=1&n=64");
  test::RecordingDevice ra(a);
  JobOptions options;
  options.write_outputs = false;
  options.external_devices = {{"osc-a", &ra}};
  CHECK_THROWS_WITH_AS(run_job(c, {}, options),
                       doctest::Contains("pc.yaml: training.method: layer 'osc-a' (physical, no "
                                         "twin) cannot provide twin vjp, which rule 'pc' needs"),
                       ConfigError);
  CHECK(ra.sent.empty());
  Network net;
  net.add_physical("osc", ra, nullptr, Vector::Zero(ra.spec().num_params()));
  TrainOptions o;
  o.method = PcConfig{};
  CHECK_THROWS_WITH_AS(Trainer(net, o), doctest::Contains("layer 'osc' (physical, no twin)"),
                       RuleError);
  CHECK(ra.sent.empty());
}

// Forward-forward, SCFF and the probe (training/src/forward_forward.cpp).
#include <doctest/doctest.h>

#include <filesystem>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/datasets.hpp"
#include "pnn/training/job.hpp"
#include "pnn/training/learning_rule.hpp"
#include "pnn/training/trainer.hpp"
#include "rule_test_util.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;

namespace {

Batch small_batch(Index rows, Index cols, int classes, std::uint64_t seed) {
  Batch b{test::uniform_matrix(rows, cols, 0.0, 1.0, seed), Eigen::VectorXi(rows), classes,
          LossKind::kCrossEntropy};
  for (Index i = 0; i < rows; ++i) b.labels[i] = static_cast<int>((i * 5 + 1) % classes);
  return b;
}

// feature layers, then relu and the readout affine → 10 on top of `hidden` units.
void add_top(Network& net, Index in, Index hidden, std::uint64_t seed) {
  auto a = std::make_shared<dt::AffineModel>(in, hidden);
  auto r = std::make_shared<dt::AffineModel>(hidden, 10);
  net.add_digital("affine", a, a->initial_params(seed));
  net.add_digital("relu", std::make_shared<dt::ActivationModel>(dt::Activation::kRelu, hidden),
                  Vector());
  net.add_digital("readout", r, r->initial_params(seed + 1));
}

TrainOptions adam(const RuleConfig& rule, double learning_rate, int epochs) {
  TrainOptions o;
  o.method = rule;
  o.optimizer = "adam";
  o.learning_rate = learning_rate;
  o.epochs = epochs;
  o.evaluate_each_epoch = false;
  return o;
}

const char* kScffJob = R"(name: scff
seed: 4
data: {name: digits, max_train: 160, max_test: 64}
devices:
  osc-a: sim://mechanical-oscillators?seed=1&n=64
network:
  - physical: {device: osc-a, twin: none}
  - duplicate: true
  - affine: 32
  - activation: relu
  - affine: 10
training:
  method: METHOD
  batch_size: 32
  learning_rate: 0.01
  epochs: 3
compare: {in_silico: false}
)";

JobResult run_on_twin(JobConfig c, const std::filesystem::path& dir,
                      std::optional<std::string> resume = std::nullopt) {
  test::TwinDevice a("sim://mechanical-oscillators?seed=1&n=64");
  c.output_dir = dir.string();
  JobOptions options;
  options.external_devices = {{"osc-a", &a}};
  options.resume_checkpoint = std::move(resume);
  return run_job(c, {}, options).value();
}

}  // namespace

TEST_CASE(
    "scff: negatives pair each sample with another sample of the batch, positives with itself") {
  // duplicate (3 → 6), then a trained physical layer (6 oscillators, through its twin's vjp).
  test::TwinDevice dev("sim://mechanical-oscillators?seed=3&n=6");
  test::RecordingDevice rec(dev);
  Network net;
  net.add_digital("duplicate", std::make_shared<dt::DuplicateModel>(3), Vector());
  net.add_physical("osc", rec, dev.nominal_twin(), dev.nominal_twin()->initial_params(1));
  net.add_digital("readout", std::make_shared<dt::AffineModel>(6, 4),
                  dt::AffineModel(6, 4).initial_params(2));
  const Batch b = small_batch(8, 3, 4, 3);
  auto rule = make_learning_rule(ScffConfig{}, 9);
  std::vector<Index> shifts;
  for (int step = 0; step < 6; ++step) {
    rec.inputs.clear();
    const RuleStep s = rule->step(net, b).value();
    REQUIRE(rec.inputs.size() == 2);  // the plain forward (= the positives), then the negatives
    const Matrix& pos = rec.inputs[0];
    const Matrix& neg = rec.inputs[1];
    CHECK(pos.leftCols(3) == b.x);
    CHECK(pos.rightCols(3) == b.x);
    CHECK(neg.leftCols(3) == b.x);
    // Row i's second half is sample i + s (mod 8) for one s in 1..7.
    Index shift = -1;
    for (Index s_try = 1; s_try < 8; ++s_try) {
      bool all = true;
      for (Index r = 0; r < 8; ++r) all &= neg.row(r).tail(3) == b.x.row((r + s_try) % 8);
      if (all) shift = s_try;
    }
    CHECK(shift >= 1);
    shifts.push_back(shift);
    REQUIRE(s.grads);
    CHECK((*s.grads)[1].norm() > 0.0);  // the physical layer learns through its twin
    CHECK((*s.grads)[2].norm() > 0.0);  // and the readout
  }
  // Drawn per step, not fixed.
  CHECK(std::any_of(shifts.begin(), shifts.end(), [&](Index s) { return s != shifts[0]; }));
  CHECK(rule->state().step == 6);
}

TEST_CASE("ff: positives carry the true label, negatives a wrong one, in the pad's zeros") {
  test::TwinDevice dev("sim://mechanical-oscillators?seed=3&n=8");
  test::RecordingDevice rec(dev);
  Network net;
  net.add_digital("pad", std::make_shared<dt::PadModel>(4, 4), Vector());
  net.add_physical("osc", rec, dev.nominal_twin(), dev.nominal_twin()->initial_params(1));
  net.add_digital("readout", std::make_shared<dt::AffineModel>(8, 4),
                  dt::AffineModel(8, 4).initial_params(2));
  const Batch b = small_batch(12, 4, 4, 4);
  FfConfig c;
  c.label_scale = 0.7;
  const RuleStep s = make_learning_rule(c, 1)->step(net, b).value();
  REQUIRE(rec.inputs.size() == 3);  // plain (no label), positives, negatives
  CHECK(rec.inputs[0].rightCols(4).isZero());
  for (Index r = 0; r < 12; ++r) {
    CAPTURE(r);
    CHECK(rec.inputs[1].row(r).head(4) == b.x.row(r));
    CHECK(rec.inputs[2].row(r).head(4) == b.x.row(r));
    Vector pos_label = Vector::Zero(4), neg_label;
    pos_label[b.labels[r]] = 0.7;
    CHECK(rec.inputs[1].row(r).tail(4).transpose() == pos_label);
    neg_label = rec.inputs[2].row(r).tail(4).transpose();
    CHECK(neg_label.sum() == doctest::Approx(0.7));
    CHECK(neg_label.maxCoeff() == 0.7);
    CHECK(neg_label[b.labels[r]] == 0.0);
  }
  REQUIRE(s.grads);
  CHECK((*s.grads)[1].norm() > 0.0);
}

TEST_CASE("scff and ff train a network measurably, the probe learns on frozen features") {
  const DatasetSplit digits = load_digits();
  SUBCASE("scff") {
    Network net;
    net.add_digital("duplicate", std::make_shared<dt::DuplicateModel>(64), Vector());
    add_top(net, 128, 64, 3);
    auto h = Trainer(net, adam(ScffConfig{}, 1e-2, 4)).fit(digits.train, nullptr).value();
    // The loss (goodness losses + the readout's cross-entropy) falls, the readout learns.
    CHECK(h.back().train_loss < 0.7 * h.front().train_loss);
    CHECK(evaluate(net, digits.test, Mode::kTwin).value() > 0.75);

    // The probe: a fresh readout on the frozen features.
    const std::vector<Vector> before = net.thetas();
    net.layers().back().theta = net.layers().back().model->initial_params(11);
    const double fresh = evaluate(net, digits.test, Mode::kTwin).value();
    REQUIRE(Trainer(net, adam(ProbeConfig{}, 3e-3, 10)).fit(digits.train, nullptr));
    CHECK(net.layers()[1].theta == before[1]);  // features frozen
    const double probed = evaluate(net, digits.test, Mode::kTwin).value();
    CAPTURE(fresh);
    CAPTURE(probed);
    CHECK(probed > 0.8);
    CHECK(probed > fresh + 0.5);
  }
  SUBCASE("ff") {
    Network net;
    net.add_digital("pad", std::make_shared<dt::PadModel>(64, 10), Vector());
    add_top(net, 74, 64, 5);
    const Vector start = net.layers()[1].theta;
    auto h = Trainer(net, adam(FfConfig{}, 1e-2, 4)).fit(digits.train, nullptr).value();
    CHECK(h.back().train_loss < 0.7 * h.front().train_loss);
    CHECK((net.layers()[1].theta - start).norm() > 0.1);
    CHECK(evaluate(net, digits.test, Mode::kTwin).value() > 0.85);
  }
}

TEST_CASE(
    "ff and scff: an arrangement or layer the rule cannot use is refused before anything runs") {
  test::TwinDevice dev("sim://mechanical-oscillators?seed=3&n=8");
  test::RecordingDevice rec(dev);
  // No duplicate layer in front of the first trained layer.
  {
    Network net;
    net.add_physical("osc", rec, nullptr, dev.nominal_twin()->initial_params(1));
    add_top(net, 8, 8, 1);
    ScffConfig c;
    c.train_physical = false;
    CHECK_THROWS_WITH_AS(Trainer(net, adam(c, 1e-3, 1)),
                         doctest::Contains("scff: needs a duplicate layer in front of the first "
                                           "trained layer 'affine'"),
                         RuleError);
    FfConfig f;
    f.train_physical = false;
    CHECK_THROWS_WITH_AS(Trainer(net, adam(f, 1e-3, 1)), doctest::Contains("ff: needs a pad layer"),
                         RuleError);
    // A twin-free physical layer cannot be trained by its twin's vjp ...
    CHECK_THROWS_WITH_AS(Trainer(net, adam(ScffConfig{}, 1e-3, 1)),
                         doctest::Contains("layer 'osc' (physical, no twin) cannot provide twin "
                                           "vjp, which rule 'scff' needs"),
                         RuleError);
    // ... but the probe needs only its hardware forward.
    CHECK_NOTHROW(Trainer(net, adam(ProbeConfig{}, 1e-3, 1)));
  }
  // The readout must be digital.
  {
    Network net;
    net.add_digital("duplicate", std::make_shared<dt::DuplicateModel>(4), Vector());
    net.add_digital("a", std::make_shared<dt::AffineModel>(8, 8),
                    dt::AffineModel(8, 8).initial_params(1));
    net.add_physical("osc", rec, dev.nominal_twin(), dev.nominal_twin()->initial_params(1));
    CHECK_THROWS_WITH_AS(Trainer(net, adam(ScffConfig{}, 1e-3, 1)),
                         doctest::Contains("the readout (the last 1 layers) must be digital, but "
                                           "layer 'osc' is physical"),
                         RuleError);
    ScffConfig c;
    c.head = 3;
    CHECK_THROWS_WITH_AS(Trainer(net, adam(c, 1e-3, 1)),
                         doctest::Contains("leaves no feature layers"), RuleError);
  }
  CHECK(rec.sent.empty());
}

TEST_CASE("ff, scff and probe: training.method options, and bad ones name the valid ones") {
  const JobConfig c = parse_job_config(
      test::replaced(kScffJob, "METHOD",
                     "{name: scff, threshold: 0.5, head: 1, train_physical: false}"),
      "scff.yaml");
  const auto* scff = std::get_if<ScffConfig>(&c.training.method);
  REQUIRE(scff != nullptr);
  CHECK(scff->threshold == 0.5);
  CHECK_FALSE(scff->train_physical);
  CHECK(c.network[1].kind == LayerSpec::Kind::kDuplicate);
  const JobConfig f = parse_job_config(
      test::replaced(kScffJob, "METHOD", "{name: ff, label_scale: 2, threshold: 3}"), "scff.yaml");
  REQUIRE(std::get_if<FfConfig>(&f.training.method) != nullptr);
  CHECK(std::get<FfConfig>(f.training.method).label_scale == 2.0);
  CHECK(std::get<FfConfig>(f.training.method).train_physical);
  CHECK(std::get<ProbeConfig>(
            parse_job_config(test::replaced(kScffJob, "METHOD", "{name: probe, head: 2}"),
                             "scff.yaml")
                .training.method)
            .head == 2);
  const std::pair<const char*, const char*> cases[] = {
      {"{name: scff, label_scale: 1}", "(allowed here: name, threshold, head, train_physical)"},
      {"{name: ff, treshold: 1}",
       "(did you mean 'threshold'?) (allowed here: name, threshold, head, train_physical, "
       "label_scale)"},
      {"{name: probe, threshold: 1}", "(allowed here: name, head)"},
      {"{name: scff, threshold: -1}", "scff.threshold: must be ≥ 0"},
      {"{name: ff, head: 0}", "ff.head: must be 1..1000"},
      {"{name: ff, label_scale: 0}", "ff.label_scale: must be > 0"},
  };
  for (const auto& [bad, message] : cases) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(parse_job_config(test::replaced(kScffJob, "METHOD", bad), "scff.yaml"),
                         doctest::Contains(message), ConfigError);
  }
  CHECK_THROWS_WITH_AS(parse_job_config(test::replaced(test::replaced(kScffJob, "METHOD", "scff"),
                                                       "duplicate: true", "duplicate: 2"),
                                        "scff.yaml"),
                       doctest::Contains("network[1].duplicate"), ConfigError);
}

TEST_CASE(
    "scff: a resumed job continues the same sequence, bit-identical to an uninterrupted one") {
  // The optical-FF arrangement from a job file: a fixed twin-free physical layer, then SCFF.
  const JobConfig whole = parse_job_config(
      test::replaced(kScffJob, "METHOD", "{name: scff, train_physical: false}"), "scff.yaml");
  test::TempDir tmp("pnn-scff-resume");
  const JobResult uninterrupted = run_on_twin(whole, tmp.path() / "whole");
  JobConfig first = whole;
  first.training.epochs = 1;
  const JobResult part = run_on_twin(first, tmp.path() / "part");
  const Checkpoint mid = load_checkpoint(part.checkpoint_path);
  CHECK(mid.rule.kind == "scff");
  CHECK(mid.rule.step == 5);  // 160 samples / 32: five updates
  const JobResult resumed = run_on_twin(whole, tmp.path() / "resumed", part.checkpoint_path);
  const Checkpoint a = load_checkpoint(uninterrupted.checkpoint_path);
  const Checkpoint b = load_checkpoint(resumed.checkpoint_path);
  REQUIRE(a.layers.size() == b.layers.size());
  for (std::size_t i = 0; i < a.layers.size(); ++i) CHECK(a.layers[i].theta == b.layers[i].theta);
  CHECK(a.rule.step == 15);
  CHECK(b.rule.step == 15);
  CHECK(a.optimizer.slots == b.optimizer.slots);
  CHECK(a.layers[0].theta == mid.layers[0].theta);  // the physical layer stays fixed
  CHECK(a.layers[2].theta != mid.layers[2].theta);  // the SCFF layer moved after the checkpoint
  CHECK(uninterrupted.phases[0].phase == "scff");
  // One plain forward per update on the fixed layer (the negatives are built after it).
  CHECK(uninterrupted.phases[0].hardware_calls == 15);
}

#include "pnn/training/trainer.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/job.hpp"
#include "pnn/training/toy.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;

namespace {

drivers::PhysicalSystemPtr active(const std::string& address) { return test::active_device(address); }

// A device that behaves like its inner device until `fail_after` forward calls, then times out:
// stands for an instrument that stops answering mid-run.
class FlakyDevice final : public drivers::PhysicalSystem {
 public:
  FlakyDevice(drivers::PhysicalSystemPtr inner, int fail_after)
      : PhysicalSystem(inner->spec()), inner_(std::move(inner)), fail_after_(fail_after) {}
  dt::ModelPtr nominal_twin() const override { return inner_->nominal_twin(); }
  int calls = 0;

 private:
  drivers::Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    if (++calls > fail_after_) {
      return drivers::make_error(drivers::Errc::kTimeout, "simulated timeout");
    }
    return inner_->forward(x, theta);
  }
  drivers::PhysicalSystemPtr inner_;
  int fail_after_;
};

Dataset random_dataset(Index n, Index features, int classes, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Dataset d{"random", Matrix(n, features), Eigen::VectorXi(n), classes};
  for (Index i = 0; i < d.x.size(); ++i) d.x.data()[i] = u(rng);
  for (Index i = 0; i < n; ++i) d.labels[i] = static_cast<int>(i % classes);
  return d;
}

}  // namespace

TEST_CASE("PAT toy: PAT hits the target on the device, in-silico misses it by the model error") {
  const ToyResult r = run_power_law_toy();
  CHECK(r.rel_err_pat < 1e-3);
  CHECK(r.rel_err_insilico > 0.05);
  CHECK(r.rel_err_insilico < 0.12);
  // Same target on the twin, different exponents: PAT compensates the twin's wrong prefactor.
  CHECK(r.theta_pat > r.theta_insilico);
}

TEST_CASE("hardware forward records the measured input of each layer, backward uses it") {
  auto a = active("sim://mechanical-oscillators?seed=11&n=6&gap=large");
  auto b = active("sim://mechanical-oscillators?seed=12&n=6&gap=large");
  Network net;
  net.add_physical("a", *a, a->nominal_twin(), a->nominal_twin()->initial_params(1));
  net.add_physical("b", *b, b->nominal_twin(), b->nominal_twin()->initial_params(2));
  const Matrix x = Matrix::Constant(3, 6, 0.4);
  const Trace hw = net.forward(x, Mode::kHardware).value();
  const Trace tw = net.forward(x, Mode::kTwin).value();
  REQUIRE(hw.inputs.size() == 2);
  CHECK((hw.inputs[0] - x).norm() == 0.0);
  // Layer b's recorded input is what device a measured, not what the twin predicts.
  CHECK((hw.inputs[1] - tw.inputs[1]).norm() > 1e-3);
  // The backward pass is the twins' vjp at the measured inputs.
  const Matrix y_bar = Matrix::Ones(3, 6);
  const auto grads = net.backward(hw, y_bar);
  const auto cot_b = b->nominal_twin()->vjp(hw.inputs[1], net.layers()[1].theta, y_bar);
  CHECK((grads[1] - cot_b.theta_bar).norm() < 1e-12);
  const auto cot_a = a->nominal_twin()->vjp(x, net.layers()[0].theta, cot_b.x_bar);
  CHECK((grads[0] - cot_a.theta_bar).norm() < 1e-12);
}

TEST_CASE("optimizer steps are projected into the hard limits, so training never sends out-of-limit θ") {
  auto dev = active("sim://mechanical-oscillators?seed=3&n=8");
  Network net;
  net.add_physical("osc", *dev, dev->nominal_twin(), Vector::Constant(dev->spec().num_params(), 5.0));
  CHECK(net.layers()[0].theta.maxCoeff() <= 1.0);  // clipped on entry
  net.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
  TrainOptions options;
  options.optimizer = "sgd";
  options.learning_rate = 1e3;  // absurd on purpose: every step would leave the limits
  options.epochs = 2;
  options.batch_size = 16;
  Trainer trainer(net, options);
  auto history = trainer.fit(random_dataset(64, 8, 4, 1), nullptr);
  REQUIRE(history);  // no forward was refused
  const Vector& theta = net.layers()[0].theta;
  CHECK(theta.maxCoeff() <= 1.0);
  CHECK(theta.minCoeff() >= -1.0);
  CHECK(theta.cwiseAbs().maxCoeff() == doctest::Approx(1.0));  // it did hit the bounds
}

TEST_CASE("a device fault mid-training ends the run cleanly, naming the layer, θ from the last step") {
  FlakyDevice dev(active("sim://mechanical-oscillators?seed=4&n=8"), 5);
  REQUIRE(dev.configure());
  REQUIRE(dev.activate());
  Network net;
  net.add_physical("osc", dev, dev.nominal_twin(), dev.nominal_twin()->initial_params(0));
  net.add_digital("slice", std::make_shared<dt::SliceModel>(8, 0, 4, 3.0), Vector());
  TrainOptions options;
  options.epochs = 3;
  options.batch_size = 8;
  Trainer trainer(net, options);
  Vector theta_after_5 = net.layers()[0].theta;
  int steps = 0;
  TrainCallbacks cb;
  cb.on_batch = [&](int, Index, Index, double) {
    ++steps;
    theta_after_5 = net.layers()[0].theta;
  };
  auto result = trainer.fit(random_dataset(64, 8, 4, 2), nullptr, cb);
  REQUIRE_FALSE(result);
  CHECK(result.error().code == drivers::Errc::kTimeout);
  CHECK(result.error().message.find("layer 'osc'") != std::string::npos);
  CHECK(steps == 5);  // the failed batch was not counted or applied
  CHECK((net.layers()[0].theta - theta_after_5).norm() == 0.0);
  CHECK(dev.health() == drivers::Health::kFault);
}

TEST_CASE("calibration reduces twin-vs-hardware error on a seeded device and reports both") {
  // A reality inside the twin's family except for noise (no stray coupling), so the fit is
  // identifiable: sin(1.3 q) in place of sin q.
  auto dev = active("sim://mechanical-oscillators?seed=21&n=16&eta=0.3&j_noise=0");
  Network net;
  net.add_physical("osc", *dev, dev->nominal_twin(), dev->nominal_twin()->initial_params(5));
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  Matrix probe(128, 16);
  for (Index i = 0; i < probe.size(); ++i) probe.data()[i] = u(rng);
  const auto reports = calibrate_twins(net, probe, 0).value();
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].serial == dev->spec().serial);
  CHECK(reports[0].mse_after < 0.5 * reports[0].mse_before);
  CHECK(reports[0].phi[0] == doctest::Approx(1.3).epsilon(0.05));
  CHECK(net.layers()[0].model->physical_params()[0] == doctest::Approx(reports[0].phi[0]));
}

TEST_CASE("losses: softmax cross-entropy gradient matches central differences") {
  Matrix logits(2, 3);
  logits << 0.2, -1.0, 2.0, 1.5, 0.3, -0.7;
  Eigen::VectorXi labels(2);
  labels << 2, 0;
  const LossValue l = softmax_cross_entropy(logits, labels);
  for (Index i = 0; i < logits.size(); ++i) {
    Matrix p = logits, m = logits;
    p.data()[i] += 1e-6;
    m.data()[i] -= 1e-6;
    const double fd = (softmax_cross_entropy(p, labels).loss - softmax_cross_entropy(m, labels).loss) / 2e-6;
    CHECK(l.grad.data()[i] == doctest::Approx(fd).epsilon(1e-6));
  }
  CHECK(accuracy(logits, labels) == 1.0);
  CHECK_THROWS_AS(make_optimizer("adagrad", 0.1), std::invalid_argument);
}

TEST_CASE("trainer: a cosine schedule trains epoch e at lr·½(1 + cos(π e / E))") {
  const Dataset data = random_dataset(24, 3, 2, 31);
  const auto affine = std::make_shared<dt::AffineModel>(3, 2);
  const Vector theta0 = affine->initial_params(32);
  // One batch per epoch, so the order inside it does not matter: every epoch is one SGD step.
  const auto run = [&](const Vector& start, double lr, int epochs, TrainOptions::Schedule s) {
    Network net;
    net.add_digital("affine", affine, start);
    TrainOptions o;
    o.method = InSilicoConfig{};
    o.optimizer = "sgd";
    o.learning_rate = lr;
    o.batch_size = 24;
    o.epochs = epochs;
    o.evaluate_each_epoch = false;
    o.lr_schedule = s;
    Trainer t(net, o);
    REQUIRE(t.fit(data, nullptr));
    return net.layers()[0].theta;
  };
  using S = TrainOptions::Schedule;
  const Vector cosine = run(theta0, 1.0, 2, S::kCosine);  // epochs at lr 1, then ½(1 + cos(π/2)) = ½
  const Vector first = run(theta0, 1.0, 1, S::kConstant);
  const Vector expected = run(first, 0.5, 1, S::kConstant);
  CHECK((cosine - expected).norm() < 1e-12);
  CHECK((cosine - run(theta0, 1.0, 2, S::kConstant)).norm() > 1e-6);
}

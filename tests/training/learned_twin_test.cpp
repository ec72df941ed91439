// fit_twin and the learned-twin files (issue 13): planted parameters recovered, every request
// inside the limits, clear errors on bad input, save/load round trips.
#include "pnn/training/learned_twin.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <random>

#include "pnn/digital_twin/mlp_twin.hpp"
#include "pnn/digital_twin/neural_ode.hpp"
#include "pnn/digital_twin/oscillator.hpp"
#include "pnn/training/checkpoint.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;
using pnn::test::random_matrix;

namespace {

/// A device that runs `reality` (with optional sensor noise) under the spec of `address`, and
/// checks every request itself: inputs in range, θ within the hard limits, all finite.
class CheckedDevice final : public drivers::PhysicalSystem {
 public:
  CheckedDevice(const std::string& address, dt::ModelPtr reality, double noise_std = 0.0)
      : CheckedDevice(pnn::test::active_device(address), std::move(reality), noise_std) {}
  dt::ModelPtr nominal_twin() const override { return twin_free ? nullptr : nominal_; }
  bool twin_free = false;  // as a board that describes itself: no nominal twin
  int violations = 0;
  int calls = 0;

 private:
  CheckedDevice(drivers::PhysicalSystemPtr source, dt::ModelPtr reality, double noise_std)
      : PhysicalSystem(source->spec()), nominal_(source->nominal_twin()),
        reality_(reality ? std::move(reality) : source->nominal_twin()), noise_std_(noise_std) {
    REQUIRE(configure());
    REQUIRE(activate());
  }
  drivers::Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    ++calls;
    const auto& s = spec();
    if (!x.allFinite() || !theta.allFinite() || x.minCoeff() < s.input_min ||
        x.maxCoeff() > s.input_max || (theta - s.param_min()).minCoeff() < 0.0 ||
        (s.param_max() - theta).minCoeff() < 0.0) {
      ++violations;
    }
    Matrix y = reality_->forward(x, theta);
    std::normal_distribution<double> normal(0.0, noise_std_);
    if (noise_std_ > 0.0) {
      for (Index i = 0; i < y.size(); ++i) y.data()[i] += normal(rng_);
    }
    return y;
  }
  dt::ModelPtr nominal_, reality_;
  double noise_std_;
  std::mt19937_64 rng_{5};
};

// A grey-box oscillator "reality" with planted per-oscillator κ_i and stray coupling J.
std::shared_ptr<const dt::OscillatorModel> planted_oscillators(Index n) {
  dt::OscillatorConfig c{.num_oscillators = n};
  c.phi = dt::OscillatorPhi::kGreyBox;
  c.kappas = (1.2 + 0.1 * random_matrix(n, 1, 1.0, 3).array()).matrix();
  Matrix j = random_matrix(n, n, 0.3, 4);
  c.q_extra = dt::coupling_to_q(0.5 * (j + j.transpose()));
  return std::make_shared<dt::OscillatorModel>(c);
}

const char* kOsc4 = "sim://mechanical-oscillators?n=4&seed=1";
const char* kShg = "sim://optical-shg?inputs=4&params=3&outputs=4&seed=1";

}  // namespace

TEST_CASE("learned grey-box fit recovers planted kappas and stray coupling") {
  // Tolerance: with sensor noise 0.005 rad on 1,200 samples of 4 outputs the estimates are
  // within 0.01 of the planted values (κ_i ≈ 1.1–1.3, |J_ij| ≈ 0.3).
  const auto planted = planted_oscillators(4);
  CheckedDevice device(kOsc4, planted, 0.005);
  TwinFitOptions options;
  options.family = TwinFamily::kGreyBox;
  options.samples = 1200;
  options.batch = 100;
  options.theta_fraction = 0.3;
  const FittedTwin fit = [&] {
    auto r = fit_twin(device, options);
    REQUIRE(r);
    return std::move(r).value();
  }();
  const Vector truth = planted->physical_params();
  const Vector got = fit.model->physical_params();
  REQUIRE(got.size() == truth.size());
  CHECK((got - truth).cwiseAbs().maxCoeff() < 0.01);
  CHECK(fit.report.twin_nmse < 0.01 * fit.report.twin_nmse_nominal);
  CHECK(fit.report.device_calls == 12);
  CHECK(fit.report.samples == 1200);
  CHECK(fit.report.validation_samples == 200);
}

TEST_CASE("learned twin fits send only finite requests inside the limits") {
  for (auto family : {TwinFamily::kGreyBox, TwinFamily::kResidual, TwinFamily::kBlackBox}) {
    CAPTURE(to_string(family));
    CheckedDevice device(kOsc4, nullptr);
    TwinFitOptions options;
    options.family = family;
    options.samples = 300;
    options.batch = 64;
    options.repeats = 2;
    options.hidden = {4};
    options.max_iterations = 5;
    // A centre on the upper limit: half of every θ range lies outside and must be clipped.
    options.theta_center = device.spec().param_max();
    auto r = fit_twin(device, options);
    REQUIRE(r);
    CHECK(device.violations == 0);
    CHECK(device.calls == 10);  // ⌈300 / 64⌉ calls, each twice
    CHECK(r.value().report.device_calls == 10);
  }
  CheckedDevice shg(kShg, nullptr);
  TwinFitOptions options;
  options.family = TwinFamily::kBlackBox;
  options.samples = 200;
  options.batch = 50;
  options.hidden = {4};
  options.max_iterations = 5;
  REQUIRE(fit_twin(shg, options));
  CHECK(shg.violations == 0);
  CHECK(shg.calls == 4);
}

TEST_CASE("learned mlp twin fit of a smooth device reaches a small held-out error") {
  for (int adam_epochs : {0, 60}) {
    CAPTURE(adam_epochs);
    CheckedDevice shg(kShg, nullptr);
    TwinFitOptions options;
    options.family = TwinFamily::kBlackBox;
    options.samples = 800;
    options.batch = 10;  // θ is an input of the MLP: many calls, many distinct θ
    options.hidden = {16};
    options.max_iterations = 400;
    options.adam_epochs = adam_epochs;
    options.adam_calls_per_step = 4;
    options.adam_learning_rate = 1e-2;
    auto r = fit_twin(shg, options);
    REQUIRE(r);
    // The device here is the nominal twin itself, so the nominal NMSE is 0: judge the fit alone.
    INFO("steps " << r.value().report.iterations << " train mse " << r.value().report.train_mse);
    CHECK(r.value().report.twin_nmse < 0.05);
  }
}

TEST_CASE("learned mlp twin of a device without a nominal twin, which other families refuse") {
  CheckedDevice shg(kShg, nullptr);
  shg.twin_free = true;
  TwinFitOptions options;
  options.family = TwinFamily::kBlackBox;
  options.samples = 800;
  options.batch = 10;
  options.hidden = {16};
  options.max_iterations = 400;
  auto r = fit_twin(shg, options);
  REQUIRE(r);
  CHECK(r.value().report.twin_nmse < 0.05);
  CHECK(std::isnan(r.value().report.twin_nmse_nominal));  // nothing to compare with
  CHECK(r.value().model->num_inputs() == shg.spec().num_inputs);
  CHECK(r.value().model->num_params() == shg.spec().num_params());
  CHECK(shg.violations == 0);
  for (auto family : {TwinFamily::kGreyBox, TwinFamily::kResidual}) {
    options.family = family;
    try {
      (void)fit_twin(shg, options);
      FAIL("a " << to_string(family) << " fit of a twin-free device was accepted");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find("fit the mlp") != std::string::npos);
    }
  }
}

TEST_CASE("learned twin fit refuses bad input with messages that name the fix") {
  const auto nominal = pnn::test::active_device(kOsc4)->nominal_twin();
  const Vector lo = Vector::Constant(20, -1.0), hi = Vector::Constant(20, 1.0);
  const Matrix x = random_matrix(50, 4, 1.0, 1);
  const Vector theta = Vector::Zero(20);
  std::vector<dt::Measurement> good{{x, theta, nominal->forward(x, theta)},
                                    {x, theta, nominal->forward(x, theta)}};
  TwinFitOptions options;
  options.validation_fraction = 0.5;

  auto wrong_shape = good;
  wrong_shape[1].y = Matrix::Zero(50, 3);
  CHECK_THROWS_WITH_AS(fit_twin_to(nominal, -3.0, 3.0, lo, hi, wrong_shape, options),
                       doctest::Contains("measurement 1: x 50×4"), std::invalid_argument);
  auto with_nan = good;
  with_nan[0].y(3, 2) = std::nan("");
  CHECK_THROWS_WITH_AS(fit_twin_to(nominal, -3.0, 3.0, lo, hi, with_nan, options),
                       doctest::Contains("contains NaN or Inf; drop the faulty readings"),
                       std::invalid_argument);
  std::vector<dt::Measurement> few{{x.topRows(2), theta, nominal->forward(x.topRows(2), theta)},
                                   {x.topRows(2), theta, nominal->forward(x.topRows(2), theta)}};
  CHECK_THROWS_WITH_AS(fit_twin_to(nominal, -3.0, 3.0, lo, hi, few, options),
                       doctest::Contains("too few samples: 2 fit samples × 4 outputs"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(fit_twin_to(nominal, -3.0, 3.0, lo, hi, {}, options),
                       doctest::Contains("no measurements given"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_twin_family("neural-net"),
                       doctest::Contains("accepted: grey-box, residual, mlp, neural-ode"),
                       std::invalid_argument);
  CheckedDevice device(kOsc4, nullptr);
  options.batch = 100000;
  CHECK_THROWS_WITH_AS((void)fit_twin(device, options), doctest::Contains("exceeds the device's max batch"),
                       std::invalid_argument);
  options.batch = 10;
  options.theta_center = Vector::Zero(3);
  CHECK_THROWS_WITH_AS((void)fit_twin(device, options),
                       doctest::Contains("theta_center has 3 entries, the device has 20"),
                       std::invalid_argument);
  CHECK(device.calls == 0);
}

TEST_CASE("learned twins round-trip through their file for every family") {
  pnn::test::TempDir dir("learned-twin");
  for (auto family : {TwinFamily::kGreyBox, TwinFamily::kResidual, TwinFamily::kBlackBox}) {
    CAPTURE(to_string(family));
    CheckedDevice device(kOsc4, planted_oscillators(4));
    TwinFitOptions options;
    options.family = family;
    options.samples = 200;
    options.batch = 50;
    options.hidden = {5};
    options.residual_uses_theta = true;
    options.max_iterations = 10;
    auto fit = fit_twin(device, options);
    REQUIRE(fit);
    const auto& twin = fit.value().model;
    const std::string path = dir.file(to_string(family) + ".pnntwin");
    save_twin(*twin, path);
    const dt::ModelPtr back = load_twin(path, device.nominal_twin());
    CHECK(back->name() == twin->name());
    CHECK(back->physical_params() == twin->physical_params());
    const Matrix x = random_matrix(7, 4, 1.0, 3);
    const Vector theta = device.nominal_twin()->initial_params(1);
    CHECK((back->forward(x, theta) - twin->forward(x, theta)).norm() == 0.0);
  }
  const auto other = pnn::test::active_device("sim://mechanical-oscillators?n=5")->nominal_twin();
  CHECK_THROWS_WITH_AS(load_twin(dir.file("mlp.pnntwin"), other),
                       doctest::Contains("fit it again for this device"), CheckpointError);
  save_checkpoint(Checkpoint{}, dir.file("plain.ckpt"));
  CHECK_THROWS_WITH_AS(load_twin(dir.file("plain.ckpt"), other),
                       doctest::Contains("not a learned-twin file"), CheckpointError);
}

TEST_CASE("learned twins round-trip through bytes, and a twin-free device decodes only mlp") {
  CheckedDevice device(kOsc4, planted_oscillators(4));
  TwinFitOptions options;
  options.samples = 200;
  options.batch = 50;
  options.hidden = {5};
  options.max_iterations = 10;
  const TwinSizes sizes{4, device.spec().num_params(), 4};
  for (auto family : {TwinFamily::kGreyBox, TwinFamily::kBlackBox}) {
    CAPTURE(to_string(family));
    options.family = family;
    auto fit = fit_twin(device, options);
    REQUIRE(fit);
    const std::string bytes = encode_twin(*fit.value().model);
    const auto back = decode_twin(bytes, "twin 7", device.nominal_twin(), sizes);
    const Matrix x = random_matrix(5, 4, 1.0, 3);
    const Vector theta = device.nominal_twin()->initial_params(1);
    CHECK((back->forward(x, theta) - fit.value().model->forward(x, theta)).norm() == 0.0);
    if (family == TwinFamily::kBlackBox) {
      CHECK(decode_twin(bytes, "twin 7", nullptr, sizes)->num_params() == sizes.params);
    } else {
      CHECK_THROWS_WITH_AS(decode_twin(bytes, "twin 7", nullptr, sizes),
                           doctest::Contains("fit the mlp (black-box) family"), CheckpointError);
    }
    CHECK_THROWS_WITH_AS(decode_twin(bytes, "twin 7", device.nominal_twin(), {4, 20, 5}),
                         doctest::Contains("twin 7: the twin was fitted for sizes"), CheckpointError);
    std::string damaged = bytes;
    damaged[damaged.size() / 2] ^= 0x40;
    CHECK_THROWS_AS(decode_twin(damaged, "twin 7", device.nominal_twin(), sizes), CheckpointError);
  }
}

TEST_CASE("learned twin report: data hash, per-output NMSE and R2, scatter, Jacobian agreement") {
  CheckedDevice device(kOsc4, planted_oscillators(4));
  TwinFitOptions options;
  options.samples = 400;
  options.batch = 50;
  options.jacobian_points = 2;
  options.seed = 11;
  auto a = fit_twin(device, options);
  REQUIRE(a);
  const auto& r = a.value().report;
  CHECK(r.data_hash.size() == 64);
  REQUIRE(r.nmse_per_output.size() == 4);
  REQUIRE(r.r2_per_output.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(r.r2_per_output[i] == doctest::Approx(1.0 - r.nmse_per_output[i]));
  CHECK(r.nmse_per_output[0] < 1e-3);  // the grey box holds the planted reality
  CHECK(r.scatter_measured.size() == r.scatter_predicted.size());
  CHECK(r.scatter_measured.size() > 50);
  CHECK(r.scatter_measured.size() <= 500);
  // The fitted twin's Jacobian agrees with the (noise-free) device's; the calls are counted.
  CHECK(r.jacobian_cosine > 0.99);
  CHECK(std::isfinite(r.jacobian_cosine_nominal));
  CHECK(r.device_calls > 400 / 50);
  // The same seed measures the same data: the same hash; another seed: another hash.
  CheckedDevice again(kOsc4, planted_oscillators(4));
  auto b = fit_twin(again, options);
  REQUIRE(b);
  CHECK(b.value().report.data_hash == r.data_hash);
  options.seed = 12;
  auto c = fit_twin(again, options);
  REQUIRE(c);
  CHECK(c.value().report.data_hash != r.data_hash);
  // measurement_hash sees every byte: one changed reading changes it.
  const Matrix x = random_matrix(3, 4, 1.0, 1);
  std::vector<dt::Measurement> m{{x, Vector::Zero(20), x}};
  const std::string h = measurement_hash(m);
  m[0].y(2, 3) = std::nextafter(m[0].y(2, 3), 1e9);
  CHECK(measurement_hash(m) != h);
  // per_output_fit: a constant output predicted exactly has NMSE 0, else +inf.
  std::vector<double> nmse, r2;
  const auto nominal = device.nominal_twin();
  const Matrix y = nominal->forward(x, Vector::Zero(20));
  per_output_fit(*nominal, {{x, Vector::Zero(20), y}}, nmse, r2);
  REQUIRE(nmse.size() == 4);
  for (double v : nmse) CHECK(v == 0.0);
}

TEST_CASE("learned twin fit: a device fault mid-sampling is returned as the device's error") {
  auto device = pnn::test::active_device("sim://power-law?prefactor=2&faults=unplug_after:40,unplug_ms:100000&timeout_ms=20");
  TwinFitOptions options;
  options.family = TwinFamily::kGreyBox;
  options.samples = 400;
  options.batch = 20;
  Index measured = 0;
  options.on_measured = [&](Index done, Index) { measured = done; };
  auto r = fit_twin(*device, options);
  REQUIRE_FALSE(r);
  CHECK(measured > 0);
  CHECK(measured < 400);
  CHECK_FALSE(r.error().message.empty());
}

// ---- neural-ODE twin of the STNO network, fitted from trajectories ---------------------------

namespace {

const char* kStnoAddress = "sim://stno-rnn?neurons=4&steps=3&inputs=2&seed=1";

std::string stno_steps(Index steps) {
  return "sim://stno-rnn?neurons=4&steps=" + std::to_string(steps) + "&inputs=2&seed=1";
}

// A neural-ODE "reality" of `steps` periods: the power equation with planted per-neuron scales
// s_i of the field (a spread of Γ_G the datasheet twin does not know), no learned correction.
dt::ModelPtr planted_stno(Index steps) {
  dt::NeuralOdeConfig c;
  c.stno.num_neurons = 4;
  c.stno.num_steps = steps;
  c.stno.inputs_per_step = 2;
  c.rk4_steps = 8;
  c.hidden = {3};
  const dt::NeuralOdeTwin start(c);
  Vector psi = start.physical_params();
  psi.segment(start.num_mlp_weights(), 4) << 0.7, 1.0, 1.3, 1.6;
  c.psi = psi;
  return std::make_shared<dt::NeuralOdeTwin>(c);
}

// The same device run for 1, 2 and 3 periods (same serial), each checking its requests.
struct StnoPrefixes {
  std::vector<std::unique_ptr<CheckedDevice>> devices;
  std::vector<drivers::PhysicalSystem*> pointers;
  explicit StnoPrefixes(double noise_std) {
    for (Index k = 1; k <= 3; ++k) {
      devices.push_back(std::make_unique<CheckedDevice>(stno_steps(k), planted_stno(k), noise_std));
      pointers.push_back(devices.back().get());
    }
  }
  int calls() const {
    int n = 0;
    for (const auto& d : devices) n += d->calls;
    return n;
  }
  int violations() const {
    int n = 0;
    for (const auto& d : devices) n += d->violations;
    return n;
  }
};

TwinFitOptions ode_options() {
  TwinFitOptions o;
  o.family = TwinFamily::kNeuralOde;
  o.samples = 60;  // trajectories
  o.batch = 6;
  o.repeats = 2;
  o.hidden = {6};
  o.ode_rk4_steps = 2;
  o.l2 = 1e-8;
  o.max_iterations = 200;
  o.theta_fraction = 0.1;
  o.theta_center = pnn::test::active_device(kStnoAddress)->nominal_twin()->initial_params(0);
  return o;
}

}  // namespace

TEST_CASE("neural-ode fit from measured trajectories recovers planted per-neuron field scales") {
  StnoPrefixes device(0.002);
  const TwinFitOptions options = ode_options();
  auto fitted = fit_trajectory_twin(device.pointers, options);
  REQUIRE(fitted);
  const auto& r = fitted.value().report;
  INFO("nmse " << r.twin_nmse << " nominal " << r.twin_nmse_nominal);
  CHECK(device.violations() == 0);
  CHECK(r.device_calls == 10 * 3 * 2);  // 10 calls of 6 trajectories, 3 lengths, 2 repeats
  CHECK(device.calls() == r.device_calls);
  CHECK(r.samples == 60);
  CHECK(r.validation_samples == 12);
  CHECK(r.twin_nmse_nominal > 0.01);               // the spread is visible in the trajectories
  CHECK(r.twin_nmse < 0.1 * r.twin_nmse_nominal);  // and the fit removes most of it
  // The twin a job uses reads the end of the sequence, as the device does.
  const auto& model = *fitted.value().model;
  CHECK(model.num_outputs() == 4);
  CHECK(model.num_params() == device.devices.back()->spec().num_params());
  // Scale ratios s_i / s_1 are what the shared MLP cannot absorb: recovered within 5 %.
  const auto& ode = dynamic_cast<const dt::NeuralOdeTwin&>(model);
  const Vector s = ode.physical_params().segment(ode.num_mlp_weights(), 4);
  const Vector planted = (Vector(4) << 0.7, 1.0, 1.3, 1.6).finished();
  for (Index i = 0; i < 4; ++i) {
    CAPTURE(i);
    CHECK(s[i] / s[1] == doctest::Approx(planted[i] / planted[1]).epsilon(0.05));
  }
}

TEST_CASE("neural-ode fit refuses bad trajectories and devices, naming the fix") {
  StnoPrefixes device(0.0);
  TwinFitOptions options = ode_options();
  CHECK_THROWS_WITH_AS((void)fit_trajectory_twin({}, options),
                       doctest::Contains("give the device run for 1 … T input periods"),
                       std::invalid_argument);
  std::vector<drivers::PhysicalSystem*> wrong_order = {device.pointers[1], device.pointers[0],
                                                       device.pointers[2]};
  CHECK_THROWS_WITH_AS((void)fit_trajectory_twin(wrong_order, options),
                       doctest::Contains("open the same device once per sequence length"),
                       std::invalid_argument);
  CheckedDevice other("sim://stno-rnn?neurons=4&steps=1&inputs=2&seed=2", planted_stno(1));
  std::vector<drivers::PhysicalSystem*> mixed = {&other, device.pointers[1], device.pointers[2]};
  CHECK_THROWS_WITH_AS((void)fit_trajectory_twin(mixed, options),
                       doctest::Contains("is not the stno-rnn SIM-STNO-1 run for 1 of 3 periods"),
                       std::invalid_argument);
  CHECK(device.calls() == 0);
  CHECK_THROWS_WITH_AS((void)fit_twin(*device.pointers[2], options),
                       doctest::Contains("use fit_trajectory_twin"), std::invalid_argument);
  options.family = TwinFamily::kBlackBox;
  CHECK_THROWS_WITH_AS((void)fit_trajectory_twin(device.pointers, options),
                       doctest::Contains("fits the neural-ode family"), std::invalid_argument);

  options = ode_options();
  std::int64_t calls = 0;
  auto data = measure_trajectories(device.pointers, options, calls);
  REQUIRE(data);
  CHECK(data.value().front().y.cols() == 3 * 4);
  const auto& spec = device.pointers[2]->spec();
  const dt::ModelPtr nominal = device.pointers[2]->nominal_twin();
  auto fit = [&](const std::vector<dt::Measurement>& d, const TwinFitOptions& o) {
    return fit_twin_to(nominal, spec.input_min, spec.input_max, spec.param_min(), spec.param_max(),
                       d, o);
  };
  // End-of-sequence readings are not trajectories.
  std::vector<dt::Measurement> ends = data.value();
  for (auto& m : ends) m.y = Matrix(m.y.rightCols(4));
  CHECK_THROWS_WITH_AS(fit(ends, options),
                       doctest::Contains("trajectories (p after each of the 3 periods)"),
                       std::invalid_argument);
  std::vector<dt::Measurement> with_nan = data.value();
  with_nan[3].y(0, 5) = std::nan("");
  CHECK_THROWS_WITH_AS(fit(with_nan, options), doctest::Contains("contains NaN or Inf"),
                       std::invalid_argument);
  // 3 calls of 1 trajectory: 1 held out leaves 2 to fit.
  const std::vector<dt::Measurement> three = {
      {data.value()[0].x.topRows(1), data.value()[0].theta, data.value()[0].y.topRows(1)},
      {data.value()[1].x.topRows(1), data.value()[1].theta, data.value()[1].y.topRows(1)},
      {data.value()[2].x.topRows(1), data.value()[2].theta, data.value()[2].y.topRows(1)}};
  CHECK_THROWS_WITH_AS(fit(three, options),
                       doctest::Contains("too few trajectories: 2 left to fit after holding out 1"),
                       std::invalid_argument);
  // The family is the STNO's only.
  CheckedDevice osc(kOsc4, nullptr);
  CHECK_THROWS_WITH_AS(
      fit_twin_to(osc.nominal_twin(), 0.0, 1.0, osc.spec().param_min(), osc.spec().param_max(),
                  data.value(), options),
      doctest::Contains("built on the STNO network's twin"), std::invalid_argument);
}

TEST_CASE("a fitted neural-ode twin round-trips through its file") {
  pnn::test::TempDir dir("neural-ode-twin");
  StnoPrefixes device(0.0);
  TwinFitOptions options = ode_options();
  options.max_iterations = 5;
  options.ode_physics_prior = false;
  auto fitted = fit_trajectory_twin(device.pointers, options);
  REQUIRE(fitted);
  const auto& twin = fitted.value().model;
  const std::string path = dir.file("ode.pnntwin");
  save_twin(*twin, path);
  const dt::ModelPtr nominal = device.pointers[2]->nominal_twin();
  const dt::ModelPtr back = load_twin(path, nominal);
  CHECK(back->name() == "neural-ode-stno");
  CHECK(back->physical_params() == twin->physical_params());
  CHECK_FALSE(dynamic_cast<const dt::NeuralOdeTwin&>(*back).config().physics_prior);
  const Matrix x = random_matrix(5, 6, 1.0, 3).cwiseAbs().cwiseMin(1.0);
  const Vector theta = nominal->initial_params(1);
  CHECK((back->forward(x, theta) - twin->forward(x, theta)).norm() == 0.0);
  // The trajectory readout is saved as the end-of-sequence twin.
  save_twin(*dynamic_cast<const dt::NeuralOdeTwin&>(*twin).with_trajectory(true), path);
  CHECK(load_twin(path, nominal)->num_outputs() == 4);
  const auto osc = pnn::test::active_device(kOsc4)->nominal_twin();
  CHECK_THROWS_AS(load_twin(path, osc), CheckpointError);
}

TEST_CASE("learned twin fit: an mlp too large for the samples is refused before any device call") {
  CheckedDevice shg(kShg, nullptr);
  TwinFitOptions options = default_fit_options(TwinFamily::kBlackBox, 100, shg.spec().max_batch);
  CHECK(options.batch <= 20);
  CHECK(options.adam_epochs > 0);
  CHECK_THROWS_WITH_AS((void)fit_twin(shg, options),
                       doctest::Contains("nothing was measured"), std::invalid_argument);
  CHECK(shg.calls == 0);
  const auto residual = default_fit_options(TwinFamily::kResidual, 4096, 0);
  CHECK(residual.hidden == std::vector<Index>{32});
  CHECK(default_fit_options(TwinFamily::kGreyBox, 4096, 100).batch == 100);
}

// The learned-twin models (issue 13): the grey-box oscillator φ, the black-box MLP twin and the
// residual twin, each against central differences in x, θ and φ.
#include "pnn/digital_twin/mlp_twin.hpp"

#include <doctest/doctest.h>

#include "pnn/digital_twin/calibration.hpp"
#include "pnn/digital_twin/gradcheck.hpp"
#include "pnn/digital_twin/oscillator.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;
using pnn::test::random_matrix;
using pnn::test::uniform_matrix;

namespace {

Normalizer norm_of(Index n, double offset, double scale) {
  return {Vector::Constant(n, offset), Vector::Constant(n, scale)};
}

OscillatorConfig grey_box_config(Index n) {
  OscillatorConfig c{.num_oscillators = n};
  c.phi = OscillatorPhi::kGreyBox;
  c.kappas = 1.0 + 0.2 * random_matrix(n, 1, 1.0, 4).array();
  Matrix j = random_matrix(n, n, 0.3, 5);
  c.q_extra = coupling_to_q(0.5 * (j + j.transpose()));
  return c;
}

}  // namespace

TEST_CASE("grey-box oscillator vjp matches central differences in x, theta and phi") {
  OscillatorModel model(grey_box_config(5));
  REQUIRE(model.num_physical_params() == 5 + 10);
  const Matrix x = random_matrix(4, 5, 0.8, 1);
  Vector theta = model.initial_params(2);
  theta.tail(5) = random_matrix(5, 1, 0.3, 3);
  const auto report = check_gradients(model, x, theta);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
  CHECK(report.max_rel_error_phi > 0.0);  // φ was probed
}

TEST_CASE("grey-box phi round-trips and equals the stray coupling it was built from") {
  const OscillatorConfig c = grey_box_config(4);
  OscillatorModel model(c);
  const Vector phi = model.physical_params();
  CHECK((phi.head(4) - c.kappas).norm() < 1e-15);
  CHECK(phi[4] == doctest::Approx(c.q_extra(0, 1)));
  const ModelPtr copy = model.with_physical_params(phi);
  const Matrix x = random_matrix(3, 4, 1.0, 8);
  const Vector theta = model.initial_params(1);
  CHECK((copy->forward(x, theta) - model.forward(x, theta)).norm() < 1e-14);
  CHECK_THROWS_WITH_AS(model.with_physical_params(Vector::Zero(3)),
                       doctest::Contains("grey-box φ has n + n(n−1)/2 = 10"), std::invalid_argument);
}

TEST_CASE("grey-box with unit kappas and no stray coupling equals the nominal twin") {
  OscillatorModel nominal({.num_oscillators = 6});
  OscillatorConfig c{.num_oscillators = 6};
  c.phi = OscillatorPhi::kGreyBox;
  OscillatorModel grey(c);
  const Matrix x = random_matrix(5, 6, 1.0, 2);
  const Vector theta = nominal.initial_params(3);
  CHECK((grey.forward(x, theta) - nominal.forward(x, theta)).norm() == 0.0);
}

TEST_CASE("oscillator config refuses per-oscillator kappas without the grey-box phi") {
  OscillatorConfig c{.num_oscillators = 3};
  c.kappas = Vector::Ones(3);
  CHECK_THROWS_WITH_AS(OscillatorModel{c}, doctest::Contains("need phi = kGreyBox"),
                       std::invalid_argument);
  c.phi = OscillatorPhi::kGreyBox;
  c.kappas = Vector::Ones(2);
  CHECK_THROWS_WITH_AS(OscillatorModel{c}, doctest::Contains("kappas must have 3 entries"),
                       std::invalid_argument);
}

TEST_CASE("mlp twin vjp matches central differences in x, theta and weights") {
  MlpTwin model({.num_inputs = 4, .num_params = 3, .num_outputs = 2, .hidden = {6, 5},
                 .x = norm_of(4, 0.5, 0.5), .theta = norm_of(3, -0.2, 2.0),
                 .y = norm_of(2, 1.0, 0.3), .weights = {}, .seed = 7});
  const Matrix x = uniform_matrix(5, 4, 0.0, 1.0, 1);
  const Vector theta = random_matrix(3, 1, 1.0, 2);
  const auto report = check_gradients(model, x, theta);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-6);
  CHECK(report.max_rel_error_phi > 0.0);
}

TEST_CASE("mlp twin without parameters and with one hidden layer has exact gradients") {
  MlpTwin model({.num_inputs = 3, .num_params = 0, .num_outputs = 3, .hidden = {4},
                 .x = norm_of(3, 0.0, 1.0), .theta = norm_of(0, 0.0, 1.0),
                 .y = norm_of(3, 0.0, 1.0), .weights = {}, .seed = 3});
  const auto report = check_gradients(model, random_matrix(4, 3, 1.0, 5), Vector());
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-6);
}

TEST_CASE("residual twin starts equal to its physics twin and has exact gradients") {
  auto physics = std::make_shared<OscillatorModel>(OscillatorConfig{.num_oscillators = 4});
  const Vector theta = physics->initial_params(1);
  const Matrix x = random_matrix(6, 4, 0.7, 2);
  for (bool uses_theta : {false, true}) {
    CAPTURE(uses_theta);
    ResidualTwin fresh({.physics = physics, .hidden = {5}, .uses_theta = uses_theta,
                        .x = norm_of(4, 0.0, 3.0), .theta = norm_of(20, 0.0, 1.0),
                        .y_scale = Vector::Constant(4, 0.1), .weights = {}, .seed = 2});
    CHECK((fresh.forward(x, theta) - physics->forward(x, theta)).norm() == 0.0);
    // Random weights everywhere (the last layer too) for a non-trivial correction.
    const ModelPtr model = fresh.with_physical_params(random_matrix(fresh.num_physical_params(), 1, 0.5, 9));
    CHECK((model->forward(x, theta) - physics->forward(x, theta)).norm() > 1e-3);
    const auto report = check_gradients(*model, x, theta);
    INFO(report.summary());
    CHECK(report.max_rel_error() < 1e-5);
  }
}

TEST_CASE("mlp and residual twins refuse bad normalisers and weight counts") {
  MlpTwinConfig c{.num_inputs = 2, .num_params = 1, .num_outputs = 1, .hidden = {3},
                  .x = norm_of(2, 0.0, 1.0), .theta = norm_of(1, 0.0, 0.0),
                  .y = norm_of(1, 0.0, 1.0), .weights = {}, .seed = 0};
  CHECK_THROWS_WITH_AS(MlpTwin{c}, doctest::Contains("parameter normaliser must be finite with scales > 0"),
                       std::invalid_argument);
  c.theta = norm_of(1, 0.0, 1.0);
  c.weights = Vector::Zero(5);
  CHECK_THROWS_WITH_AS(MlpTwin{c}, doctest::Contains("the MLP has 16 weights, got 5"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(ResidualTwin({.physics = nullptr}), doctest::Contains("physics twin is null"),
                       std::invalid_argument);
}

TEST_CASE("calibrate with L-BFGS fits many parameters and a strong L2 pull holds them at the prior") {
  // Planted MLP weights: L-BFGS (φ > dense_max) must bring the error near zero from other
  // weights; with a large L2 weight the fit stays near the prior (the starting weights).
  MlpTwin truth({.num_inputs = 3, .num_params = 0, .num_outputs = 2, .hidden = {8},
                 .x = norm_of(3, 0.0, 1.0), .theta = norm_of(0, 0.0, 1.0),
                 .y = norm_of(2, 0.0, 1.0), .weights = {}, .seed = 11});
  std::vector<Measurement> data;
  for (int k = 0; k < 4; ++k) {
    const Matrix x = random_matrix(64, 3, 1.0, 20 + k);
    data.push_back({x, Vector(), truth.forward(x, Vector())});
  }
  const ModelPtr start = truth.with_physical_params(mlp_initial_weights({3, 8, 2}, 99, false));
  CalibrationOptions options;
  options.max_iterations = 400;
  options.dense_max = 8;  // 50 weights: the limited-memory path
  const CalibrationResult r = calibrate(*start, data, options);
  CHECK(r.mse_before > 1e-2);
  CHECK(r.mse_after < 1e-4 * r.mse_before);
  options.l2 = 1e3;
  const CalibrationResult held = calibrate(*start, data, options);
  const Vector prior = start->physical_params();
  CHECK((held.phi - prior).norm() < 1e-3 * (r.phi - prior).norm());
  options.phi_prior = Vector::Zero(3);
  CHECK_THROWS_WITH_AS(calibrate(*start, data, options), doctest::Contains("phi_prior has 3 entries"),
                       std::invalid_argument);
}

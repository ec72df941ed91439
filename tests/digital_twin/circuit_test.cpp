#include "pnn/digital_twin/circuit.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

namespace {
using test::uniform_matrix;
}  // namespace

TEST_CASE("circuit vjp matches central differences (x, θ and the component factors φ)") {
  CircuitModel model({.num_slots = 4});
  const Matrix x = uniform_matrix(3, 4, -1.0, 1.0, 1);
  const Vector theta = uniform_matrix(4, 1, -1.5, 1.5, 2);
  const auto report = check_gradients(model, x, theta, {.eps = 1e-6});
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
  // With a drive-amplifier lag (what the reality simulator adds), the adjoint carries the lag.
  CircuitModel lagged({.num_slots = 4, .drive_tau_s = 0.5e-6, .scale = {1.1, 0.9, 1.05, 2.0}});
  const auto lag_report = check_gradients(lagged, x, theta, {.eps = 1e-6, .seed = 3});
  INFO(lag_report.summary());
  CHECK(lag_report.max_rel_error() < 1e-5);
  CHECK((lagged.forward(x, theta) - model.forward(x, theta)).norm() > 0.05);
}

TEST_CASE("circuit vjp matches central differences through a long, stiff integration") {
  // ±8 V drives put the junction deep into conduction (C/g_d ≈ 1 ns against 50 ns steps): the
  // implicit steps are far from the explicit stability limit, and the run is 24 slots long.
  CircuitModel model({.num_slots = 12});
  const Matrix x = uniform_matrix(2, 12, -8.0, 8.0, 3);
  const Vector theta = uniform_matrix(12, 1, -6.0, 6.0, 4);
  const Matrix y = model.forward(x, theta);
  CHECK(y.maxCoeff() > 0.6);   // clamped by the junction near its forward voltage
  CHECK(y.maxCoeff() < 1.2);
  CHECK(y.minCoeff() < -3.0);  // reverse bias is not clamped
  const auto report = check_gradients(model, x, theta, {.eps = 1e-6, .num_directions = 4});
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
}

TEST_CASE("circuit physics: DC divider, junction clamp, second-order convergence in the step") {
  // Long constant negative drive: the junction is off and v settles to V·R_p/(R + R_p).
  CircuitModel slow({.num_slots = 1, .slot_s = 100e-6});
  auto settled = [&](double volts) {
    return slow.sample_voltages(Matrix::Constant(1, 2, volts)).rightCols(1)(0, 0);
  };
  CHECK(settled(-2.0) == doctest::Approx(-2.0 * 10e3 / (10e3 + 30.0)).epsilon(1e-4));
  // Forward drive: the junction clamps v where its current balances (V − v)/R.
  const double v_on = settled(5.0);
  const double nvt = 1.752 * thermal_voltage(300.15);
  const double i_d = 2.52e-9 * (std::exp(v_on / nvt) - 1.0) + v_on / 10e3;
  CHECK(i_d == doctest::Approx((5.0 - v_on) / 30.0).epsilon(1e-6));
  // BDF2 is second order: halving the step cuts the change by about four.
  const Matrix x = uniform_matrix(2, 6, -1.0, 1.0, 5);
  const Vector theta = uniform_matrix(6, 1, -1.0, 1.0, 6);
  auto run = [&](int steps) {
    return CircuitModel({.num_slots = 6, .steps_per_sample = steps}).forward(x, theta);
  };
  const double d1 = (run(10) - run(20)).norm(), d2 = (run(20) - run(40)).norm();
  CHECK(d1 / d2 > 3.0);
  CHECK(d1 / d2 < 5.0);
}

TEST_CASE("circuit samples, windows and shapes are consistent") {
  CircuitModel model({.num_slots = 5});
  const Matrix x = uniform_matrix(7, 5, -1.0, 1.0, 8);
  const Vector theta = uniform_matrix(5, 1, -1.0, 1.0, 9);
  const Matrix samples = model.sample_voltages(model.drive_levels(x, theta));
  REQUIRE(samples.cols() == model.num_samples());
  const Matrix y = model.forward(x, theta);
  const Index per_window = 2 * model.samples_per_slot();
  for (Index k = 0; k < 5; ++k) {
    const Matrix window = samples.middleCols(k * per_window, per_window);
    CHECK((window.rowwise().mean() - y.col(k)).norm() < 1e-12);
  }
  CHECK((model.window_means(samples) - y).norm() < 1e-12);
  CHECK_THROWS_AS(model.sample_voltages(Matrix::Zero(2, 9)), std::invalid_argument);
  CHECK_THROWS_AS(CircuitModel({.num_slots = 2, .slot_s = 1.5e-6}), std::invalid_argument);
  CircuitConfig bad;
  bad.components.capacitance_f = -1.0;
  CHECK_THROWS_AS(CircuitModel{bad}, std::invalid_argument);
}

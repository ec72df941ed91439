#include "pnn/digital_twin/plate.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "digital_twin/plate_test_util.hpp"
#include "pnn/digital_twin/gradcheck.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

using pnn::test::plate_levels;
using pnn::test::rms;

TEST_CASE("plate vjp matches central differences (x, θ and the scales φ)") {
  PlateModel model({.num_slots = 4, .freq_scale = 1.03, .damping_scale = 0.8});
  const Matrix x = plate_levels(3, 4, 1);
  const Vector theta = plate_levels(4, 1, 2);
  const auto report = check_gradients(model, x, theta, {.eps = 1e-6});
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-6);
}

TEST_CASE("plate vjp matches central differences with the voice-coil lag") {
  // The lag couples every step's force to the previous one: the adjoint carries that chain.
  PlateModel model({.num_slots = 6, .drive_tau_ms = 0.08, .freq_scale = 0.97});
  const Matrix x = plate_levels(3, 6, 7);
  const Vector theta = plate_levels(6, 1, 8);
  const auto report = check_gradients(model, x, theta, {.eps = 1e-6});
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-6);
}

TEST_CASE("plate vjp matches central differences over the benchmark's full 64 ms run") {
  // 32 windows (2048 RK4 steps with the lag) at full drive, several times the nonlinear
  // displacement q_nl in the strongly driven runs: the cubic term matters, the adjoint must
  // still be exact. Driven 5× harder than the device allows as well, where the hardening
  // dominates the response.
  for (const double gain : {1.0, 5.0}) {
    CAPTURE(gain);
    PlateModel model({.num_slots = 32, .steps_per_slot = 32, .drive_tau_ms = 0.05});
    const Matrix x = gain * plate_levels(2, 32, 3);
    const Vector theta = gain * plate_levels(32, 1, 4);
    const auto report =
        check_gradients(model, x, theta, {.eps = 1e-6, .num_directions = 4, .num_coordinates = 4});
    INFO(report.summary());
    CHECK(report.max_rel_error() < 1e-5);
  }
}

TEST_CASE("plate physics: linear resonance, hardening, outputs are bin means") {
  // One weak linear mode driven at rest then released: the mean acceleration over the first
  // window equals the velocity change, compare with the closed-form damped response.
  const double f = 200.0, zeta = 0.02, b = 10.0, c = 1.0;
  PlateConfig cfg{
      .num_slots = 1, .modes = {{f, zeta, 0.0, b, c}}, .slot_ms = 1.0, .steps_per_slot = 200};
  PlateModel model(cfg);
  const double w = 2.0 * std::numbers::pi * f * 1e-3, wd = w * std::sqrt(1.0 - zeta * zeta);
  // Drive 1 V for 1 ms then 0 V for 1 ms; velocity of a step response: (b/wd) e^{−ζωt} sin(wd t).
  auto v_step = [&](double t) {
    return t <= 0 ? 0.0 : b / wd * std::exp(-zeta * w * t) * std::sin(wd * t);
  };
  const double v_end = v_step(2.0) - v_step(1.0);  // superposition of +1 V at 0 and −1 V at 1 ms
  const Matrix y = model.forward(Matrix::Constant(1, 1, 1.0), Vector::Constant(1, 0.0));
  CHECK(y(0, 0) == doctest::Approx(c * v_end / 2.0).epsilon(1e-6));

  // Hardening: at full drive the fundamental's resonant amplitude approaches q_nl, so the
  // response to ±1 V levels departs from 100× the response to ±10 mV by a clear but minor part;
  // driven 5× harder (beyond the device's limits) the cubic stiffness takes over.
  PlateModel plate({.num_slots = 8});
  const Matrix x = plate_levels(4, 8, 5).cwiseSign();  // full-scale ±1 V data
  const Vector theta = 0.5 * plate_levels(8, 1, 6);
  const Matrix small = plate.forward(0.01 * x, 0.01 * theta);
  const Matrix large = plate.forward(x, theta);
  const double nonlinear = (large - 100.0 * small).norm() / large.norm();
  const Matrix huge = plate.forward(5.0 * x, 5.0 * theta);
  const double overdriven = (huge - 500.0 * small).norm() / huge.norm();
  CHECK(nonlinear > 0.03);
  CHECK(nonlinear < 0.2);
  CHECK(overdriven > 5.0 * nonlinear);
  // A run is smooth in its inputs (not chaotic): 1 mV on every level moves the outputs by
  // about a millivolt, not by orders of magnitude more.
  const Matrix nudged = plate.forward(x.array() + 1e-3, theta.array() + 1e-3);
  CHECK(rms(nudged - large) < 2e-3);

  // The sampled microphone signal binned into windows is the exact bin mean up to the
  // rectangle rule of the sampling: first order in the sample period.
  auto sampling_error = [&](int samples_per_slot) {
    PlateModel fine({.num_slots = 8, .steps_per_slot = samples_per_slot});
    const Matrix samples = fine.microphone_signal(fine.drive_levels(x, theta));
    REQUIRE(samples.cols() == fine.num_samples());
    REQUIRE(samples.cols() == 2 * 8 * samples_per_slot);
    return rms(fine.window_means(samples) - fine.forward(x, theta)) / rms(large);
  };
  const double err_64 = sampling_error(64), err_128 = sampling_error(128);
  CHECK(err_64 < 0.03);
  CHECK(err_64 / err_128 == doctest::Approx(2.0).epsilon(0.15));
  CHECK_THROWS_AS(plate.microphone_signal(Matrix::Zero(2, 3)), std::invalid_argument);
  CHECK_THROWS_AS(plate.window_means(Matrix::Zero(2, 3)), std::invalid_argument);
  CHECK_THROWS_AS(PlateModel({.num_slots = 2, .modes = {}}), std::invalid_argument);
  CHECK_THROWS_AS(PlateModel({.num_slots = 2, .steps_per_slot = 0}), std::invalid_argument);
  CHECK_THROWS_AS(PlateModel({.num_slots = 2, .drive_tau_ms = -0.1}), std::invalid_argument);
  CHECK_THROWS_AS(model.with_physical_params(Vector::Ones(3)), std::invalid_argument);
}

TEST_CASE("plate voice-coil lag: the force follows the amplifier with e^{−t/τ}") {
  // A nearly free mode (f → 0, no damping or cubic term) integrates the force: the first
  // window's mean acceleration is b ∫F dt / 2T, with F rising towards 1 V during the data slot
  // and decaying from F(T) during the parameter slot (0 V).
  const double b = 3.0, tau = 0.2, t_slot = 1.0;
  PlateModel lagged({.num_slots = 1,
                     .modes = {{1e-6, 0.0, 0.0, b, 1.0}},
                     .slot_ms = t_slot,
                     .steps_per_slot = 100,
                     .drive_tau_ms = tau});
  const double e = std::exp(-t_slot / tau);
  const double impulse = (t_slot - tau * (1.0 - e)) + (1.0 - e) * tau * (1.0 - e);
  const Matrix y = lagged.forward(Matrix::Constant(1, 1, 1.0), Vector::Zero(1));
  CHECK(y(0, 0) == doctest::Approx(b * impulse / (2.0 * t_slot)).epsilon(1e-9));
  // Without the lag the same run gives b T / 2T.
  PlateConfig ideal = lagged.config();
  ideal.drive_tau_ms = 0.0;
  CHECK(PlateModel(ideal).forward(Matrix::Constant(1, 1, 1.0), Vector::Zero(1))(0, 0) ==
        doctest::Approx(b / 2.0).epsilon(1e-9));
}

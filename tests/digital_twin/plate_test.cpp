#include "pnn/digital_twin/plate.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "pnn/digital_twin/gradcheck.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

namespace {
Matrix uniform(Index rows, Index cols, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}
}  // namespace

TEST_CASE("plate vjp matches central differences (x, θ and the scales φ)") {
  PlateModel model({.num_slots = 4, .freq_scale = 1.03, .damping_scale = 0.8});
  const Matrix x = uniform(3, 4, -1.0, 1.0, 1);
  const Vector theta = uniform(4, 1, -1.0, 1.0, 2);
  const auto report = check_gradients(model, x, theta, {.eps = 1e-6});
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-6);
}

TEST_CASE("plate vjp matches central differences through a long, strongly nonlinear run") {
  // 24 windows (48 ms, thousands of RK4 stages) at full drive: the cubic term dominates.
  PlateModel model({.num_slots = 24});
  const Matrix x = uniform(2, 24, -1.0, 1.0, 3);
  const Vector theta = uniform(24, 1, -1.0, 1.0, 4);
  const auto report = check_gradients(model, x, theta, {.eps = 1e-6, .num_directions = 4});
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
}

TEST_CASE("plate physics: linear resonance, hardening, outputs are bin means") {
  // One weak linear mode driven at rest then released: the mean acceleration over the first
  // window equals the velocity change, compare with the closed-form damped response.
  const double f = 200.0, zeta = 0.02, b = 10.0, c = 1.0;
  PlateConfig cfg{.num_slots = 1, .modes = {{f, zeta, 0.0, b, c}}, .slot_ms = 1.0,
                  .steps_per_slot = 200};
  PlateModel model(cfg);
  const double w = 2.0 * std::numbers::pi * f * 1e-3, wd = w * std::sqrt(1.0 - zeta * zeta);
  // Drive 1 V for 1 ms then 0 V for 1 ms; velocity of a step response: (b/wd) e^{−ζωt} sin(wd t).
  auto v_step = [&](double t) { return t <= 0 ? 0.0 : b / wd * std::exp(-zeta * w * t) * std::sin(wd * t); };
  const double v_end = v_step(2.0) - v_step(1.0);  // superposition of +1 V at 0 and −1 V at 1 ms
  const Matrix y = model.forward(Matrix::Constant(1, 1, 1.0), Vector::Constant(1, 0.0));
  CHECK(y(0, 0) == doctest::Approx(c * v_end / 2.0).epsilon(1e-6));
  // Hardening: a strongly driven mode responds less than linearly.
  PlateModel plate({.num_slots = 8});
  const Matrix x = uniform(4, 8, -1.0, 1.0, 5);
  const Vector theta = uniform(8, 1, -0.5, 0.5, 6);
  const Matrix small = plate.forward(0.01 * x, 0.01 * theta);
  const Matrix large = plate.forward(x, theta);
  CHECK((large - 100.0 * small).norm() > 0.2 * large.norm());
  // respond() on the interleaved levels is forward().
  CHECK((plate.respond(plate.drive_levels(x, theta)) - large).norm() < 1e-12);
  CHECK_THROWS_AS(plate.respond(Matrix::Zero(2, 3)), std::invalid_argument);
  CHECK_THROWS_AS(PlateModel({.num_slots = 2, .modes = {}}), std::invalid_argument);
  CHECK_THROWS_AS(PlateModel({.num_slots = 2, .steps_per_slot = 0}), std::invalid_argument);
}

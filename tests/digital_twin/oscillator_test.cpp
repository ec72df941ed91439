#include "pnn/digital_twin/oscillator.hpp"

#include <doctest/doctest.h>


#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;
using pnn::test::random_matrix;


TEST_CASE("coupling_to_q is symmetric with zero row sums") {
  const Matrix c = random_matrix(5, 5, 1.0, 3);
  const Matrix q = coupling_to_q(c);
  CHECK(q.isApprox(q.transpose()));
  CHECK(q.rowwise().sum().cwiseAbs().maxCoeff() < 1e-12);
  CHECK(q(0, 1) == doctest::Approx(0.5 * (c(0, 1) + c(1, 0))));
}

TEST_CASE("oscillator vjp matches central differences (5 RK4 steps)") {
  OscillatorModel model({.num_oscillators = 6, .dt = 0.1, .num_steps = 5});
  const Matrix x = random_matrix(4, 6, 0.7, 1);
  Vector theta = model.initial_params(2);
  theta.tail(6) = random_matrix(6, 1, 0.3, 5);
  const auto report = check_gradients(model, x, theta);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
}

TEST_CASE("oscillator vjp matches central differences over a long integration") {
  // 200 steps of dt = 0.05 (t_end = 10): exercises the reverse sweep through many stages.
  OscillatorModel model({.num_oscillators = 4, .dt = 0.05, .num_steps = 200,
                         .kappa = 1.2, .q_extra = coupling_to_q(random_matrix(4, 4, 0.3, 9))});
  const Matrix x = random_matrix(3, 4, 1.0, 7);
  const Vector theta = random_matrix(20, 1, 0.4, 8);
  GradCheckOptions options;
  options.eps = 1e-6;
  const auto report = check_gradients(model, x, theta, options);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-4);
}

TEST_CASE("oscillator batch rows are independent and sharding does not change results") {
  OscillatorModel model({.num_oscillators = 8});
  const Matrix x = random_matrix(64, 8, 0.5, 11);
  const Vector theta = model.initial_params(3);
  const Matrix y = model.forward(x, theta);
  for (Index r : {0, 17, 63}) {
    CHECK((model.forward(x.row(r), theta) - y.row(r)).norm() < 1e-12);
  }
  const Matrix y_bar = random_matrix(64, 8, 1.0, 12);
  const Cotangents full = model.vjp(x, theta, y_bar);
  Vector theta_bar = Vector::Zero(model.num_params());
  for (Index r = 0; r < 64; ++r) theta_bar += model.vjp(x.row(r), theta, y_bar.row(r)).theta_bar;
  CHECK((full.theta_bar - theta_bar).norm() < 1e-9 * (1.0 + theta_bar.norm()));
}

TEST_CASE("oscillator stiffness cache follows theta: alternating theta matches fresh models") {
  // The model keeps the last θ's stiffness; a changed θ (even in one entry, or of C's diagonal,
  // which Q ignores) must never reuse a stale one, and a copy must not share it.
  const OscillatorConfig config{.num_oscillators = 6};
  OscillatorModel model(config);
  const Matrix x = random_matrix(32, 6, 0.5, 21);
  const Matrix y_bar = random_matrix(32, 6, 1.0, 22);
  const Vector a = model.initial_params(4);
  Vector b = a;
  b[1] += 0.25;  // C_01: changes Q
  for (const Vector* theta : std::initializer_list<const Vector*>{&a, &b, &a, &b}) {
    const OscillatorModel fresh(config);
    CHECK((model.forward(x, *theta) - fresh.forward(x, *theta)).norm() == 0.0);
    CHECK((model.vjp(x, *theta, y_bar).theta_bar - fresh.vjp(x, *theta, y_bar).theta_bar).norm() == 0.0);
  }
  CHECK((model.forward(x, a) - model.forward(x, b)).norm() > 1e-6);
  const OscillatorModel copy = model;
  CHECK((copy.forward(x, b) - model.forward(x, b)).norm() == 0.0);
}

TEST_CASE("oscillator with no coupling and no drive follows the pendulum equation") {
  // Small-angle pendulum: q(t) ≈ q0 cos t.
  OscillatorModel model({.num_oscillators = 1, .dt = 0.01, .num_steps = 100});
  const Matrix x = Matrix::Constant(1, 1, 1e-3);
  const Matrix y = model.forward(x, Vector::Zero(2));
  CHECK(y(0, 0) == doctest::Approx(1e-3 * std::cos(1.0)).epsilon(1e-6));
}

TEST_CASE("oscillator rejects wrong shapes with a message naming them") {
  OscillatorModel model({.num_oscillators = 3});
  CHECK_THROWS_WITH_AS(model.forward(Matrix::Zero(2, 4), Vector::Zero(12)),
                       doctest::Contains("takes 3"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(model.forward(Matrix::Zero(2, 3), Vector::Zero(5)),
                       doctest::Contains("has 12"), std::invalid_argument);
  CHECK_THROWS_AS(OscillatorModel({.num_oscillators = 3, .kappa = std::nan("")}),
                  std::invalid_argument);
}

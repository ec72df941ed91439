#include "pnn/digital_twin/stno.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

namespace {

StnoConfig small_config() {
  StnoConfig c;
  c.num_neurons = 5;
  c.num_steps = 3;
  c.inputs_per_step = 4;
  c.substeps = 6;
  c.period_ns = 0.5;
  return c;
}

Matrix pixels(Index rows, Index cols, std::uint64_t seed) {
  return test::random_matrix(rows, cols, 0.3, seed).array().abs().min(1.0).matrix();
}

}  // namespace

TEST_CASE("STNO twin relaxes to the steady state p0 = (ζ−1)/(ζ+Q) under a constant drive") {
  StnoConfig c = small_config();
  c.num_neurons = 3;
  c.num_steps = 40;  // 20 ns, ≫ the relaxation time 1/(2Γ_G p0 (Q + ζ))
  c.inputs_per_step = 1;
  c.substeps = 20;
  c.period_ns = 0.5;
  c.floor_per_ns = 0.0;
  const StnoModel model(c);
  Vector theta = Vector::Zero(model.num_params());
  theta.head(3) << 15.0, 25.0, 35.0;  // ζ = 1.5, 2.5, 3.5 (W = R = 0)
  const Matrix y = model.forward(Matrix::Zero(1, model.num_inputs()), theta);
  for (Index i = 0; i < 3; ++i) {
    const double zeta = theta[i] / 10.0;
    CHECK(y(0, i) == doctest::Approx((zeta - 1.0) / (zeta + 2.0)).epsilon(1e-6));
  }
}

TEST_CASE("STNO twin: vjp is the exact discrete adjoint (central differences, short and long)") {
  GradCheckOptions options;
  options.num_coordinates = 12;
  options.eps = 1e-5;
  {
    const StnoModel model(small_config());
    const Matrix x = pixels(3, model.num_inputs(), 1);
    const Vector theta = model.initial_params(2);
    const auto report = check_gradients(model, x, theta, options);
    INFO(report.summary());
    CHECK(report.max_rel_error_x < 1e-6);
    CHECK(report.max_rel_error_theta < 1e-6);
    CHECK(report.max_rel_error_phi < 1e-6);
  }
  {  // Long integration: 60 input periods × 25 Euler steps = 1500 steps of BPTT.
    StnoConfig c = small_config();
    c.num_steps = 60;
    c.substeps = 25;
    c.inputs_per_step = 2;
    c.period_ns = 0.05;  // 3 ns in all: the first inputs still reach the output
    const StnoModel model(c);
    const Matrix x = pixels(2, model.num_inputs(), 3);
    Vector theta = model.initial_params(4);
    theta.tail(c.num_neurons * c.num_neurons) *= 3.0;  // strong recurrence
    // Moderate input currents keep ζ off the clamp's kinks, where central differences break.
    theta.segment(c.num_neurons, c.num_neurons * c.inputs_per_step) *= 0.3;
    const auto report = check_gradients(model, x, theta, options);
    INFO(report.summary());
    CHECK(report.max_rel_error_x < 1e-5);
    CHECK(report.max_rel_error_theta < 1e-5);
    CHECK(report.max_rel_error_phi < 1e-5);
  }
}

TEST_CASE("STNO twin: the current clamp [1, 4]·I_th has zero gradient outside") {
  const StnoModel model(small_config());
  const Index n = 5;
  Vector theta = Vector::Zero(model.num_params());
  theta.head(n).setConstant(55.0);  // ζ = 5.5 > 4 whatever the (zero) W and R
  theta[0] = 25.0;                  // neuron 0 inside the range
  const Matrix x = pixels(2, model.num_inputs(), 5);
  const Cotangents c = model.vjp(x, theta, Matrix::Ones(2, n));
  CHECK(std::abs(c.theta_bar[0]) > 1e-4);
  for (Index i = 1; i < n; ++i) CHECK(c.theta_bar[i] == 0.0);
  // Clamped neurons sit at the ζ = 4 steady state after enough time.
  StnoConfig long_run = small_config();
  long_run.num_steps = 40;
  long_run.substeps = 20;
  long_run.period_ns = 0.5;
  long_run.floor_per_ns = 0.0;
  const StnoModel model_long(long_run);
  const Matrix y = model_long.forward(Matrix::Zero(1, model_long.num_inputs()), theta);
  CHECK(y(0, 3) == doctest::Approx(3.0 / 6.0).epsilon(1e-6));
}

TEST_CASE("STNO twin: sizes, θ layout and validation") {
  const StnoModel model(small_config());
  CHECK(model.num_inputs() == 12);
  CHECK(model.num_outputs() == 5);
  CHECK(model.num_params() == 5 + 5 * 4 + 25);
  const Vector theta = model.initial_params(7);
  CHECK(theta.head(5).minCoeff() > 18.0);  // above threshold: ζ ≈ 2
  CHECK(theta.head(5).maxCoeff() < 22.0);
  CHECK((theta - model.initial_params(7)).norm() == 0.0);
  // Rows are independent (one sample per row; shards agree with single rows).
  const Matrix x = pixels(40, 12, 8);
  const Matrix y = model.forward(x, theta);
  for (Index r : {0, 17, 39}) CHECK((model.forward(x.row(r), theta) - y.row(r)).norm() < 1e-12);
  CHECK_THROWS_AS(model.forward(Matrix::Zero(2, 11), theta), std::invalid_argument);
  StnoConfig bad = small_config();
  bad.substeps = 0;
  CHECK_THROWS_AS(StnoModel{bad}, std::invalid_argument);
  Vector phi(2);
  phi << -1.0, 2.0;
  CHECK_THROWS_AS(model.with_physical_params(phi), std::invalid_argument);
  phi << 1.3, 2.2;
  CHECK((model.with_physical_params(phi)->physical_params() - phi).norm() == 0.0);
}

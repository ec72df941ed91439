// The neural-ODE twin of the STNO network (issue 13): RK4 through a learned per-neuron vector
// field, with the exact discrete adjoint in x, θ and the fitted ψ.
#include "pnn/digital_twin/neural_ode.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

namespace {

NeuralOdeConfig small_config(bool prior, bool trajectory) {
  NeuralOdeConfig c;
  c.stno.num_neurons = 5;
  c.stno.num_steps = 3;
  c.stno.inputs_per_step = 4;
  c.rk4_steps = 3;
  c.hidden = {6, 5};
  c.physics_prior = prior;
  c.trajectory = trajectory;
  c.seed = 3;
  return c;
}

// ψ away from its start: every MLP weight, scale and offset non-trivial, so all are probed.
NeuralOdeTwin perturbed(NeuralOdeConfig c) {
  const NeuralOdeTwin start(c);
  Vector psi = start.physical_params();
  psi += test::random_matrix(psi.size(), 1, 0.2, 11);
  c.psi = psi;
  return NeuralOdeTwin(c);
}

Matrix pixels(Index rows, Index cols, std::uint64_t seed) {
  return test::random_matrix(rows, cols, 0.3, seed).array().abs().min(1.0).matrix();
}

}  // namespace

TEST_CASE("neural-ODE twin: vjp in x, theta and psi matches central differences") {
  GradCheckOptions options;
  options.num_coordinates = 12;
  options.eps = 1e-5;
  for (bool prior : {true, false}) {
    for (bool trajectory : {false, true}) {
      CAPTURE(prior);
      CAPTURE(trajectory);
      const NeuralOdeTwin model = perturbed(small_config(prior, trajectory));
      const Matrix x = pixels(3, model.num_inputs(), 1);
      Vector theta = model.initial_params(2);
      // Moderate input currents keep ζ off the clamp's kinks, where central differences break.
      theta.segment(5, 20) *= 0.3;
      theta.tail(25) *= 3.0;  // recurrence strong enough to matter
      const auto report = check_gradients(model, x, theta, options);
      INFO(report.summary());
      CHECK(report.max_rel_error_x < 1e-6);
      CHECK(report.max_rel_error_theta < 1e-6);
      CHECK(report.max_rel_error_phi < 1e-6);
      CHECK(report.max_rel_error_phi > 0.0);  // ψ was probed
    }
  }
}

TEST_CASE("neural-ODE twin with the physics prior and zero correction is the power equation") {
  // RK4 at 8 steps per period against the Euler twin at 400: the same ODE, both converged.
  NeuralOdeConfig c = small_config(true, false);
  c.rk4_steps = 8;
  const NeuralOdeTwin ode(c);
  StnoConfig fine = c.stno;
  fine.substeps = 400;
  const StnoModel euler(fine);
  const Matrix x = pixels(4, ode.num_inputs(), 5);
  const Vector theta = ode.initial_params(6);
  const Matrix a = ode.forward(x, theta), b = euler.forward(x, theta);
  CHECK((a - b).cwiseAbs().maxCoeff() < 2e-3);
  CHECK(a.minCoeff() > 0.05);  // above threshold: the comparison is not of zeros
}

TEST_CASE("neural-ODE twin: the trajectory readout ends with the end-of-sequence readout") {
  const NeuralOdeTwin model = perturbed(small_config(false, true));
  const auto last = model.with_trajectory(false);
  CHECK(model.num_outputs() == 15);
  CHECK(last->num_outputs() == 5);
  const Matrix x = pixels(2, model.num_inputs(), 7);
  const Vector theta = model.initial_params(8);
  const Matrix traj = model.forward(x, theta);
  CHECK((traj.rightCols(5) - last->forward(x, theta)).norm() < 1e-14);
  // The first period's readout is the sequence of one period.
  NeuralOdeConfig one = model.config();
  one.stno.num_steps = 1;
  const NeuralOdeTwin first(one);
  CHECK((traj.leftCols(5) - first.forward(x.leftCols(4), theta)).norm() < 1e-14);
}

TEST_CASE("neural-ODE twin refuses a wrong psi, bad sizes and wrong shapes, naming the fix") {
  NeuralOdeConfig c = small_config(true, false);
  c.psi = Vector::Zero(3);
  CHECK_THROWS_WITH_AS(NeuralOdeTwin{c}, doctest::Contains("ψ needs"), std::invalid_argument);
  c.psi = Vector();
  c.rk4_steps = 0;
  CHECK_THROWS_WITH_AS(NeuralOdeTwin{c}, doctest::Contains("rk4_steps must be ≥ 1"),
                       std::invalid_argument);
  c.rk4_steps = 2;
  c.hidden = {0};
  CHECK_THROWS_AS(NeuralOdeTwin{c}, std::invalid_argument);
  c.hidden = {4};
  const NeuralOdeTwin model(c);
  Vector nan_psi = model.physical_params();
  nan_psi[0] = std::nan("");
  CHECK_THROWS_WITH_AS(model.with_physical_params(nan_psi), doctest::Contains("finite"),
                       std::invalid_argument);
  CHECK_THROWS_AS(model.forward(Matrix::Zero(2, 5), model.initial_params(0)),
                  std::invalid_argument);
}

TEST_CASE("neural-ODE twin stays finite where a fitted field pushes p below zero") {
  // Offsets of −2/ns drive p below 0 within a period; the power equation there would diverge
  // in finite time (dp/dt ≈ −2Γ(Q + 1)p² at ζ = 1), but the field sees p clamped to [0, 1].
  NeuralOdeConfig c = small_config(true, true);
  c.stno.num_steps = 20;
  c.stno.inputs_per_step = 1;
  const NeuralOdeTwin start(c);
  Vector psi = start.physical_params();
  psi.tail(c.stno.num_neurons).setConstant(-2.0);
  c.psi = psi;
  const NeuralOdeTwin model(c);
  Vector theta = Vector::Zero(model.num_params());
  theta.head(c.stno.num_neurons).setConstant(10.0);  // ζ = 1: at threshold
  const Matrix x = Matrix::Zero(2, model.num_inputs());
  const Matrix y = model.forward(x, theta);
  CHECK(y.allFinite());
  CHECK(y.maxCoeff() < 0.0);  // p did go below 0, and fell linearly (bounded field)
  CHECK(y.minCoeff() > -2.0 * 20 * 0.5 - 1.0);
  const Cotangents g = model.vjp(x, theta, Matrix::Ones(2, model.num_outputs()));
  CHECK(g.x_bar.allFinite());
  CHECK(g.theta_bar.allFinite());
}

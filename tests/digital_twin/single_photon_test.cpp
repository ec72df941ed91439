#include "pnn/digital_twin/single_photon.hpp"

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

TEST_CASE("single-photon twin: expectation 1 − exp(−N|Wx|) when ideal") {
  SinglePhotonModel model({.num_inputs = 3, .num_outputs = 2, .photons_per_unit = 2.0});
  Vector w(6);
  w << 0.5, -0.25, 0.0,  //
      -1.0, 0.0, 0.5;
  Matrix x(1, 3);
  x << 1.0, 1.0, 0.5;
  const Matrix y = model.forward(x, w);
  CHECK(y(0, 0) == doctest::Approx(1.0 - std::exp(-2.0 * 0.25)));
  CHECK(y(0, 1) == doctest::Approx(1.0 - std::exp(-2.0 * 0.75)));  // |−0.75|
  CHECK(model.photons(x, w)(0, 1) == doctest::Approx(1.5));
  // η and p_d: P(no click) = (1 − p_d) e^{−ηλ}.
  Vector phi(2);
  phi << 0.6, 0.05;
  const Matrix y2 = model.with_physical_params(phi)->forward(x, w);
  CHECK(y2(0, 0) == doctest::Approx(1.0 - 0.95 * std::exp(-0.6 * 2.0 * 0.25)));
}

TEST_CASE("single-photon vjp (x, W, and φ = η, p_d) matches central differences off the cusp") {
  SinglePhotonModel ideal({.num_inputs = 6, .num_outputs = 5, .photons_per_unit = 1.5});
  Vector phi(2);
  phi << 0.7, 0.02;
  const ModelPtr model = ideal.with_physical_params(phi);
  const Matrix x = uniform_matrix(8, 6, 0.0, 1.0, 1);
  Vector w = uniform_matrix(30, 1, -1.0, 1.0, 2);
  // Keep every |z| well away from the cusp at 0 so central differences are valid.
  const Matrix z =
      x * Eigen::Map<const Eigen::Matrix<double, 5, 6, Eigen::RowMajor>>(w.data()).transpose();
  REQUIRE(z.cwiseAbs().minCoeff() > 1e-3);
  GradCheckOptions options;
  options.eps = 1e-7;
  options.num_coordinates = 12;
  const auto report = check_gradients(*model, x, w, options);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
}

TEST_CASE("single-photon vjp takes the subgradient 0 exactly at the cusp") {
  SinglePhotonModel model({.num_inputs = 2, .num_outputs = 2, .photons_per_unit = 1.0});
  Vector w(4);
  w << 0.5, -0.5,  // z_0 = 0 for x = (1, 1): exactly on the cusp
      0.3, 0.2;    // z_1 = 0.5
  const Matrix x = Matrix::Ones(1, 2);
  const Cotangents c = model.vjp(x, w, Matrix::Ones(1, 2));
  CHECK(c.theta_bar[0] == 0.0);
  CHECK(c.theta_bar[1] == 0.0);
  CHECK(c.theta_bar[2] == doctest::Approx(std::exp(-0.5)));
  // Either side of the cusp the one-sided derivatives are ∓N, and 0 is their mid-point.
  const double h = 1e-6;
  Vector w_plus = w, w_minus = w;
  w_plus[0] += h;
  w_minus[0] -= h;
  const double right = (model.forward(x, w_plus)(0, 0) - model.forward(x, w)(0, 0)) / h;
  const double left = (model.forward(x, w)(0, 0) - model.forward(x, w_minus)(0, 0)) / h;
  CHECK(right == doctest::Approx(1.0).epsilon(1e-4));
  CHECK(left == doctest::Approx(-1.0).epsilon(1e-4));
}

TEST_CASE("single-photon config and shapes are validated") {
  CHECK_THROWS_AS(SinglePhotonModel({.num_inputs = 0, .num_outputs = 2}), std::invalid_argument);
  CHECK_THROWS_AS(SinglePhotonModel({.num_inputs = 2, .num_outputs = 2, .photons_per_unit = 0.0}),
                  std::invalid_argument);
  SinglePhotonModel model({.num_inputs = 4, .num_outputs = 3});
  CHECK(model.num_params() == 12);
  CHECK_THROWS_WITH_AS(model.forward(Matrix::Zero(2, 5), Vector::Zero(12)),
                       doctest::Contains("takes 4"), std::invalid_argument);
  CHECK_THROWS_AS(model.with_physical_params(Vector::Ones(1)), std::invalid_argument);
  const Vector w0 = model.initial_params(3);
  CHECK(w0.cwiseAbs().maxCoeff() <= 1.0);
  CHECK((w0 - model.initial_params(3)).norm() == 0.0);
}

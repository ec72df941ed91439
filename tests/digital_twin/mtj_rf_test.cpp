#include "pnn/digital_twin/mtj_rf.hpp"

#include <doctest/doctest.h>

#include <cmath>

#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

namespace {
MtjRfConfig small_config() {
  MtjRfConfig c;
  c.num_inputs = 6;
  c.num_outputs = 4;
  return c;
}
Matrix powers(Index rows, Index cols, std::uint64_t seed) {
  return test::random_matrix(rows, cols, 0.5, seed).array().abs().min(1.0).matrix();
}
}  // namespace

TEST_CASE("MTJ-RF twin: antisymmetric Lorentzian, weights and STNO steady state (brute force)") {
  CHECK(lorentzian_antisym(-10.0, 10.0) == doctest::Approx(0.5));
  CHECK(lorentzian_antisym(10.0, 10.0) == doctest::Approx(-0.5));
  CHECK(lorentzian_antisym(0.0, 10.0) == 0.0);
  const MtjRfModel model(small_config());
  const Vector theta = model.initial_params(3);
  const Matrix x = powers(2, 6, 1);
  const Matrix y = model.forward(x, theta);
  for (Index r = 0; r < 2; ++r) {
    for (Index i = 0; i < 4; ++i) {
      double v = 0.0;
      for (Index j = 0; j < 6; ++j) {
        for (Index k = 0; k < 6; ++k) {
          const double f_r = 50.0 * static_cast<double>(k) + theta[i * 6 + k];
          v += x(r, j) * lorentzian_antisym(50.0 * static_cast<double>(j) - f_r, 10.0);
        }
      }
      const double zeta = std::clamp(2.5 + 0.5 * v, 1.0, 4.0);
      CHECK(y(r, i) == doctest::Approx((zeta - 1.0) / (zeta + 2.0)).epsilon(1e-12));
    }
  }
}

TEST_CASE("MTJ-RF twin: vjp and physical vjp against central differences") {
  const MtjRfModel model(small_config());
  const Matrix x = powers(5, 6, 2);
  const Vector theta = model.initial_params(4);
  GradCheckOptions options;
  options.num_coordinates = 12;
  options.eps = 1e-4;  // θ in MHz, on the scale of w = 10 MHz
  const auto report = check_gradients(model, x, theta, options);
  INFO(report.summary());
  CHECK(report.max_rel_error_x < 1e-6);
  CHECK(report.max_rel_error_theta < 1e-6);
  CHECK(report.max_rel_error_phi < 1e-6);
}

TEST_CASE("MTJ-RF twin: the neuron clamp has zero gradient outside [1, 4]·I_th") {
  MtjRfConfig c = small_config();
  c.zeta_per_mv = 50.0;  // every chain saturates
  const MtjRfModel model(c);
  const Matrix x = Matrix::Ones(3, 6);
  Vector theta = Vector::Constant(model.num_params(), 8.0);  // all weights positive → ζ > 4
  const Cotangents cot = model.vjp(x, theta, Matrix::Ones(3, 4));
  CHECK(cot.theta_bar.norm() == 0.0);
  CHECK(cot.x_bar.norm() == 0.0);
  CHECK(model.forward(x, theta).minCoeff() == doctest::Approx(0.5));  // p0(4) = 3/6
}

TEST_CASE("MTJ-RF twin: validation and physical parameters") {
  MtjRfConfig bad = small_config();
  bad.linewidth_mhz = 0.0;
  CHECK_THROWS_AS(MtjRfModel{bad}, std::invalid_argument);
  const MtjRfModel model(small_config());
  CHECK(model.num_params() == 24);
  CHECK_THROWS_AS(model.forward(Matrix::Zero(1, 5), model.initial_params(1)),
                  std::invalid_argument);
  Vector phi(2);
  phi << 1.2, 9.0;
  CHECK((model.with_physical_params(phi)->physical_params() - phi).norm() == 0.0);
  phi << 1.2, -1.0;
  CHECK_THROWS_AS(model.with_physical_params(phi), std::invalid_argument);
}

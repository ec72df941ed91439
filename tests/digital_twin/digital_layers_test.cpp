#include "pnn/digital_twin/digital_layers.hpp"

#include <doctest/doctest.h>


#include "pnn/digital_twin/calibration.hpp"
#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;
using pnn::test::random_matrix;

namespace {
void check_model(const DifferentiableModel& model, const Matrix& x, const Vector& theta) {
  const auto report = check_gradients(model, x, theta);
  INFO(model.name() << ": " << report.summary());
  CHECK(report.max_rel_error() < 1e-6);
}
}  // namespace

TEST_CASE("digital layers: vjp matches central differences") {
  AffineModel affine(5, 3);
  check_model(affine, random_matrix(200, 5, 1.0, 1), affine.initial_params(4));
  // Keep relu inputs away from the kink so central differences are valid.
  Matrix xr = random_matrix(4, 6, 1.0, 2);
  xr = (xr.array().abs() < 0.05).select(0.5, xr);
  check_model(ActivationModel(Activation::kRelu, 6), xr, Vector());
  check_model(ActivationModel(Activation::kTanh, 6), random_matrix(4, 6, 1.0, 3), Vector());
  check_model(ActivationModel(Activation::kSin, 6), random_matrix(4, 6, 1.0, 3), Vector());
  check_model(PadModel(4, 3), random_matrix(4, 4, 1.0, 5), Vector());
  check_model(DuplicateModel(4), random_matrix(4, 4, 1.0, 8), Vector());
  check_model(SliceModel(7, 4, 3, 2.5), random_matrix(4, 7, 1.0, 6), Vector());
  check_model(PowerLawModel(2.01, 2), (random_matrix(4, 2, 1.0, 7).array().abs() + 0.5).matrix(),
              Vector::Constant(1, 1.1));
}

TEST_CASE("affine forward is x W^T + b") {
  AffineModel affine(2, 2);
  Vector theta(6);
  theta << 1, 2, 3, 4, 10, 20;
  Matrix x(1, 2);
  x << 1, 1;
  const Matrix y = affine.forward(x, theta);
  CHECK(y(0, 0) == 13.0);
  CHECK(y(0, 1) == 27.0);
}

TEST_CASE("calibration recovers a power-law prefactor and reports the error drop") {
  const PowerLawModel reality(2.0), twin(2.01);
  std::vector<Measurement> data;
  for (double t : {0.8, 1.0, 1.2}) {
    Measurement m{(random_matrix(16, 1, 1.0, 3).array().abs() + 0.2).matrix(), Vector::Constant(1, t), Matrix()};
    m.y = reality.forward(m.x, m.theta);
    data.push_back(m);
  }
  const auto result = calibrate(twin, data);
  CHECK(result.mse_after < 1e-3 * result.mse_before);
  CHECK(result.phi[0] == doctest::Approx(2.0).epsilon(1e-3));
  CHECK_THROWS_AS(calibrate(AffineModel(1, 1), data), std::invalid_argument);
}

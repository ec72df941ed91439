// The sigmoid activation of digital_layers (added for the optical SHG layer, whose modulator
// takes transmissions in [0, 1]).
#include <doctest/doctest.h>

#include <cmath>

#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/digital_twin/gradcheck.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

TEST_CASE("sigmoid activation: values in (0, 1), vjp matches central differences") {
  CHECK(parse_activation("sigmoid") == Activation::kSigmoid);
  CHECK_THROWS_WITH_AS(parse_activation("softplus"), doctest::Contains("sigmoid"),
                       std::invalid_argument);
  ActivationModel sigmoid(Activation::kSigmoid, 5);
  CHECK(sigmoid.name() == "sigmoid");
  Matrix x(3, 5);
  x << -3, -1, 0, 1, 3,            //
      0.2, -0.7, 2.5, -2.5, 0.01,  //
      -800, 800, 10, -10, 0.5;     // far tails: no overflow to NaN
  const Matrix y = sigmoid.forward(x, Vector());
  CHECK(y.allFinite());
  CHECK(y.minCoeff() >= 0.0);
  CHECK(y.maxCoeff() <= 1.0);
  CHECK(y(0, 2) == doctest::Approx(0.5));
  CHECK(y(0, 3) == doctest::Approx(1.0 / (1.0 + std::exp(-1.0))));
  const auto report = check_gradients(sigmoid, x.topRows(2), Vector());
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-6);
  CHECK(sigmoid.vjp(x.bottomRows(1), Vector(), Matrix::Ones(1, 5)).x_bar.allFinite());
}

// The time-multiplexed drive shared by the circuit and plate twins and the SCPI circuit driver:
// the slot layout, and that the cotangent functions are the exact adjoints.
#include "pnn/digital_twin/time_multiplex.hpp"

#include <doctest/doctest.h>

#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

TEST_CASE("time multiplex: slots interleave data and parameters, [x_0 | θ_0 | x_1 | θ_1 | …]") {
  Matrix x(2, 3);
  x << 1, 2, 3, 4, 5, 6;
  Vector theta(3);
  theta << -1, -2, -3;
  const Matrix levels = time_multiplexed_levels(x, theta);
  Matrix expected(2, 6);
  expected << 1, -1, 2, -2, 3, -3, 4, -1, 5, -2, 6, -3;
  CHECK(levels == expected);

  Matrix samples(2, 6);
  samples << 1, 3, 5, 7, 9, 11, 0, 0, 2, 2, -1, 1;
  Matrix means(2, 3);
  means << 2, 6, 10, 0, 2, 0;
  CHECK(window_means(samples, 3) == means);
}

TEST_CASE("time multiplex: the cotangents are the adjoints of the levels and the window means") {
  const Matrix x = test::random_matrix(4, 5, 1.0, 1);
  const Vector theta = test::random_matrix(5, 1, 1.0, 2).col(0);
  const Matrix level_bar = test::random_matrix(4, 10, 1.0, 3);
  const Cotangents c = time_multiplexed_cotangents(level_bar);
  // <L(x, θ), L̄> = <x, x̄> + <θ, θ̄> for the linear map L.
  const double lhs = (time_multiplexed_levels(x, theta).array() * level_bar.array()).sum();
  CHECK(lhs == doctest::Approx((x.array() * c.x_bar.array()).sum() + theta.dot(c.theta_bar)));

  const Matrix samples = test::random_matrix(4, 15, 1.0, 4);  // 5 windows of 3 samples
  const Matrix y_bar = test::random_matrix(4, 5, 1.0, 5);
  const Matrix sample_bar = window_means_cotangent(y_bar, 3);
  REQUIRE(sample_bar.cols() == 15);
  CHECK((window_means(samples, 5).array() * y_bar.array()).sum() ==
        doctest::Approx((samples.array() * sample_bar.array()).sum()));
}

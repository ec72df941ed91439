#include "pnn/digital_twin/fast_math.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using pnn::digital_twin::sincos;

TEST_CASE("fast sincos matches libm to 1e-15 over every quadrant and beyond") {
  const int n = 200001;
  Eigen::ArrayXXd x(n, 1);
  for (int i = 0; i < n; ++i) x(i, 0) = -50.0 + 100.0 * i / (n - 1);
  Eigen::ArrayXXd s, c;
  sincos(x, &s, &c);
  double worst = 0.0;
  for (int i = 0; i < n; ++i) {
    worst = std::max({worst, std::abs(s(i, 0) - std::sin(x(i, 0))), std::abs(c(i, 0) - std::cos(x(i, 0)))});
  }
  CHECK(worst < 1e-15);
  // Huge and non-finite inputs fall back to libm rather than losing precision.
  Eigen::ArrayXXd big(2, 1);
  big << 1e9, 3.0;
  sincos(big, &s, &c);
  CHECK(s(0, 0) == std::sin(1e9));
  CHECK(c(1, 0) == std::cos(3.0));
}

TEST_CASE("fast sincos: any shape, blocks with huge or non-finite entries, a result aliasing x") {
  // 37 × 29 = 1073 elements: several blocks of the method and a short last one.
  Eigen::ArrayXXd x = Eigen::ArrayXXd::Random(37, 29) * 20.0;
  x(5, 3) = 3e7;                                        // past the reduction's range: libm
  x(30, 20) = std::numeric_limits<double>::quiet_NaN();  // non-finite stays non-finite
  Eigen::ArrayXXd s, c;
  sincos(x, &s, &c);
  REQUIRE(s.rows() == 37);
  REQUIRE(c.cols() == 29);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      if (std::isnan(x(i, j))) {
        CHECK(std::isnan(s(i, j)));
        CHECK(std::isnan(c(i, j)));
        continue;
      }
      CHECK(std::abs(s(i, j) - std::sin(x(i, j))) < 1e-15);
      CHECK(std::abs(c(i, j) - std::cos(x(i, j))) < 1e-15);
    }
  }
  CHECK(s(5, 3) == std::sin(3e7));
  Eigen::ArrayXXd y = x;
  sincos(y, &y, nullptr);
  CHECK(((y - s).abs() < 1e-300).count() == y.size() - 1);  // all but the NaN
}

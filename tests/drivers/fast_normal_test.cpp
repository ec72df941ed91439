// The simulators' vectorised Gaussian noise (drivers/sim/src/fast_normal.hpp): right moments and
// quantiles, every element touched once (odd sizes, block edges), deterministic per seed.
#include "../../drivers/sim/src/fast_normal.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

using pnn::drivers::sim::add_gaussian;

TEST_CASE("add_gaussian draws N(0, std²): moments and quantiles of a million samples") {
  std::mt19937_64 rng(42);
  const Eigen::Index n = 1'000'001;  // odd: the last pair gives one sample
  std::vector<double> x(static_cast<std::size_t>(n), 0.0);
  add_gaussian(rng, 2.0, x.data(), n);
  double mean = 0, m2 = 0, m4 = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(n);
  for (double v : x) {
    m2 += (v - mean) * (v - mean);
    m4 += std::pow(v - mean, 4);
  }
  m2 /= static_cast<double>(n);
  m4 /= static_cast<double>(n);
  CHECK(std::abs(mean) < 0.01);                         // σ/√n = 0.002
  CHECK(std::sqrt(m2) == doctest::Approx(2.0).epsilon(0.005));
  CHECK(m4 / (m2 * m2) == doctest::Approx(3.0).epsilon(0.02));  // kurtosis of a Gaussian
  std::sort(x.begin(), x.end());
  auto quantile = [&](double q) { return x[static_cast<std::size_t>(q * static_cast<double>(n - 1))] / 2.0; };
  CHECK(quantile(0.5) == doctest::Approx(0.0).epsilon(0.01));
  CHECK(quantile(0.8413) == doctest::Approx(1.0).epsilon(0.01));
  CHECK(quantile(0.1587) == doctest::Approx(-1.0).epsilon(0.01));
  CHECK(quantile(0.9772) == doctest::Approx(2.0).epsilon(0.01));
  CHECK(std::isfinite(x.front()));
  CHECK(std::isfinite(x.back()));
}

TEST_CASE("add_gaussian adds to every element once, for sizes around the block edges") {
  for (Eigen::Index n : {1, 2, 3, 255, 256, 511, 512, 513, 1000}) {
    std::mt19937_64 rng(7);
    std::vector<double> base(static_cast<std::size_t>(n), 100.0);
    add_gaussian(rng, 1e-3, base.data(), n);
    int moved = 0;
    for (double v : base) {
      CHECK(std::abs(v - 100.0) < 0.01);
      moved += v != 100.0;
    }
    CHECK(moved == n);
    // The same seed gives the same noise; a different one, other noise.
    std::mt19937_64 again(7), other(8);
    std::vector<double> a(static_cast<std::size_t>(n), 100.0), b(static_cast<std::size_t>(n), 100.0);
    add_gaussian(again, 1e-3, a.data(), n);
    add_gaussian(other, 1e-3, b.data(), n);
    CHECK(a == base);
    CHECK(a != b);
  }
}

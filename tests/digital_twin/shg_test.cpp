#include "pnn/digital_twin/shg.hpp"

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

TEST_CASE("SHG layout interleaves data and θ channels and bins every SH frequency once") {
  const ShgLayout l = ShgLayout::make(6, 4, 3);
  CHECK(l.num_channels == 10);
  CHECK(l.data_channels.size() == 6);
  CHECK(l.param_channels.size() == 4);
  // Interleaved: no run of more than two data channels, θ channels at both halves.
  CHECK(l.param_channels.front() < 5);
  CHECK(l.param_channels.back() >= 5);
  CHECK(l.window_start == 5);
  CHECK(l.window_size == 10);
  std::vector<int> per_bin(3, 0);
  for (Index b : l.bin_of) {
    REQUIRE(b >= 0);
    REQUIRE(b < 3);
    ++per_bin[static_cast<std::size_t>(b)];
  }
  for (int c : per_bin) CHECK(c >= 3);
  CHECK_THROWS_WITH_AS(ShgLayout::make(0, 4, 2), doctest::Contains("num_inputs"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(ShgLayout::make(4, 4, 9), doctest::Contains("num_outputs"),
                       std::invalid_argument);
}

TEST_CASE("SHG forward is the binned square of the autoconvolution (brute force)") {
  ShgModel model(
      {.num_inputs = 5, .num_params = 3, .num_outputs = 4, .gain = 0.7, .bandwidth = 3.0});
  const Matrix x = uniform_matrix(2, 5, 0.0, 1.0, 1);
  const Vector theta = model.initial_params(2);
  const Matrix y = model.forward(x, theta);
  const ShgLayout& l = model.layout();
  const Index k_total = l.num_channels;
  for (Index r = 0; r < 2; ++r) {
    std::vector<double> a(static_cast<std::size_t>(k_total));
    for (std::size_t i = 0; i < l.data_channels.size(); ++i) {
      a[static_cast<std::size_t>(l.data_channels[i])] = x(r, static_cast<Index>(i));
    }
    for (std::size_t i = 0; i < l.param_channels.size(); ++i) {
      a[static_cast<std::size_t>(l.param_channels[i])] = theta[static_cast<Index>(i)];
    }
    const double c = 0.5 * static_cast<double>(k_total - 1);
    for (Index k = 0; k < k_total; ++k) {
      const double d = (static_cast<double>(k) - c) / 3.0;
      a[static_cast<std::size_t>(k)] *= std::sqrt(std::exp(-0.5 * d * d));
    }
    std::vector<double> expected(4, 0.0);
    for (Index i = 0; i < l.window_size; ++i) {
      const Index n = l.window_start + i;
      double b = 0.0;
      for (Index k = 0; k < k_total; ++k) {
        if (n - k >= 0 && n - k < k_total) {
          b += a[static_cast<std::size_t>(k)] * a[static_cast<std::size_t>(n - k)];
        }
      }
      expected[static_cast<std::size_t>(l.bin_of[static_cast<std::size_t>(i)])] += 0.49 * b * b;
    }
    for (Index j = 0; j < 4; ++j) {
      CHECK(y(r, j) == doctest::Approx(expected[static_cast<std::size_t>(j)]).epsilon(1e-12));
    }
  }
}

TEST_CASE("SHG vjp (x, θ, and φ = κ, σ) matches central differences") {
  ShgModel model(
      {.num_inputs = 7, .num_params = 5, .num_outputs = 6, .gain = 0.8, .bandwidth = 4.0});
  const Matrix x = uniform_matrix(5, 7, 0.05, 0.95, 3);
  const Vector theta = uniform_matrix(5, 1, 0.05, 0.95, 4);
  GradCheckOptions options;
  options.num_coordinates = 12;
  const auto report = check_gradients(model, x, theta, options);
  INFO(report.summary());
  CHECK(report.max_rel_error_x < 1e-6);
  CHECK(report.max_rel_error_theta < 1e-6);
  CHECK(report.max_rel_error_phi < 1e-6);
  // The φ probe is live: κ and σ both move the output.
  const Matrix y_bar = Matrix::Ones(5, 6);
  const Vector phi_bar = model.physical_vjp(x, theta, y_bar);
  CHECK(std::abs(phi_bar[0]) > 1e-3);
  CHECK(std::abs(phi_bar[1]) > 1e-3);
}

TEST_CASE("SHG without trainable channels, and sharded batches, give the same rows") {
  ShgModel model({.num_inputs = 12, .num_params = 0, .num_outputs = 5});
  const Matrix x = uniform_matrix(80, 12, 0.0, 1.0, 5);
  const Matrix y = model.forward(x, Vector());
  for (Index r : {0, 41, 79}) CHECK((model.forward(x.row(r), Vector()) - y.row(r)).norm() < 1e-12);
  const auto report = check_gradients(model, x.topRows(4), Vector());
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-6);
}

TEST_CASE("SHG physical parameters round-trip and are validated") {
  ShgModel model({.num_inputs = 4, .num_params = 4, .num_outputs = 4, .gain = 2.0});
  CHECK(model.physical_params()[0] == 2.0);
  CHECK(model.physical_params()[1] == doctest::Approx(8.0 / 2.5));
  Vector phi(2);
  phi << 1.5, 2.0;
  const ModelPtr other = model.with_physical_params(phi);
  CHECK((other->physical_params() - phi).norm() == 0.0);
  const Matrix x = Matrix::Constant(1, 4, 0.5);
  const Vector theta = Vector::Constant(4, 0.5);
  // y ∝ κ²
  ShgModel unit({.num_inputs = 4, .num_params = 4, .num_outputs = 4, .gain = 1.0});
  CHECK((model.forward(x, theta) - 4.0 * unit.forward(x, theta)).norm() < 1e-12);
  phi << 1.0, -1.0;
  CHECK_THROWS_AS(model.with_physical_params(phi), std::invalid_argument);
  CHECK_THROWS_AS(model.with_physical_params(Vector::Ones(3)), std::invalid_argument);
  CHECK_THROWS_WITH_AS(model.forward(Matrix::Zero(2, 5), theta), doctest::Contains("takes 4"),
                       std::invalid_argument);
}

// The simulated single-photon-detection layer (sim://optical-spd) behind the driver interface.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>

#include "pnn/digital_twin/calibration.hpp"
#include "pnn/drivers/registry.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;

namespace {
using test::uniform_matrix;
PhysicalSystemPtr active(const std::string& address) { return test::active_device(address); }



const char* kAddress = "sim://optical-spd?inputs=8&outputs=20&photons=2&seed=";

}  // namespace

TEST_CASE("optical-spd: spec in physical units with hard limits on the weights") {
  auto dev = make_physical_system("sim://optical-spd?seed=3&inputs=8&outputs=5&photons=0.5");
  const DeviceSpec& spec = dev->spec();
  CHECK(spec.kind == "optical-spd");
  CHECK(spec.serial == "SIM-SPD-3");
  CHECK(spec.num_params() == 40);
  CHECK(spec.output_unit == "clicks");
  CHECK(spec.param_min().maxCoeff() == -1.0);
  CHECK(spec.param_max().minCoeff() == 1.0);
  CHECK(spec.param_name(9) == "weight[9]");
  const auto twin = dev->nominal_twin();
  CHECK(twin->num_params() == 40);
  CHECK(twin->physical_params()[0] == 1.0);  // ideal twin: η = 1, p_d = 0
  CHECK(twin->physical_params()[1] == 0.0);
}

TEST_CASE("optical-spd: out-of-limit weights and bad inputs are refused before the device") {
  auto dev = active(std::string(kAddress) + "1");
  auto same = active(std::string(kAddress) + "1");
  const Matrix x = uniform_matrix(4, 8, 0.0, 1.0, 1);
  const Vector w = uniform_matrix(160, 1, -0.5, 0.5, 2);
  Vector bad = w;
  bad[17] = 1.5;
  auto r = dev->forward(x, bad);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(r.error().message.find("weight[17] = 1.5") != std::string::npos);
  CHECK(r.error().message.find("[-1, 1]") != std::string::npos);
  bad[17] = std::nan("");
  CHECK(dev->forward(x, bad).error().code == Errc::kNonFiniteRequest);
  Matrix bad_x = x;
  bad_x(0, 0) = std::nan("");
  CHECK(dev->forward(bad_x, w).error().code == Errc::kNonFiniteRequest);
  bad_x(0, 0) = -0.2;  // negative light intensity
  CHECK(dev->forward(bad_x, w).error().code == Errc::kOutOfLimits);
  CHECK(dev->forward(Matrix::Zero(4, 9), w).error().code == Errc::kShapeMismatch);
  CHECK(dev->forward(x, Vector::Zero(159)).error().code == Errc::kShapeMismatch);
  // Nothing reached the detectors: the click stream is where a fresh device's is.
  CHECK((dev->forward(x, w).value() - same->forward(x, w).value()).norm() == 0.0);
}

TEST_CASE(
    "optical-spd: binary clicks, dark clicks and η < 1 separate reality from the ideal twin") {
  auto dev = active(std::string(kAddress) + "2");
  const auto twin = dev->nominal_twin();
  const Index shots = 4000;
  // Dark: no light, so the ideal twin predicts no clicks, but detectors fire now and then.
  const Matrix dark = dev->forward(Matrix::Zero(shots, 8), Vector::Zero(160)).value();
  CHECK((dark.array() * (1.0 - dark.array())).abs().maxCoeff() == 0.0);  // 0 or 1 only
  const double dark_rate = dark.mean();
  CHECK(dark_rate > 0.001);
  CHECK(dark_rate < 0.05);
  CHECK(twin->forward(Matrix::Zero(1, 8), Vector::Zero(160)).maxCoeff() == 0.0);

  // Lit: about one photon per detector (λ = N_ph · 8 w ≈ 1.07, w on an exact 8-bit code of the
  // weight modulator so quantisation plays no part): the ideal twin says 66 % clicks.
  const double w_code = -1.0 + 2.0 * 136.0 / 255.0;
  const Vector w = Vector::Constant(160, w_code);
  const Matrix lit = dev->forward(Matrix::Ones(shots, 8), w).value();
  const Eigen::RowVectorXd rate = lit.colwise().mean();
  const double ideal = 1.0 - std::exp(-2.0 * 8.0 * w_code);
  CHECK(twin->forward(Matrix::Ones(1, 8), w)(0, 0) == doctest::Approx(ideal));
  CHECK(rate.mean() < ideal - 0.08);  // η ≈ 0.7 < 1
  CHECK(rate.mean() > 0.3);
  // Per-pixel efficiency spread: rates at identical λ spread far beyond binomial noise (0.8 %).
  const double spread = std::sqrt((rate.array() - rate.mean()).square().mean());
  CHECK(spread > 0.02);

  // Calibration of (η, p_d) on click data closes most of the mean gap but not the pixel spread.
  std::vector<digital_twin::Measurement> data;
  const Matrix x = uniform_matrix(512, 8, 0.0, 1.0, 3);
  for (std::uint64_t k = 0; k < 3; ++k) {
    const Vector wk = uniform_matrix(160, 1, -0.6, 0.6, 4 + k);
    data.push_back({x, wk, dev->forward(x, wk).value()});
  }
  const auto fit = digital_twin::calibrate(*twin, data);
  INFO("fitted η " << fit.phi[0] << ", p_d " << fit.phi[1]);
  CHECK(fit.mse_after < fit.mse_before);
  CHECK(fit.phi[0] > 0.5);
  CHECK(fit.phi[0] < 0.9);
  CHECK(std::abs(fit.model->forward(Matrix::Ones(1, 8), w)(0, 0) - rate.mean()) < 0.05);
}

TEST_CASE("optical-spd: seeded by serial, addresses are validated") {
  const Matrix x = uniform_matrix(64, 8, 0.0, 1.0, 5);
  const Vector w = uniform_matrix(160, 1, -0.5, 0.5, 6);
  auto run = [&](const std::string& address) { return active(address)->forward(x, w).value(); };
  CHECK((run(std::string(kAddress) + "9") - run(std::string(kAddress) + "9")).norm() == 0.0);
  CHECK((run(std::string(kAddress) + "9") - run(std::string(kAddress) + "10")).norm() > 0.0);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://optical-spd?photons=-1"),
                       doctest::Contains("photons"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://optical-spd?outputs=0"),
                       doctest::Contains("outputs = 0"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://optical-spd?shots=3"),
                       doctest::Contains("unknown option 'shots'"), std::invalid_argument);
}

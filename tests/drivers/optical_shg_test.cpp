// The simulated SHG instrument (sim://optical-shg) behind the PhysicalSystem driver interface.
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
PhysicalSystemPtr active(const std::string& address) { return test::active_device(address); }


Matrix transmissions(Index rows, Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}

double rel_rms(const Matrix& a, const Matrix& b) { return (a - b).norm() / b.norm(); }

const char* kSmall = "sim://optical-shg?inputs=16&params=16&outputs=16&gap=small&seed=";
const char* kLarge = "sim://optical-shg?inputs=16&params=16&outputs=16&gap=large&seed=";

}  // namespace

TEST_CASE("optical-shg: spec in physical units with hard limits on the shaper channels") {
  auto dev = make_physical_system("sim://optical-shg?seed=4&inputs=10&params=6&outputs=8");
  const DeviceSpec& spec = dev->spec();
  CHECK(spec.kind == "optical-shg");
  CHECK(spec.serial == "SIM-SHG-4");
  CHECK(spec.num_inputs == 10);
  CHECK(spec.num_outputs == 8);
  CHECK(spec.num_params() == 6);
  CHECK(spec.output_unit == "kcounts");
  CHECK(spec.input_min == 0.0);
  CHECK(spec.input_max == 1.0);
  CHECK(spec.param_min().maxCoeff() == 0.0);
  CHECK(spec.param_max().minCoeff() == 1.0);
  CHECK(spec.param_name(2) == "shaper[2]");
  const auto twin = dev->nominal_twin();
  CHECK(twin->num_inputs() == 10);
  CHECK(twin->num_outputs() == 8);
  CHECK(twin->num_params() == 6);
  CHECK(twin->num_physical_params() == 2);
}

TEST_CASE(
    "optical-shg: out-of-limit θ is rejected by the base class and never reaches the device") {
  auto dev = active(std::string(kLarge) + "5");
  auto same = active(std::string(kLarge) + "5");  // same serial: same reality and noise stream
  const Matrix x = transmissions(4, 16, 1);
  const Vector ok = Vector::Constant(16, 0.5);
  for (double bad_value : {1.2, -0.01}) {
    Vector bad = ok;
    bad[3] = bad_value;
    auto r = dev->forward(x, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kOutOfLimits);
    CHECK(r.error().message.find("shaper[3]") != std::string::npos);
    CHECK(r.error().message.find("[0, 1]") != std::string::npos);
  }
  // The rejected calls neither advanced the noise stream nor the drift counter.
  const Matrix a = dev->forward(x, ok).value();
  const Matrix b = same->forward(x, ok).value();
  CHECK((a - b).norm() == 0.0);
  CHECK(dev->health() == Health::kOk);
}

TEST_CASE("optical-shg: bad requests (NaN, Inf, wrong shapes, beyond [0, 1]) are refused") {
  auto dev = active(std::string(kSmall) + "2");
  const Vector theta = Vector::Constant(16, 0.5);
  Matrix x = transmissions(3, 16, 2);
  CHECK(dev->forward(Matrix::Zero(3, 15), theta).error().code == Errc::kShapeMismatch);
  CHECK(dev->forward(Matrix::Zero(0, 16), theta).error().code == Errc::kShapeMismatch);
  CHECK(dev->forward(x, Vector::Constant(17, 0.5)).error().code == Errc::kShapeMismatch);
  Vector nan_theta = theta;
  nan_theta[7] = std::nan("");
  CHECK(dev->forward(x, nan_theta).error().code == Errc::kNonFiniteRequest);
  x(2, 5) = std::nan("");
  CHECK(dev->forward(x, theta).error().code == Errc::kNonFiniteRequest);
  x(2, 5) = std::numeric_limits<double>::infinity();
  CHECK(dev->forward(x, theta).error().code == Errc::kNonFiniteRequest);
  x(2, 5) = 1.5;  // a transmission above 1
  auto r = dev->forward(x, theta);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(r.error().message.find("actuator limit") != std::string::npos);
  CHECK(dev->forward(Matrix::Zero(5000, 16), theta).error().code == Errc::kBatchTooLarge);
}

TEST_CASE("optical-shg: the twin is close at the small gap and materially wrong at the large one") {
  const Matrix x = transmissions(64, 16, 3);
  for (int seed : {1, 2}) {
    auto small = active(kSmall + std::to_string(seed));
    auto large = active(kLarge + std::to_string(seed));
    const auto twin = small->nominal_twin();
    const Vector theta = twin->initial_params(1);
    const Matrix y_twin = twin->forward(x, theta);
    const Matrix small_a = small->forward(x, theta).value();
    const Matrix small_b = small->forward(x, theta).value();
    const Matrix large_y = large->forward(x, theta).value();
    // Repeats differ by the shot noise and the 1 % energy jitter (≈ 2 % in SH power) only.
    const double noise = rel_rms(small_a, small_b) / std::sqrt(2.0);
    CHECK(noise > 0.01);
    CHECK(noise < 0.06);
    const double gap_small = rel_rms(small_a, y_twin);
    const double gap_large = rel_rms(large_y, y_twin);
    INFO("noise " << noise << ", small gap " << gap_small << ", large gap " << gap_large);
    CHECK(gap_small < 2.0 * noise);
    CHECK(gap_large > 0.15);

    // Calibrating κ and σ cannot remove the unmodelled phase, crosstalk and ripple.
    std::vector<digital_twin::Measurement> data;
    for (std::uint64_t k = 0; k < 3; ++k) {
      const Vector t = k == 0 ? theta : Vector(transmissions(16, 1, 10 + k));
      data.push_back({x, t, large->forward(x, t).value()});
    }
    const auto fit = digital_twin::calibrate(*twin, data);
    CHECK(fit.mse_after < fit.mse_before);
    const double calibrated =
        rel_rms(large->forward(x, theta).value(), fit.model->forward(x, theta));
    INFO("calibrated large gap " << calibrated);
    CHECK(calibrated > 2.0 * noise);
  }
}

TEST_CASE("optical-shg: the spectrometer saturates at its 16-bit full scale") {
  auto normal = active("sim://optical-shg?inputs=16&params=16&outputs=16&seed=1");
  auto long_exposure =
      active("sim://optical-shg?inputs=16&params=16&outputs=16&seed=1&exposure_ms=10");
  const Matrix open = Matrix::Ones(8, 16);
  const Vector theta = Vector::Ones(16);
  const Matrix y1 = normal->forward(open, theta).value();
  const Matrix y10 = long_exposure->forward(open, theta).value();
  CHECK(y1.maxCoeff() < 65.535);
  CHECK(y10.maxCoeff() == doctest::Approx(65.535));
  CHECK(y10.maxCoeff() <= 65.535);
  CHECK(y10.minCoeff() >= 0.0);
  // The nominal twin knows the exposure (y ∝ exposure) but not the full scale.
  const double twin_ratio =
      long_exposure->nominal_twin()->forward(open.topRows(1), theta).maxCoeff() /
      normal->nominal_twin()->forward(open.topRows(1), theta).maxCoeff();
  CHECK(twin_ratio == doctest::Approx(10.0));
  // A dark shaper gives read noise only, clipped at zero counts.
  const Matrix dark = normal->forward(Matrix::Zero(8, 16), Vector::Zero(16)).value();
  CHECK(dark.maxCoeff() < 0.05);
  CHECK(dark.minCoeff() >= 0.0);
}

TEST_CASE("optical-shg: seeded by serial, addresses are validated with the fix named") {
  const Matrix x = transmissions(4, 16, 5);
  auto run = [&](const std::string& address) {
    auto dev = active(address);
    return dev->forward(x, Vector::Constant(16, 0.5)).value();
  };
  CHECK((run(std::string(kLarge) + "7") - run(std::string(kLarge) + "7")).norm() == 0.0);
  CHECK(rel_rms(run(std::string(kLarge) + "7"), run(std::string(kLarge) + "8")) > 0.05);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://optical-shg?inputs=4&params=4&outputs=9"),
                       doctest::Contains("outputs = 9"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://optical-shg?gap=huge"),
                       doctest::Contains("small, large"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://optical-shg?exposure_ms=0"),
                       doctest::Contains("exposure_ms"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://optical-shg?wavelength=800"),
                       doctest::Contains("unknown option 'wavelength'"), std::invalid_argument);
  bool listed = false;
  for (const auto& s : known_setups()) listed |= s.kind == "optical-shg";
  CHECK(listed);
}

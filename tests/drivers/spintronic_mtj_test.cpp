// The simulated MTJ spin-diode RF synapse chips (sim://mtj-rf) behind the PhysicalSystem interface.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "pnn/drivers/registry.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;

namespace {
const char* kChip = "sim://mtj-rf?inputs=8&chains=5&seed=";
Matrix powers(Index rows, Index cols, std::uint64_t seed) {
  return test::random_matrix(rows, cols, 0.5, seed).array().abs().min(1.0).matrix();
}
}  // namespace

TEST_CASE("mtj-rf: spec in µW and MHz with the tuning range as hard limit") {
  auto dev = make_physical_system(std::string(kChip) + "3");
  const DeviceSpec& spec = dev->spec();
  CHECK(spec.kind == "mtj-rf");
  CHECK(spec.serial == "SIM-MTJ-3");
  CHECK(spec.num_inputs == 8);
  CHECK(spec.num_outputs == 5);
  CHECK(spec.num_params() == 40);
  CHECK(spec.params[0].unit == "MHz");
  CHECK(spec.param_min()[0] == -25.0);
  CHECK(spec.param_max()[0] == 25.0);
  CHECK(spec.input_unit.find("uW") != std::string::npos);
  const auto twin = dev->nominal_twin();
  CHECK(twin->num_params() == 40);
  const Vector theta = twin->initial_params(1);
  CHECK(theta.cwiseAbs().maxCoeff() <= 25.0);
}

TEST_CASE("mtj-rf: out-of-limit θ and bad inputs are rejected before reaching the device") {
  auto dev = test::active_device(std::string(kChip) + "4");
  auto same = test::active_device(std::string(kChip) + "4");
  const Vector ok = dev->nominal_twin()->initial_params(2);
  const Matrix x = powers(3, 8, 1);
  for (double value : {30.0, -26.0}) {
    Vector bad = ok;
    bad[17] = value;
    auto r = dev->forward(x, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kOutOfLimits);
    CHECK(r.error().message.find("detuning[17]") != std::string::npos);
  }
  Matrix hot = x;
  hot(2, 2) = 1.2;  // above the small-signal power limit
  CHECK(dev->forward(hot, ok).error().code == Errc::kOutOfLimits);
  Matrix inf = x;
  inf(0, 1) = std::numeric_limits<double>::infinity();
  CHECK(dev->forward(inf, ok).error().code == Errc::kNonFiniteRequest);
  CHECK(dev->forward(Matrix::Zero(2, 7), ok).error().code == Errc::kShapeMismatch);
  CHECK((dev->forward(x, ok).value() - same->forward(x, ok).value()).norm() == 0.0);
  CHECK_THROWS_AS(make_physical_system("sim://mtj-rf?offset_mhz=-1"), std::invalid_argument);
  CHECK_THROWS_AS(make_physical_system("sim://mtj-rf?chains=0"), std::invalid_argument);
}

TEST_CASE("mtj-rf: reality departs from the twin by the offsets, and matches it without them") {
  const Matrix x = powers(200, 8, 5);
  auto large = test::active_device("sim://mtj-rf?inputs=8&chains=5&offset_mhz=4&seed=6");
  auto small = test::active_device("sim://mtj-rf?inputs=8&chains=5&offset_mhz=0&seed=6");
  const auto twin = large->nominal_twin();
  const Vector theta = twin->initial_params(3);
  const Matrix y_twin = twin->forward(x, theta);
  const double err_large = (large->forward(x, theta).value() - y_twin).norm() / y_twin.norm();
  const double err_small = (small->forward(x, theta).value() - y_twin).norm() / y_twin.norm();
  INFO("relative error large " << err_large << ", no offsets " << err_small);
  CHECK(err_large > 0.05);
  CHECK(err_small < err_large);
}

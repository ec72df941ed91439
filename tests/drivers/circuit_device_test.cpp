// The simulated electronic-circuit instrument (sim://electronic-circuit): spec and hard limits,
// bad requests, the reality-vs-twin gap, seeding, and a small PAT-vs-in-silico check.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "pnn/drivers/registry.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;

namespace {
using test::uniform_matrix;
PhysicalSystemPtr active(const std::string& address) { return test::active_device(address); }
using test::rms;
}  // namespace

TEST_CASE("electronic circuit: spec in volts, hard limits rejected before the device") {
  auto dev = active("sim://electronic-circuit?seed=2&slots=6");
  auto same = active("sim://electronic-circuit?seed=2&slots=6");
  const auto& spec = dev->spec();
  CHECK(spec.kind == "electronic-circuit");
  CHECK(spec.serial == "SIM-RLC-2");
  CHECK(spec.num_inputs == 6);
  CHECK(spec.num_outputs == 6);
  CHECK(spec.num_params() == 6);
  CHECK(spec.input_unit == "V");
  CHECK(spec.input_max == 10.0);
  CHECK(spec.param_max()[0] == 10.0);
  CHECK(spec.param_min()[5] == -10.0);
  CHECK(spec.describe().find("drive") != std::string::npos);
  CHECK(dev->nominal_twin()->num_params() == 6);

  const Matrix x = uniform_matrix(4, 6, -1.0, 1.0, 1);
  Vector theta = Vector::Constant(6, 0.5);
  theta[3] = 10.5;
  auto r = dev->forward(x, theta);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(r.error().message.find("drive[3] = 10.5 V") != std::string::npos);
  theta[3] = -12.0;
  CHECK(dev->forward(x, theta).error().code == Errc::kOutOfLimits);
  // Nothing reached the device: its noise stream and lab clock did not move.
  theta[3] = 0.5;
  const Matrix a = dev->forward(x, theta).value();
  const Matrix b = same->forward(x, theta).value();
  CHECK((a - b).norm() == 0.0);
  CHECK(dev->health() == Health::kOk);
}

TEST_CASE("electronic circuit: bad requests and bad addresses") {
  auto dev = active("sim://electronic-circuit?seed=1&slots=4");
  const Vector theta = Vector::Zero(4);
  Matrix x = Matrix::Constant(2, 4, 0.3);
  CHECK(dev->forward(Matrix::Zero(2, 5), theta).error().code == Errc::kShapeMismatch);
  CHECK(dev->forward(x, Vector::Zero(3)).error().code == Errc::kShapeMismatch);
  Vector nan_theta = theta;
  nan_theta[1] = std::nan("");
  CHECK(dev->forward(x, nan_theta).error().code == Errc::kNonFiniteRequest);
  x(0, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK(dev->forward(x, theta).error().code == Errc::kNonFiniteRequest);
  x(0, 0) = 11.0;  // beyond the ±10 V DAC
  auto r = dev->forward(x, theta);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(r.error().message.find("actuator limit") != std::string::npos);
  CHECK(dev->forward(Matrix::Zero(5000, 4), theta).error().code == Errc::kBatchTooLarge);
  REQUIRE(dev->deactivate());
  CHECK(dev->forward(Matrix::Zero(1, 4), theta).error().code == Errc::kWrongState);

  CHECK_THROWS_WITH_AS(make_physical_system("sim://electronic-circuit?slots=0"),
                       doctest::Contains("outside 1..256"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://electronic-circuit?tolerance=0.5"),
                       doctest::Contains("tolerance"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://electronic-circuit?ohms=3"),
                       doctest::Contains("unknown option 'ohms'"), std::invalid_argument);
}

TEST_CASE("electronic circuit: the reality differs materially from the twin, repeatably") {
  const Matrix x = uniform_matrix(64, 16, -1.0, 1.0, 3);
  const Vector theta = uniform_matrix(16, 1, -1.0, 1.0, 4);
  auto dev = active("sim://electronic-circuit?seed=3&slots=16");
  const Matrix y_twin = dev->nominal_twin()->forward(x, theta);
  const Matrix y1 = dev->forward(x, theta).value();
  const Matrix y2 = dev->forward(x, theta).value();
  const double signal = rms(y_twin.array() - y_twin.mean());
  const double gap = rms(y1 - y_twin);
  const double repeat = rms(y1 - y2);
  INFO("signal " << signal << " V, gap " << gap << " V, repeat " << repeat << " V");
  CHECK(signal > 0.2);
  CHECK(gap > 0.15 * signal);    // the twin misses the driver lag and the tolerances
  CHECK(repeat > 2e-4);          // noise, mains and drift: no two readings are identical
  CHECK(repeat < 0.03 * signal); // … but the device is repeatable well below the gap
  // Same serial, same circuit; another serial, other components.
  auto twin_dev = active("sim://electronic-circuit?seed=3&slots=16");
  auto other = active("sim://electronic-circuit?seed=4&slots=16");
  CHECK((twin_dev->forward(x, theta).value() - y1).norm() == 0.0);
  CHECK(rms(other->forward(x, theta).value() - y1) > 3.0 * repeat);
}

TEST_CASE("electronic circuit: PAT reaches a target on the device that in-silico training misses") {
  // Fit the drive levels θ so the device's outputs match targets it produced at θ*: PAT (forward
  // on the device, gradient from the twin) against in-silico (forward and gradient on the twin).
  const Index k = 8;
  const Matrix x = uniform_matrix(16, k, -1.0, 1.0, 5);
  const Vector theta_star = uniform_matrix(k, 1, -1.5, 1.5, 6);
  auto dev = active("sim://electronic-circuit?seed=7&slots=8");
  const auto twin = dev->nominal_twin();
  const Matrix target = dev->forward(x, theta_star).value();
  auto train = [&](bool pat) {
    Vector theta = Vector::Zero(k), m = Vector::Zero(k), v = Vector::Zero(k);
    for (int step = 1; step <= 150; ++step) {
      const Matrix y = pat ? dev->forward(x, theta).value() : twin->forward(x, theta);
      const Vector g = twin->vjp(x, theta, 2.0 * (y - target)).theta_bar;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g.cwiseAbs2();
      const double c1 = 1.0 - std::pow(0.9, step), c2 = 1.0 - std::pow(0.999, step);
      theta -= 0.05 * ((m / c1).array() / ((v / c2).array().sqrt() + 1e-9)).matrix();
      theta = theta.cwiseMax(-10.0).cwiseMin(10.0);
    }
    return rms(dev->forward(x, theta).value() - target);
  };
  const double err_pat = train(true), err_insilico = train(false);
  INFO("device error after PAT " << err_pat << " V, after in-silico " << err_insilico << " V");
  CHECK(err_pat < 0.5 * err_insilico);
}

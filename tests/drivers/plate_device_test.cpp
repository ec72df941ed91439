// The simulated speaker-driven plate (sim://mechanical-plate): spec and hard limits, bad
// requests, the reality-vs-twin gap, seeding by serial, and a small PAT-vs-in-silico check.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "digital_twin/plate_test_util.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/optim.hpp"

using namespace pnn;
using namespace pnn::drivers;
using pnn::test::active_device;

using pnn::test::plate_levels;
using pnn::test::rms;

TEST_CASE("speaker plate: spec in volts, out-of-limit θ refused before the device") {
  auto dev = active_device("sim://mechanical-plate?seed=2&slots=6");
  auto same = active_device("sim://mechanical-plate?seed=2&slots=6");
  const auto& spec = dev->spec();
  CHECK(spec.kind == "mechanical-plate");
  CHECK(spec.serial == "SIM-PLATE-2");
  CHECK(spec.num_inputs == 6);
  CHECK(spec.num_outputs == 6);
  CHECK(spec.num_params() == 6);
  CHECK(spec.input_unit == "V");
  CHECK(spec.output_unit == "V");
  CHECK(spec.input_min == -1.0);
  CHECK(spec.input_max == 1.0);
  CHECK(spec.param_min()[0] == -1.0);
  CHECK(spec.param_max()[5] == 1.0);
  CHECK(spec.params.at(0).unit == "V");
  CHECK(spec.output_noise_std > 1e-3);
  CHECK(spec.output_noise_std < 1e-2);
  CHECK(spec.describe().find("drive") != std::string::npos);
  CHECK(dev->nominal_twin()->num_params() == 6);
  CHECK(dev->nominal_twin()->num_inputs() == 6);

  const Matrix x = plate_levels(4, 6, 1);
  Vector theta = Vector::Constant(6, 0.5);
  theta[3] = 1.5;
  auto r = dev->forward(x, theta);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(r.error().message.find("drive[3] = 1.5 V") != std::string::npos);
  theta[3] = -1.01;
  CHECK(dev->forward(x, theta).error().code == Errc::kOutOfLimits);
  theta[3] = 0.5;
  theta[0] = 40.0;
  CHECK(dev->forward(x, theta).error().code == Errc::kOutOfLimits);
  // Nothing reached the device: its noise stream did not move.
  theta[0] = 0.5;
  const Matrix a = dev->forward(x, theta).value();
  const Matrix b = same->forward(x, theta).value();
  CHECK((a - b).norm() == 0.0);
  // The limits themselves are allowed.
  theta.setConstant(1.0);
  theta[1] = -1.0;
  CHECK(dev->forward(Matrix::Constant(2, 6, -1.0), theta));
  CHECK(dev->health() == Health::kOk);
}

TEST_CASE("speaker plate: bad requests and bad addresses") {
  auto dev = active_device("sim://mechanical-plate?seed=1&slots=4");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Matrix ok_x = Matrix::Constant(2, 4, 0.3);
  Matrix nan_x = ok_x, over_x = ok_x;
  nan_x(0, 0) = nan;
  over_x(1, 2) = 1.2;  // beyond the ±1 V DAC
  Vector nan_theta = Vector::Zero(4);
  nan_theta[1] = nan;
  const struct {
    Matrix x;
    Vector theta;
    Errc code;
  } bad[] = {{Matrix::Zero(2, 5), Vector::Zero(4), Errc::kShapeMismatch},
             {ok_x, Vector::Zero(3), Errc::kShapeMismatch},
             {ok_x, nan_theta, Errc::kNonFiniteRequest},
             {nan_x, Vector::Zero(4), Errc::kNonFiniteRequest},
             {over_x, Vector::Zero(4), Errc::kOutOfLimits},
             {Matrix::Zero(5000, 4), Vector::Zero(4), Errc::kBatchTooLarge}};
  for (const auto& b : bad) {
    auto r = dev->forward(b.x, b.theta);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == b.code);
    CHECK_FALSE(r.error().message.empty());
  }
  CHECK(dev->forward(over_x, Vector::Zero(4)).error().message.find("actuator limit") !=
        std::string::npos);
  REQUIRE(dev->deactivate());
  CHECK(dev->forward(ok_x, Vector::Zero(4)).error().code == Errc::kWrongState);

  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-plate?slots=0"),
                       doctest::Contains("outside 1..256"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-plate?spread=4"),
                       doctest::Contains("spread"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-plate?spread=3.0000001"),
                       doctest::Contains("spread = 3.0000001 is outside 0..3"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-plate?gain=3"),
                       doctest::Contains("unknown option 'gain'"), std::invalid_argument);
}

TEST_CASE("speaker plate: the reality differs materially from the twin, repeatably") {
  const Matrix x = plate_levels(64, 16, 3);
  const Vector theta = plate_levels(16, 1, 4);
  auto dev = active_device("sim://mechanical-plate?seed=3&slots=16");
  const Matrix y_twin = dev->nominal_twin()->forward(x, theta);
  const Matrix y1 = dev->forward(x, theta).value();
  const Matrix y2 = dev->forward(x, theta).value();
  const double signal = rms(y_twin.array() - y_twin.mean());
  const double gap = rms(y1 - y_twin);
  const double repeat = rms(y1 - y2);
  INFO("signal " << signal << " V, gap " << gap << " V, repeat " << repeat << " V");
  CHECK(signal > 0.2);
  CHECK(gap > 0.15 * signal);     // spread, unmodelled modes, lag, delay, compression
  CHECK(gap < signal);            // … but the twin is still a model of this plate
  CHECK(repeat > 1e-3);           // amplifier and microphone noise: no two readings agree
  CHECK(repeat < 0.03 * signal);  // … and the plate is not chaotic: far below the gap
  // The spec's read noise is what the device shows (y1 − y2 has √2 × the noise of one reading).
  CHECK(repeat / std::sqrt(2.0) > 0.5 * dev->spec().output_noise_std);
  CHECK(repeat / std::sqrt(2.0) < 2.0 * dev->spec().output_noise_std);
  // Without the per-device mode spread the plate's own modes are nominal, but the rig still
  // differs from the twin (unmodelled modes, coil lag, acoustic delay, amplifier compression).
  auto nominal = active_device("sim://mechanical-plate?seed=3&slots=16&spread=0");
  const double rig_gap = rms(nominal->forward(x, theta).value() - y_twin);
  INFO("gap without the mode spread " << rig_gap << " V");
  CHECK(rig_gap > 0.1 * signal);
  // Same serial, same plate; another serial, another plate.
  auto again = active_device("sim://mechanical-plate?seed=3&slots=16");
  auto by_serial = active_device("sim://mechanical-plate?seed=9&slots=16&serial=SIM-PLATE-3");
  auto other = active_device("sim://mechanical-plate?seed=4&slots=16");
  CHECK((again->forward(x, theta).value() - y1).norm() == 0.0);
  CHECK(by_serial->spec().serial == "SIM-PLATE-3");
  CHECK((by_serial->forward(x, theta).value() - y1).norm() == 0.0);
  CHECK(rms(other->forward(x, theta).value() - y1) > 10.0 * repeat);
}

TEST_CASE("speaker plate: PAT reaches a target on the device that in-silico training misses") {
  // Fit the drive levels θ so the device's outputs match targets it produced at θ*: PAT (forward
  // on the device, gradient from the twin) against in-silico (forward and gradient on the twin).
  const Index k = 8;
  const Matrix x = plate_levels(16, k, 5);
  const Vector theta_star = 0.8 * plate_levels(k, 1, 6);
  auto dev = active_device("sim://mechanical-plate?seed=7&slots=8");
  const auto twin = dev->nominal_twin();
  const Matrix target = dev->forward(x, theta_star).value();
  auto train = [&](bool pat) {
    Vector theta = Vector::Zero(k);
    auto adam = training::make_optimizer("adam", 0.02);
    for (int step = 1; step <= 150; ++step) {
      const Matrix y = pat ? dev->forward(x, theta).value() : twin->forward(x, theta);
      adam->step({&theta}, {twin->vjp(x, theta, 2.0 * (y - target)).theta_bar});
      theta = theta.cwiseMax(-1.0).cwiseMin(1.0);  // the device's hard limits
    }
    return rms(dev->forward(x, theta).value() - target);
  };
  const double err_pat = train(true), err_insilico = train(false);
  INFO("device error after PAT " << err_pat << " V, after in-silico " << err_insilico << " V");
  CHECK(err_pat < 0.5 * err_insilico);
}

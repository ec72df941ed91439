// The simulated STNO recurrent network (sim://stno-rnn) behind the PhysicalSystem interface.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "pnn/digital_twin/stno.hpp"
#include "pnn/drivers/registry.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;

namespace {
const char* kSmall = "sim://stno-rnn?neurons=6&steps=3&inputs=4&seed=";

Matrix drives(Index rows, Index cols, std::uint64_t seed) {
  return test::random_matrix(rows, cols, 0.4, seed).array().abs().min(1.0).matrix();
}
}  // namespace

TEST_CASE("stno-rnn: spec in µA with hard limits, twin of matching size") {
  auto dev = make_physical_system(std::string(kSmall) + "4");
  const DeviceSpec& spec = dev->spec();
  CHECK(spec.kind == "stno-rnn");
  CHECK(spec.serial == "SIM-STNO-4");
  CHECK(spec.num_inputs == 12);
  CHECK(spec.num_outputs == 6);
  CHECK(spec.num_params() == 6 + 6 * 4 + 36);
  CHECK(spec.params[0].unit == "uA");
  CHECK(spec.param_min()[0] == 10.0);  // bias ≥ 1·I_th
  CHECK(spec.param_max()[0] == 40.0);  // bias ≤ 4·I_th
  CHECK(spec.param_name(6) == "input_weight[0]");
  CHECK(spec.param_name(6 + 24 + 35) == "recurrent[35]");
  const auto twin = dev->nominal_twin();
  CHECK(twin->num_inputs() == 12);
  CHECK(twin->num_outputs() == 6);
  CHECK(twin->num_params() == spec.num_params());
  // The twin's initial θ is within the device limits.
  const Vector theta = twin->initial_params(1);
  CHECK((theta.array() >= spec.param_min().array()).all());
  CHECK((theta.array() <= spec.param_max().array()).all());
}

TEST_CASE("stno-rnn: out-of-limit θ and bad inputs are rejected before reaching the device") {
  auto dev = test::active_device(std::string(kSmall) + "5");
  auto same = test::active_device(std::string(kSmall) + "5");
  const Vector ok = dev->nominal_twin()->initial_params(2);
  const Matrix x = drives(4, 12, 1);
  for (auto [index, value, name] :
       {std::tuple{Index{2}, 45.0, "bias[2]"}, std::tuple{Index{2}, 5.0, "bias[2]"},
        std::tuple{Index{10}, -25.0, "input_weight[4]"},
        std::tuple{Index{40}, 12.0, "recurrent[10]"}}) {
    Vector bad = ok;
    bad[index] = value;
    auto r = dev->forward(x, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kOutOfLimits);
    CHECK(r.error().message.find(name) != std::string::npos);
  }
  Matrix too_bright = x;
  too_bright(1, 3) = 1.5;
  CHECK(dev->forward(too_bright, ok).error().code == Errc::kOutOfLimits);
  Matrix nan = x;
  nan(0, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK(dev->forward(nan, ok).error().code == Errc::kNonFiniteRequest);
  CHECK(dev->forward(Matrix::Zero(2, 11), ok).error().code == Errc::kShapeMismatch);
  // Rejected calls did not advance the noise stream: the same serial gives the same reading.
  CHECK((dev->forward(x, ok).value() - same->forward(x, ok).value()).norm() == 0.0);
  CHECK_THROWS_AS(make_physical_system("sim://stno-rnn?neurons=0"), std::invalid_argument);
  CHECK_THROWS_AS(make_physical_system("sim://stno-rnn?spread=0.9"), std::invalid_argument);
  // Just outside [0, 0.5]: the value and the limit print distinctly (not "0.500000").
  CHECK_THROWS_WITH_AS(make_physical_system("sim://stno-rnn?spread=0.5000001"),
                       doctest::Contains("spread = 0.5000001 is outside [0, 0.5]"),
                       std::invalid_argument);
  CHECK_THROWS_AS(make_physical_system("sim://stno-rnn?colour=red"), std::invalid_argument);
}

TEST_CASE("stno-rnn: reality follows the power law on average, with spread and noise") {
  auto dev = test::active_device("sim://stno-rnn?neurons=8&steps=20&inputs=1&seed=7");
  const auto twin = dev->nominal_twin();
  Vector theta = Vector::Zero(twin->num_params());
  theta.head(8).setConstant(25.0);  // ζ = 2.5, no input or recurrence: p → p0 = 1.5 / 4.5
  const Matrix x = Matrix::Zero(400, twin->num_inputs());
  const Matrix y = dev->forward(x, theta).value();
  const Matrix y_twin = twin->forward(x.topRows(1), theta);
  const double p0 = 1.5 / 4.5;
  CHECK(y_twin(0, 0) == doctest::Approx(p0).epsilon(0.05));
  const Eigen::RowVectorXd mean = y.colwise().mean();
  // On average each oscillator is near the nominal p0, but the ±10 % spread of Q shows.
  CHECK(std::abs(mean.mean() - p0) < 0.03);
  CHECK(mean.maxCoeff() - mean.minCoeff() > 0.005);
  // Thermal noise: samples differ from each other.
  const double std0 = std::sqrt((y.col(0).array() - mean[0]).square().mean());
  CHECK(std0 > 0.005);
  CHECK(std0 < 0.1);
}

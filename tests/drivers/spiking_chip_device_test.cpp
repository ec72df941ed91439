// The simulated spiking chip (sim://spiking-chip) behind the framed driver: the reality is the
// twin's network when it has no mismatch, its fixed-pattern mismatch is persistent per serial,
// the 6-bit weights are refused off their levels unless rounding is asked for (and the applied
// value is recorded), and bad addresses are refused with the reason.
#include <doctest/doctest.h>

#include "pnn/digital_twin/spiking_lif.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;
namespace dt = pnn::digital_twin;

using pnn::test::active_sim;

namespace {

const std::string kChip = "sim://spiking-chip?features=4&hidden=24&outputs=3&steps=40&seed=3";

Matrix inputs(Index rows, std::uint64_t seed) {
  return test::random_matrix(rows, 4, 1.0, seed).cwiseAbs().cwiseMin(1.0);
}

Vector levels(const PhysicalSystem& dev, std::uint64_t seed) {
  return (dev.nominal_twin()->initial_params(seed) * 1.5).array().round();
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string message_of(const std::string& address) {
  try {
    make_physical_system(address);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("spiking-chip: without mismatch the chip runs the twin's network (8-bit readout)") {
  auto s = active_sim(kChip + "&gap=none&weights=reject");
  const DeviceSpec& spec = s.driver->spec();
  CHECK(spec.kind == "spiking-chip");
  CHECK(spec.serial == "SIM-LIF-3");
  CHECK(spec.num_inputs == 4);
  CHECK(spec.num_params() == 24 * 5 + 3 * 24);
  CHECK(spec.spike_channels == 5);
  CHECK(spec.params[0].step == 1.0);
  const Matrix x = inputs(40, 1);
  const Vector theta = levels(*s.driver, 2).cwiseMax(-63).cwiseMin(63);
  const Matrix y = s.driver->forward(x, theta).value();
  const Matrix y_twin = s.driver->nominal_twin()->forward(x, theta);
  // Half an ADC step (6/255 membrane over [−1, 5]) times the readout scale 4: the only difference.
  CHECK((y - y_twin).cwiseAbs().maxCoeff() <= 4.0 * 3.0 / 255.0 + 1e-9);
  CHECK(y.cwiseAbs().maxCoeff() > 0.1);
}

TEST_CASE("spiking-chip: fixed-pattern mismatch is persistent per serial and makes a gap") {
  const Matrix x = inputs(60, 4);
  auto a = active_sim(kChip + "&gap=large&noise=0&jitter=0");
  const Vector theta = levels(*a.driver, 5).cwiseMax(-63).cwiseMin(63);
  const Matrix ya = a.driver->forward(x, theta).value();
  auto again = active_sim(kChip + "&gap=large&noise=0&jitter=0");
  CHECK(again.driver->forward(x, theta).value() == ya);  // same serial: same chip
  auto other = active_sim(kChip + "&gap=large&noise=0&jitter=0&serial=SIM-LIF-OTHER");
  CHECK(other.driver->forward(x, theta).value() != ya);
  const Matrix y_twin = a.driver->nominal_twin()->forward(x, theta);
  CHECK((ya - y_twin).cwiseAbs().maxCoeff() > 0.1);
  // Per-trial noise: two runs of the same batch differ.
  auto noisy = active_sim(kChip + "&gap=large");
  CHECK(noisy.driver->forward(x, theta).value() != noisy.driver->forward(x, theta).value());
}

TEST_CASE("spiking-chip: weights off their 6-bit levels are refused, or rounded and recorded") {
  const Matrix x = inputs(4, 6);
  auto strict = active_sim(kChip + "&gap=small");
  Vector theta = levels(*strict.driver, 7).cwiseMax(-63).cwiseMin(63);
  theta[3] += 0.4;
  const auto refused = strict.driver->forward(x, theta);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Errc::kOutOfLimits);
  CHECK(contains(refused.error().message, "w_in[3]"));
  CHECK(contains(refused.error().message, "weights=round"));
  theta[3] = 64.0;
  CHECK_FALSE(strict.driver->forward(x, theta));  // outside ±63: the hard limit
  auto rounding = active_sim(kChip + "&gap=small&weights=round");
  theta[3] = 10.4;
  theta[150] = -2.6;
  REQUIRE(rounding.driver->forward(x, theta));
  const Vector applied = rounding.driver->applied_params();
  REQUIRE(applied.size() == theta.size());
  CHECK(applied[3] == 10.0);
  CHECK(applied[150] == -3.0);
  CHECK((applied - theta).cwiseAbs().maxCoeff() <= 0.5);
}

TEST_CASE("spiking-chip: bad addresses are refused naming the option") {
  CHECK(contains(message_of("sim://spiking-chip?features=30&bias=4"), "5-bit"));
  CHECK(contains(message_of("sim://spiking-chip?encoding=phase"), "latency"));
  CHECK(contains(message_of("sim://spiking-chip?weights=floor"), "round"));
  CHECK(contains(message_of("sim://spiking-chip?gap=huge"), "none, small, large"));
  CHECK(contains(message_of("sim://spiking-chip?steps=300"), "steps"));
  CHECK(contains(message_of("sim://spiking-chip?volts=3"), "volts"));
}

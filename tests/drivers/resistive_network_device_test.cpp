// The simulated resistive network board (sim://resistive-network) behind the framed driver: the
// settle call over the frame protocol, its faults, and the refusals before anything is sent.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "pnn/digital_twin/resistive_network.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"
#include "pnn/firmware_iface/messages.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;
namespace dt = pnn::digital_twin;
namespace fw = pnn::firmware_iface;

using pnn::test::active_sim;

namespace {

const std::string kNet = "sim://resistive-network?inputs=8&hidden=12&outputs=3&seed=4";
const std::string kIdeal = kNet + "&mismatch=0&threshold_spread=0&noise_mv=0";

Matrix inputs(Index rows, std::uint64_t seed) {
  return test::random_matrix(rows, 8, 1.0, seed).cwiseAbs().cwiseMin(1.0);
}

// θ on the 10-bit DAC grid, so the ideal board's conductances are exactly the twin's.
Vector on_grid(const PhysicalSystem& dev, std::uint64_t seed) {
  const Vector theta = dev.nominal_twin()->initial_params(seed);
  const double lo = dev.spec().param_min()[0], hi = dev.spec().param_max()[0];
  return ((theta.array() - lo) / (hi - lo) * 1023.0).round() / 1023.0 * (hi - lo) + lo;
}

const dt::ResistiveNetworkModel& model_of(const PhysicalSystem& dev) {
  return dynamic_cast<const dt::ResistiveNetworkModel&>(*dev.nominal_twin());
}

}  // namespace

TEST_CASE("resistive-network: spec, settle over the frame protocol, and forward = free readout") {
  auto s = active_sim(kIdeal);
  const DeviceSpec& spec = s.driver->spec();
  CHECK(spec.kind == "resistive-network");
  CHECK(spec.serial == "SIM-RESNET-4");
  CHECK(spec.num_params() == 12 * 18 + 6 * 12);
  CHECK(spec.settle_nodes == 12 + 6);
  CHECK(spec.settle_output_nodes == 6);
  CHECK(spec.params[0].unit == "mS");
  const auto& m = model_of(*s.driver);
  const Matrix x = inputs(5, 1);
  const Vector theta = on_grid(*s.driver, 2);
  const Matrix free = s.driver->settle(x, theta, dt::SettleBoundary::free(), false).value();
  const dt::SettleOutcome ideal =
      dt::settle_network(m.config(), m.thresholds(), x, theta, dt::SettleBoundary::free(), nullptr);
  // What is left of the relaxation after 10 time constants: e^-10 of the start's distance.
  CHECK((free - ideal.nodes).cwiseAbs().maxCoeff() < 1e-5);
  CHECK(
      (s.driver->forward(x, theta).value() - dt::readout(m.config(), free)).cwiseAbs().maxCoeff() <
      1e-3);
  // Nudged and clamped, warm-started from the free state.
  const Matrix target = Matrix::Constant(5, 3, 1.0);
  const Matrix nudged =
      s.driver->settle(x, theta, dt::SettleBoundary::nudged(0.01, target), true).value();
  const Matrix pulled = dt::readout(m.config(), nudged) - dt::readout(m.config(), free);
  CHECK(pulled.minCoeff() > 0.0);  // towards the target of 1 above every logit
  const Matrix clamp = free.rightCols(6).array() + 0.002;
  const Matrix clamped =
      s.driver->settle(x, theta, dt::SettleBoundary::clamped(clamp), true).value();
  CHECK((clamped.rightCols(6) - clamp).cwiseAbs().maxCoeff() < 1e-9);
  CHECK(s.firmware->stats().settles == 3);
  CHECK(s.driver->health() == Health::kOk);
}

TEST_CASE("resistive-network: the reality differs from the twin by mismatch and noise") {
  auto real = active_sim(kNet);
  auto ideal = active_sim(kIdeal);
  const Matrix x = inputs(40, 3);
  const Vector theta = real.driver->nominal_twin()->initial_params(5);
  const Matrix a = real.driver->settle(x, theta, dt::SettleBoundary::free(), false).value();
  const Matrix b = ideal.driver->settle(x, theta, dt::SettleBoundary::free(), false).value();
  const Matrix again = real.driver->settle(x, theta, dt::SettleBoundary::free(), false).value();
  CHECK((a - b).cwiseAbs().maxCoeff() > 1e-3);      // mismatch, quantisation, thresholds
  CHECK((a - again).cwiseAbs().maxCoeff() > 0.0);   // readout noise
  CHECK((a - again).cwiseAbs().maxCoeff() < 2e-3);  // 0.1 mV RMS
}

TEST_CASE(
    "resistive-network: garbled and lost replies are retried, a settle that does not converge is a "
    "timeout") {
  const Matrix x = inputs(4, 6);
  {
    auto clean = active_sim(kIdeal);
    auto faulty =
        active_sim(kIdeal + "&faults=drop:0.2,corrupt:0.2,seed:3&timeout_ms=20&retries=8");
    const Vector theta = on_grid(*clean.driver, 7);
    for (int k = 0; k < 12; ++k) {
      const Matrix target = Matrix::Constant(4, 3, 0.1 * k);
      const auto b = dt::SettleBoundary::nudged(0.01, target);
      const Matrix want = clean.driver->settle(x, theta, b, false).value();
      auto got = faulty.driver->settle(x, theta, b, false);
      REQUIRE(got);
      CHECK((got.value() - want).cwiseAbs().maxCoeff() == 0.0);
    }
    const FirmwareStats st = faulty.firmware->stats();
    CHECK(st.dropped + st.corrupted > 0);
    CHECK(st.settles >= 12);
    CHECK(faulty.driver->health() == Health::kWarning);
  }
  {
    // 0.5 time constants: a cold settle is nowhere near equilibrium.
    auto slow = active_sim(kIdeal + "&settle_us=0.5");
    const Vector theta = on_grid(*slow.driver, 8);
    auto r = slow.driver->settle(x, theta, dt::SettleBoundary::free(), false);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kTimeout);
    CHECK(r.error().message.find("did not converge within the board's settle time") !=
          std::string::npos);
    CHECK(slow.firmware->stats().settle_timeouts == 1);
    CHECK(slow.firmware->stats().settles == 0);
    CHECK(slow.driver->health() == Health::kFault);
  }
}

TEST_CASE("resistive-network: a settle that gets no reply names the settle's own timeout") {
  const Matrix x = inputs(2, 9);
  // The frames up to and including the settle on a fresh board, counted on a clean one (a
  // simulated board's frames are deterministic): θ, the batch, then the settle itself.
  auto clean = active_sim(kIdeal);
  const Vector theta = on_grid(*clean.driver, 11);
  REQUIRE(clean.driver->settle(x, theta, dt::SettleBoundary::free(), false));
  const auto settle_frame = clean.firmware->stats().frames;
  // timeout_ms=20: commands 20 ms, runs and settles ten times that (FramedDeviceOptions).
  auto s = active_sim(kIdeal + "&faults=stall_after:" + std::to_string(settle_frame) +
                      ",stall_ms:60000&timeout_ms=20&retries=0");
  auto r = s.driver->settle(x, theta, dt::SettleBoundary::free(), false);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kTimeout);
  CAPTURE(r.error().message);
  CHECK(r.error().message.find("settle got no reply within 200 ms after 1 attempt(s)") !=
        std::string::npos);
  CHECK(s.firmware->stats().stalls == 1);
}

TEST_CASE("resistive-network: bad settle requests are refused before anything is sent") {
  auto s = active_sim(kIdeal);
  const Matrix x = inputs(3, 9);
  const Vector theta = on_grid(*s.driver, 10);
  const auto frames = s.firmware->stats().frames;
  auto refused = [&](const dt::SettleBoundary& b, const Matrix& xs, const Vector& th, Errc code,
                     const std::string& text) {
    auto r = s.driver->settle(xs, th, b, false);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == code);
    CHECK(r.error().message.find(text) != std::string::npos);
  };
  refused(dt::SettleBoundary::nudged(0.01, Matrix::Zero(3, 2)), x, theta, Errc::kShapeMismatch,
          "nudged: the target is 3x2, expected 3x3 (batch × outputs)");
  refused(dt::SettleBoundary::clamped(Matrix::Zero(3, 3)), x, theta, Errc::kShapeMismatch,
          "expected 3x6 (batch × output nodes)");
  Matrix nan = Matrix::Zero(3, 3);
  nan(0, 0) = std::numeric_limits<double>::quiet_NaN();
  refused(dt::SettleBoundary::nudged(0.01, nan), x, theta, Errc::kNonFiniteRequest, "not finite");
  dt::SettleBoundary unknown;
  unknown.kind = static_cast<dt::SettleBoundary::Kind>(5);
  refused(unknown, x, theta, Errc::kShapeMismatch, "unknown boundary kind 5");
  Vector high = theta;
  high[3] = 1.5;
  refused(dt::SettleBoundary::free(), x, high, Errc::kOutOfLimits,
          "settle on SIM-RESNET-4: parameter g_in[3]");
  refused(dt::SettleBoundary::free(), Matrix::Zero(3, 7), theta, Errc::kShapeMismatch,
          "input batch");
  Matrix bad_x = x;
  bad_x(1, 1) = std::numeric_limits<double>::infinity();
  refused(dt::SettleBoundary::free(), bad_x, theta, Errc::kNonFiniteRequest, "input x[1, 1]");
  CHECK(s.firmware->stats().frames == frames);
  // A setup without settle says so.
  auto osc = test::active_device("sim://mechanical-oscillators?seed=1&n=8");
  auto r = osc->settle(Matrix::Zero(1, 8), Vector::Zero(osc->spec().num_params()),
                       dt::SettleBoundary::free(), false);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("has no settle call") != std::string::npos);
}

TEST_CASE("frame protocol: settle messages round-trip and malformed ones are refused") {
  const fw::SettleRequest req{1, -0.25, true, 2, 3, {1, 2, 3, 4, 5, 6}};
  const fw::SettleReply rep{2, 2, {0.1, 0.2, 0.3, 0.4}};
  for (const fw::Message& m : {fw::Message{req}, fw::Message{rep}}) {
    std::vector<std::uint8_t> bytes;
    fw::encode_payload(m, bytes);
    auto back = fw::decode_payload(fw::message_type(m), bytes);
    REQUIRE(back);
    CHECK(back.value() == m);
  }
  std::vector<std::uint8_t> bytes;
  fw::encode_payload(req, bytes);
  auto boundary = bytes;
  boundary[0] = 3;  // no such boundary
  CHECK(fw::decode_payload(fw::MessageType::kSettle, boundary).error() == fw::Errc::kBadValue);
  auto warm = bytes;
  warm[9] = 2;  // not a bool
  CHECK(fw::decode_payload(fw::MessageType::kSettle, warm).error() == fw::Errc::kBadValue);
  bytes.pop_back();
  CHECK_FALSE(fw::decode_payload(fw::MessageType::kSettle, bytes));
  CHECK(fw::to_string(fw::MessageType::kSettle) == "settle");
  CHECK(fw::to_string(fw::DeviceError::kNotSettled) == "not settled");
}

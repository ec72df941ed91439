// The simulated spiking chip (sim://spiking-chip) behind the framed driver: the reality is the
// twin's network when it has no mismatch, its fixed-pattern mismatch is persistent per serial,
// the 6-bit weights are refused off their levels unless rounding is asked for (and the applied
// value is recorded), and bad addresses are refused with the reason.
#include <doctest/doctest.h>

#include "pnn/digital_twin/spiking_lif.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"
#include "pnn/firmware_iface/messages.hpp"
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

TEST_CASE("spiking-chip: spike_run returns the chip's measured record over the wire") {
  auto s = active_sim(kChip + "&gap=none&weights=reject");
  const Matrix x = inputs(12, 4);
  const Vector theta = levels(*s.driver, 5).cwiseMax(-63).cwiseMin(63);
  const auto rec = s.driver->spike_run(x, theta);
  REQUIRE(rec);
  const auto& lif = dynamic_cast<const dt::SpikingLifModel&>(*s.driver->nominal_twin());
  const dt::SpikeRecord twin = lif.record(x, theta);
  // Without mismatch or noise the chip's spikes are the twin's, its traces within half an ADC
  // step, and its outputs what forward returns.
  CHECK(rec.value().hidden_spikes == twin.hidden_spikes);
  CHECK(rec.value().hidden_spikes.sum() > 0.0);
  CHECK((rec.value().output_traces - twin.output_traces).cwiseAbs().maxCoeff() <=
        3.0 / 255.0 + 1e-9);
  CHECK(rec.value().outputs == s.driver->forward(x, theta).value());
  CHECK(s.firmware->stats().spike_runs == 1);
  CHECK(s.driver->has_spike_run());
  CHECK_FALSE(active_sim("sim://power-law").driver->has_spike_run());
}

TEST_CASE("spiking-chip: bad event lists are refused on the host with the reason") {
  auto s = active_sim(kChip + "&gap=none");
  const Vector theta = levels(*s.driver, 5).cwiseMax(-63).cwiseMin(63);
  const auto refused = [&](PhysicalSystem::EventLists events, const std::string& part) {
    const auto r = s.driver->spike_run(events, theta);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::kOutOfLimits);
    INFO(r.error().message);
    CHECK(contains(r.error().message, part));
    CHECK(contains(r.error().message, "nothing was sent"));
  };
  refused({{{1, 3}, {0, 2}}}, "must be sorted by step");
  refused({{}, {{0, 40}}}, "sample 1: event 0 (step 40, channel 0) is outside the time window");
  refused({{{5, 1}}}, "unknown channel; the chip has 5");
  refused({{{1, 3}, {1, 3}}}, "repeats");
  CHECK(s.firmware->stats().spike_runs == 0);
  // 32 channels x 40 steps: every channel firing every step is over the 512 events per sample.
  auto wide = active_sim("sim://spiking-chip?features=31&bias=1&hidden=8&outputs=3&seed=3");
  PhysicalSystem::EventLists burst(1);
  for (std::uint16_t t = 0; t < 40; ++t)
    for (std::uint16_t c = 0; c < 32; ++c) burst[0].push_back({c, t});
  const auto over = wide.driver->spike_run(
      burst, Vector::Zero(wide.driver->spec().num_params()));
  REQUIRE_FALSE(over);
  CHECK(contains(over.error().message, "1280 events in one sample exceed the 512"));
  const auto empty = s.driver->spike_run(PhysicalSystem::EventLists{}, theta);
  CHECK(empty.error().code == Errc::kShapeMismatch);
  auto other = active_sim("sim://power-law");
  const auto no = other.driver->spike_run(Matrix::Zero(1, other.driver->spec().num_inputs),
                                          Vector::Zero(other.driver->spec().num_params()));
  REQUIRE_FALSE(no);
  CHECK(no.error().code == Errc::kWrongState);
  CHECK(contains(no.error().message, "records no spikes"));
}

TEST_CASE("spiking-chip: the firmware refuses bad event lists on receipt with the reason") {
  namespace fw = pnn::firmware_iface;
  auto s = active_sim(kChip + "&gap=none");
  const auto answer = [&](const fw::SpikeRunRequest& request) {
    std::vector<std::uint8_t> bytes;
    fw::encode_message(request, 77, bytes);
    std::deque<fw::DeviceOutput> out;
    s.firmware->receive(bytes, fw::Clock::now(), out);
    REQUIRE(out.size() == 1);
    auto frame = fw::decode_frame(out.front().bytes, 1u << 24);
    REQUIRE(frame);
    auto reply = fw::decode_message(*frame);
    REQUIRE(reply);
    return *reply;
  };
  const auto refusal = [&](const fw::SpikeRunRequest& request, const std::string& part) {
    const fw::Message m = answer(request);
    const auto* e = std::get_if<fw::ErrorReply>(&m);
    REQUIRE(e);
    CHECK(e->code == static_cast<std::int32_t>(fw::DeviceError::kBadEvents));
    INFO(e->message);
    CHECK(contains(e->message, part));
  };
  refusal({{{{3, 1}, {2, 1}}}}, "sample 0: event 1 (step 2, channel 1) comes after");
  refusal({{{}, {{40, 0}}}}, "sample 1: event 0 (step 40, channel 0) is outside the time window");
  refusal({{{{1, 9}}}}, "unknown channel");
  fw::SpikeRunRequest many{{fw::EventList(600)}};
  for (std::size_t i = 0; i < 600; ++i) many.samples[0][i] = {static_cast<std::uint16_t>(i / 5 % 40), static_cast<std::uint16_t>(i % 5)};
  refusal(many, "600 events in one sample exceed the 512");
  // The per-step cap of a board whose bus is narrower than its channels: checked on receipt too.
  CHECK(fw::event_list_problem(fw::EventList{{0, 0}, {0, 1}, {0, 2}}, {40, 5, 2, 512, "channel"})
            .find("over the chip's 2 events per step") != std::string::npos);
  CHECK(s.firmware->stats().spike_runs == 0);
  const fw::Message ok = answer({{{{2, 0}, {2, 4}}}});
  const auto* reply = std::get_if<fw::SpikeRunReply>(&ok);
  REQUIRE(reply);
  CHECK(reply->rows == 1);
  CHECK(reply->trace_steps == 40);
}

TEST_CASE("spiking-chip: a chip that stops returning events mid-batch is a timeout, nothing kept") {
  auto s = active_sim(kChip + "&gap=none&faults=truncate:1&timeout_ms=20&retries=2");
  const Matrix x = inputs(6, 4);
  const Vector theta = levels(*s.driver, 5).cwiseMax(-63).cwiseMin(63);
  const auto r = s.driver->spike_run(x, theta);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kTimeout);
  CHECK(s.driver->health() == Health::kFault);
  CHECK(s.firmware->stats().truncated == 3);  // the first try and both retries were cut off
  // Sometimes cut off: the retry budget gets a whole record through, identical to a clean one.
  auto flaky = active_sim(kChip + "&gap=none&faults=truncate:0.5,seed:4&timeout_ms=20&retries=8");
  auto clean = active_sim(kChip + "&gap=none");
  const Matrix expected = clean.driver->spike_run(x, theta).value().hidden_spikes;
  for (int k = 0; k < 6; ++k) {
    const auto got = flaky.driver->spike_run(x, theta);
    REQUIRE(got);
    CHECK(got.value().hidden_spikes == expected);
  }
  CHECK(flaky.firmware->stats().truncated > 0);
  CHECK(flaky.driver->health() != Health::kFault);
}

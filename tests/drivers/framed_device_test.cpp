// The framed-board driver against simulated firmware over the loopback transport, with injected
// faults: the real driver code path a lab-built board takes.
#include "pnn/drivers/framed_device.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <thread>

#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"
#include "pnn/firmware_iface/messages.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;
namespace fw = pnn::firmware_iface;
using namespace std::chrono_literals;

using pnn::test::active_sim;

namespace {

const std::string kOsc = "sim://mechanical-oscillators?seed=5&n=6&gap=large";

Matrix inputs(Index rows, Index cols, std::uint64_t seed) {
  return (test::random_matrix(rows, cols, 0.8, seed)).cwiseMax(-3.0).cwiseMin(3.0);
}

Vector theta_for(const PhysicalSystem& d, double value) {
  return Vector::Constant(d.spec().num_params(), value);
}

// Sends one command to a firmware directly (no driver) and returns its reply.
fw::Message ask(fw::Transport& link, const fw::Message& m, std::uint32_t seq) {
  std::vector<std::uint8_t> bytes;
  fw::encode_message(m, seq, bytes);
  REQUIRE(!link.write(bytes, fw::deadline_after(100ms)));
  fw::FrameDecoder decoder({.max_payload_bytes = 1u << 24});
  std::vector<std::uint8_t> buf(1 << 16);
  for (;;) {
    if (auto f = decoder.next()) {
      REQUIRE(f->header.seq == seq);
      return fw::decode_message(*f).value();
    }
    auto n = link.read_some(buf, fw::deadline_after(100ms));
    REQUIRE(n);
    decoder.feed(std::span<const std::uint8_t>(buf.data(), *n));
  }
}

}  // namespace

TEST_CASE("simulated boards: every frame-protocol setup identifies, runs and goes safe over the wire") {
  for (const auto& setup : known_setups()) {
    CAPTURE(setup.example_address);
    SimulatedDevice s = make_simulated_device(setup.example_address);
    if (!s.firmware) continue;  // an instrument with a driver of its own
    REQUIRE(s.driver->configure());
    const DeviceSpec& spec = s.driver->spec();
    CHECK(!spec.serial.empty());
    CHECK(spec.firmware == "sim-1.0");
    REQUIRE(s.driver->activate());
    const double mid = 0.5 * (spec.input_min + std::min(spec.input_max, spec.input_min + 1.0));
    const Matrix x = Matrix::Constant(3, spec.num_inputs, mid);
    const Vector theta = 0.5 * (spec.param_min() + spec.param_max());
    auto y = s.driver->forward(x, theta);
    REQUIRE_MESSAGE(y, y.error().message);
    CHECK(y.value().rows() == 3);
    CHECK(y.value().cols() == spec.num_outputs);
    CHECK(s.firmware->stats().runs == 1);
    CHECK((s.firmware->applied_theta() - theta).norm() == 0.0);
    REQUIRE(s.driver->deactivate());
    CHECK((s.firmware->applied_theta() - s.firmware->safe_theta()).norm() == 0.0);
    CHECK(s.firmware->stats().limit_violations == 0);
  }
}

TEST_CASE("framed driver: the wire path returns exactly what the in-process reality computes") {
  auto wire = active_sim(kOsc);
  auto direct = test::active_device(kOsc + "&link=direct");
  for (int k = 0; k < 3; ++k) {
    const Matrix x = inputs(5, 6, 10 + k);
    const Vector theta = theta_for(*direct, 0.1 * k);
    const Matrix a = wire.driver->forward(x, theta).value();
    const Matrix b = direct->forward(x, theta).value();
    CHECK((a - b).norm() == 0.0);  // float64 on the wire: bit-identical
  }
  CHECK(wire.firmware->stats().runs == 3);
  CHECK(wire.driver->nominal_twin()->name() == direct->nominal_twin()->name());
}

TEST_CASE("simulated board: a θ just outside its limit is refused with both numbers distinct") {
  auto firmware = make_simulated_firmware(kOsc);
  auto link = fw::make_loopback_transport(firmware);
  REQUIRE(!link->open(fw::deadline_after(100ms)));
  fw::SetParameters bad;
  bad.theta.assign(static_cast<std::size_t>(make_physical_system(kOsc)->spec().num_params()), 0.0);
  bad.theta[3] = -1.0000001;  // coupling limit [-1, 1]
  const fw::Message reply = ask(*link, bad, 1);
  REQUIRE(std::holds_alternative<fw::ErrorReply>(reply));
  const std::string& message = std::get<fw::ErrorReply>(reply).message;
  INFO(message);
  CHECK(message.find("coupling[3] = -1.0000001 outside [-1, 1]") != std::string::npos);
}

TEST_CASE("framed driver: out-of-limit θ never reaches the wire, and the board refuses it too") {
  auto s = active_sim(kOsc);
  const auto before = s.firmware->stats();
  Vector theta = theta_for(*s.driver, 0.0);
  theta[7] = 1.5;  // coupling limit is ±1
  auto y = s.driver->forward(inputs(2, 6, 1), theta);
  REQUIRE_FALSE(y);
  CHECK(y.error().code == Errc::kOutOfLimits);
  CHECK(s.firmware->stats().frames == before.frames);  // refused before a byte was sent

  // A host that skips the checks meets the board's own: refused, counted, not applied.
  auto firmware = make_simulated_firmware(kOsc);
  auto link = fw::make_loopback_transport(firmware);
  REQUIRE(!link->open(fw::deadline_after(100ms)));
  fw::SetParameters bad;
  bad.theta.assign(static_cast<std::size_t>(s.driver->spec().num_params()), 0.0);
  bad.theta[3] = -7.0;
  const fw::Message reply = ask(*link, bad, 1);
  REQUIRE(std::holds_alternative<fw::ErrorReply>(reply));
  CHECK(std::get<fw::ErrorReply>(reply).code == static_cast<int>(fw::DeviceError::kOutOfLimits));
  CHECK(std::get<fw::ErrorReply>(reply).message.find("coupling[3]") != std::string::npos);
  CHECK(firmware->stats().limit_violations == 1);
  CHECK((firmware->applied_theta() - firmware->safe_theta()).norm() == 0.0);
  fw::LoadInputBatch load{1, 6, {0, 0, 0, 9.0, 0, 0}};  // 9 rad: beyond the actuator range
  CHECK(std::holds_alternative<fw::ErrorReply>(ask(*link, load, 2)));
  CHECK(firmware->stats().limit_violations == 2);
  CHECK(std::holds_alternative<fw::ErrorReply>(ask(*link, fw::RunRequest{}, 3)));
  CHECK(firmware->stats().runs == 0);
}

TEST_CASE("framed driver: lost and corrupted replies are retried and no batch ever runs twice") {
  // Identical seeds: the same physics noise stream, so results must be bit-identical to a clean
  // link if and only if every batch ran exactly once.
  auto clean = active_sim(kOsc);
  auto faulty = active_sim(kOsc + "&faults=drop:0.15,corrupt:0.15,seed:9&timeout_ms=20&retries=8");
  for (int k = 0; k < 40; ++k) {
    const Matrix x = inputs(4, 6, 100 + k);
    const Vector theta = theta_for(*clean.driver, 0.02 * (k % 7));
    const Matrix a = clean.driver->forward(x, theta).value();
    auto b = faulty.driver->forward(x, theta);
    REQUIRE_MESSAGE(b, b.error().message);
    CHECK((a - b.value()).norm() == 0.0);
  }
  const FirmwareStats st = faulty.firmware->stats();
  CHECK(st.dropped > 0);
  CHECK(st.corrupted > 0);
  CHECK(st.runs == 40);
  CHECK(st.samples == 160);
  CHECK(faulty.driver->health() == Health::kWarning);  // recovered faults are reported
  CHECK(faulty.driver->health_message().find("retries") != std::string::npos);
  CHECK(clean.driver->health() == Health::kOk);
}

TEST_CASE("framed driver: a slow board within the deadline is fine") {
  auto s = active_sim(kOsc + "&faults=delay_ms:5&timeout_ms=500");
  CHECK(s.driver->forward(inputs(2, 6, 2), theta_for(*s.driver, 0.0)));
  CHECK(s.firmware->stats().delayed > 0);
  CHECK(s.driver->health() == Health::kOk);
}

TEST_CASE("framed driver: a board that stops answering times out, goes FAULT, is refused") {
  auto s = active_sim(kOsc + "&faults=stall_after:6,stall_ms:60000&timeout_ms=10&retries=1");
  auto y = s.driver->forward(inputs(2, 6, 2), theta_for(*s.driver, 0.0));
  REQUIRE_FALSE(y);
  CHECK(y.error().code == Errc::kTimeout);
  CHECK(y.error().message.find("no reply within 10 ms after 2 attempt(s)") != std::string::npos);
  CHECK(s.firmware->stats().stalls == 1);
  CHECK(s.driver->health() == Health::kFault);
  auto again = s.driver->forward(inputs(2, 6, 2), theta_for(*s.driver, 0.0));
  REQUIRE_FALSE(again);
  CHECK(again.error().code == Errc::kDeviceFault);
  CHECK(again.error().message.find("recover") != std::string::npos);
  // Still too slow: recovery fails and leaves it UNCONFIGURED + FAULT, never ACTIVE.
  CHECK_FALSE(s.driver->recover());
  CHECK(s.driver->state() == Lifecycle::kUnconfigured);
  CHECK(s.driver->health() == Health::kFault);
}

TEST_CASE("framed driver: NaN readings are reported as non-finite, not passed on") {
  auto s = active_sim(kOsc + "&faults=nan:1");
  auto y = s.driver->forward(inputs(3, 6, 3), theta_for(*s.driver, 0.0));
  REQUIRE_FALSE(y);
  CHECK(y.error().code == Errc::kNonFiniteReading);
  CHECK(s.driver->health() == Health::kWarning);
  CHECK(s.firmware->stats().nans == 1);
}

TEST_CASE("framed driver: a firmware reset mid-run is detected and θ and the batch are re-sent") {
  auto s = active_sim(kOsc + "&faults=reset_after:9");
  const Vector theta = theta_for(*s.driver, 0.3);
  for (int k = 0; k < 4; ++k) {
    auto y = s.driver->forward(inputs(2, 6, 20 + k), theta);
    REQUIRE_MESSAGE(y, y.error().message);
  }
  CHECK(s.firmware->stats().resets == 1);
  // The board came back with its safe θ; the driver noticed and sent θ again.
  CHECK((s.firmware->applied_theta() - theta).norm() == 0.0);
  CHECK(s.driver->health() == Health::kWarning);
}

TEST_CASE("framed driver: a firmware reset before the batch is loaded never runs it with the safe θ") {
  // A reset lands on any command: also on LoadInputBatch of a forward whose θ the board had
  // already acknowledged (so no SetParameters is sent). The board then holds its safe θ; the
  // driver must notice before Run, send θ again, and never return readings taken with the
  // wrong θ.
  for (int n = 6; n <= 16; ++n) {
    CAPTURE(n);
    auto s = active_sim(kOsc + "&faults=reset_after:" + std::to_string(n));
    const Vector theta = theta_for(*s.driver, 0.3);
    for (int k = 0; k < 5; ++k) {
      CAPTURE(k);
      auto y = s.driver->forward(inputs(2, 6, 40 + k), theta);
      REQUIRE_MESSAGE(y, y.error().message);
      CHECK((s.firmware->applied_theta() - theta).norm() == 0.0);
    }
    CHECK(s.firmware->stats().resets == 1);
    CHECK(s.driver->health() == Health::kWarning);
  }
}

TEST_CASE("framed driver: unplug gives FAULT, and recovery works only once it is back, by serial, to INACTIVE") {
  auto s = active_sim(kOsc + "&faults=unplug_after:8,unplug_ms:150&timeout_ms=20");
  const std::string serial = s.driver->spec().serial;
  const Vector theta = theta_for(*s.driver, 0.2);
  Result<Matrix> y = Matrix();
  for (int k = 0; k < 10 && y; ++k) y = s.driver->forward(inputs(2, 6, 30 + k), theta);
  REQUIRE_FALSE(y);
  CHECK(y.error().code == Errc::kIo);
  CHECK(y.error().message.find("disconnected") != std::string::npos);
  CHECK(s.driver->health() == Health::kFault);
  CHECK(s.firmware->stats().unplugs == 1);
  // While it is away, recovery fails cleanly.
  auto r = s.driver->recover();
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("cannot open") != std::string::npos);
  CHECK(s.driver->state() == Lifecycle::kUnconfigured);
  // Back after unplug_ms: recovery re-identifies it and lands INACTIVE, outputs undriven.
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    std::this_thread::sleep_for(10ms);
    back = static_cast<bool>(s.driver->recover());
  }
  REQUIRE(back);
  CHECK(s.driver->state() == Lifecycle::kInactive);
  CHECK(s.driver->health() == Health::kOk);
  CHECK(s.driver->spec().serial == serial);
  CHECK((s.firmware->applied_theta() - s.firmware->safe_theta()).norm() == 0.0);
  CHECK(s.driver->forward(inputs(2, 6, 40), theta).error().code == Errc::kWrongState);
  REQUIRE(s.driver->activate());
  CHECK(s.driver->forward(inputs(2, 6, 40), theta));
}

namespace {
// A link whose far end can be swapped for another board: stands for someone re-cabling.
class SwitchEndpoint final : public fw::DeviceEndpoint {
 public:
  std::shared_ptr<fw::DeviceEndpoint> target;
  void receive(std::span<const std::uint8_t> b, fw::Clock::time_point now,
               std::deque<fw::DeviceOutput>& out) override {
    target->receive(b, now, out);
  }
  bool connected(fw::Clock::time_point now) override { return target->connected(now); }
  void on_open(fw::Clock::time_point now) override { target->on_open(now); }
  void on_clear() override { target->on_clear(); }
  std::string name() const override { return "switch"; }
};

// Holds back the reply to every `hold_every`-th write until after the next write, and ignores
// clear(): a reply that was already in flight when the host gave up on it.
class LateLink final : public fw::Transport {
 public:
  LateLink(std::shared_ptr<fw::DeviceEndpoint> ep, int hold_every)
      : ep_(std::move(ep)), hold_every_(hold_every) {}
  int held = 0;
  std::error_code open(fw::Deadline) override { return {}; }
  void close() noexcept override {}
  bool is_open() const noexcept override { return true; }
  std::error_code write(std::span<const std::uint8_t> b, fw::Deadline) override {
    std::deque<fw::DeviceOutput> out;
    ep_->receive(b, fw::Clock::now(), out);
    for (auto& o : held_) ready_.push_back(std::move(o));
    held_.clear();
    auto& dest = (++writes_ % hold_every_ == 0) ? held_ : ready_;
    if (&dest == &held_) ++held;
    for (auto& o : out) dest.push_back(std::move(o));
    return {};
  }
  fw::Result<std::size_t> read_some(std::span<std::uint8_t> buf, fw::Deadline d) override {
    if (ready_.empty()) {
      std::this_thread::sleep_until(d);
      return fw::Errc::kTimeout;
    }
    auto& front = ready_.front().bytes;
    const std::size_t n = std::min(buf.size(), front.size());
    std::copy_n(front.begin(), n, buf.begin());
    front.erase(front.begin(), front.begin() + static_cast<long>(n));
    if (front.empty()) ready_.pop_front();
    return n;
  }
  std::error_code clear(fw::Deadline) override { return {}; }
  std::string describe() const override { return "late link"; }

 private:
  std::shared_ptr<fw::DeviceEndpoint> ep_;
  int hold_every_;
  int writes_ = 0;
  std::deque<fw::DeviceOutput> ready_, held_;
};
}  // namespace

TEST_CASE("framed driver: a late reply to an earlier command is never taken for the current one") {
  auto firmware = make_simulated_firmware(kOsc);
  auto reference = test::active_device(kOsc + "&link=direct");
  auto link = std::make_unique<LateLink>(firmware, 5);
  LateLink* late = link.get();
  auto driver = make_framed_device(reference->spec(), reference->nominal_twin(), std::move(link),
                                   {.command_timeout = 10ms, .run_timeout = 10ms, .retries = 4});
  REQUIRE(driver->configure());
  REQUIRE(driver->activate());
  for (int k = 0; k < 12; ++k) {
    const Matrix x = inputs(3, 6, 50 + k);
    const Vector theta = theta_for(*driver, 0.05 * k);
    auto y = driver->forward(x, theta);
    REQUIRE_MESSAGE(y, y.error().message);
    CHECK((y.value() - reference->forward(x, theta).value()).norm() == 0.0);
  }
  CHECK(late->held > 5);
}

TEST_CASE("framed driver: after re-cabling, a different board at the address is refused") {
  auto sw = std::make_shared<SwitchEndpoint>();
  sw->target = make_simulated_firmware(kOsc);
  auto reference = test::active_device(kOsc + "&link=direct");
  auto driver = make_framed_device(reference->spec(), reference->nominal_twin(),
                                   fw::make_loopback_transport(sw));
  REQUIRE(driver->configure());
  sw->target = make_simulated_firmware("sim://mechanical-oscillators?seed=6&n=6");
  auto r = driver->recover();
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("identity mismatch") != std::string::npos);
  CHECK(r.error().message.find("SIM-OSC-5") != std::string::npos);
  CHECK(driver->state() == Lifecycle::kUnconfigured);
  sw->target = make_simulated_firmware(kOsc);  // the right board is back
  CHECK(driver->recover());
}

TEST_CASE("framed driver: a board whose sizes differ from the configuration is not configured") {
  auto reference = test::active_device("sim://mechanical-oscillators?seed=5&n=7&link=direct");
  auto driver = make_framed_device(reference->spec(), reference->nominal_twin(),
                                   fw::make_loopback_transport(make_simulated_firmware(kOsc)));
  auto r = driver->configure();
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("reports 6 inputs, the configuration expects 7") !=
        std::string::npos);
  CHECK(driver->health() == Health::kFault);
}

TEST_CASE("sim addresses: link and fault options are checked and explained") {
  CHECK_THROWS_WITH_AS(make_physical_system(kOsc + "&faults=drop:2"),
                       doctest::Contains("probability is ≤ 1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system(kOsc + "&faults=explode:1"),
                       doctest::Contains("unknown key 'explode'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system(kOsc + "&link=carrier-pigeon"),
                       doctest::Contains("frames (default), direct"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system(kOsc + "&timeout_ms=0"),
                       doctest::Contains("timeout_ms"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system(kOsc + "&link=direct&faults=drop:0.1"),
                       doctest::Contains("needs the frame link"), std::invalid_argument);
}

TEST_CASE("simulated firmware: garbage, damaged and hostile frames never crash it or its replies") {
  auto firmware = make_simulated_firmware(kOsc);
  std::mt19937_64 rng(42);
  std::deque<fw::DeviceOutput> out;
  // Valid commands of every kind, to be damaged.
  std::vector<std::vector<std::uint8_t>> frames;
  const std::vector<fw::Message> commands = {
      fw::IdentifyRequest{}, fw::CapabilitiesRequest{}, fw::SetParameters{{1.0, 2.0}},
      fw::LoadInputBatch{1, 6, {0, 0, 0, 0, 0, 0}}, fw::RunRequest{}, fw::ReadOutputsRequest{},
      fw::StatusRequest{}, fw::AbortRequest{}, fw::SelfTestRequest{},
      fw::OutputsReply{1, 1, {1.0}}, fw::Ack{}, fw::ErrorReply{1, "x"}};
  for (std::size_t i = 0; i < commands.size(); ++i) {
    frames.emplace_back();
    fw::encode_message(commands[i], static_cast<std::uint32_t>(i), frames.back());
  }
  // A frame whose payload claims a batch far larger than it carries.
  std::vector<std::uint8_t> hostile_payload = {0xFF, 0xFF, 0xFF, 0x7F, 6, 0, 0, 0};
  frames.emplace_back();
  fw::encode_frame(fw::MessageType::kLoadInputBatch, 99, hostile_payload, frames.back());
  std::uniform_int_distribution<int> byte(0, 255);
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<std::uint8_t> chunk = frames[static_cast<std::size_t>(iter) % frames.size()];
    switch (iter % 4) {
      case 0: break;                                                      // intact
      case 1: chunk[static_cast<std::size_t>(byte(rng)) % chunk.size()] ^= 0x10; break;  // bit flip
      case 2: chunk.resize(chunk.size() / 2); break;                      // truncated
      default:                                                            // pure noise
        chunk.resize(static_cast<std::size_t>(byte(rng)));
        for (auto& b : chunk) b = static_cast<std::uint8_t>(byte(rng));
    }
    firmware->receive(chunk, fw::Clock::now(), out);
  }
  // Every reply it sent is a well-formed frame.
  fw::FrameDecoder decoder;
  std::size_t replies = 0;
  for (const auto& o : out) decoder.feed(o.bytes);
  while (auto f = decoder.next()) {
    CHECK(fw::decode_message(*f));
    ++replies;
  }
  CHECK(decoder.stats().errors() == 0);
  CHECK(replies == out.size());
  const FirmwareStats st = firmware->stats();
  CHECK(st.frames_rejected > 0);
  CHECK(st.errors_sent > 0);
  CHECK(st.limit_violations == 0);  // no damaged frame carried an out-of-limit value that passed
}

TEST_CASE("framed driver over TCP: tcp://…&kind=… reaches a board served by TcpDeviceServer") {
  auto firmware = make_simulated_firmware(kOsc + "&faults=unplug_after:20,unplug_ms:200");
  fw::TcpDeviceServer server(firmware, {});
  auto dev = make_physical_system("tcp://" + server.address() +
                                  "?kind=mechanical-oscillators&n=6&timeout_ms=500&retries=1");
  auto direct = test::active_device(kOsc + "&link=direct");
  REQUIRE(dev->configure());
  CHECK(dev->spec().serial == "SIM-OSC-5");
  REQUIRE(dev->activate());
  Result<Matrix> y = Matrix();
  int ok = 0;
  for (int k = 0; k < 10 && y; ++k) {
    const Matrix x = inputs(3, 6, 70 + k);
    const Vector theta = theta_for(*dev, 0.01 * k);
    y = dev->forward(x, theta);
    if (y) {
      CHECK((y.value() - direct->forward(x, theta).value()).norm() == 0.0);
      ++ok;
    }
  }
  CHECK(ok >= 2);
  REQUIRE_FALSE(y);  // the board went away mid-run
  CHECK(y.error().code == Errc::kIo);
  bool back = false;
  for (int i = 0; i < 300 && !back; ++i) {
    std::this_thread::sleep_for(10ms);
    back = static_cast<bool>(dev->recover());
  }
  REQUIRE(back);
  CHECK(dev->state() == Lifecycle::kInactive);
  CHECK(server.num_connections() >= 2);
}

TEST_CASE("instrument addresses: kind, scheme and link options are checked, naming the fix") {
  CHECK_THROWS_WITH_AS(make_physical_system("usb://1209:0002?serial=X"),
                       doctest::Contains("to describe itself"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("usbtmc://1209:0002?serial=X"),
                       doctest::Contains("needs kind=KIND"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("usb://1209:0002?kind=warp-drive"),
                       doctest::Contains("unknown kind 'warp-drive'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("usbtmc://1209:0002?kind=mechanical-oscillators"),
                       doctest::Contains("frame protocol"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("usb://1209:0002?kind=electronic-circuit"),
                       doctest::Contains("SCPI instruments"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("usb://12:zz?kind=power-law"),
                       doctest::Contains("12:zz"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("tcp://localhost?kind=power-law"),
                       doctest::Contains("no port"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("usb://1209:0002?kind=power-law&faults=drop:0.1"),
                       doctest::Contains("only for sim://"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("gpib://5"), doctest::Contains("supported: sim, usb"),
                       std::invalid_argument);
  // A well-formed address builds without touching the device; configure reports it absent.
  auto dev = make_physical_system("usb://1209:0002?serial=NOPE&kind=power-law");
  CHECK(dev->state() == Lifecycle::kUnconfigured);
}

// Boards that describe themselves (protocol 1.1): the driver builds the spec from describe,
// against a fake board (a simulated firmware behind a describe front) with injected faults.
#include <doctest/doctest.h>

#include <chrono>
#include <deque>
#include <functional>
#include <limits>

#include "pnn/drivers/framed_device.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"
#include "pnn/firmware_iface/messages.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;
namespace fw = pnn::firmware_iface;
using namespace std::chrono_literals;

namespace {

const std::string kOsc = "sim://mechanical-oscillators?seed=5&n=6&gap=large";

// What the fake board does with describe.
enum class Describe { kGood, kSpoiled, kGarbled, kSilent, kOldBoard, kNoSerial };

// The simulated oscillator board with describe in front: describe is answered here (or not),
// everything else goes to the board's own firmware.
class DescribingBoard final : public fw::DeviceEndpoint {
 public:
  DescribingBoard(Describe mode, std::function<void(fw::DescribeReply&)> spoil = {})
      : firmware_(make_simulated_firmware(kOsc)), mode_(mode), spoil_(std::move(spoil)) {}

  static fw::DescribeReply description(const DeviceSpec& s) {
    fw::DescribeReply d;
    d.kind = "oscillators-described";
    d.num_inputs = static_cast<std::uint32_t>(s.num_inputs);
    d.num_outputs = static_cast<std::uint32_t>(s.num_outputs);
    d.num_params = static_cast<std::uint32_t>(s.num_params());
    d.max_batch = static_cast<std::uint32_t>(s.max_batch);
    d.input_unit = s.input_unit;
    d.output_unit = s.output_unit;
    d.input_min = s.input_min;
    d.input_max = s.input_max;
    for (const ParamBlock& b : s.params) {
      // The oscillators' natural units (ω₀²) are not SI: this board reports them as "1".
      d.blocks.push_back({b.name, fw::is_known_unit(b.unit) ? b.unit : "1", b.description, static_cast<std::uint32_t>(b.count),
                          b.hard_min, b.hard_max});
    }
    return d;
  }

  void receive(std::span<const std::uint8_t> bytes, fw::Clock::time_point now,
               std::deque<fw::DeviceOutput>& out) override {
    decoder_.feed(bytes);
    while (auto f = decoder_.next()) {
      if (f->header.type == fw::MessageType::kIdentify && mode_ == Describe::kNoSerial) {
        std::vector<std::uint8_t> reply;
        fw::encode_message(fw::IdentifyReply{"", "nameless", "1.1"}, f->header.seq, reply);
        out.push_back({std::move(reply), now});
        continue;
      }
      if (f->header.type != fw::MessageType::kDescribe || mode_ == Describe::kOldBoard) {
        std::vector<std::uint8_t> frame(f->payload.begin(), f->payload.end());
        std::vector<std::uint8_t> again;
        fw::encode_frame(f->header.type, f->header.seq, frame, again);
        firmware_->receive(again, now, out);
        continue;
      }
      ++describes;
      if (mode_ == Describe::kSilent) continue;
      std::vector<std::uint8_t> reply;
      if (mode_ == Describe::kGarbled) {
        const std::uint8_t junk[] = {1, 0xFF, 0xFF};  // a kind string longer than the payload
        fw::encode_frame(fw::MessageType::kDescribeReply, f->header.seq, junk, reply);
      } else {
        fw::DescribeReply d = description(reference_spec());
        if (spoil_) spoil_(d);
        fw::encode_message(d, f->header.seq, reply);
      }
      out.push_back({std::move(reply), now});
    }
  }
  bool connected(fw::Clock::time_point now) override { return firmware_->connected(now); }
  void on_open(fw::Clock::time_point now) override { firmware_->on_open(now); }
  void on_clear() override {
    decoder_.flush();
    firmware_->on_clear();
  }
  std::string name() const override { return "describing " + firmware_->name(); }

  static DeviceSpec reference_spec() { return test::active_device(kOsc + "&link=direct")->spec(); }

  std::shared_ptr<SimulatedFirmware> firmware_;
  int describes = 0;

 private:
  Describe mode_;
  std::function<void(fw::DescribeReply&)> spoil_;
  fw::FrameDecoder decoder_;
};

PhysicalSystemPtr described(std::shared_ptr<DescribingBoard> board) {
  return make_described_device(fw::make_loopback_transport(std::move(board)),
                               {.command_timeout = 50ms, .run_timeout = 500ms, .retries = 1},
                               "tcp://fake:1");
}

}  // namespace

TEST_CASE("described board: the spec comes from describe, identity from identify, and it trains without a twin") {
  auto board = std::make_shared<DescribingBoard>(Describe::kGood);
  auto dev = described(board);
  CHECK(board->describes == 1);
  const DeviceSpec& s = dev->spec();
  const DeviceSpec ref = DescribingBoard::reference_spec();
  CHECK(s.kind == "oscillators-described");
  CHECK(s.serial == "SIM-OSC-5");
  CHECK(s.firmware == "sim-1.0");
  CHECK(s.num_inputs == ref.num_inputs);
  CHECK(s.num_outputs == ref.num_outputs);
  CHECK(s.num_params() == ref.num_params());
  CHECK((s.param_max() - ref.param_max()).norm() == 0.0);
  CHECK(s.params[0].unit == "1");
  CHECK(s.params[0].description == ref.params[0].description);
  CHECK(dev->nominal_twin() == nullptr);
  REQUIRE(dev->configure());
  REQUIRE(dev->activate());
  auto direct = test::active_device(kOsc + "&link=direct");
  const Matrix x = Matrix::Constant(3, s.num_inputs, 0.2);
  const Vector theta = 0.5 * (s.param_min() + s.param_max());
  auto y = dev->forward(x, theta);
  REQUIRE_MESSAGE(y, y.error().message);
  CHECK((y.value() - direct->forward(x, theta).value()).norm() == 0.0);
  // Out of the described limits: refused by the host before the wire.
  Vector over = theta;
  over[0] = s.param_max()[0] + 1.0;
  auto r = dev->forward(x, over);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
}

TEST_CASE("described board: a bad describe reply is refused before the device is configured") {
  struct Case {
    const char* what;
    std::function<void(fw::DescribeReply&)> spoil;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"inconsistent", [](fw::DescribeReply& d) { d.num_params += 1; }, "inconsistent sizes"},
      {"nan limit",
       [](fw::DescribeReply& d) { d.blocks[0].max = std::numeric_limits<double>::quiet_NaN(); },
       "not finite"},
      {"min > max", [](fw::DescribeReply& d) { d.input_min = d.input_max + 1; }, "min"},
      {"zero batch", [](fw::DescribeReply& d) { d.max_batch = 0; }, "max_batch is 0"},
      {"unknown unit", [](fw::DescribeReply& d) { d.output_unit = "bananas"; }, "'bananas'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    auto board = std::make_shared<DescribingBoard>(Describe::kSpoiled, c.spoil);
    try {
      described(board);
      FAIL("accepted a spoiled description");
    } catch (const std::invalid_argument& e) {
      const std::string m = e.what();
      CHECK_MESSAGE(m.find(c.message) != std::string::npos, m);
      CHECK(m.find("refused before the device is configured") != std::string::npos);
      CHECK(m.find("tcp://fake:1") != std::string::npos);
    }
    CHECK(board->firmware_->stats().runs == 0);
    CHECK(board->firmware_->stats().safe_state == 0);  // never configured (no abort sent)
  }
}

TEST_CASE("described board: a garbled reply, silence, no serial and an old board each name the fix") {
  CHECK_THROWS_WITH_AS(described(std::make_shared<DescribingBoard>(Describe::kGarbled)),
                       doctest::Contains("does not decode"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(described(std::make_shared<DescribingBoard>(Describe::kSilent)),
                       doctest::Contains("did not answer describe within 50 ms"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(described(std::make_shared<DescribingBoard>(Describe::kSilent)),
                       doctest::Contains("add kind=KIND"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(described(std::make_shared<DescribingBoard>(Describe::kNoSerial)),
                       doctest::Contains("empty serial"), std::invalid_argument);
  // A protocol 1.0 board (the emulator) answers describe with "unsupported".
  CHECK_THROWS_WITH_AS(described(std::make_shared<DescribingBoard>(Describe::kOldBoard)),
                       doctest::Contains("does not support describe"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(described(std::make_shared<DescribingBoard>(Describe::kOldBoard)),
                       doctest::Contains("add kind=KIND"), std::invalid_argument);
}

TEST_CASE("described board over TCP: an address without kind= to a 1.0 board says add kind=, with kind= it works") {
  fw::TcpDeviceServer server(make_simulated_firmware(kOsc), {});
  const std::string at = "tcp://" + server.address();
  CHECK_THROWS_WITH_AS(make_physical_system(at + "?timeout_ms=200"),
                       doctest::Contains("add kind=KIND"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system(at + "?n=6"), doctest::Contains("'n' needs kind=KIND"),
                       std::invalid_argument);
  auto dev = make_physical_system(at + "?kind=mechanical-oscillators&n=6");
  CHECK(dev->configure());
  CHECK(dev->spec().serial == "SIM-OSC-5");
}

TEST_CASE("described board: nobody listening is a clear error, not a hang") {
  CHECK_THROWS_WITH_AS(make_physical_system("tcp://127.0.0.1:1?timeout_ms=200"),
                       doctest::Contains("to describe itself"), std::invalid_argument);
}

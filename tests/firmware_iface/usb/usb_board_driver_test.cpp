// The whole usb:// path of a lab-built board: make_physical_system("usb://…&kind=…") gives the
// framed-board driver over the libusb bulk transport, talking to an emulated USB board (umockdev)
// whose firmware is the setup's simulated firmware. The same driver code as sim://, on a real
// USB stack.
#include <doctest/doctest.h>

#include <thread>

#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"
#include "usb_models.hpp"

namespace fi = pnn::firmware_iface;
namespace dr = pnn::drivers;
using namespace pnn::test_usb;
using namespace std::chrono_literals;

namespace {
constexpr std::uint16_t kVid = 0x1209;
constexpr std::uint16_t kPid = 0x0002;
const std::string kSim = "sim://mechanical-oscillators?seed=5&n=6&gap=large&serial=OSC-USB-7";
const std::string kUsb =
    "usb://1209:0002?serial=OSC-USB-7&kind=mechanical-oscillators&n=6&timeout_ms=500&retries=1";
}  // namespace

TEST_CASE("usb board: usb://…&kind=… drives the board's firmware over libusb like sim:// does") {
  MockUsbBus bus;
  auto firmware = dr::make_simulated_firmware(kSim);
  auto board = std::make_shared<BulkBoard>(bulk_board_spec(kVid, kPid, "OSC-USB-7"), firmware);
  bus.plug(board, 1, 4);
  auto dev = dr::make_physical_system(kUsb);
  auto direct = dr::make_physical_system(kSim + "&link=direct");
  REQUIRE_MESSAGE(dev->configure(), dev->health_message());
  CHECK(dev->spec().serial == "OSC-USB-7");
  CHECK(dev->spec().firmware == "sim-1.0");  // from the board's identify reply
  REQUIRE(dev->activate());
  REQUIRE(direct->configure());
  REQUIRE(direct->activate());
  for (int k = 0; k < 3; ++k) {
    const pnn::Matrix x = pnn::Matrix::Constant(4, 6, 0.2 * k - 0.3);
    const pnn::Vector theta = pnn::Vector::Constant(dev->spec().num_params(), 0.05 * k);
    auto y = dev->forward(x, theta);
    REQUIRE_MESSAGE(y, y.error().message);
    CHECK((y.value() - direct->forward(x, theta).value()).norm() == 0.0);
  }
  REQUIRE(dev->deactivate());
  CHECK((firmware->applied_theta() - firmware->safe_theta()).norm() == 0.0);
  CHECK(firmware->stats().runs == 3);
  CHECK(firmware->stats().limit_violations == 0);

  // Unplugged: the next call fails as a lost link, recovery fails until it is back (at another
  // bus address), then finds it by serial and lands INACTIVE.
  REQUIRE(dev->activate());
  bus.unplug(board);
  auto y = dev->forward(pnn::Matrix::Zero(1, 6), pnn::Vector::Zero(dev->spec().num_params()));
  REQUIRE_FALSE(y);
  CHECK(y.error().code == dr::Errc::kIo);
  CHECK(dev->health() == dr::Health::kFault);
  CHECK_FALSE(dev->recover());
  auto again = std::make_shared<BulkBoard>(bulk_board_spec(kVid, kPid, "OSC-USB-7"), firmware);
  bus.plug(again, 1, 9);
  REQUIRE_MESSAGE(dev->recover(), dev->health_message());
  CHECK(dev->state() == dr::Lifecycle::kInactive);
  REQUIRE(dev->activate());
  CHECK(dev->forward(pnn::Matrix::Zero(1, 6), pnn::Vector::Zero(dev->spec().num_params())));
}

TEST_CASE("usb board: no board at the address is a clean configure failure naming the fix") {
  MockUsbBus bus;
  auto dev = dr::make_physical_system(kUsb);
  auto r = dev->configure();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == dr::Errc::kIo);
  CHECK(r.error().message.find("plugged in") != std::string::npos);
  CHECK(dev->state() == dr::Lifecycle::kUnconfigured);
}

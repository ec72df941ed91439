// list_usb_devices() against an emulated bus (umockdev).
#include <doctest/doctest.h>

#include <algorithm>

#include "pnn/firmware_iface/usb_transport.hpp"
#include "usb_models.hpp"

namespace fi = pnn::firmware_iface;
using namespace pnn::test_usb;

TEST_CASE("usb discovery: lists every device with its ids, strings, bus, address and USBTMC flag") {
  MockUsbBus bus;
  bus.plug(std::make_shared<BulkBoard>(bulk_board_spec(0x1209, 0x0001, "A1"),
                                       std::make_shared<FrameResponder>("a")),
           1, 4);
  bus.plug(std::make_shared<UsbtmcInstrument>(usbtmc_spec(0x0957, 0x1755, "MY1234")), 2, 11);
  auto no_serial = bulk_board_spec(0x1209, 0x0002, "");
  bus.plug(std::make_shared<BulkBoard>(no_serial, std::make_shared<FrameResponder>("c")), 1, 6);

  auto devices = fi::list_usb_devices();
  REQUIRE(devices.size() == 3);
  const auto find = [&](std::uint16_t vid, std::uint16_t pid) {
    auto it = std::find_if(devices.begin(), devices.end(),
                           [&](const auto& d) { return d.vid == vid && d.pid == pid; });
    REQUIRE(it != devices.end());
    return *it;
  };
  const auto board = find(0x1209, 0x0001);
  CHECK(board.serial == "A1");
  CHECK(board.product == "pnn bulk board");
  CHECK(board.manufacturer == "pnn-test");
  CHECK(board.bus == 1);
  CHECK(board.address == 4);
  CHECK_FALSE(board.is_usbtmc);
  CHECK(board.accessible);

  const auto scope = find(0x0957, 0x1755);
  CHECK(scope.serial == "MY1234");
  CHECK(scope.manufacturer == "PNN-TEST");
  CHECK(scope.product == "MOCK-TMC");
  CHECK(scope.bus == 2);
  CHECK(scope.address == 11);
  CHECK(scope.is_usbtmc);

  const auto anonymous = find(0x1209, 0x0002);
  CHECK(anonymous.serial.empty());
  CHECK(anonymous.accessible);
}

TEST_CASE("usb discovery: an empty bus gives an empty list") {
  MockUsbBus bus;
  CHECK(fi::list_usb_devices().empty());
}

// The USB transports' argument checks and their behaviour where no device (or no USB at all) is
// present; the emulated-device cases are in tests/firmware_iface/usb/ (pnn_usb_tests).
#include "pnn/firmware_iface/usb_transport.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

namespace fi = pnn::firmware_iface;
using namespace std::chrono_literals;

namespace {

std::string thrown_by(auto&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(nothing thrown)";
}

}  // namespace

TEST_CASE("UsbDeviceMatch::parse reads VID:PID in hex and names the expected form on error") {
  const auto m = fi::UsbDeviceMatch::parse("0957:1755", "MY1234");
  CHECK(m.vid == 0x0957);
  CHECK(m.pid == 0x1755);
  CHECK(m.serial == "MY1234");
  CHECK(m.to_string() == "0957:1755 serial MY1234");
  CHECK(fi::UsbDeviceMatch::parse("1AB1:4ce").pid == 0x04ce);
  CHECK(fi::UsbDeviceMatch::parse("1ab1:04CE").to_string() == "1ab1:04ce");
  for (const char* bad :
       {"09571755", "0957-1755", ":1755", "0957:", "12345:1", "g957:1755", "0957:1755:1"}) {
    CAPTURE(bad);
    const auto what = thrown_by([&] { (void)fi::UsbDeviceMatch::parse(bad); });
    CHECK(what.find(std::string("'") + bad + "'") != std::string::npos);
    CHECK(what.find("e.g. 0957:1755") != std::string::npos);
  }
}

TEST_CASE("USB transport factories reject bad options with the field and the fix") {
  CHECK(thrown_by([] { fi::make_usb_bulk_transport({}); }).find("match.vid and match.pid") !=
        std::string::npos);
  CHECK(thrown_by([] { fi::make_usbtmc_transport({}); }).find("match.vid and match.pid") !=
        std::string::npos);
  const fi::UsbDeviceMatch m{0x1209, 0x0001, ""};
  CHECK(thrown_by([&] {
          fi::make_usb_bulk_transport({.match = m, .read_transfer_bytes = 0});
        }).find("read_transfer_bytes") != std::string::npos);
  CHECK(thrown_by([&] {
          fi::make_usb_bulk_transport({.match = m, .timings = {.cancel_grace = 0ms}});
        }).find("cancel_grace") != std::string::npos);
  CHECK(thrown_by([&] {
          fi::make_usbtmc_transport({.match = m, .max_out_transfer_bytes = 15});
        }).find("at least 16") != std::string::npos);
  CHECK(thrown_by([&] {
          fi::make_usbtmc_transport({.match = m, .max_in_transfer_bytes = 0});
        }).find("max_in_transfer_bytes") != std::string::npos);
  CHECK(thrown_by([&] {
          fi::make_usbtmc_transport({.match = m, .max_status_polls = 0});
        }).find("max_status_polls") != std::string::npos);
  CHECK(thrown_by([&] { fi::make_usbtmc_transport({.match = m}); }) == "(nothing thrown)");
}

TEST_CASE("USB transports: closed calls give kNotOpen, an absent device gives kDisconnected") {
  // ffff:fffe is not an assigned id: whatever this machine has plugged in (or no USB at all),
  // no device matches it.
  const fi::UsbDeviceMatch absent{0xffff, 0xfffe, "NOPE"};
  fi::TransportPtr transports[] = {fi::make_usb_bulk_transport({.match = absent}),
                                   fi::make_usbtmc_transport({.match = absent})};
  for (auto& t : transports) {
    CAPTURE(t->describe());
    CHECK_FALSE(t->is_open());
    CHECK(t->describe().find("ffff:fffe serial NOPE (closed)") != std::string::npos);
    std::uint8_t buf[4]{};
    CHECK(t->write(buf, fi::deadline_after(10ms)) == fi::Errc::kNotOpen);
    CHECK(t->read_some(buf, fi::deadline_after(10ms)).error() == fi::Errc::kNotOpen);
    CHECK(t->clear(fi::deadline_after(10ms)) == fi::Errc::kNotOpen);
    CHECK(t->open(fi::deadline_after(500ms)) == fi::Errc::kDisconnected);
    CHECK_FALSE(t->is_open());
    CHECK(t->describe().find("last error: ") != std::string::npos);
    t->close();  // closing a closed transport is harmless
  }
}

TEST_CASE("list_usb_devices never throws, with or without USB on this machine") {
  std::vector<fi::UsbDeviceInfo> devices;
  CHECK_NOTHROW(devices = fi::list_usb_devices(50ms));
  for (const auto& d : devices) {
    if (!d.accessible) CHECK(d.serial.empty());
  }
}

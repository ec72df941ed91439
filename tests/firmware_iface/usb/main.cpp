// pnn_usb_tests: the libusb transports against emulated devices. The binary links
// libumockdev-preload, which redirects /sys, /dev and ioctl() into a testbed; where that did not
// take effect (the preload library is missing or not first), every case would talk to the real
// system, so the run is skipped with exit code 77 (CTest SKIP_RETURN_CODE) instead.
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdio>
#include <string_view>

#include "case_guard.hpp"
#include "mock_usb.hpp"

int main(int argc, char** argv) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.rfind("--list", 0) == 0 || a.rfind("-l", 0) == 0 || a == "--help" || a == "-h" ||
        a.rfind("--count", 0) == 0 || a == "-c" || a == "--version" || a == "-v") {
      listing = true;
    }
  }
  if (!listing) {
    // umockdev_in_mock_environment() caches its answer, so ask only once a testbed exists.
    const pnn::test_usb::MockUsbBus probe;
    if (!pnn::test_usb::MockUsbBus::in_mock_environment()) {
      std::fprintf(stderr,
                   "pnn_usb_tests: not in a umockdev mock environment (libumockdev-preload not "
                   "active); skipping\n");
      return 77;
    }
  }
  doctest::Context context(argc, argv);
  return pnn_test_guard::run_guarded(context, "pnn_usb_tests");
}

#include "pnn/daemon/protocol.hpp"

#include <doctest/doctest.h>

#include "pnn/firmware_iface/error.hpp"

namespace pnn::daemon {

TEST_CASE("protocol: driver and link error codes map to typed statuses, never INTERNAL") {
  using drivers::Errc;
  CHECK(status_code(make_error_code(Errc::kTimeout)) == v1::DEVICE_TIMEOUT);
  CHECK(status_code(make_error_code(Errc::kOutOfLimits)) == v1::OUT_OF_LIMITS);
  CHECK(status_code(make_error_code(Errc::kBatchTooLarge)) == v1::BATCH_TOO_LARGE);
  namespace fw = firmware_iface;
  CHECK(status_code(fw::make_error_code(fw::Errc::kTimeout)) == v1::DEVICE_TIMEOUT);
  CHECK(status_code(fw::make_error_code(fw::Errc::kIdentityMismatch)) == v1::DEVICE_IO);
  CHECK(status_code(fw::make_error_code(fw::Errc::kDisconnected)) == v1::DEVICE_IO);
  CHECK(status_code(fw::make_error_code(fw::Errc::kDeviceError)) == v1::DEVICE_FAULT);
  CHECK(status_code(std::make_error_code(std::errc::io_error)) == v1::INTERNAL);
}

}  // namespace pnn::daemon

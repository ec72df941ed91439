#include "pnn/firmware_iface/error.hpp"

#include <doctest/doctest.h>

#include <ostream>  // doctest prints std::error_code with operator<<
#include <stdexcept>
#include <string>

using namespace pnn::firmware_iface;

TEST_CASE("error: Errc converts to std::error_code in the firmware_iface category") {
  const std::error_code ec = Errc::kCrcMismatch;
  CHECK(ec.category().name() == std::string("pnn.firmware_iface"));
  CHECK(ec.message() == "frame CRC mismatch");
  CHECK(ec == Errc::kCrcMismatch);
  CHECK(ec != Errc::kBadHeader);
  for (int v = static_cast<int>(Errc::kTruncated); v <= static_cast<int>(Errc::kMessageTooLong);
       ++v) {
    CHECK(error_category().message(v).find("unknown firmware_iface") == std::string::npos);
  }
  CHECK(error_category().message(999).find("unknown firmware_iface") != std::string::npos);
}

TEST_CASE("error: Result holds a value or an error, and misuse throws") {
  Result<int> ok = 5;
  CHECK(ok);
  CHECK(*ok == 5);
  CHECK(!ok.error());
  Result<int> bad = Errc::kTruncated;
  CHECK(!bad);
  CHECK(bad.error() == Errc::kTruncated);
  CHECK_THROWS_AS((void)bad.value(), std::logic_error);
  CHECK_THROWS_AS(Result<int>(std::error_code{}), std::logic_error);
}

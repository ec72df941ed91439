#include "pnn/firmware_iface/crc32c.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <ostream>  // doctest prints std::error_code with operator<<
#include <random>
#include <string_view>
#include <vector>

using namespace pnn::firmware_iface;

namespace {
std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
}  // namespace

TEST_CASE("crc32c: standard check value of \"123456789\" on both paths") {
  CHECK(crc32c(as_bytes("123456789")) == 0xE3069283u);
  CHECK(crc32c_extend_portable(0, as_bytes("123456789")) == 0xE3069283u);
  CHECK(crc32c({}) == 0u);
}

TEST_CASE("crc32c: RFC 3720 (iSCSI) test vectors") {
  std::vector<std::uint8_t> v(32, 0x00);
  CHECK(crc32c(v) == 0x8A9136AAu);
  std::fill(v.begin(), v.end(), 0xFF);
  CHECK(crc32c(v) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<std::uint8_t>(i);
  CHECK(crc32c(v) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<std::uint8_t>(31 - i);
  CHECK(crc32c(v) == 0x113FDB5Cu);
  CHECK(crc32c_extend_portable(0, v) == 0x113FDB5Cu);
}

TEST_CASE("crc32c: accelerated and portable paths agree at every length and alignment") {
  INFO("hardware accelerated: " << crc32c_hardware_accelerated());
  std::mt19937 rng(7);
  std::vector<std::uint8_t> data(700);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  for (std::size_t offset = 0; offset < 9; ++offset) {
    for (std::size_t n = 0; n + offset <= data.size(); n += (n < 80 ? 1 : 37)) {
      const std::span<const std::uint8_t> s(data.data() + offset, n);
      REQUIRE(crc32c(s) == crc32c_extend_portable(0, s));
    }
  }
}

TEST_CASE("crc32c: extend over a split equals the one-shot CRC") {
  std::vector<std::uint8_t> data(1000);
  std::mt19937 rng(3);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());
  const std::uint32_t whole = crc32c(data);
  for (std::size_t cut : {0u, 1u, 7u, 8u, 9u, 500u, 999u, 1000u}) {
    const std::span<const std::uint8_t> s(data);
    CHECK(crc32c_extend(crc32c(s.first(cut)), s.subspan(cut)) == whole);
    CHECK(crc32c_extend_portable(crc32c_extend_portable(0, s.first(cut)), s.subspan(cut)) == whole);
  }
}

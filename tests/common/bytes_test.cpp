// pnn::common byte reader/writer: exact little-endian bytes, round trips, and reads that do not
// fit failing with a clear error instead of reading out of bounds.
#include "pnn/common/bytes.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

using pnn::common::ByteReader;
using pnn::common::ByteWriter;

// The writes go through functions that take the buffer by reference, as every codec does: GCC 12
// reports false out-of-bounds errors (-Warray-bounds, -Wstringop-overflow) when it inlines a
// series of small writes into a local vector whose every size it knows.
namespace {

[[gnu::noinline]] void write_fields(std::vector<std::uint8_t>& out) {
  ByteWriter w(out);
  w.u8(0xab);
  w.u16(0x0102);
  w.u32(0x03040506);
  w.u64(0x0708090a0b0c0d0eULL);
  w.i32(-2);
  w.f64(1.0);    // 0x3ff0000000000000
  w.f32(-0.0f);  // 0x80000000
}

[[gnu::noinline]] void write_length_prefixed(std::string& s) {
  ByteWriter ws(s);
  ws.u32(0);
  ws.bytes("abc", 3);
  ws.put_at<std::uint32_t>(0, 3);
}

[[gnu::noinline]] void write_arrays(std::vector<std::uint8_t>& buf,
                                    const std::vector<double>& doubles,
                                    const std::vector<float>& floats) {
  ByteWriter w(buf);
  w.u16(65535);
  w.i64(std::numeric_limits<std::int64_t>::min());
  w.u32(static_cast<std::uint32_t>(doubles.size()));
  w.f64_array(doubles);
  w.f32_array(floats);
  w.u8(7);
}

}  // namespace

TEST_CASE("common: ByteWriter writes little-endian fields, exactly") {
  std::vector<std::uint8_t> out;
  write_fields(out);
  const std::vector<std::uint8_t> expected = {
      0xab, 0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07,
      0xfe, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0x80};
  CHECK(out == expected);
  CHECK(ByteWriter(out).size() == expected.size());

  // The same into a std::string, and a length patched in afterwards.
  std::string s;
  write_length_prefixed(s);
  ByteWriter ws(s);
  CHECK(s == std::string("\x03\x00\x00\x00" "abc", 7));
  CHECK_THROWS_AS(ws.put_at<std::uint32_t>(4, 1), std::out_of_range);  // only 3 bytes there
  CHECK_THROWS_AS(ws.put_at<std::uint8_t>(8, 1), std::out_of_range);

  CHECK(pnn::common::load_be<std::uint32_t>("\x00\x00\x08\x03") == 2051);  // IDX magic
}

TEST_CASE("common: ByteReader round-trips every field and array bit-exactly") {
  const double nan_payload = std::bit_cast<double>(std::uint64_t{0x7ff8000000000123ULL});
  const std::vector<double> doubles = {0.0, -0.0, 1.5, -1e300, nan_payload,
                                       std::numeric_limits<double>::infinity()};
  const std::vector<float> floats = {0.25f, -0.0f, 3e38f};
  std::vector<std::uint8_t> buf;
  write_arrays(buf, doubles, floats);

  ByteReader r(buf);
  CHECK(r.u16() == 65535);
  CHECK(r.i64() == std::numeric_limits<std::int64_t>::min());
  std::vector<double> back;
  REQUIRE(r.f64_array(r.u32(), back));
  REQUIRE(back.size() == doubles.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    CHECK(std::bit_cast<std::uint64_t>(back[i]) == std::bit_cast<std::uint64_t>(doubles[i]));
  }
  std::vector<float> fback(3);
  CHECK(r.array(std::span<float>(fback)));
  CHECK(std::signbit(fback[1]));
  CHECK(fback[2] == 3e38f);
  CHECK(r.remaining() == 1);
  CHECK(!r.at_end());
  CHECK(r.u8() == 7);
  CHECK(r.at_end());
  CHECK(r.ok());
  CHECK(r.error().empty());
}

TEST_CASE("common: ByteReader fails, sticky and named, instead of reading past the end") {
  const std::string data("\x05\x00\x00\x00" "ab", 6);
  {
    ByteReader r(data);
    CHECK(r.u32("name length") == 5);
    CHECK(r.text(5, "name").empty());  // 5 claimed, 2 present
    CHECK(!r.ok());
    CHECK(r.remaining() == 0);
    CHECK(r.error() == "name needs 5 bytes but only 2 remain");
    CHECK(r.u8() == 0);  // sticky: every later read fails and returns zero
    CHECK(r.error() == "name needs 5 bytes but only 2 remain");  // the first failure is kept
  }
  {
    ByteReader r(data);
    (void)r.u32();
    CHECK(r.u64() == 0);
    CHECK(r.error() == "the field at byte 4 needs 8 bytes but only 2 remain");
  }
  {
    // A lying count never allocates: checked against the bytes present first.
    ByteReader r(data);
    std::vector<double> out = {1.0};
    CHECK(!r.f64_array(std::size_t{1} << 60, out, "theta"));
    CHECK(out == std::vector<double>{1.0});
    CHECK(r.error() == "theta claims 1152921504606846976 values but only 6 bytes remain");
  }
  {
    ByteReader r(std::span<const std::uint8_t>{});
    CHECK(r.at_end());
    CHECK(r.take(0).empty());
    CHECK(r.ok());
    CHECK(r.f32() == 0.0f);
    CHECK(!r.ok());
  }
}

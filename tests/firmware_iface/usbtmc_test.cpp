#include "pnn/firmware_iface/usbtmc.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <ostream>  // doctest prints std::error_code with operator<<
#include <set>
#include <string_view>
#include <vector>

using namespace pnn::firmware_iface;
using namespace pnn::firmware_iface::usbtmc;

namespace {
using Bytes = std::vector<std::uint8_t>;
std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
Bytes to_vec(const Header& h) { return {h.begin(), h.end()}; }
}  // namespace

// Expected bytes below are written out by hand from PROTOCOLS.md §c.2–c.4.

TEST_CASE("usbtmc: DEV_DEP_MSG_OUT header, payload and padding to a multiple of 4") {
  Bytes out;
  encode_dev_dep_msg_out(1, as_bytes("*IDN?\n"), true, out);
  const Bytes expect = {0x01, 0x01, 0xFE, 0x00,  // MsgID, bTag, ~bTag, reserved
                        0x06, 0x00, 0x00, 0x00,  // TransferSize = 6
                        0x01, 0x00, 0x00, 0x00,  // EOM, TermChar 0, reserved
                        '*',  'I',  'D',  'N',  '?', '\n', 0x00, 0x00};  // 18 → 20 bytes
  CHECK(out == expect);

  out.clear();
  encode_dev_dep_msg_out(0x80, as_bytes("ABCD"), false, out);  // 16: no padding needed
  CHECK(out == Bytes{0x01, 0x80, 0x7F, 0x00, 0x04, 0, 0, 0, 0x00, 0, 0, 0, 'A', 'B', 'C', 'D'});

  for (std::size_t n = 1; n <= 9; ++n) {
    out.clear();
    encode_dev_dep_msg_out(3, Bytes(n, 0xEE), true, out);
    CHECK(out.size() % 4 == 0);
    CHECK(out.size() == ((12 + n + 3) / 4) * 4);
    CHECK(out[4] == n);
  }
  CHECK_THROWS_AS(encode_dev_dep_msg_out(1, {}, true, out), std::invalid_argument);
  CHECK_THROWS_AS(encode_dev_dep_msg_out(0, as_bytes("x"), true, out), std::invalid_argument);
}

TEST_CASE("usbtmc: REQUEST_DEV_DEP_MSG_IN and TRIGGER headers") {
  CHECK(to_vec(encode_request_dev_dep_msg_in(2, 0x7FFFFFFF)) ==
        Bytes{0x02, 0x02, 0xFD, 0x00, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x00, 0x00, 0x00});
  CHECK(to_vec(encode_request_dev_dep_msg_in(0xFF, 2033, std::uint8_t{'\n'})) ==
        Bytes{0x02, 0xFF, 0x00, 0x00, 0xF1, 0x07, 0x00, 0x00, 0x02, 0x0A, 0x00, 0x00});
  CHECK(to_vec(encode_trigger(5)) ==
        Bytes{0x80, 0x05, 0xFA, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  CHECK(to_vec(encode_dev_dep_msg_out_header(9, 0x01020304, false)) ==
        Bytes{0x01, 0x09, 0xF6, 0x00, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00});
}

TEST_CASE("usbtmc: bTag runs 1..255 and skips 0 on wrap") {
  TagGenerator tags;
  CHECK(tags.next() == 1);
  CHECK(tags.next() == 2);
  std::set<int> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::uint8_t t = tags.next();
    CHECK(t != 0);
    seen.insert(t);
  }
  CHECK(seen.size() == 255);
  TagGenerator near_end(254);
  CHECK(near_end.next() == 255);
  CHECK(near_end.next() == 1);
  CHECK(near_end.last() == 1);
}

TEST_CASE("usbtmc: split_message into transfers of at most the maximum size") {
  Bytes message(10);
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<std::uint8_t>('a' + i);
  for (const std::size_t max : {16u, 17u, 19u}) {
    TagGenerator tags(254);
    const auto transfers = split_message(message, max, tags);
    REQUIRE(transfers.size() == 3);  // 4 + 4 + 2 payload bytes
    Bytes joined;
    std::uint8_t expect_tag = 255;
    for (std::size_t i = 0; i < transfers.size(); ++i) {
      const auto& t = transfers[i];
      CHECK(t.size() <= max);
      CHECK(t.size() % 4 == 0);
      auto h = decode_bulk_out_header(t);
      REQUIRE(h);
      CHECK(h->msg_id == MsgId::kDevDepMsgOut);
      CHECK(h->tag == expect_tag);
      expect_tag = expect_tag == 255 ? 1 : expect_tag + 1;  // wraps past 0
      CHECK(h->eom() == (i + 1 == transfers.size()));
      joined.insert(joined.end(), t.begin() + 12, t.begin() + 12 + h->transfer_size);
    }
    CHECK(joined == message);
  }
  TagGenerator tags;
  const auto big = split_message(Bytes(1000, 1), 512, tags);
  REQUIRE(big.size() == 2);  // (512 - 12) & ~3 = 500 per transfer
  CHECK(big[0].size() == 512);
  CHECK(big[1].size() == 512);
  CHECK(split_message({}, 64, tags).empty());
  CHECK_THROWS_AS(split_message(message, 15, tags), std::invalid_argument);
}

TEST_CASE("usbtmc: Bulk-IN parse checks bTag, bTagInverse, MsgID and clamps TransferSize") {
  // DEV_DEP_MSG_IN, bTag 7, TransferSize 5, EOM, "1.234" + 3 alignment bytes.
  const Bytes in = {0x02, 0x07, 0xF8, 0x00, 0x05, 0,   0,   0,    0x01, 0,
                    0,    0,    '1',  '.',  '2',  '3', '4', 0xAA, 0xBB, 0xCC};
  auto r = parse_bulk_in(in, 7);
  REQUIRE(r);
  CHECK(r->tag == 7);
  CHECK(r->transfer_size == 5);
  CHECK(r->eom());
  CHECK(!r->term_char_seen());
  CHECK(!r->size_clamped);
  CHECK(Bytes(r->payload.begin(), r->payload.end()) == Bytes{'1', '.', '2', '3', '4'});

  Bytes liar = in;
  liar[4] = 100;   // device claims 100 bytes, 8 are present
  liar[8] = 0x02;  // no EOM, ended at TermChar
  r = parse_bulk_in(liar, 7);
  REQUIRE(r);
  CHECK(r->size_clamped);
  CHECK(r->payload.size() == 8);
  CHECK(!r->eom());
  CHECK(r->term_char_seen());

  CHECK(parse_bulk_in(in, 8).error() == Errc::kBadTag);
  Bytes bad = in;
  bad[2] = 0xF7;
  CHECK(parse_bulk_in(bad, 7).error() == Errc::kBadTag);
  bad = in;
  bad[0] = 0x01;
  CHECK(parse_bulk_in(bad, 7).error() == Errc::kBadMsgId);
  CHECK(parse_bulk_in(std::span(in).first(11), 7).error() == Errc::kTruncated);
  // A header alone with TransferSize 0 is a valid empty transfer.
  CHECK(parse_bulk_in(std::span(in).first(12), 7));

  Bytes dev;
  encode_dev_dep_msg_in(200, as_bytes("OK"), true, dev, true);
  r = parse_bulk_in(dev, 200);
  REQUIRE(r);
  CHECK(r->payload.size() == 2);
  CHECK(r->attributes == 0x03);
}

TEST_CASE("usbtmc: device-side Bulk-OUT header decode") {
  const auto h = decode_bulk_out_header(encode_request_dev_dep_msg_in(4, 1000, std::uint8_t{'\n'}));
  REQUIRE(h);
  CHECK(*h == BulkOutHeader{MsgId::kRequestDevDepMsgIn, 4, 1000, kAttrTermCharEnabled, '\n'});
  Header bad = encode_trigger(4);
  bad[2] = 0;
  CHECK(decode_bulk_out_header(bad).error() == Errc::kBadTag);
  bad = encode_trigger(4);
  bad[0] = 3;
  CHECK(decode_bulk_out_header(bad).error() == Errc::kBadMsgId);
  Bytes zero_tag = {0x01, 0x00, 0xFF, 0, 1, 0, 0, 0, 1, 0, 0, 0};
  CHECK(decode_bulk_out_header(zero_tag).error() == Errc::kBadTag);
  CHECK(decode_bulk_out_header(std::span(zero_tag).first(4)).error() == Errc::kTruncated);
}

TEST_CASE("usbtmc: class control request descriptors") {
  CHECK(initiate_abort_bulk_out(7, 0x02) == ControlSetup{0xA2, 1, 7, 0x02, 2});
  CHECK(check_abort_bulk_out_status(0x02) == ControlSetup{0xA2, 2, 0, 0x02, 8});
  CHECK(initiate_abort_bulk_in(9, 0x81) == ControlSetup{0xA2, 3, 9, 0x81, 2});
  CHECK(check_abort_bulk_in_status(0x81) == ControlSetup{0xA2, 4, 0, 0x81, 8});
  CHECK(initiate_clear(0) == ControlSetup{0xA1, 5, 0, 0, 1});
  CHECK(check_clear_status(1) == ControlSetup{0xA1, 6, 0, 1, 2});
  CHECK(get_capabilities(0) == ControlSetup{0xA1, 7, 0, 0, 0x18});
  CHECK(indicator_pulse(2) == ControlSetup{0xA1, 64, 0, 2, 1});
}

TEST_CASE("usbtmc: GET_CAPABILITIES parsed with the kernel's byte layout") {
  Bytes caps(24, 0);
  caps[0] = 0x01;                  // SUCCESS
  caps[2] = 0x00, caps[3] = 0x01;  // bcdUSBTMC 1.00
  caps[4] = 0x04;                  // INDICATOR_PULSE
  caps[5] = 0x01;                  // TermChar
  caps[12] = 0x00, caps[13] = 0x01;
  caps[14] = 0x07;
  caps[15] = 0x0A;  // SCPI + RL1
  auto c = parse_capabilities(caps);
  REQUIRE(c);
  CHECK(c->status == Status::kSuccess);
  CHECK(c->bcd_usbtmc == 0x0100);
  CHECK(c->bcd_usb488 == 0x0100);
  CHECK(c->indicator_pulse());
  CHECK(!c->talk_only());
  CHECK(!c->listen_only());
  CHECK(c->term_char());
  CHECK(c->usb488_2());
  CHECK(c->ren_control());
  CHECK(c->trigger());
  CHECK(c->scpi());
  CHECK(!c->sr1());
  CHECK(c->rl1());
  CHECK(!c->dt1());
  // USB488 flags come from byte 15, not byte 4 (python-usbtmc's reading).
  caps[4] = 0x0F;
  caps[15] = 0x00;
  c = parse_capabilities(caps);
  REQUIRE(c);
  CHECK(!c->scpi());
  CHECK(c->talk_only());
  CHECK(parse_capabilities(std::span(caps).first(15)).error() == Errc::kTruncated);
  CHECK(parse_capabilities(std::span(caps).first(16)));
}

TEST_CASE("usbtmc: abort and clear status responses") {
  auto ia = parse_initiate_abort_response(Bytes{0x80, 0x05});
  REQUIRE(ia);
  CHECK(ia->status == Status::kFailed);
  CHECK(ia->tag == 5);
  CHECK(parse_initiate_abort_response(Bytes{0x01}).error() == Errc::kTruncated);

  auto out = parse_check_abort_bulk_out_status(Bytes{0x02, 0, 0, 0, 0x10, 0x27, 0, 0});
  REQUIRE(out);
  CHECK(out->status == Status::kPending);
  CHECK(out->bytes_received == 10000);

  auto in = parse_check_abort_bulk_in_status(Bytes{0x01, 0x01, 0, 0, 3, 0, 0, 0});
  REQUIRE(in);
  CHECK(in->status == Status::kSuccess);
  CHECK(in->bulk_in_fifo_bytes);
  CHECK(in->bytes_transmitted == 3);
  CHECK(parse_check_abort_bulk_in_status(Bytes(7, 0)).error() == Errc::kTruncated);

  auto clr = parse_check_clear_status(Bytes{0x02, 0x01});
  REQUIRE(clr);
  CHECK(clr->status == Status::kPending);
  CHECK(clr->bulk_in_fifo_bytes);
  CHECK(parse_initiate_clear_response(Bytes{0x01})->status == Status::kSuccess);
  CHECK(parse_initiate_clear_response({}).error() == Errc::kTruncated);

  CHECK(to_string(Status::kSplitInProgress) == "SPLIT_IN_PROGRESS");
  CHECK(to_string(static_cast<Status>(0x55)) == "UNKNOWN");
}

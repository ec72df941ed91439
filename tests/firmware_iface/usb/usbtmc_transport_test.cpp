// usbtmc:// transport against an emulated USB488 instrument (umockdev).
#include <doctest/doctest.h>

#include "pnn/firmware_iface/usb_transport.hpp"
#include "usb_models.hpp"
#include "usb_test_util.hpp"

namespace fi = pnn::firmware_iface;
using namespace pnn::test_usb;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t kVid = 0x0957;
constexpr std::uint16_t kPid = 0x1755;
const std::string kIdn = "PNN-TEST,MOCK-TMC,SN0001,1.0\n";

struct Bench {
  explicit Bench(TmcBehaviour behaviour = {}, std::uint16_t vid = kVid,
                 fi::UsbtmcOptions options = {})
      : instrument(std::make_shared<UsbtmcInstrument>(usbtmc_spec(vid, kPid, "SN0001"),
                                                      std::move(behaviour))) {
    bus.plug(instrument, 1, 5);
    options.match = {vid, kPid, "SN0001"};
    transport = fi::make_usbtmc_transport(std::move(options));
  }
  void open() {
    const auto ec = transport->open(fi::deadline_after(2s));
    REQUIRE_MESSAGE(!ec, ec.message() << " / " << transport->describe());
    instrument->clear_events();
  }
  std::string ask(const std::string& text, std::error_code& ec) {
    return query(*transport, text, ec);
  }
  MockUsbBus bus;
  std::shared_ptr<UsbtmcInstrument> instrument;
  fi::TransportPtr transport;
};

std::vector<std::string> without_discards(std::vector<std::string> events) {
  std::erase_if(events, [](const std::string& e) { return e.rfind("discard", 0) == 0; });
  return events;
}

}  // namespace

TEST_CASE(
    "usbtmc: open claims, clears (polling while PENDING), clears the halt, reads "
    "capabilities") {
  Bench b({.clear_pending_polls = 2});
  REQUIRE_FALSE(b.transport->open(fi::deadline_after(2s)));
  CHECK(join(b.instrument->events()) ==
        join({"claim 0", "INITIATE_CLEAR", "CHECK_CLEAR_STATUS", "CHECK_CLEAR_STATUS",
              "CHECK_CLEAR_STATUS", "clear_halt 0x02", "GET_CAPABILITIES"}));
  CHECK(b.transport->describe().find("usbtmc 0957:1755 serial SN0001 (bus 1 device 5") !=
        std::string::npos);
  b.transport->close();
  CHECK(b.instrument->events().back() == "release 0");
}

TEST_CASE("usbtmc: *IDN? round trip, bTags count up from 1 and every header is checked") {
  Bench b;
  b.open();
  std::error_code ec;
  CHECK(b.ask("*IDN?\n", ec) == kIdn);
  REQUIRE_FALSE(ec);
  CHECK(b.instrument->messages() == std::vector<std::string>{"*IDN?"});
  // MSG_OUT carries bTag 1, the REQUEST_DEV_DEP_MSG_IN bTag 2; the answer echoed 2 (checked by
  // the transport: a wrong echo is kIo, see the corruption case).
  CHECK(b.instrument->tags() == std::vector<std::uint8_t>{1, 2});
  CHECK(join(b.instrument->events()) == join({"MSG_OUT tag=1 size=6 eom", "REQUEST_IN tag=2"}));
  // Every DEV_DEP_MSG_OUT transfer is padded to a multiple of 4 bytes.
  for (const auto& t : b.instrument->out_transfers()) CHECK(t.size() % 4 == 0);
  CHECK(b.instrument->out_transfers()[0].size() == 20);  // 12 + 6 → 20
}

TEST_CASE("usbtmc: bTag wraps from 255 to 1 and never takes 0") {
  Bench b;
  b.open();
  std::error_code ec;
  for (int i = 0; i < 140; ++i) {
    REQUIRE(b.ask("*IDN?\n", ec) == kIdn);
  }
  const auto tags = b.instrument->tags();
  REQUIRE(tags.size() == 280);
  std::uint8_t expected = 1;
  for (auto tag : tags) {
    REQUIRE(tag == expected);
    expected = static_cast<std::uint8_t>(expected == 255 ? 1 : expected + 1);
  }
  CHECK(std::count(tags.begin(), tags.end(), std::uint8_t{1}) == 2);
}

TEST_CASE("usbtmc: a long message is split over transfers with EOM on the last only") {
  Bench b({}, kVid, {.max_out_transfer_bytes = 32});
  b.open();
  const std::string command = "SOURCE:VOLTAGE:LEVEL:IMMEDIATE:AMPLITUDE 1.25;:OUTP ON\n";
  REQUIRE(command.size() == 55);
  REQUIRE_FALSE(
      b.transport->write({reinterpret_cast<const std::uint8_t*>(command.data()), command.size()},
                         fi::deadline_after(2s)));
  // (32 − 12) rounded down to 4 = 20 payload bytes per transfer.
  CHECK(join(b.instrument->events()) ==
        join({"MSG_OUT tag=1 size=20", "MSG_OUT tag=2 size=20", "MSG_OUT tag=3 size=15 eom"}));
  CHECK(b.instrument->messages() ==
        std::vector<std::string>{command.substr(0, command.size() - 1)});
  for (const auto& t : b.instrument->out_transfers()) {
    CHECK(t.size() <= 32);
    CHECK(t.size() % 4 == 0);
  }
  // An empty message sends nothing.
  CHECK_FALSE(b.transport->write({}, fi::deadline_after(1s)));
  CHECK(b.instrument->out_transfers().size() == 3);
}

TEST_CASE("usbtmc: a reply over many packets and several transfers is read until EOM") {
  Bench b({.max_per_transfer = 700});
  b.open();
  std::error_code ec;
  const std::string reply = b.ask("DATA? 2000\n", ec);
  REQUIRE_FALSE(ec);
  REQUIRE(reply.size() == 2001);
  for (std::size_t i = 0; i < 2000; ++i) REQUIRE(reply[i] == static_cast<char>('0' + i % 10));
  CHECK(reply.back() == '\n');
  CHECK(b.instrument->requests_in() == 3);  // 700 + 700 + 601, EOM on the third
}

TEST_CASE("usbtmc: bytes beyond the caller's buffer wait for the next read_some") {
  Bench b;
  b.open();
  const std::string cmd = "DATA? 1000\n";
  REQUIRE_FALSE(b.transport->write({reinterpret_cast<const std::uint8_t*>(cmd.data()), cmd.size()},
                                   fi::deadline_after(1s)));
  std::vector<std::uint8_t> buf(100);
  std::string got;
  while (got.size() < 1001) {
    auto n = b.transport->read_some(buf, fi::deadline_after(1s));
    REQUIRE(n);
    CHECK(*n <= 100);
    got.append(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  CHECK(got.size() == 1001);
  CHECK(got.substr(0, 12) == "012345678901");
  CHECK(b.instrument->requests_in() == 1);  // one Bulk-IN message, handed out in pieces
}

TEST_CASE("usbtmc: TermChar is requested only when GET_CAPABILITIES advertises it") {
  for (const bool capable : {true, false}) {
    CAPTURE(capable);
    Bench b({.term_char_capable = capable}, kVid, {.term_char = std::uint8_t{'\n'}});
    b.open();
    std::error_code ec;
    CHECK(b.ask("*IDN?\n", ec) == kIdn);
    const auto events = b.instrument->events();
    REQUIRE(events.size() == 2);
    CHECK(events[1] == (capable ? "REQUEST_IN tag=2 term=10" : "REQUEST_IN tag=2"));
  }
}

TEST_CASE(
    "usbtmc: a device that does not answer gives kTimeout, the next call runs "
    "INITIATE_ABORT_BULK_IN and polls CHECK_ABORT_BULK_IN_STATUS until not PENDING") {
  Bench b({.silent = true, .abort_pending_polls = 2});
  b.open();
  std::error_code ec;
  const auto deadline = fi::deadline_after(150ms);
  CHECK(query(*b.transport, "*IDN?\n", ec, 150ms).empty());
  CHECK(ec == fi::Errc::kTimeout);
  CHECK(fi::Clock::now() >= deadline);
  CHECK(join(b.instrument->events()) ==
        join({"MSG_OUT tag=1 size=6 eom", "REQUEST_IN tag=2", "discard IN 0x81"}));
  b.instrument->clear_events();

  b.instrument->configure({.abort_pending_polls = 2});  // answers again
  CHECK(b.ask("*IDN?\n", ec) == kIdn);
  REQUIRE_FALSE(ec);
  CHECK(join(without_discards(b.instrument->events())) ==
        join({"INITIATE_ABORT_BULK_IN tag=2", "CHECK_ABORT_BULK_IN_STATUS",
              "CHECK_ABORT_BULK_IN_STATUS", "CHECK_ABORT_BULK_IN_STATUS",
              "MSG_OUT tag=3 size=6 eom", "REQUEST_IN tag=4"}));
}

TEST_CASE(
    "usbtmc: an abort the device refuses falls back to INITIATE_CLEAR, "
    "CHECK_CLEAR_STATUS, CLEAR_HALT") {
  Bench b({.silent = true, .abort_fails = true, .clear_pending_polls = 1});
  b.open();
  std::error_code ec;
  query(*b.transport, "*IDN?\n", ec, 100ms);
  REQUIRE(ec == fi::Errc::kTimeout);
  b.instrument->clear_events();
  b.instrument->configure({.abort_fails = true, .clear_pending_polls = 1});
  CHECK(b.ask("*IDN?\n", ec) == kIdn);
  CHECK(join(without_discards(b.instrument->events())) ==
        join({"INITIATE_ABORT_BULK_IN tag=2", "INITIATE_CLEAR", "CHECK_CLEAR_STATUS",
              "CHECK_CLEAR_STATUS", "clear_halt 0x02", "MSG_OUT tag=3 size=6 eom",
              "REQUEST_IN tag=4"}));
}

TEST_CASE(
    "usbtmc: a write the device does not accept gives kTimeout, the next call runs "
    "INITIATE_ABORT_BULK_OUT, CHECK_ABORT_BULK_OUT_STATUS, CLEAR_HALT") {
  Bench b({.abort_pending_polls = 1});
  b.open();
  b.instrument->configure({.nak_out = true, .abort_pending_polls = 1});  // open's clear ends NAKs
  const std::string cmd = "*RST\n";
  CHECK(b.transport->write({reinterpret_cast<const std::uint8_t*>(cmd.data()), cmd.size()},
                           fi::deadline_after(100ms)) == fi::Errc::kTimeout);
  CHECK(join(b.instrument->events()) == join({"discard OUT 0x02"}));
  b.instrument->clear_events();
  std::error_code ec;
  CHECK(b.ask("*IDN?\n", ec) == kIdn);  // the abort also ends the NAKs
  CHECK(join(b.instrument->events()) ==
        join({"INITIATE_ABORT_BULK_OUT tag=1", "CHECK_ABORT_BULK_OUT_STATUS",
              "CHECK_ABORT_BULK_OUT_STATUS", "clear_halt 0x02", "MSG_OUT tag=2 size=6 eom",
              "REQUEST_IN tag=3"}));
}

TEST_CASE("usbtmc: a corrupted Bulk-IN header is kIo, not a crash, and the link recovers") {
  using C = TmcCorruption;
  for (const auto& [corruption, why] :
       {std::pair{C::kTagInverse, "bTag mismatch"}, std::pair{C::kWrongTag, "bTag mismatch"},
        std::pair{C::kWrongMsgId, "MsgID"}, std::pair{C::kShort, "truncated"}}) {
    CAPTURE(why);
    Bench b({.corrupt_next = corruption});
    b.open();
    std::error_code ec;
    b.ask("*IDN?\n", ec);
    CHECK(ec == fi::Errc::kIo);
    const auto text = b.transport->describe();
    CHECK(text.find("bad Bulk-IN header answering bTag 2") != std::string::npos);
    CHECK(text.find(why) != std::string::npos);
    CHECK(b.transport->is_open());
    // Recovery (abort: nothing in progress → FAILED → clear) runs before the next query.
    CHECK(b.ask("*IDN?\n", ec) == kIdn);
    CHECK_FALSE(ec);
    CHECK(contains(b.instrument->events(), "INITIATE_CLEAR"));
  }
}

TEST_CASE("usbtmc: TransferSize larger than what arrived is clamped to the bytes present") {
  Bench b({.declare_extra = 100});
  b.open();
  std::error_code ec;
  CHECK(b.ask("*IDN?\n", ec) == kIdn);
}

TEST_CASE(
    "usbtmc: a device sending more than one IN transfer holds is read through to "
    "TransferSize") {
  Bench b({.ignore_max_size = true}, kVid, {.max_in_transfer_bytes = 100});
  b.open();
  std::error_code ec;
  const auto reply = b.ask("DATA? 3000\n", ec);
  REQUIRE_FALSE(ec);
  CHECK(reply.size() == 3001);
  CHECK(b.instrument->requests_in() == 1);
  // IN transfers are 512 bytes (100 + 12 rounded up to one packet).
  for (const auto& [ep, length] : b.instrument->in_urb_lengths()) {
    if (ep == UsbtmcInstrument::kIn) CHECK(length == 512);
  }
}

TEST_CASE("usbtmc: Rigol's empty first Bulk-IN is read again, elsewhere it is an error") {
  {
    Bench rigol({.empty_first_in = true}, 0x1ab1);
    rigol.open();
    std::error_code ec;
    CHECK(rigol.ask("*IDN?\n", ec) == kIdn);
    CHECK_FALSE(ec);
  }
  {
    Bench other({.empty_first_in = true}, kVid);
    other.open();
    std::error_code ec;
    other.ask("*IDN?\n", ec);
    CHECK(ec == fi::Errc::kIo);
    CHECK(other.transport->describe().find("(0 bytes)") != std::string::npos);
  }
}

TEST_CASE("usbtmc: clear() runs the INITIATE_CLEAR sequence and drops buffered bytes") {
  Bench b({.clear_pending_polls = 1});
  b.open();
  const std::string cmd = "DATA? 500\n";
  REQUIRE_FALSE(b.transport->write({reinterpret_cast<const std::uint8_t*>(cmd.data()), cmd.size()},
                                   fi::deadline_after(1s)));
  std::vector<std::uint8_t> buf(10);
  REQUIRE(b.transport->read_some(buf, fi::deadline_after(1s)));  // 491 bytes stay buffered
  b.instrument->clear_events();
  REQUIRE_FALSE(b.transport->clear(fi::deadline_after(1s)));
  CHECK(join(b.instrument->events()) ==
        join({"INITIATE_CLEAR", "CHECK_CLEAR_STATUS", "CHECK_CLEAR_STATUS", "clear_halt 0x02"}));
  std::error_code ec;
  CHECK(b.ask("*IDN?\n", ec) == kIdn);  // not the rest of DATA?
}

TEST_CASE(
    "usbtmc: unplug gives kDisconnected, re-plugged elsewhere, open() finds it by serial "
    "and clears it again") {
  Bench b;
  b.open();
  std::error_code ec;
  REQUIRE(b.ask("*IDN?\n", ec) == kIdn);
  b.bus.unplug(b.instrument);
  b.ask("*IDN?\n", ec);
  CHECK(ec == fi::Errc::kDisconnected);
  CHECK_FALSE(b.transport->is_open());
  CHECK(b.transport->open(fi::deadline_after(1s)) == fi::Errc::kDisconnected);
  b.bus.plug(b.instrument, 2, 17);
  b.instrument->clear_events();
  REQUIRE_FALSE(b.transport->open(fi::deadline_after(2s)));
  CHECK(b.transport->describe().find("bus 2 device 17") != std::string::npos);
  const auto events = b.instrument->events();
  REQUIRE(events.size() >= 2);
  CHECK(events[0] == "claim 0");
  CHECK(events[1] == "INITIATE_CLEAR");
  CHECK(b.ask("*IDN?\n", ec) == kIdn);
  // bTags restart with the new session.
  CHECK(b.instrument->tags().back() == 2);
}

TEST_CASE("usbtmc: a device without a USBTMC interface is kIo naming what it has") {
  MockUsbBus bus;
  auto board = std::make_shared<BulkBoard>(bulk_board_spec(0x1209, 0x0001, "A1"),
                                           std::make_shared<FrameResponder>("board"));
  bus.plug(board, 1, 4);
  auto t = fi::make_usbtmc_transport({.match = {0x1209, 0x0001, "A1"}});
  CHECK(t->open(fi::deadline_after(2s)) == fi::Errc::kIo);
  const auto text = t->describe();
  CHECK(text.find("1209:0001 serial A1 has no USBTMC interface (class fe/03/00 or fe/03/01)") !=
        std::string::npos);
  CHECK(text.find("its interfaces: 0 (class ff/00/00") != std::string::npos);
  CHECK(text.find("raw boards use usb://") != std::string::npos);
}

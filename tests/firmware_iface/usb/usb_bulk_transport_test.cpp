// usb:// raw bulk transport against emulated frame-protocol boards (umockdev).
#include <doctest/doctest.h>

#include <thread>

#include "pnn/firmware_iface/usb_transport.hpp"
#include "usb_models.hpp"
#include "usb_test_util.hpp"

namespace fi = pnn::firmware_iface;
using namespace pnn::test_usb;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t kVid = 0x1209;
constexpr std::uint16_t kPid = 0x0001;

std::shared_ptr<BulkBoard> make_board(const std::string& serial, std::size_t reply_bytes = 300) {
  return std::make_shared<BulkBoard>(
      bulk_board_spec(kVid, kPid, serial),
      std::make_shared<FrameResponder>("board-" + serial, reply_bytes));
}

fi::TransportPtr make_transport(std::string serial, fi::UsbBulkOptions options = {}) {
  options.match = {kVid, kPid, std::move(serial)};
  return fi::make_usb_bulk_transport(std::move(options));
}

std::string name_of(const ReceivedFrame& f) { return {f.payload.begin(), f.payload.end()}; }

}  // namespace

TEST_CASE("usb bulk: of two boards with one VID:PID the serial picks the right one") {
  MockUsbBus bus;
  auto a = make_board("A1");
  auto b = make_board("B2");
  bus.plug(a, 1, 4);
  bus.plug(b, 1, 7);
  for (const auto& [serial, board, other, address] :
       {std::tuple{"B2", b, a, "bus 1 device 7"}, std::tuple{"A1", a, b, "bus 1 device 4"}}) {
    CAPTURE(serial);
    const auto others_before = other->out_transfers().size();
    auto t = make_transport(serial);
    REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
    CHECK(t->describe().find(address) != std::string::npos);
    std::error_code ec;
    auto reply = frame_round_trip(*t, fi::MessageType::kIdentify, 11, ec);
    REQUIRE_MESSAGE(reply, ec.message() << " / " << t->describe());
    CHECK(reply->header.type == fi::MessageType::kIdentifyReply);
    CHECK(reply->header.seq == 11);
    CHECK(name_of(*reply) == std::string("board-") + serial);
    CHECK_FALSE(board->out_transfers().empty());
    CHECK(other->out_transfers().size() == others_before);
  }
}

TEST_CASE("usb bulk: claims the interface that has the bulk pair and releases it on close") {
  MockUsbBus bus;
  auto board = make_board("A1");
  bus.plug(board, 1, 4);
  auto t = make_transport("A1", {.read_transfer_bytes = 1000});
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  CHECK(t->is_open());
  // Interface 0 (interrupt IN only) is skipped: the descriptors, not a constant, decide.
  CHECK(join(board->events()) == join({"claim 1"}));
  CHECK(t->describe().find("interface 1") != std::string::npos);
  std::error_code ec;
  REQUIRE(frame_round_trip(*t, fi::MessageType::kIdentify, 1, ec));
  // 1000 bytes asked for, whole 64-byte packets submitted.
  const auto lengths = board->in_urb_lengths();
  REQUIRE_FALSE(lengths.empty());
  for (const auto& [ep, length] : lengths) {
    CHECK(ep == BulkBoard::kIn);
    CHECK(length == 1024);
  }
  t->close();
  CHECK_FALSE(t->is_open());
  CHECK(join(board->events()) == join({"claim 1", "release 1"}));
  CHECK(t->write(std::vector<std::uint8_t>{1, 2}, fi::deadline_after(1s)) == fi::Errc::kNotOpen);
}

TEST_CASE("usb bulk: a reply longer than one packet arrives whole, surplus waits in the buffer") {
  MockUsbBus bus;
  auto board = make_board("A1", 300);  // 324-byte frame = 6 packets of 64
  bus.plug(board, 1, 4);
  auto t = make_transport("A1");
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  std::error_code ec;
  auto reply = frame_round_trip(*t, fi::MessageType::kReadOutputs, 42, ec, /*chunk=*/50);
  REQUIRE_MESSAGE(reply, ec.message() << " / " << t->describe());
  CHECK(reply->header.type == fi::MessageType::kOutputsReply);
  CHECK(reply->header.seq == 42);
  REQUIRE(reply->payload.size() == 300);
  for (std::size_t i = 0; i < reply->payload.size(); ++i) {
    REQUIRE(reply->payload[i] == static_cast<std::uint8_t>(i));
  }
  // Seven reads of 50 bytes, one USB transfer: the rest came from the surplus buffer.
  CHECK(board->in_urb_lengths().size() == 1);
}

TEST_CASE("usb bulk: no reply gives kTimeout at the deadline and cancels the IN transfer") {
  MockUsbBus bus;
  auto board = make_board("A1");
  bus.plug(board, 1, 4);
  auto t = make_transport("A1");
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  std::vector<std::uint8_t> buf(64);
  const auto deadline = fi::deadline_after(100ms);
  auto n = t->read_some(buf, deadline);
  REQUIRE_FALSE(n);
  CHECK(n.error() == fi::Errc::kTimeout);
  CHECK(fi::Clock::now() >= deadline);
  CHECK(contains(board->events(), "discard IN 0x85"));
  CHECK(board->pending_in_urbs() == 0);
  // The link is still usable.
  std::error_code ec;
  CHECK(frame_round_trip(*t, fi::MessageType::kIdentify, 2, ec));
}

TEST_CASE("usb bulk: a NAKed write times out, a stalled one gives kIo and clears the halt") {
  MockUsbBus bus;
  auto board = make_board("A1");
  bus.plug(board, 1, 4);
  auto t = make_transport("A1");
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  const std::vector<std::uint8_t> bytes{1, 2, 3, 4};

  board->set_nak_out(true);
  CHECK(t->write(bytes, fi::deadline_after(80ms)) == fi::Errc::kTimeout);
  CHECK(contains(board->events(), "discard OUT 0x03"));
  board->set_nak_out(false);

  board->set_stall_out(true);
  CHECK(t->write(bytes, fi::deadline_after(1s)) == fi::Errc::kIo);
  CHECK(contains(board->events(), "clear_halt 0x03"));
  CHECK(t->describe().find("stalled") != std::string::npos);
  board->set_stall_out(false);

  std::error_code ec;
  CHECK(frame_round_trip(*t, fi::MessageType::kIdentify, 3, ec));
}

TEST_CASE("usb bulk: clear() drains a late reply so it is not taken for the next answer") {
  MockUsbBus bus;
  auto board = make_board("A1");
  bus.plug(board, 1, 4);
  auto t = make_transport("A1");
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  std::vector<std::uint8_t> stale;
  fi::encode_frame(fi::MessageType::kAck, 99, {}, stale);
  board->inject_in(stale);
  board->inject_in(stale);
  REQUIRE_FALSE(t->clear(fi::deadline_after(1s)));
  std::error_code ec;
  auto reply = frame_round_trip(*t, fi::MessageType::kIdentify, 5, ec);
  REQUIRE(reply);
  CHECK(reply->header.seq == 5);
  CHECK(reply->header.type == fi::MessageType::kIdentifyReply);
}

TEST_CASE(
    "usb bulk: unplug gives kDisconnected, re-plugged at another address it is found by "
    "serial") {
  MockUsbBus bus;
  auto board = make_board("A1");
  auto other = make_board("Z9");
  bus.plug(other, 1, 2);
  bus.plug(board, 1, 4);
  auto t = make_transport("A1");
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  std::error_code ec;
  REQUIRE(frame_round_trip(*t, fi::MessageType::kIdentify, 1, ec));

  bus.unplug(board);
  std::vector<std::uint8_t> frame;
  fi::encode_frame(fi::MessageType::kIdentify, 2, {}, frame);
  CHECK(t->write(frame, fi::deadline_after(1s)) == fi::Errc::kDisconnected);
  CHECK_FALSE(t->is_open());
  // Gone: open() does not settle for the other board.
  CHECK(t->open(fi::deadline_after(1s)) == fi::Errc::kDisconnected);
  CHECK(t->describe().find("no USB device 1209:0001 serial A1") != std::string::npos);

  bus.plug(board, 3, 9);  // re-enumerated: new bus, new address
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  CHECK(t->describe().find("bus 3 device 9") != std::string::npos);
  auto reply = frame_round_trip(*t, fi::MessageType::kIdentify, 3, ec);
  REQUIRE_MESSAGE(reply, ec.message() << " / " << t->describe());
  CHECK(name_of(*reply) == "board-A1");
  CHECK(other->out_transfers().empty());
}

TEST_CASE("usb bulk: unplug while a read waits ends the read with kDisconnected") {
  MockUsbBus bus;
  auto board = make_board("A1");
  bus.plug(board, 1, 4);
  auto t = make_transport("A1");
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  std::thread unplugger([&] {
    while (board->pending_in_urbs() == 0) std::this_thread::sleep_for(1ms);
    bus.unplug(board);
  });
  std::vector<std::uint8_t> buf(64);
  auto n = t->read_some(buf, fi::deadline_after(5s));
  unplugger.join();
  REQUIRE_FALSE(n);
  INFO(t->describe());
  CHECK(n.error() == fi::Errc::kDisconnected);
  CHECK_FALSE(t->is_open());
}

TEST_CASE(
    "usb bulk: with no serial given the first unit is pinned, another unit is "
    "kIdentityMismatch") {
  MockUsbBus bus;
  auto a = make_board("A1");
  bus.plug(a, 1, 4);
  auto t = make_transport("");
  REQUIRE_FALSE(t->open(fi::deadline_after(2s)));
  CHECK(t->describe().find("serial A1") != std::string::npos);
  bus.unplug(a);
  std::vector<std::uint8_t> buf(8);
  CHECK(t->read_some(buf, fi::deadline_after(1s)).error() == fi::Errc::kDisconnected);
  auto b = make_board("B2");
  bus.plug(b, 1, 5);
  CHECK(t->open(fi::deadline_after(1s)) == fi::Errc::kIdentityMismatch);
  const auto text = t->describe();
  CHECK(text.find("serial A1") != std::string::npos);
  CHECK(text.find("B2") != std::string::npos);
  bus.plug(a, 1, 6);
  CHECK_FALSE(t->open(fi::deadline_after(2s)));
  CHECK(b->events().empty());
}

TEST_CASE("usb bulk: a serial nobody has gives kDisconnected naming the serials present") {
  MockUsbBus bus;
  bus.plug(make_board("A1"), 1, 4);
  bus.plug(make_board("B2"), 1, 5);
  auto t = make_transport("C3");
  CHECK(t->open(fi::deadline_after(2s)) == fi::Errc::kDisconnected);
  const auto text = t->describe();
  CHECK(text.find("no USB device 1209:0001 serial C3") != std::string::npos);
  CHECK(text.find("A1") != std::string::npos);
  CHECK(text.find("B2") != std::string::npos);
}

TEST_CASE("usb bulk: an interface without a bulk pair gives kIo naming the interfaces") {
  MockUsbBus bus;
  auto board = make_board("A1");
  bus.plug(board, 1, 4);
  auto t = make_transport("A1", {.interface_number = 0});
  CHECK(t->open(fi::deadline_after(2s)) == fi::Errc::kIo);
  const auto text = t->describe();
  CHECK(text.find("has no interface 0") != std::string::npos);
  CHECK(text.find("0 (class ff/00/00, 1 endpoints), 1 (class ff/00/00, 2 endpoints)") !=
        std::string::npos);
  CHECK(board->events().empty());  // nothing claimed
}

// The TCP transport against the TCP device server (and against raw sockets where a test needs a
// peer that misbehaves): refused connections, deadlines on silent peers and full buffers, a peer
// that closes mid-reply, clear(), one client at a time, unplugging, stop().
#include <doctest/doctest.h>

// clang-format off
#include <utility>  // before Asio: Boost 1.74's Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
// clang-format on
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "pnn/firmware_iface/tcp_transport.hpp"

using namespace pnn::firmware_iface;
using namespace std::chrono_literals;

namespace {

// Echoes what it receives; "J…" is answered with "junk" at once and "ok" `delay` later; "U"
// unplugs it; "S" gets no answer at all.
class ScriptedEndpoint final : public DeviceEndpoint {
 public:
  std::chrono::milliseconds delay{0};
  std::atomic<bool> plugged{true};
  std::atomic<int> opens{0};
  std::atomic<int> clears{0};

  void receive(std::span<const std::uint8_t> bytes, Clock::time_point now,
               std::deque<DeviceOutput>& out) override {
    const std::string text(bytes.begin(), bytes.end());
    if (text.starts_with("U")) {
      plugged = false;
      out.push_back({to_bytes("never sent"), now});
    } else if (text.starts_with("J")) {
      out.push_back({to_bytes("junk"), now});
      out.push_back({to_bytes("ok"), now + delay});
    } else if (!text.starts_with("S")) {
      out.push_back({{bytes.begin(), bytes.end()}, now + delay});
    }
  }
  bool connected(Clock::time_point) override { return plugged; }
  void on_open(Clock::time_point) override { ++opens; }
  void on_clear() override { ++clears; }
  std::string name() const override { return "scripted"; }

  static std::vector<std::uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }
};

std::span<const std::uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Reads until `n` bytes arrived or an error; returns what arrived.
std::string read_n(Transport& t, std::size_t n, Deadline deadline,
                   std::error_code* error = nullptr) {
  std::string out;
  std::uint8_t buf[256];
  while (out.size() < n) {
    auto got =
        t.read_some(std::span<std::uint8_t>(buf, std::min(sizeof buf, n - out.size())), deadline);
    if (!got) {
      if (error != nullptr) *error = got.error();
      break;
    }
    out.append(reinterpret_cast<const char*>(buf), *got);
  }
  return out;
}

TransportPtr client_for(const TcpDeviceServer& server) {
  return make_tcp_transport({.host = "127.0.0.1", .port = server.port()});
}

}  // namespace

TEST_CASE("tcp transport: a refused connection is kDisconnected, bad options throw") {
  std::uint16_t port = 0;
  {
    TcpDeviceServer server(std::make_shared<ScriptedEndpoint>(), {});
    port = server.port();
    CHECK(port != 0);
    CHECK(server.address() == "127.0.0.1:" + std::to_string(port));
  }  // stopped: nothing listens on the port any more
  auto t = make_tcp_transport({.host = "127.0.0.1", .port = port});
  CHECK(t->open(deadline_after(2s)) == make_error_code(Errc::kDisconnected));
  CHECK_FALSE(t->is_open());
  std::uint8_t buf[4];
  CHECK(t->read_some(buf, deadline_after(10ms)).error() == make_error_code(Errc::kNotOpen));
  CHECK(t->write(as_bytes("x"), deadline_after(10ms)) == make_error_code(Errc::kNotOpen));
  CHECK(t->clear(deadline_after(10ms)) == make_error_code(Errc::kNotOpen));
  CHECK(t->describe() == "tcp 127.0.0.1:" + std::to_string(port) + " (scpi-raw)");

  CHECK_THROWS_AS(make_tcp_transport({.host = "", .port = 5025}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_tcp_transport({.host = "127.0.0.1", .port = 0}),
                       doctest::Contains("5025"), std::invalid_argument);
  CHECK_THROWS_AS(TcpDeviceServer(nullptr, {}), std::invalid_argument);
  TcpDeviceServer first(std::make_shared<ScriptedEndpoint>(), {});
  CHECK_THROWS_WITH_AS(
      TcpDeviceServer(std::make_shared<ScriptedEndpoint>(), {.port = first.port()}),
      doctest::Contains("cannot listen on 127.0.0.1:"), std::runtime_error);
}

TEST_CASE("tcp transport: round trip, replies held back until ready_at, silent peer times out") {
  auto ep = std::make_shared<ScriptedEndpoint>();
  ep->delay = 300ms;
  TcpDeviceServer server(ep, {});
  auto t = client_for(server);
  REQUIRE_FALSE(t->open(deadline_after(2s)));
  CHECK(t->is_open());
  CHECK_FALSE(t->open(deadline_after(2s)));  // idempotent
  REQUIRE_FALSE(t->write(as_bytes("*IDN?\n"), deadline_after(1s)));
  std::uint8_t buf[64];
  // The server holds the reply back for 300 ms: a read with a short deadline times out…
  CHECK(t->read_some(buf, deadline_after(20ms)).error() == make_error_code(Errc::kTimeout));
  // … and the link survives it: the reply comes later, whole.
  CHECK(read_n(*t, 6, deadline_after(5s)) == "*IDN?\n");

  REQUIRE_FALSE(t->write(as_bytes("S"), deadline_after(1s)));  // never answered
  CHECK(t->read_some(buf, deadline_after(50ms)).error() == make_error_code(Errc::kTimeout));
  CHECK(t->is_open());
  CHECK(ep->opens == 1);
}

TEST_CASE("tcp transport: clear() drains what has arrived, the later reply still comes") {
  auto ep = std::make_shared<ScriptedEndpoint>();
  ep->delay = 200ms;
  TcpDeviceServer server(ep, {});
  auto t = client_for(server);
  REQUIRE_FALSE(t->open(deadline_after(2s)));
  REQUIRE_FALSE(t->write(as_bytes("J"), deadline_after(1s)));
  // "junk" is one small send: once its first byte is here, all four are.
  CHECK(read_n(*t, 1, deadline_after(5s)) == "j");
  CHECK_FALSE(t->clear(deadline_after(1s)));
  CHECK(read_n(*t, 2, deadline_after(5s)) == "ok");
}

TEST_CASE("tcp transport: a peer that closes mid-reply gives the bytes sent, then kDisconnected") {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::thread peer([&] {
    asio::ip::tcp::socket s(io);
    acceptor.accept(s);
    char request[16];
    s.read_some(asio::buffer(request));
    asio::write(s, asio::buffer(std::string("#15ab")));  // a block that promised 5 bytes
    s.close();
  });
  auto t = make_tcp_transport({.host = "127.0.0.1", .port = port});
  REQUIRE_FALSE(t->open(deadline_after(2s)));
  REQUIRE_FALSE(t->write(as_bytes("WAV:DATA?\n"), deadline_after(1s)));
  std::error_code error;
  const std::string got = read_n(*t, 8, deadline_after(5s), &error);
  peer.join();
  CHECK(got == "#15ab");
  CHECK(error == make_error_code(Errc::kDisconnected));
  CHECK_FALSE(t->is_open());
}

TEST_CASE("tcp transport: a write that the peer does not take is bounded by its deadline") {
  namespace asio = boost::asio;
  asio::io_context io;
  // Listens but never accepts or reads: the kernel buffers fill, then the write must give up.
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto t = make_tcp_transport({.host = "127.0.0.1", .port = acceptor.local_endpoint().port()});
  REQUIRE_FALSE(t->open(deadline_after(2s)));
  const std::vector<std::uint8_t> big(64u << 20, 'x');
  CHECK(t->write(big, deadline_after(200ms)) == make_error_code(Errc::kTimeout));
  CHECK_FALSE(t->is_open());  // part of the message went out: the link is closed, not reused
}

TEST_CASE("tcp device server: one client at a time, the next is served once the first leaves") {
  auto ep = std::make_shared<ScriptedEndpoint>();
  TcpDeviceServer server(ep, {});
  auto a = client_for(server);
  auto b = client_for(server);
  REQUIRE_FALSE(a->open(deadline_after(2s)));
  REQUIRE_FALSE(a->write(as_bytes("a"), deadline_after(1s)));
  CHECK(read_n(*a, 1, deadline_after(5s)) == "a");
  REQUIRE_FALSE(b->open(deadline_after(2s)));  // connects into the backlog
  REQUIRE_FALSE(b->write(as_bytes("b"), deadline_after(1s)));
  std::uint8_t buf[4];
  CHECK(b->read_some(buf, deadline_after(100ms)).error() == make_error_code(Errc::kTimeout));
  a->close();
  CHECK(read_n(*b, 1, deadline_after(5s)) == "b");
  CHECK(server.num_connections() == 2);
  CHECK(ep->opens == 2);
  CHECK(ep->clears >= 1);
}

TEST_CASE(
    "tcp device server: an unplugged endpoint drops the client and refuses until re-plugged") {
  auto ep = std::make_shared<ScriptedEndpoint>();
  TcpDeviceServer server(ep, {});
  auto t = client_for(server);
  REQUIRE_FALSE(t->open(deadline_after(2s)));
  REQUIRE_FALSE(t->write(as_bytes("U"), deadline_after(1s)));
  std::uint8_t buf[16];
  CHECK(t->read_some(buf, deadline_after(5s)).error() == make_error_code(Errc::kDisconnected));
  CHECK_FALSE(t->is_open());
  CHECK(t->open(deadline_after(2s)) == make_error_code(Errc::kDisconnected));  // refused
  ep->plugged = true;
  std::error_code ec = make_error_code(Errc::kDisconnected);
  for (int i = 0; i < 500 && ec; ++i) {  // the server looks again every 10 ms
    ec = t->open(deadline_after(2s));
    if (ec) std::this_thread::sleep_for(10ms);
  }
  REQUIRE_FALSE(ec);
  REQUIRE_FALSE(t->write(as_bytes("back"), deadline_after(1s)));
  CHECK(read_n(*t, 4, deadline_after(5s)) == "back");
}

TEST_CASE("tcp device server: stop() disconnects the client and returns") {
  auto ep = std::make_shared<ScriptedEndpoint>();
  auto server = std::make_unique<TcpDeviceServer>(ep, TcpDeviceServer::Options{});
  auto t = client_for(*server);
  REQUIRE_FALSE(t->open(deadline_after(2s)));
  REQUIRE_FALSE(t->write(as_bytes("x"), deadline_after(1s)));
  CHECK(read_n(*t, 1, deadline_after(5s)) == "x");
  server->stop();
  server->stop();  // idempotent
  std::uint8_t buf[4];
  CHECK(t->read_some(buf, deadline_after(5s)).error() == make_error_code(Errc::kDisconnected));
  server.reset();
  CHECK(ep.use_count() == 1);  // the server let go of the endpoint
}

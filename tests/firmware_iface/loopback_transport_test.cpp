#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <vector>

#include "pnn/firmware_iface/transport.hpp"

using namespace pnn::firmware_iface;
using namespace std::chrono_literals;

namespace {

// Echoes every write back, `delay` later; can be unplugged.
class EchoEndpoint final : public DeviceEndpoint {
 public:
  std::chrono::milliseconds delay{0};
  std::atomic<bool> plugged{true};
  int opens = 0;
  int clears = 0;

  void receive(std::span<const std::uint8_t> bytes, Clock::time_point now,
               std::deque<DeviceOutput>& out) override {
    out.push_back({{bytes.begin(), bytes.end()}, now + delay});
  }
  bool connected(Clock::time_point) override { return plugged; }
  void on_open(Clock::time_point) override { ++opens; }
  void on_clear() override { ++clears; }
  std::string name() const override { return "echo"; }
};

std::vector<std::uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<std::uint8_t> out;
  for (int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

}  // namespace

TEST_CASE("loopback transport: replies arrive in order, split over short reads") {
  auto ep = std::make_shared<EchoEndpoint>();
  auto t = make_loopback_transport(ep);
  CHECK(t->write(bytes({1, 2, 3}), deadline_after(10ms)) == make_error_code(Errc::kNotOpen));
  REQUIRE(!t->open(deadline_after(10ms)));
  CHECK(ep->opens == 1);
  REQUIRE(!t->write(bytes({1, 2, 3}), deadline_after(10ms)));
  REQUIRE(!t->write(bytes({4}), deadline_after(10ms)));
  std::vector<std::uint8_t> buf(2);
  auto n = t->read_some(buf, deadline_after(10ms));
  REQUIRE(n);
  CHECK(*n == 2);
  CHECK(buf == bytes({1, 2}));
  n = t->read_some(buf, deadline_after(10ms));
  REQUIRE(n);
  CHECK(*n == 1);
  CHECK(buf[0] == 3);
  n = t->read_some(buf, deadline_after(10ms));
  REQUIRE(n);
  CHECK(buf[0] == 4);
  CHECK(t->read_some(buf, deadline_after(5ms)).error() == make_error_code(Errc::kTimeout));
  CHECK(t->describe() == "loopback to echo");
}

TEST_CASE("loopback transport: a reply later than the deadline is a timeout, clear() drops it") {
  auto ep = std::make_shared<EchoEndpoint>();
  ep->delay = 200ms;
  auto t = make_loopback_transport(ep);
  REQUIRE(!t->open(deadline_after(10ms)));
  REQUIRE(!t->write(bytes({9}), deadline_after(10ms)));
  std::vector<std::uint8_t> buf(4);
  CHECK(t->read_some(buf, deadline_after(5ms)).error() == make_error_code(Errc::kTimeout));
  REQUIRE(!t->clear(deadline_after(10ms)));
  CHECK(ep->clears == 1);
  ep->delay = 0ms;
  REQUIRE(!t->write(bytes({7}), deadline_after(10ms)));
  auto n = t->read_some(buf, deadline_after(10ms));
  REQUIRE(n);
  CHECK(buf[0] == 7);  // not the stale 9
}

TEST_CASE("loopback transport: unplug closes the link and open() fails until the device is back") {
  auto ep = std::make_shared<EchoEndpoint>();
  auto t = make_loopback_transport(ep);
  REQUIRE(!t->open(deadline_after(10ms)));
  ep->plugged = false;
  CHECK(t->write(bytes({1}), deadline_after(10ms)) == make_error_code(Errc::kDisconnected));
  CHECK(!t->is_open());
  CHECK(t->open(deadline_after(10ms)) == make_error_code(Errc::kDisconnected));
  ep->plugged = true;
  REQUIRE(!t->open(deadline_after(10ms)));
  CHECK(ep->opens == 2);
  REQUIRE(!t->write(bytes({5}), deadline_after(10ms)));
  std::vector<std::uint8_t> buf(1);
  REQUIRE(t->read_some(buf, deadline_after(10ms)));
  CHECK(buf[0] == 5);
}

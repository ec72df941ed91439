// Host side of a TCP SCPI-raw link. Each call starts one asynchronous operation on the
// transport's private io_context and runs that context until the operation completes or the
// deadline passes; on the deadline the operation is cancelled and the context is run until the
// cancelled handler has fired, so no handler outlives the buffers it refers to.
#include "pnn/firmware_iface/tcp_transport.hpp"

// clang-format off
#include <utility>  // before Asio: Boost 1.74's Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
// clang-format on
#include <algorithm>
#include <stdexcept>

namespace pnn::firmware_iface {

TcpOptions TcpOptions::parse(std::string_view target) {
  const std::string t(target);
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("TCP target '" + t + "': " + why + " (expected HOST:PORT)");
  };
  std::string host, port;
  if (!t.empty() && t.front() == '[') {
    const auto close = t.find(']');
    if (close == std::string::npos || close + 1 >= t.size() || t[close + 1] != ':') {
      throw bad("IPv6 host without ']:PORT'");
    }
    host = t.substr(1, close - 1);
    port = t.substr(close + 2);
  } else {
    const auto colon = t.rfind(':');
    if (colon == std::string::npos) throw bad("no port");
    host = t.substr(0, colon);
    port = t.substr(colon + 1);
  }
  const bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  const long value = digits ? std::stol(port) : 0;
  if (host.empty()) throw bad("no host");
  if (value < 1 || value > 65535) throw bad("port '" + port + "' is not 1..65535");
  TcpOptions o;
  o.host = host;
  o.port = static_cast<std::uint16_t>(value);
  return o;
}

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

bool is_link_loss(const boost::system::error_code& ec) {
  namespace e = asio::error;
  return ec == e::eof || ec == e::connection_reset || ec == e::connection_refused ||
         ec == e::connection_aborted || ec == e::broken_pipe || ec == e::not_connected ||
         ec == e::host_unreachable || ec == e::network_unreachable || ec == e::network_down ||
         ec == e::network_reset || ec == e::timed_out || ec == e::host_not_found ||
         ec == e::host_not_found_try_again || ec == e::no_data || ec == e::shut_down;
}

class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(TcpOptions options) : options_(std::move(options)) {}
  ~TcpTransport() override { close(); }

  std::error_code open(Deadline deadline) override {
    if (socket_.is_open()) return {};
    const Deadline setup = std::min(deadline, Clock::now() + options_.connect_timeout);

    tcp::resolver resolver(io_);
    tcp::resolver::results_type endpoints;
    boost::system::error_code resolve_ec;
    bool resolved = false;
    resolver.async_resolve(options_.host, std::to_string(options_.port),
                           [&](const boost::system::error_code& ec, tcp::resolver::results_type r) {
                             resolve_ec = ec;
                             endpoints = std::move(r);
                             resolved = true;
                           });
    if (!run_until(setup, resolved, [&] { resolver.cancel(); })) return Errc::kTimeout;
    if (resolve_ec) return is_link_loss(resolve_ec) ? Errc::kDisconnected : Errc::kIo;

    boost::system::error_code connect_ec;
    bool connected = false;
    asio::async_connect(socket_, endpoints,
                        [&](const boost::system::error_code& ec, const tcp::endpoint&) {
                          connect_ec = ec;
                          connected = true;
                        });
    if (!run_until(setup, connected, [&] { close(); })) {
      close();
      return Errc::kTimeout;
    }
    if (connect_ec) {
      close();
      return is_link_loss(connect_ec) ? Errc::kDisconnected : Errc::kIo;
    }
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);  // small queries must not wait for Nagle
    socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    return {};
  }

  void close() noexcept override {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  bool is_open() const noexcept override { return socket_.is_open(); }

  std::error_code write(std::span<const std::uint8_t> bytes, Deadline deadline) override {
    if (!socket_.is_open()) return Errc::kNotOpen;
    boost::system::error_code result;
    bool done = false;
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [&](const boost::system::error_code& ec, std::size_t) {
                        result = ec;
                        done = true;
                      });
    run_until(deadline, done, [&] { socket_.cancel(); });
    if (result == asio::error::operation_aborted) {
      close();  // part of the message may have been sent: the stream is out of step
      return Errc::kTimeout;
    }
    return map(result);
  }

  Result<std::size_t> read_some(std::span<std::uint8_t> buffer, Deadline deadline) override {
    if (!socket_.is_open()) return Errc::kNotOpen;
    if (buffer.empty()) return std::size_t{0};
    boost::system::error_code result;
    std::size_t n = 0;
    bool done = false;
    socket_.async_read_some(asio::buffer(buffer.data(), buffer.size()),
                            [&](const boost::system::error_code& ec, std::size_t got) {
                              result = ec;
                              n = got;
                              done = true;
                            });
    run_until(deadline, done, [&] { socket_.cancel(); });
    // A read that completed in the same instant as the cancel still delivered its bytes.
    if (!result && n > 0) return n;
    if (result == asio::error::operation_aborted || !result) return Errc::kTimeout;
    return map(result);
  }

  std::error_code clear(Deadline) override {
    if (!socket_.is_open()) return Errc::kNotOpen;
    std::uint8_t sink[4096];
    for (;;) {
      boost::system::error_code ec;
      const std::size_t available = socket_.available(ec);
      if (ec) return map(ec);
      if (available == 0) return {};
      socket_.read_some(asio::buffer(sink), ec);  // does not block: bytes are available
      if (ec) return map(ec);
    }
  }

  std::string describe() const override {
    return "tcp " + options_.host + ":" + std::to_string(options_.port) + " (scpi-raw)";
  }

 private:
  // Runs io_ until `done` or the deadline. On the deadline calls `cancel` and runs io_ until the
  // cancelled handler has set `done`. Returns false if the deadline passed first.
  template <class Cancel>
  bool run_until(Deadline deadline, const bool& done, Cancel&& cancel) {
    io_.restart();
    while (!done) {
      if (io_.run_one_until(deadline) == 0 && !done) {
        cancel();
        io_.restart();
        while (!done) io_.run_one();
        return false;
      }
    }
    return true;
  }

  std::error_code map(const boost::system::error_code& ec) {
    if (!ec) return {};
    if (is_link_loss(ec)) {
      close();
      return Errc::kDisconnected;
    }
    return Errc::kIo;
  }

  TcpOptions options_;
  asio::io_context io_;
  tcp::socket socket_{io_};
};

}  // namespace

TransportPtr make_tcp_transport(TcpOptions options) {
  if (options.host.empty()) {
    throw std::invalid_argument("make_tcp_transport: empty host (give a name or an address)");
  }
  if (options.port == 0) {
    throw std::invalid_argument("make_tcp_transport: port 0 (SCPI-raw instruments use 5025)");
  }
  return std::make_unique<TcpTransport>(std::move(options));
}

}  // namespace pnn::firmware_iface

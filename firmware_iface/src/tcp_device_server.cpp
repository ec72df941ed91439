// Device side of a TCP SCPI-raw link: one io_context on one thread owns the listening socket, the
// current client's socket and the timers; the endpoint is only ever called from that thread.
// Handlers carry the number of the session they belong to, so a handler that fires after its
// session ended (a cancelled read, a pacing timer) does nothing.
#include "pnn/firmware_iface/tcp_transport.hpp"

// clang-format off
#include <utility>  // before Asio: Boost 1.74's Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
// clang-format on
#include <array>
#include <atomic>
#include <deque>
#include <stdexcept>
#include <thread>

namespace pnn::firmware_iface {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct TcpDeviceServer::Impl {
  Impl(std::shared_ptr<DeviceEndpoint> ep, Options opts)
      : endpoint(std::move(ep)), options(std::move(opts)) {
    tcp::resolver resolver(io);
    boost::system::error_code ec;
    const auto results =
        resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      throw std::runtime_error(
          "cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
          (ec ? ec.message() : "no address") + " (give a numeric address such as 127.0.0.1)");
    }
    local = results.begin()->endpoint();
    if (const auto err = listen()) {
      throw std::runtime_error("cannot listen on " + options.host + ":" +
                               std::to_string(options.port) + ": " + err.message() +
                               " (is another server on this port? choose another, or 0 for a "
                               "free one)");
    }
    local = acceptor.local_endpoint();
    start_accept();
    thread = std::thread([this] { io.run(); });
  }

  boost::system::error_code listen() {
    boost::system::error_code ec;
    acceptor.open(local.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(local, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      boost::system::error_code ignored;
      acceptor.close(ignored);
    }
    return ec;
  }

  void start_accept() {
    if (!endpoint->connected(Clock::now())) {
      unplugged();
      return;
    }
    acceptor.async_accept(client, [this](const boost::system::error_code& ec) {
      if (ec) {
        if (acceptor.is_open()) start_accept();  // a transient accept error; keep listening
        return;
      }
      const auto now = Clock::now();
      if (!endpoint->connected(now)) {  // unplugged while the connection was being set up
        close_client();
        unplugged();
        return;
      }
      boost::system::error_code ignored;
      client.set_option(tcp::no_delay(true), ignored);
      ++session;
      ++connections;
      endpoint->on_open(now);
      read();
    });
  }

  void read() {
    client.async_read_some(asio::buffer(buffer),
                           [this, s = session](const boost::system::error_code& ec, std::size_t n) {
                             if (s != session) return;
                             if (ec) {
                               end_session();
                               start_accept();
                               return;
                             }
                             const auto now = Clock::now();
                             endpoint->receive({buffer.data(), n}, now, pending);
                             if (!endpoint->connected(now)) {
                               end_session();
                               unplugged();
                               return;
                             }
                             pump();
                             read();
                           });
  }

  // Sends the queued replies in order, each once its ready_at has come.
  void pump() {
    if (writing || pending.empty()) return;
    const auto now = Clock::now();
    if (pending.front().ready_at > now) {
      if (!pacing) {
        pacing = true;
        pacer.expires_at(pending.front().ready_at);
        pacer.async_wait([this, s = session](const boost::system::error_code&) {
          if (s != session) return;
          pacing = false;
          pump();
        });
      }
      return;
    }
    if (!endpoint->connected(now)) {
      end_session();
      unplugged();
      return;
    }
    writing = true;
    asio::async_write(client, asio::buffer(pending.front().bytes),
                      [this, s = session](const boost::system::error_code& ec, std::size_t) {
                        if (s != session) return;
                        writing = false;
                        pending.pop_front();
                        if (ec) {
                          end_session();
                          start_accept();
                          return;
                        }
                        pump();
                      });
  }

  void close_client() {
    boost::system::error_code ignored;
    client.shutdown(tcp::socket::shutdown_both, ignored);
    client.close(ignored);
  }

  void end_session() {
    ++session;  // every handler of the old session becomes a no-op
    close_client();
    pacer.cancel();
    pacing = false;
    writing = false;
    pending.clear();
    endpoint->on_clear();
  }

  // The instrument is unplugged: refuse connections until it is back, then listen again.
  void unplugged() {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    poll.expires_after(options.poll_interval);
    poll.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      if (!endpoint->connected(Clock::now()) || listen()) {
        unplugged();  // still away (or the port is briefly unavailable): look again later
        return;
      }
      start_accept();
    });
  }

  void stop() noexcept {
    if (stopped.exchange(true)) return;
    io.stop();
    if (thread.joinable()) thread.join();
    boost::system::error_code ignored;
    acceptor.close(ignored);
    close_client();
  }

  std::shared_ptr<DeviceEndpoint> endpoint;
  Options options;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp::socket client{io};
  asio::steady_timer pacer{io};
  asio::steady_timer poll{io};
  tcp::endpoint local;
  std::array<std::uint8_t, 64 * 1024> buffer{};
  std::deque<DeviceOutput> pending;  // references stay valid across push_back (async_write)
  std::uint64_t session = 0;
  bool writing = false;
  bool pacing = false;
  std::atomic<std::uint64_t> connections{0};
  std::atomic<bool> stopped{false};
  std::thread thread;
};

TcpDeviceServer::TcpDeviceServer(std::shared_ptr<DeviceEndpoint> endpoint, Options options) {
  if (!endpoint) throw std::invalid_argument("TcpDeviceServer: null endpoint");
  impl_ = std::make_unique<Impl>(std::move(endpoint), std::move(options));
}

TcpDeviceServer::~TcpDeviceServer() { stop(); }

std::uint16_t TcpDeviceServer::port() const noexcept { return impl_->local.port(); }

std::string TcpDeviceServer::address() const {
  const auto a = impl_->local.address();
  const std::string host = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return host + ":" + std::to_string(port());
}

std::uint64_t TcpDeviceServer::num_connections() const noexcept { return impl_->connections; }

void TcpDeviceServer::stop() noexcept { impl_->stop(); }

}  // namespace pnn::firmware_iface

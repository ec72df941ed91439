#pragma once
// A small HTTP/1.1 server on Boost.Beast for the read-only dashboard: its own thread and
// io_context (nothing it does runs on the daemon's event loop or a device's worker), bounded in
// connections, request-head size and time, GET and HEAD only, no request bodies. A handler answers
// a request with respond() or turns the connection into a byte stream (Server-Sent Events) with
// begin_stream(); a stream whose client does not read is dropped once its backlog passes a bound.
// Thread rule: everything runs on the server's thread; post() is the way in from other threads.
#include <utility>  // before Asio: Boost 1.74 Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <array>
#include <optional>
#include <vector>
#include <string>
#include <thread>

namespace pnn::daemon::detail {

namespace http = boost::beast::http;

struct HttpLimits {
  std::uint32_t max_connections = 64;
  std::uint32_t max_header_bytes = 8192;
  std::uint32_t idle_timeout_ms = 15000;   ///< for a request head to arrive (keep-alive included)
  std::uint32_t write_timeout_ms = 10000;  ///< for one write to complete
  std::size_t max_stream_backlog = 4u << 20;  ///< bytes a stream may queue before it is dropped
};

using HttpRequest = http::request<http::empty_body>;
using HttpResponse = http::response<http::string_body>;

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(boost::asio::ip::tcp::socket socket, const HttpLimits& limits,
                 std::function<void(const HttpRequest&, const std::shared_ptr<HttpConnection>&)> handler,
                 std::function<void()> on_closed);
  void start();
  /// Sends the reply to the request being handled (a HEAD request gets its head only).
  void respond(HttpResponse response);
  /// Sends `head` (a complete response head without Content-Length) and keeps the connection
  /// open as a stream: write() appends to it until close(). Requests that follow are not read.
  void begin_stream(std::string head);
  /// Appends to the stream; past HttpLimits::max_stream_backlog queued bytes the connection is
  /// closed (a client that does not read). Returns false once closed.
  bool write(std::string data);
  bool is_open() const { return open_; }
  void close();
  std::size_t backlog() const { return pending_.size() + in_flight_.size(); }

 private:
  void read_request();
  void on_request(boost::beast::error_code ec);
  void send_error(http::status status, const std::string& text);
  void flush();
  void watch_for_close();

  boost::beast::tcp_stream stream_;
  const HttpLimits limits_;
  std::function<void(const HttpRequest&, const std::shared_ptr<HttpConnection>&)> handler_;
  std::function<void()> on_closed_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  bool head_request_ = false;
  bool keep_alive_ = false;
  bool open_ = true;
  bool streaming_ = false;
  bool writing_ = false;
  std::string pending_, in_flight_;
  std::array<char, 512> discard_{};
};

class HttpServer {
 public:
  using Handler = std::function<void(const HttpRequest&, const std::shared_ptr<HttpConnection>&)>;
  /// Binds HOST:PORT (throws std::runtime_error naming it); serving starts with start().
  HttpServer(const std::string& host_port, HttpLimits limits, Handler handler);
  ~HttpServer();
  void start();
  /// Closes the listener and every connection, joins the thread. Idempotent.
  void stop();
  /// "http://HOST:PORT" as bound (port 0 resolved).
  const std::string& url() const { return url_; }
  boost::asio::io_context& io() { return io_; }
  std::uint32_t open_connections() const { return open_.load(); }
  std::uint64_t refused_connections() const { return refused_.load(); }

 private:
  void accept();
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  HttpLimits limits_;
  Handler handler_;
  std::string url_;
  std::thread thread_;
  std::atomic<std::uint32_t> open_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::vector<std::weak_ptr<HttpConnection>> connections_;
  bool stopped_ = false;
};

}  // namespace pnn::daemon::detail

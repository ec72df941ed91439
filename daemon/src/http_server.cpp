#include "http_server.hpp"

#include <pthread.h>
#include <fcntl.h>

#include <stdexcept>

namespace pnn::daemon::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

void set_page_headers(HttpResponse& res, const std::string& type) {
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy",
          "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
          "frame-ancestors 'none'; form-action 'none'");
}

HttpResponse text_reply(http::status status, unsigned version, const std::string& text) {
  HttpResponse res{status, version};
  set_page_headers(res, "text/plain; charset=utf-8");
  res.body() = text;
  return res;
}

HttpResponse body_reply(unsigned version, const std::string& type, std::string body) {
  HttpResponse res{http::status::ok, version};
  set_page_headers(res, type);
  res.body() = std::move(body);
  return res;
}

HttpConnection::HttpConnection(tcp::socket socket, const HttpLimits& limits,
                               std::function<void(const HttpRequest&, const std::shared_ptr<HttpConnection>&)> handler,
                               std::function<void()> on_closed)
    : stream_(std::move(socket)), limits_(limits), handler_(std::move(handler)),
      on_closed_(std::move(on_closed)) {}

void HttpConnection::start() { read_request(); }

void HttpConnection::read_request() {
  parser_.emplace();
  parser_->header_limit(limits_.max_header_bytes);
  parser_->body_limit(0);  // read-only: a request with a body is refused (413)
  stream_.expires_after(std::chrono::milliseconds(limits_.idle_timeout_ms));
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_request(ec); });
}

void HttpConnection::on_request(beast::error_code ec) {
  if (!open_) return;
  if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
      ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
    return close();
  }
  keep_alive_ = false;
  head_request_ = false;
  if (ec == http::error::header_limit) {
    return send_error(http::status::request_header_fields_too_large,
                      "request head larger than http.max_header_bytes (" +
                          std::to_string(limits_.max_header_bytes) + " bytes)\n");
  }
  if (ec == http::error::body_limit) {
    return send_error(http::status::payload_too_large, "the dashboard is read-only: no request bodies\n");
  }
  if (ec) return send_error(http::status::bad_request, "malformed HTTP request: " + ec.message() + "\n");
  const HttpRequest& req = parser_->get();
  keep_alive_ = req.keep_alive();
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    HttpResponse res{http::status::method_not_allowed, req.version()};
    res.set(http::field::allow, "GET, HEAD");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "the dashboard is read-only: only GET and HEAD are served\n";
    keep_alive_ = false;
    return respond(std::move(res));
  }
  head_request_ = req.method() == http::verb::head;
  stream_.expires_never();
  handler_(req, shared_from_this());
}

void HttpConnection::send_error(http::status status, const std::string& text) {
  keep_alive_ = false;
  respond(text_reply(status, 11, text));
}

void HttpConnection::respond(HttpResponse response) {
  if (!open_ || streaming_) return;
  response.keep_alive(keep_alive_);
  response.prepare_payload();
  auto self = shared_from_this();
  stream_.expires_after(std::chrono::milliseconds(limits_.write_timeout_ms));
  auto done = [self](beast::error_code ec, std::size_t) {
    if (ec || !self->keep_alive_) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return self->close();
    }
    self->read_request();
  };
  if (head_request_) {
    auto head = std::make_shared<http::response<http::empty_body>>(response.result(), response.version());
    for (const auto& field : response.base()) head->set(field.name_string(), field.value());
    http::async_write(stream_, *head, [head, done](beast::error_code ec, std::size_t n) { done(ec, n); });
    return;
  }
  auto res = std::make_shared<HttpResponse>(std::move(response));
  http::async_write(stream_, *res, [res, done](beast::error_code ec, std::size_t n) { done(ec, n); });
}

void HttpConnection::begin_stream(std::string head) {
  if (!open_ || streaming_) return;
  streaming_ = true;
  pending_ = std::move(head);
  flush();
  watch_for_close();
}

// A stream's client sends nothing more; reading tells when it goes away (EOF or reset), so the
// stream is closed at once instead of at the next failed write.
void HttpConnection::watch_for_close() {
  stream_.socket().async_read_some(asio::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (!self->open_) return;
    if (ec) return self->close();
    self->watch_for_close();
  });
}

bool HttpConnection::write(std::string data) {
  if (!open_ || !streaming_) return false;
  if (backlog() + data.size() > limits_.max_stream_backlog) {
    close();  // the client does not read: drop it rather than buffer without bound
    return false;
  }
  pending_ += data;
  flush();
  return true;
}

void HttpConnection::flush() {
  if (writing_ || pending_.empty() || !open_) return;
  writing_ = true;
  in_flight_.swap(pending_);
  pending_.clear();
  stream_.expires_after(std::chrono::milliseconds(limits_.write_timeout_ms));
  asio::async_write(stream_, asio::buffer(in_flight_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->writing_ = false;
    self->in_flight_.clear();
    if (ec) return self->close();
    self->stream_.expires_never();
    self->flush();
  });
}

void HttpConnection::close() {
  if (!open_) return;
  open_ = false;
  beast::error_code ignored;
  stream_.socket().close(ignored);
  pending_.clear();
  if (on_closed_) on_closed_();
}

HttpServer::HttpServer(const std::string& host_port, HttpLimits limits, Handler handler)
    : acceptor_(io_), limits_(limits), handler_(std::move(handler)) {
  const auto colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon);
  const std::string port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  beast::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) {
    throw std::runtime_error("'" + host_port + "': '" + host + "' is not an IP address (" + ec.message() + ")");
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(std::stoi(port)));
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on " + host_port + ": " + ec.message());
  // Not inherited by programs pnnd (or a process embedding it) starts.
  ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
  const auto bound = acceptor_.local_endpoint();
  const std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                    : bound.address().to_string();
  url_ = "http://" + shown + ":" + std::to_string(bound.port());
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  work_.emplace(io_.get_executor());
  accept();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "pnnd-http");  // for top -H, perf, and the benchmarks
    io_.run();
  });
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopped_) return;
    if (!ec) {
      if (open_.load() >= limits_.max_connections) {
        // Full: a one-shot 503 without blocking (a client that does not read gets nothing), then close.
        ++refused_;
        static const char kBusy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            "Content-Length: 56\r\n\r\nthe dashboard is at http.max_connections; retry shortly\n";
        beast::error_code ignored;
        socket.non_blocking(true, ignored);
        socket.write_some(asio::buffer(kBusy, sizeof kBusy - 1), ignored);
        socket.close(ignored);
      } else {
        ++open_;
        ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
        auto connection = std::make_shared<HttpConnection>(std::move(socket), limits_, handler_,
                                                           [this] { --open_; });
        // Forget connections that have closed, so the list stays as long as the open ones.
        std::erase_if(connections_, [](const std::weak_ptr<HttpConnection>& c) { return c.expired(); });
        connections_.push_back(connection);
        connection->start();
      }
    }
    accept();
  });
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    stopped_ = true;
    beast::error_code ignored;
    acceptor_.close(ignored);
    for (auto& weak : connections_) {
      if (auto c = weak.lock()) c->close();
    }
    connections_.clear();
    work_.reset();
  });
  thread_.join();
}

}  // namespace pnn::daemon::detail

#include "pnn/client/client.hpp"

#include "pnn/common/hex.hpp"

#include <unistd.h>
#include <zmq.hpp>

#include <array>
#include <random>

namespace pnn::client {

namespace {

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  std::string raw(bytes, '\0');
  for (auto& c : raw) c = static_cast<char>(rd() & 0xff);
  return common::to_hex(raw);
}

void apply_curve(zmq::socket_t& socket, const CurveClientKeys& curve) {
  if (curve.server_public_key.empty()) return;
  socket.set(zmq::sockopt::curve_serverkey, curve.server_public_key);
  socket.set(zmq::sockopt::curve_publickey, curve.public_key);
  socket.set(zmq::sockopt::curve_secretkey, curve.secret_key);
}

// Waits up to `timeout` for `socket` to become readable.
bool wait_readable(zmq::socket_t& socket, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, timeout) > 0;
}

std::optional<std::vector<std::string>> receive_multipart(zmq::socket_t& socket,
                                                          std::chrono::milliseconds timeout) {
  if (!wait_readable(socket, timeout)) return std::nullopt;
  std::vector<std::string> frames;
  for (;;) {
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) {
      if (frames.empty()) return std::nullopt;  // spurious wake-up
      throw ClientError("daemon reply ended in the middle of a multi-part message");
    }
    frames.emplace_back(part.to_string());
    if (!part.more()) return frames;
  }
}

}  // namespace

CurveKeyPair make_curve_keypair() {
  std::array<char, 41> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    throw std::runtime_error("zmq_curve_keypair failed: libzmq was built without CURVE support");
  }
  return {pub.data(), sec.data()};
}

std::string curve_public_key(const std::string& secret_key) {
  std::array<char, 41> pub{};
  if (secret_key.size() != 40 || zmq_curve_public(pub.data(), secret_key.c_str()) != 0) {
    throw std::invalid_argument("not a 40-character Z85 CURVE secret key");
  }
  return pub.data();
}

struct Client::Impl {
  ClientOptions options;
  zmq::context_t context{1};
  std::unique_ptr<zmq::socket_t> socket;
  std::uint64_t next_id = 1;
  // Without CURVE pnnd knows a client by its connection's routing id: a random one, kept across
  // the lazy-pirate reconnects, so a retry after a reconnect is still this client's retry.
  std::string routing_id = random_routing_id();

  static std::string random_routing_id() {
    std::random_device rd;
    std::string id(16, '\0');
    for (auto& c : id) c = static_cast<char>(rd() & 0xff);
    id[0] = static_cast<char>(0x80 | (static_cast<unsigned char>(id[0]) & 0x7f));  // never 0x00
    return id;
  }

  void open() {
    socket.reset();
    try {
      socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
      socket->set(zmq::sockopt::linger, 0);
      // A DEALER with no pipe to its peer (a CURVE handshake the daemon refused, a connection
      // being re-established) blocks in send: bound that by the call's timeout.
      socket->set(zmq::sockopt::sndtimeo, static_cast<int>(options.timeout.count()));
      socket->set(zmq::sockopt::routing_id, zmq::buffer(routing_id));
      apply_curve(*socket, options.curve);
      socket->connect(options.endpoint);
    } catch (const zmq::error_t& e) {
      // E.g. a malformed endpoint, or sockets exhausted by very short timeouts and many retries
      // (libzmq closes sockets asynchronously).
      throw ClientError("cannot open a connection to " + options.endpoint + ": " + e.what());
    }
  }

  void fill(v1::Request& request) {
    if (request.client_id().empty()) request.set_client_id(options.client_id);
    if (request.request_id() == 0) {
      request.set_request_id(next_id++);
    } else if (request.request_id() >= next_id) {
      next_id = request.request_id() + 1;  // an id the caller chose is never handed out again
    }
  }

  // False if the request could not be handed to the socket within the timeout.
  bool send(const v1::Request& request) {
    std::string body;
    if (!request.SerializeToString(&body)) throw ClientError("cannot serialize the request");
    const std::string frame = wire::encode_protocol_frame();
    // The second frame follows the first at once: libzmq sends a message's frames atomically,
    // and a first frame accepted means the pipe takes the rest.
    if (!socket->send(zmq::buffer(frame), zmq::send_flags::sndmore)) return false;
    return socket->send(zmq::buffer(body), zmq::send_flags::none).has_value();
  }

  static v1::Reply parse(const std::vector<std::string>& frames) {
    if (frames.size() != 2) {
      throw ClientError("daemon reply has " + std::to_string(frames.size()) +
                        " frames; expected 2 (protocol, reply)");
    }
    const auto major = wire::decode_protocol_frame(frames[0]);
    if (!major) throw ClientError("daemon reply does not start with a PNND protocol frame");
    v1::Reply reply;
    if (!reply.ParseFromString(frames[1])) throw ClientError("daemon reply is not a valid Reply");
    return reply;
  }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.client_id.empty()) {
    std::array<char, 64> host{};
    ::gethostname(host.data(), host.size() - 1);
    options.client_id = std::string(host.data()) + "-" + std::to_string(::getpid()) + "-" +
                        random_hex(4);
  }
  impl_->options = std::move(options);
  impl_->open();
}

Client::~Client() = default;

v1::Reply Client::call(v1::Request request) {
  impl_->fill(request);
  for (int attempt = 0;; ++attempt) {
    // Not sent within the timeout: this attempt is over, as if no reply had come.
    const bool sent = impl_->send(request);
    const auto deadline = std::chrono::steady_clock::now() + impl_->options.timeout;
    for (; sent;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto frames = receive_multipart(*impl_->socket, left);
      if (!frames) continue;
      v1::Reply reply = Impl::parse(*frames);
      // Errors raised before the request could be parsed carry request_id 0.
      if (reply.request_id() == request.request_id() ||
          (reply.request_id() == 0 && reply.status().code() != v1::OK)) {
        return reply;
      }
    }
    if (attempt >= impl_->options.retries) {
      throw NoReplyError("no reply from pnnd at " + impl_->options.endpoint + " within " +
                        std::to_string(impl_->options.timeout.count()) + " ms (request " +
                        std::to_string(request.request_id()) + "; is pnnd running?)");
    }
    // Lazy pirate: a fresh socket drops whatever the old one had queued.
    impl_->open();
  }
}

std::uint64_t Client::send(v1::Request request) {
  impl_->fill(request);
  if (!impl_->send(request)) {
    throw ClientError("could not send to pnnd at " + impl_->options.endpoint + " within " +
                      std::to_string(impl_->options.timeout.count()) +
                      " ms (no connection: is pnnd running, and does it accept this client's "
                      "key?)");
  }
  return request.request_id();
}

std::optional<v1::Reply> Client::receive(std::chrono::milliseconds timeout) {
  auto frames = receive_multipart(*impl_->socket, timeout);
  if (!frames) return std::nullopt;
  return Impl::parse(*frames);
}

void Client::send_frames(const std::vector<std::string>& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (!impl_->socket->send(zmq::buffer(frames[i]), i + 1 < frames.size()
                                                         ? zmq::send_flags::sndmore
                                                         : zmq::send_flags::none)) {
      throw ClientError("could not send to pnnd at " + impl_->options.endpoint + " within " +
                        std::to_string(impl_->options.timeout.count()) + " ms");
    }
  }
}

std::optional<std::vector<std::string>> Client::receive_frames(std::chrono::milliseconds timeout) {
  return receive_multipart(*impl_->socket, timeout);
}

std::uint64_t Client::next_request_id() { return impl_->next_id++; }

const std::string& Client::client_id() const { return impl_->options.client_id; }

struct Subscriber::Impl {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::sub};
};

Subscriber::Subscriber(const std::string& endpoint, const std::vector<std::string>& topics,
                       const CurveClientKeys& curve)
    : impl_(std::make_unique<Impl>()) {
  impl_->socket.set(zmq::sockopt::linger, 0);
  apply_curve(impl_->socket, curve);
  if (topics.empty()) {
    impl_->socket.set(zmq::sockopt::subscribe, "");
  } else {
    for (const auto& t : topics) impl_->socket.set(zmq::sockopt::subscribe, t);
  }
  impl_->socket.connect(endpoint);
}

Subscriber::~Subscriber() = default;

std::optional<std::pair<std::string, v1::Event>> Subscriber::next(
    std::chrono::milliseconds timeout) {
  auto frames = receive_multipart(impl_->socket, timeout);
  if (!frames) return std::nullopt;
  if (frames->size() != 2) {
    throw ClientError("telemetry message has " + std::to_string(frames->size()) +
                      " frames; expected 2 (topic, event)");
  }
  v1::Event event;
  if (!event.ParseFromString((*frames)[1])) throw ClientError("telemetry event is not an Event");
  return std::pair{(*frames)[0], std::move(event)};
}

}  // namespace pnn::client

#pragma once
/// pnn::client: a small synchronous client of the daemon API over a ZeroMQ DEALER socket, for pnnctl, tests
/// and tools: request/reply with a deadline, retries with the same request_id (lazy pirate), raw
/// frames for protocol tests, and a telemetry subscriber.
///
/// Thread rule: a Client or Subscriber is used by one thread at a time (ZeroMQ sockets are not
/// thread-safe). Separate instances are independent.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pnn/proto/wire.hpp"

namespace pnn::client {

namespace v1 = ::pnn::v1;

/// Transport problem: no reply before the deadline, or a reply that is not a valid message.
class ClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The ClientError of a call that got no reply before its deadline, after every retry: the
/// daemon is down, unreachable, or refused the connection (e.g. a CURVE key it does not know).
class NoReplyError : public ClientError {
 public:
  using ClientError::ClientError;
};

/// CURVE client settings (all Z85). Empty server_public_key: plain (loopback) connection.
struct CurveClientKeys {
  std::string server_public_key;
  std::string public_key;
  std::string secret_key;
};

struct CurveKeyPair {
  std::string public_key;  ///< Z85, 40 characters
  std::string secret_key;
};
/// A fresh CURVE key pair (libzmq's zmq_curve_keypair).
CurveKeyPair make_curve_keypair();
/// The public key of a Z85 secret key. Throws std::invalid_argument on a malformed key.
std::string curve_public_key(const std::string& secret_key);

struct ClientOptions {
  std::string endpoint;       ///< e.g. tcp://127.0.0.1:7700
  std::string client_id;      ///< stable identity for leases and idempotency; "" = generated
  std::chrono::milliseconds timeout{10000};  ///< per attempt
  int retries = 0;            ///< extra attempts after a timeout (same request_id)
  CurveClientKeys curve;
};

class Client {
 public:
  /// Connects (ZeroMQ connects lazily: no error if the daemon is not up yet).
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// Sends `request` and returns the reply with the same request_id. Fills client_id if empty
  /// and request_id if 0. On a timeout the socket is closed and reopened and the same request
  /// (same request_id) is sent again, up to `retries` times; then throws NoReplyError. Replies to
  /// other request ids (late replies of earlier attempts) are discarded.
  v1::Reply call(v1::Request request);

  /// Pipelining: send without waiting, then receive replies in any order.
  /// send() fills client_id / request_id like call() and returns the request_id used. Every send
  /// (call()'s too) waits at most `timeout` for the socket to take the message (no connection
  /// yet, or a full queue): call() counts that as an attempt without a reply, send() and
  /// send_frames() throw ClientError.
  std::uint64_t send(v1::Request request);
  /// The next reply, or nullopt after `timeout`. Throws ClientError on an unparsable reply.
  std::optional<v1::Reply> receive(std::chrono::milliseconds timeout);

  /// Raw frames, for protocol tests: send exactly these frames; receive one multi-frame message.
  void send_frames(const std::vector<std::string>& frames);
  std::optional<std::vector<std::string>> receive_frames(std::chrono::milliseconds timeout);

  std::uint64_t next_request_id();
  const std::string& client_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Telemetry: SUB socket on the daemon's PUB endpoint, filtered by topic prefixes.
class Subscriber {
 public:
  /// `topics`: prefixes such as "hb", "job/", "state/osc-a"; empty list = everything.
  Subscriber(const std::string& endpoint, const std::vector<std::string>& topics,
             const CurveClientKeys& curve = {});
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  /// The next (topic, event), or nullopt after `timeout`. Throws ClientError on a bad event.
  std::optional<std::pair<std::string, v1::Event>> next(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pnn::client

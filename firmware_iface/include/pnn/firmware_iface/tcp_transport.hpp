#pragma once
/// TCP links in both directions of the SCPI-raw convention (PROTOCOLS.md c.5: LXI `scpi-raw` on
/// port 5025, newline-terminated messages, binary data as IEEE 488.2 blocks):
/// - `make_tcp_transport`: the host side, a `Transport` over one TCP connection;
/// - `TcpDeviceServer`: the device side, serving any `DeviceEndpoint` (a simulated instrument's
///   firmware) on a listening socket, one client at a time, like an instrument's socket server.
/// TCP is a byte stream: the transport adds no framing; message boundaries are the SCPI
/// terminators the caller writes and parses.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "pnn/firmware_iface/transport.hpp"

namespace pnn::firmware_iface {

struct TcpOptions {
  std::string host = "127.0.0.1";  ///< name or address (IPv4, IPv6 without brackets)
  std::uint16_t port = 5025;       ///< LXI scpi-raw
  /// Upper bound of name resolution plus connection setup in open() (the deadline passed to
  /// open() bounds it too; the earlier one wins).
  std::chrono::milliseconds connect_timeout{3000};

  /// "HOST:PORT" or "[IPv6]:PORT", the target of a tcp:// address. Throws
  /// std::invalid_argument naming the text and what is wrong with it.
  static TcpOptions parse(std::string_view host_port);
};

/// A host-side TCP link. Every call is bounded by its deadline (asynchronous operations run on
/// the transport's own io_context until the deadline, then are cancelled).
/// Errors, beyond transport.hpp's contract:
///   open():   kDisconnected when the name does not resolve, the connection is refused, reset or
///             unreachable; kTimeout when setup does not finish before the deadline.
///   write():  kTimeout closes the link (part of the message may be on the wire, so the stream
///             can no longer be trusted); re-open() it. kDisconnected when the peer is gone.
///   read_some(): kTimeout leaves the link open (call clear() before the next request);
///             end of stream or a reset is kDisconnected and closes the link.
///   clear():  discards every byte that has already arrived; bytes still in flight arrive later
///             (a plain socket has no device-clear message), so callers resynchronise on a reply
///             they can recognise.
/// Throws std::invalid_argument for an empty host or port 0.
TransportPtr make_tcp_transport(TcpOptions options);

/// Serves `endpoint` over TCP on its own thread, like an instrument's scpi-raw socket:
/// - one client at a time: while a client is connected, further connections wait in the listen
///   backlog (they are accepted, in order, once the current client disconnects);
/// - bytes from the client go to `endpoint->receive`, replies are sent in order, each not before
///   its `DeviceOutput::ready_at`;
/// - on accepting a client the server calls `on_open`, when the client goes away `on_clear`;
/// - while `endpoint->connected()` is false (an unplugged instrument) the current client is
///   disconnected and the listening socket is closed, so connection attempts are refused; it
///   listens again on the same port once the endpoint reports connected (checked every
///   `poll_interval`).
/// Thread rule: the endpoint is called only from the server's thread. The public calls are
/// thread-safe. stop() (and the destructor) closes every socket and joins the thread.
class TcpDeviceServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";  ///< address to listen on (loopback by default)
    std::uint16_t port = 0;          ///< 0 = an ephemeral port (see port())
    std::chrono::milliseconds poll_interval{10};
  };

  /// Listens before returning. Throws std::invalid_argument for a null endpoint and
  /// std::runtime_error naming the address and the OS reason when it cannot listen.
  TcpDeviceServer(std::shared_ptr<DeviceEndpoint> endpoint, Options options);
  ~TcpDeviceServer();
  TcpDeviceServer(const TcpDeviceServer&) = delete;
  TcpDeviceServer& operator=(const TcpDeviceServer&) = delete;

  /// The port the server listens on (the ephemeral one when Options::port was 0).
  std::uint16_t port() const noexcept;
  /// "HOST:PORT" as clients should connect to it.
  std::string address() const;
  /// Clients accepted so far.
  std::uint64_t num_connections() const noexcept;
  /// Closes all sockets and joins the thread; idempotent, never throws.
  void stop() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pnn::firmware_iface

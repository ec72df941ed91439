#pragma once
// Bounds the connections a client can hold (issue: ~1,000 connections from one client used up
// the descriptors, locked every other client out and made the accept loop spin on EMFILE).
// A socket monitor reports every accepted and every closed connection of the RPC and telemetry
// sockets; a connection past rpc.max_connections in all, or past rpc.max_connections_per_peer
// from one address, is shut down at once (shutdown(2) on libzmq's descriptor, which libzmq then
// closes as a disconnect) and the refusal is logged. pnnd also raises its soft descriptor limit
// to the hard limit at start, so the caps, not the descriptor table, are what a client meets.
//
// Thread rule: io thread only (the monitor sockets are read by ZmqReaders on the event loop).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>

namespace pnn::daemon::detail {

class ConnectionGuard {
 public:
  using Logger = std::function<void(const std::string& level, const std::string& text)>;

  explicit ConnectionGuard(Logger log) : log_(std::move(log)) {}

  void set_limits(std::uint32_t total, std::uint32_t per_peer) {
    max_total_ = total;
    max_per_peer_ = per_peer;
  }

  /// A monitor event (ZMQ_EVENT_ACCEPTED / ZMQ_EVENT_DISCONNECTED with the descriptor).
  void on_accepted(int fd);
  void on_closed(int fd);

  std::size_t connections() const { return peer_of_.size(); }
  std::uint64_t refused() const { return refused_; }

 private:
  Logger log_;
  std::uint32_t max_total_ = 1000;
  std::uint32_t max_per_peer_ = 256;
  std::unordered_map<int, std::string> peer_of_;  // live descriptor → peer address
  std::map<std::string, std::uint32_t> per_peer_;
  std::uint64_t refused_ = 0;
};

/// Raises the soft RLIMIT_NOFILE to the hard limit. Returns the resulting soft limit.
std::uint64_t raise_descriptor_limit();

}  // namespace pnn::daemon::detail

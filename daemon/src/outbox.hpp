#pragma once
// Replies on their way to clients, bounded per peer in bytes (issue: a client that never reads
// must not pin unbounded memory). The ROUTER runs with ZMQ_ROUTER_MANDATORY and a small send
// high-water mark (in whole messages), so a reply to a peer whose pipe is full is refused with
// EAGAIN instead of piling up inside libzmq; it waits here, in order, within
// `per_peer_bytes` for that peer and `total_bytes` for all, and is retried by flush(). Past a
// bound the reply is dropped: the client is not reading, and a retried write still gets its
// answer from the idempotency cache. A reply to a peer that has gone is dropped at once.
//
// Thread rule: io thread only.
#include <zmq.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

namespace pnn::daemon::detail {

class Outbox {
 public:
  /// Called for every reply dropped: the peer's routing id, the reply's bytes, why.
  using DropHandler = std::function<void(const std::string& routing_id, std::size_t bytes,
                                         const char* why)>;

  Outbox(zmq::socket_t& router, std::string protocol_frame, DropHandler on_drop);

  void set_limits(std::uint64_t per_peer_bytes, std::uint64_t total_bytes) {
    per_peer_bytes_ = per_peer_bytes;
    total_bytes_limit_ = total_bytes;
  }

  /// Sends [routing_id][protocol frame][body] now if the peer's pipe has room, else queues it.
  void send(const std::string& routing_id, std::string body);
  /// Retries the queued replies, oldest first per peer.
  void flush();
  bool has_queued() const { return !peers_.empty(); }
  /// Whether this peer's queue is at its bound: the peer is not reading, and a further reply to
  /// it would be dropped (pnnd then drops its requests unread instead of working for nothing).
  bool saturated(const std::string& routing_id) const {
    auto it = peers_.find(routing_id);
    return it != peers_.end() && it->second.bytes + kSaturationSlack >= per_peer_bytes_;
  }
  std::uint64_t queued_bytes() const { return total_bytes_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  static constexpr std::uint64_t kSaturationSlack = 4096;  // no room for one more small reply
  enum class Try { kSent, kFull, kGone };
  Try try_send(const std::string& routing_id, const std::string& body);
  void drop(const std::string& routing_id, std::size_t bytes, const char* why);

  struct Peer {
    std::deque<std::string> replies;
    std::uint64_t bytes = 0;
  };
  zmq::socket_t& router_;
  std::string protocol_frame_;
  DropHandler on_drop_;
  std::uint64_t per_peer_bytes_ = 32u << 20;
  std::uint64_t total_bytes_limit_ = 256u << 20;
  std::uint64_t total_bytes_ = 0;
  std::uint64_t dropped_ = 0;
  std::unordered_map<std::string, Peer> peers_;
};

}  // namespace pnn::daemon::detail

#include "outbox.hpp"

#include <cerrno>
#include <utility>

namespace pnn::daemon::detail {

Outbox::Outbox(zmq::socket_t& router, std::string protocol_frame, DropHandler on_drop)
    : router_(router), protocol_frame_(std::move(protocol_frame)), on_drop_(std::move(on_drop)) {}

Outbox::Try Outbox::try_send(const std::string& routing_id, const std::string& body) {
  try {
    // With ROUTER_MANDATORY the routing frame is where the peer's pipe is checked: EAGAIN when
    // it is at its high-water mark, EHOSTUNREACH when the peer is gone. The later parts of a
    // message whose first part was accepted are always accepted.
    if (!router_.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      return Try::kFull;
    }
    (void)router_.send(zmq::buffer(protocol_frame_),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)router_.send(zmq::buffer(body), zmq::send_flags::dontwait);
    return Try::kSent;
  } catch (const zmq::error_t& e) {
    if (e.num() == EAGAIN) return Try::kFull;
    return Try::kGone;  // EHOSTUNREACH: no such peer (any more)
  }
}

void Outbox::drop(const std::string& routing_id, std::size_t bytes, const char* why) {
  ++dropped_;
  if (on_drop_) on_drop_(routing_id, bytes, why);
}

void Outbox::send(const std::string& routing_id, std::string body) {
  auto it = peers_.find(routing_id);
  if (it == peers_.end()) {  // nothing queued for this peer: keep order by trying only then
    switch (try_send(routing_id, body)) {
      case Try::kSent: return;
      case Try::kGone: return drop(routing_id, body.size(), "the client has disconnected");
      case Try::kFull: break;
    }
  }
  Peer& peer = peers_[routing_id];
  if (peer.bytes + body.size() > per_peer_bytes_ || total_bytes_ + body.size() > total_bytes_limit_) {
    const char* why =
        peer.bytes + body.size() > per_peer_bytes_
            ? "the client is not reading its replies (rpc.max_queued_reply_bytes_per_peer)"
            : "replies to clients that do not read fill rpc.max_queued_reply_bytes";
    if (peer.replies.empty()) peers_.erase(routing_id);
    return drop(routing_id, body.size(), why);
  }
  peer.bytes += body.size();
  total_bytes_ += body.size();
  peer.replies.push_back(std::move(body));
}

void Outbox::flush() {
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& peer = it->second;
    bool gone = false;
    while (!peer.replies.empty()) {
      const Try t = try_send(it->first, peer.replies.front());
      if (t == Try::kFull) break;
      if (t == Try::kGone) {
        gone = true;
        break;
      }
      peer.bytes -= peer.replies.front().size();
      total_bytes_ -= peer.replies.front().size();
      peer.replies.pop_front();
    }
    if (gone) {
      for (const auto& r : peer.replies) {
        total_bytes_ -= r.size();
        drop(it->first, r.size(), "the client has disconnected");
      }
      peer.replies.clear();
    }
    it = peer.replies.empty() ? peers_.erase(it) : std::next(it);
  }
}

}  // namespace pnn::daemon::detail

#include "connection_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

namespace pnn::daemon::detail {
namespace {

std::string peer_address(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
  } else if (addr.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, text, sizeof text);
  } else {
    return "local";  // ipc://
  }
  return text;
}

}  // namespace

void ConnectionGuard::on_accepted(int fd) {
  const std::string peer = peer_address(fd);
  const std::uint32_t from_peer = per_peer_[peer];
  if (peer_of_.size() >= max_total_ || from_peer >= max_per_peer_) {
    ++refused_;
    // Powers of two: a flood is visible in the log without flooding it.
    if ((refused_ & (refused_ - 1)) == 0) {
      log_("warning", "refused a connection from " + peer + ": " +
                          (from_peer >= max_per_peer_
                               ? std::to_string(from_peer) + " connections from that address "
                                 "(rpc.max_connections_per_peer)"
                               : std::to_string(peer_of_.size()) +
                                     " connections in all (rpc.max_connections)") +
                          "; " + std::to_string(refused_) + " refused since start");
    }
    if (per_peer_[peer] == 0) per_peer_.erase(peer);
    ::shutdown(fd, SHUT_RDWR);  // libzmq sees the end of the stream and closes its descriptor
    return;
  }
  peer_of_[fd] = peer;
  ++per_peer_[peer];
}

void ConnectionGuard::on_closed(int fd) {
  auto it = peer_of_.find(fd);
  if (it == peer_of_.end()) return;  // a refused connection, or one from before the monitor
  auto p = per_peer_.find(it->second);
  if (p != per_peer_.end() && --p->second == 0) per_peer_.erase(p);
  peer_of_.erase(it);
}

std::uint64_t raise_descriptor_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(lim.rlim_cur);
}

}  // namespace pnn::daemon::detail

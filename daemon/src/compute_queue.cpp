#include "compute_queue.hpp"

#include <algorithm>

namespace pnn::daemon::detail {

std::optional<std::string> ComputeQueue::submit(const std::string& identity, std::uint64_t bytes,
                                                std::function<void()> task) {
  std::uint64_t& mine = pending_of_[identity];
  const bool over_mine = mine + bytes > per_peer_;
  if (mine > 0 && (over_mine || pending_ + bytes > total_)) {
    return over_mine
               ? std::to_string(mine) + " bytes of this client's requests are already waiting "
                 "for a compute thread (rpc.max_pending_request_bytes_per_peer = " +
                     std::to_string(per_peer_) + "); wait for their replies before sending more"
               : std::to_string(pending_) + " bytes of requests are waiting for a compute thread "
                 "(rpc.max_pending_request_bytes = " + std::to_string(total_) +
                     "); retry after this client's earlier replies arrive";
  }
  mine += bytes;
  pending_ += bytes;
  queue_.push(identity, std::move(task));
  pump();
  return std::nullopt;
}

void ComputeQueue::done(const std::string& identity, std::uint64_t bytes) {
  --running_;
  if (auto it = pending_of_.find(identity); it != pending_of_.end()) {
    const std::uint64_t n = std::min<std::uint64_t>(it->second, bytes);
    it->second -= n;
    pending_ -= std::min(pending_, n);
    if (it->second == 0) pending_of_.erase(it);
  }
  pump();
}

void ComputeQueue::pump() {
  while (running_ < threads_) {
    auto task = queue_.pop();
    if (!task) return;
    ++running_;
    boost::asio::post(pool_, std::move(*task));
  }
}

}  // namespace pnn::daemon::detail

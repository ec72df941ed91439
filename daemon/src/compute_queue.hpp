#pragma once
// Compute work (twin requests, run-store reads) off the event loop: fair across identities
// (FairQueue), at most `threads` at a time on the pool, and bounded in request bytes waiting per
// identity and in all (rpc.max_pending_request_bytes_per_peer / rpc.max_pending_request_bytes).
// A client with nothing waiting is always admitted. Event loop thread, except the tasks.
#include <utility>  // before Asio: Boost 1.74 Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "fair_queue.hpp"

namespace pnn::daemon::detail {

class ComputeQueue {
 public:
  explicit ComputeQueue(int threads) : threads_(threads), pool_(static_cast<std::size_t>(threads)) {}
  void set_limits(std::uint64_t per_peer, std::uint64_t total) {
    per_peer_ = per_peer;
    total_ = total;
  }
  /// Queues `task` (which must end by calling done() on the event loop), or returns the BUSY
  /// message naming the bound that was hit.
  std::optional<std::string> submit(const std::string& identity, std::uint64_t bytes,
                                    std::function<void()> task);
  /// A task of `identity` with `bytes` finished: frees them and starts the next task.
  void done(const std::string& identity, std::uint64_t bytes);
  void join() { pool_.join(); }

 private:
  void pump();
  int threads_;
  int running_ = 0;
  boost::asio::thread_pool pool_;
  FairQueue<std::function<void()>> queue_;
  std::unordered_map<std::string, std::uint64_t> pending_of_;
  std::uint64_t pending_ = 0;
  std::uint64_t per_peer_ = 0, total_ = 0;
};

}  // namespace pnn::daemon::detail

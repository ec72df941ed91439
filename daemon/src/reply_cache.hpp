#pragma once
// The idempotency cache of the write RPCs: (identity, client_id, request_id) → the digest of
// the request and the serialized reply body that was sent. Bounded by entries and bytes; the
// oldest entries go first. For Forward only replies of calls that ran on the hardware are
// cached, so a retry never re-runs a batch; the other writes record whatever they answered.
// The identity (CURVE key or connection) keeps one client's replies from any other caller.
//
// Thread rule: io thread only.
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

namespace pnn::daemon::detail {

class ReplyCache {
 public:
  ReplyCache(std::size_t max_entries, std::size_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  struct Entry {
    std::uint64_t digest;  // of the request (detail::request_digest)
    std::string body;
  };

  /// Who called (identity), as which client, with which request id. The request's kind and
  /// content are in the digest: a reused id for another request is told apart from a retry.
  static std::string key(const std::string& identity, const std::string& client_id,
                         std::uint64_t request_id) {
    return identity + '\x1f' + client_id + '\x1f' + std::to_string(request_id);
  }

  const Entry* find(const std::string& key) const {
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : &it->second;
  }

  void put(const std::string& key, std::uint64_t digest, std::string body) {
    if (entries_.count(key)) return;
    bytes_ += body.size() + key.size();
    order_.push_back(key);
    entries_.emplace(key, Entry{digest, std::move(body)});
    while (!order_.empty() && (entries_.size() > max_entries_ || bytes_ > max_bytes_)) {
      auto it = entries_.find(order_.front());
      bytes_ -= it->second.body.size() + it->first.size();
      entries_.erase(it);
      order_.pop_front();
    }
  }

  void set_limits(std::size_t max_entries, std::size_t max_bytes) {
    max_entries_ = max_entries;
    max_bytes_ = max_bytes;
  }
  std::size_t size() const { return entries_.size(); }

 private:
  std::size_t max_entries_, max_bytes_;
  std::size_t bytes_ = 0;
  std::deque<std::string> order_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace pnn::daemon::detail

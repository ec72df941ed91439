#pragma once
// Round-robin over clients: the compute pool takes the next task from the next client in turn,
// so one client's pipelined twin requests cannot make another client's one-sample request wait
// behind all of them (issue: ten pipelined 15 MB TwinVjp held the pool for 11 s).
//
// Thread rule: one thread (the io thread).
#include <deque>
#include <map>
#include <optional>
#include <string>

namespace pnn::daemon::detail {

template <class Task>
class FairQueue {
 public:
  void push(const std::string& client, Task task) { queues_[client].push_back(std::move(task)); }

  /// The oldest task of the client after the one served last, or nothing.
  std::optional<Task> pop() {
    if (queues_.empty()) return std::nullopt;
    auto it = queues_.upper_bound(last_);
    if (it == queues_.end()) it = queues_.begin();
    last_ = it->first;
    Task task = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) queues_.erase(it);
    return task;
  }

  bool empty() const { return queues_.empty(); }
  std::size_t clients() const { return queues_.size(); }

 private:
  std::map<std::string, std::deque<Task>> queues_;
  std::string last_;
};

}  // namespace pnn::daemon::detail

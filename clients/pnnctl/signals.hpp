#pragma once
// Ctrl-C / SIGTERM for the streaming verbs. The signals are blocked in every thread (ZeroMQ's
// own threads included, as they are created afterwards) and taken by one thread with
// sigtimedwait, so a blocking poll is never interrupted with EINTR; the verb polls count().
#include <atomic>
#include <thread>

namespace pnnctl {

class SignalWatcher {
 public:
  /// Construct before any ZeroMQ context so that its threads inherit the blocked mask.
  SignalWatcher();
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  /// SIGINT and SIGTERM received so far.
  int count() const { return count_.load(); }

 private:
  std::atomic<int> count_{0};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace pnnctl

#include "signals.hpp"

#include <pthread.h>
#include <signal.h>

#include <ctime>

namespace pnnctl {

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

SignalWatcher::SignalWatcher() {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this, set] {
    const timespec wait{0, 100 * 1000 * 1000};
    while (!done_.load()) {
      if (sigtimedwait(&set, nullptr, &wait) > 0) count_.fetch_add(1);
    }
  });
}

SignalWatcher::~SignalWatcher() {
  done_ = true;
  thread_.join();
}

}  // namespace pnnctl

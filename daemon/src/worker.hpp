#pragma once
// A device's execution context: calls on one device run one at a time, in the order they were
// queued (instruments execute one request at a time; different devices run in parallel). Tasks
// posted from the event loop run on the worker's own thread; a blocking caller (a job's thread)
// may run its call on its own thread instead, as one of the context's tasks (an Asio strand's
// dispatch): when the context is idle it runs at once, otherwise it is queued behind the others.
// Either way no two calls on the device ever overlap.
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace pnn::daemon::detail {

class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  ~Worker() { stop(); }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Queues `task`; false (and not queued) once stop() was called. Tasks must not throw (each
  /// catches at its own boundary). Thread-safe.
  bool post(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return false;
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
    return true;
  }

  /// Queues `task`, which returns a continuation; the continuation runs on the worker's thread
  /// once the task counts as finished, so whoever it tells that the task is done finds the
  /// context idle (unless more was queued meanwhile): an RPC's reply posted from it races no
  /// later call's try_run_here. The continuation must not throw; false once stop() was called.
  bool post_then(std::function<std::function<void()>()> task) {
    return post([this, task = std::move(task)] { after_task_ = task(); });
  }

  /// Runs `call` as one of this context's tasks and waits for it: on the calling thread if
  /// nothing is running or queued (no thread hand-off on the hot path of a job), else on the
  /// worker behind the queued tasks. Rethrows what `call` throws; false once stopped. Never call
  /// it from inside a task of the same worker.
  bool run_here(const std::function<void()>& call) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return false;
      if (!running_ && tasks_.empty()) {
        running_ = true;
        lock.unlock();
        std::exception_ptr failed;
        try {
          call();
        } catch (...) {
          failed = std::current_exception();
        }
        finish_task();
        if (failed) std::rethrow_exception(failed);
        return true;
      }
    }
    std::promise<void> done;
    auto finished = done.get_future();
    const bool queued = post([&] {
      try {
        call();
        done.set_value();
      } catch (...) {
        done.set_exception(std::current_exception());
      }
    });
    if (!queued) return false;
    finished.get();
    return true;
  }

  /// Runs `call` on the calling thread as one of this context's tasks if the context is idle
  /// (nothing running or queued), and returns true; else returns false without running it.
  /// `call` must not throw. For the event loop's fast path (Server: inline forwards).
  template <class Call>
  bool try_run_here(Call&& call) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || running_ || !tasks_.empty()) return false;
      running_ = true;
    }
    call();
    finish_task();
    return true;
  }

  /// Runs the tasks already queued, then joins. Idempotent.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void finish_task() {
    {
      std::lock_guard lock(mutex_);
      running_ = false;
    }
    wake_.notify_all();
  }

  void loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !running_ && (stopping_ || !tasks_.empty()); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
        running_ = true;
      }
      task();
      finish_task();
      if (after_task_) std::exchange(after_task_, nullptr)();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool running_ = false;  // a task runs (on the worker, or inline on a caller's thread)
  bool stopping_ = false;
  std::function<void()> after_task_;  // post_then's continuation; the worker's thread only
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace pnn::daemon::detail

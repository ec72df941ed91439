#include "pnn/digital_twin/parallel.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pnn::digital_twin {
namespace {

thread_local bool tl_inside_task = false;

// How long an idle worker, or an owner waiting for the rest of its job, spins before it sleeps
// on a condition variable. A training step calls parallel_for several times with a few µs of
// serial work between the calls, and a futex wake-up costs about as much as a small batch
// shard's work (≈ 9 % of `pat-oscillator-digits` was thread-pool wake-ups, docs/benchmarks.md);
// spinning this long covers those gaps and costs at most this much CPU per idle period.
// PNN_POOL_SPIN_US overrides it (0: sleep at once, for a machine shared with other work).
std::chrono::microseconds spin_time() {
  static const std::chrono::microseconds spin = [] {
    if (const char* env = std::getenv("PNN_POOL_SPIN_US")) {
      try {
        const long us = std::stol(env);
        if (us >= 0 && us <= 1'000'000) return std::chrono::microseconds(us);
      } catch (const std::exception&) {
      }
    }
    return std::chrono::microseconds(100);
  }();
  return spin;
}

// Spins until ready() or the spin time has passed; returns ready(). After the first 1,024
// polls (a few µs) each poll also yields the core, so that a spinning thread never holds off
// another runnable one (pnnd's recorder and event loop share the cores with the pool).
template <class Ready>
bool spin_until(Ready&& ready) {
  const auto spin = spin_time();
  if (spin.count() == 0) return ready();
  const auto deadline = std::chrono::steady_clock::now() + spin;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= deadline) return ready();
    if (i >= 1024) {
      std::this_thread::yield();
    } else {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  }
}

struct Job {
  const std::function<void(std::size_t)>* fn;
  std::size_t n;
  std::atomic<std::size_t> next{0};
  std::atomic<std::size_t> done{0};
  std::mutex mutex;
  std::condition_variable finished;
  std::exception_ptr error;

  // Claims and runs indices until none are left. Returns when this thread has no more to do.
  void work() {
    for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      try {
        (*fn)(i);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!error) error = std::current_exception();
      }
      if (done.fetch_add(1) + 1 == n) {
        std::lock_guard lock(mutex);
        finished.notify_all();
      }
    }
  }
};

class Pool {
 public:
  explicit Pool(int threads) {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  void run(std::size_t n, const std::function<void(std::size_t)>& fn) {
    auto job = std::make_shared<Job>();
    job->fn = &fn;
    job->n = n;
    if (!workers_.empty()) {
      {
        std::lock_guard lock(mutex_);
        jobs_.push_back(job);
      }
      posted_.fetch_add(1);
      // A worker that is spinning sees posted_ change; only sleeping ones need the futex. A
      // worker counts itself as sleeping under mutex_ before it checks the queue, so one that
      // missed this push is counted here.
      if (sleeping_.load() > 0) wake_.notify_all();
    }
    tl_inside_task = true;
    job->work();
    tl_inside_task = false;
    if (!spin_until([&] { return job->done.load() == n; })) {
      std::unique_lock lock(job->mutex);
      job->finished.wait(lock, [&] { return job->done.load() == n; });
    }
    if (job->error) std::rethrow_exception(job->error);
  }

 private:
  void loop() {
    tl_inside_task = true;
    for (;;) {
      std::shared_ptr<Job> job;
      {
        const std::uint64_t seen = posted_.load();
        std::unique_lock lock(mutex_);
        if (!stopping_ && jobs_.empty()) {
          lock.unlock();
          spin_until([&] { return posted_.load() != seen || stopping_.load(); });
          lock.lock();
        }
        ++sleeping_;
        wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        --sleeping_;
        if (stopping_) return;
        job = jobs_.front();
        // A job whose indices are all claimed leaves the queue; its owner waits for completion.
        if (job->next.load() >= job->n) {
          jobs_.pop_front();
          continue;
        }
      }
      job->work();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> jobs_;
  std::atomic<bool> stopping_{false};  // set under mutex_; read without it while spinning
  std::atomic<std::uint64_t> posted_{0};     // jobs queued so far
  std::atomic<int> sleeping_{0};             // workers in (or about to enter) wake_.wait
};

int configured_threads() {
  if (const char* env = std::getenv("PNN_THREADS")) {
    try {
      int t = std::stoi(env);
      if (t >= 1) return t;
    } catch (const std::exception&) {
    }
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

Pool& pool() {
  static Pool instance(num_threads());
  return instance;
}

}  // namespace

int num_threads() {
  static const int threads = configured_threads();
  return threads;
}

void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  if (n == 1 || num_threads() == 1 || tl_inside_task) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  pool().run(n, fn);
}

}  // namespace pnn::digital_twin

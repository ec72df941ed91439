#include "pnn/digital_twin/parallel.hpp"

#include <atomic>
#include <condition_variable>
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
      std::lock_guard lock(mutex_);
      jobs_.push_back(job);
    }
    wake_.notify_all();
    tl_inside_task = true;
    job->work();
    tl_inside_task = false;
    {
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
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
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
  bool stopping_ = false;
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

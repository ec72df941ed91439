#include "recorder.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace pnn::daemon::detail {

ForwardRecorder::ForwardRecorder(RunStore& store, std::size_t capacity_bytes,
                                 ErrorHandler on_error, std::function<void()> on_written)
    : store_(store),
      capacity_bytes_(capacity_bytes),
      on_error_(std::move(on_error)),
      on_written_(std::move(on_written)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "pnnd-recorder");  // for top -H, perf, gdb
    // Recording is background durability work: the reply never waits for it (async mode), so it
    // yields the cores to the device workers and the event loop when they are busy, and catches
    // up in the gaps (the bounded queue makes Forward wait if it falls too far behind).
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    loop();
  });
}

ForwardRecorder::~ForwardRecorder() { close(); }

std::size_t ForwardRecorder::bytes_of(const ForwardRecord& r) {
  return static_cast<std::size_t>(r.x.size() + r.y.size() + r.theta.size()) * sizeof(double) +
         r.client_id.size() + r.device_serial.size() + 64;
}

void ForwardRecorder::push(ForwardRecord record) {
  const std::size_t bytes = bytes_of(record);
  std::unique_lock lock(mutex_);
  not_full_.wait(lock, [&] { return closing_ || has_room(bytes); });
  enqueue(std::move(record), bytes);
}

std::optional<ForwardRecord> ForwardRecorder::try_push(ForwardRecord record) {
  const std::size_t bytes = bytes_of(record);
  std::lock_guard lock(mutex_);
  if (!closing_ && !has_room(bytes)) return record;
  enqueue(std::move(record), bytes);
  return std::nullopt;
}

// A record larger than the whole capacity still goes in once the queue is empty.
bool ForwardRecorder::has_room(std::size_t bytes) const {
  return queue_.empty() || queued_bytes_ + bytes <= capacity_bytes_;
}

void ForwardRecorder::enqueue(ForwardRecord record, std::size_t bytes) {
  if (closing_) return;
  queued_bytes_ += bytes;
  queue_.push_back(std::move(record));
  // The writer is woken for the first record of a batch and when a batch is full; records in
  // between only queue up (no wake-up per Forward on the hot path).
  if (writer_idle_ || batch_due()) not_empty_.notify_one();
}

bool ForwardRecorder::batch_due() const {
  return closing_ || queue_.size() >= kMaxBatch || 2 * queued_bytes_ >= capacity_bytes_;
}

void ForwardRecorder::close() {
  {
    std::lock_guard lock(mutex_);
    if (closing_ && !thread_.joinable()) return;
    closing_ = true;
  }
  not_empty_.notify_all();
  not_full_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t ForwardRecorder::num_written() const {
  std::lock_guard lock(mutex_);
  return written_;
}

std::uint64_t ForwardRecorder::num_failed() const {
  std::lock_guard lock(mutex_);
  return failed_;
}

void ForwardRecorder::loop() {
  std::vector<ForwardRecord> batch;
  for (;;) {
    batch.clear();
    std::size_t batch_bytes = 0;
    {
      std::unique_lock lock(mutex_);
      writer_idle_ = true;
      not_empty_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      writer_idle_ = false;
      if (queue_.empty()) return;  // closing and drained
      // Let a batch gather for a moment (the replies were sent already: async recording
      // promises no durability at reply time, and close() cuts the wait short).
      not_empty_.wait_for(lock, kGatherTime, [&] { return batch_due(); });
      // Group commit: whatever queued up while the last batch was written goes in one
      // transaction. Per-record commits would cap recording at one fsync per Forward.
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch_bytes += bytes_of(queue_.front());
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    bool ok = true;
    std::string error;
    try {
      store_.record_forwards(batch);
    } catch (const std::exception& e) {
      ok = false;
      error = e.what();
    }
    {
      std::lock_guard lock(mutex_);
      queued_bytes_ -= batch_bytes;
      (ok ? written_ : failed_) += batch.size();
    }
    not_full_.notify_all();
    if (ok && on_written_) on_written_();
    if (!ok && on_error_) {
      on_error_(std::to_string(batch.size()) + " forward record(s) (requests " +
                std::to_string(batch.front().request_id) + ".." +
                std::to_string(batch.back().request_id) + " from '" + batch.front().client_id +
                "', ...) not written: " + error);
    }
  }
}

}  // namespace pnn::daemon::detail

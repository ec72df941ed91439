#include "recorder.hpp"

namespace pnn::daemon::detail {

ForwardRecorder::ForwardRecorder(RunStore& store, std::size_t capacity_bytes,
                                 ErrorHandler on_error)
    : store_(store), capacity_bytes_(capacity_bytes), on_error_(std::move(on_error)) {
  thread_ = std::thread([this] { loop(); });
}

ForwardRecorder::~ForwardRecorder() { close(); }

std::size_t ForwardRecorder::bytes_of(const ForwardRecord& r) {
  return static_cast<std::size_t>(r.x.size() + r.y.size() + r.theta.size()) * sizeof(double) +
         r.client_id.size() + r.device_serial.size() + 64;
}

void ForwardRecorder::push(ForwardRecord record) {
  const std::size_t bytes = bytes_of(record);
  std::unique_lock lock(mutex_);
  // A record larger than the whole capacity still goes in once the queue is empty.
  not_full_.wait(lock, [&] {
    return closing_ || queue_.empty() || queued_bytes_ + bytes <= capacity_bytes_;
  });
  if (closing_) return;
  queued_bytes_ += bytes;
  queue_.push_back(std::move(record));
  not_empty_.notify_one();
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
  for (;;) {
    ForwardRecord record;
    {
      std::unique_lock lock(mutex_);
      not_empty_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      record = std::move(queue_.front());
      queue_.pop_front();
    }
    bool ok = true;
    std::string error;
    try {
      store_.record_forward(record);
    } catch (const std::exception& e) {
      ok = false;
      error = e.what();
    }
    {
      std::lock_guard lock(mutex_);
      queued_bytes_ -= bytes_of(record);
      ++(ok ? written_ : failed_);
    }
    not_full_.notify_all();
    if (!ok && on_error_) {
      on_error_("forward record of request " + std::to_string(record.request_id) + " from '" +
                record.client_id + "' not written: " + error);
    }
  }
}

}  // namespace pnn::daemon::detail

#pragma once
// Forward-call recording off the reply path: device workers push records into a queue bounded in
// bytes; one thread writes them to the run store in order. A full queue makes the pushing device
// worker wait (back-pressure on the hardware loop, never on the event loop), so no record is
// dropped. close() writes everything still queued. Records queued while a batch is being written
// are written together in the next transaction (group commit: one fsync per batch); a batch
// gathers for up to kGatherTime before it is written, so a steady stream of Forward calls wakes
// the writer a few hundred times a second instead of once per call.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon::detail {

class ForwardRecorder {
 public:
  using ErrorHandler = std::function<void(const std::string& message)>;

  /// `store` must outlive the recorder. `on_error` runs on the recorder thread, and so does
  /// `on_written` (if set), after every batch that reached the store.
  ForwardRecorder(RunStore& store, std::size_t capacity_bytes, ErrorHandler on_error,
                  std::function<void()> on_written = {});
  ~ForwardRecorder();
  ForwardRecorder(const ForwardRecorder&) = delete;
  ForwardRecorder& operator=(const ForwardRecorder&) = delete;

  /// Queues a record; waits while the queue holds more than the capacity. Thread-safe.
  void push(ForwardRecord record);
  /// The same without waiting: the record back if the queue has no room for it now (nullopt when
  /// queued, or when closing). For the event loop, which must never wait. Thread-safe.
  std::optional<ForwardRecord> try_push(ForwardRecord record);
  /// Writes what is queued, then stops the thread. Idempotent.
  void close();

  std::uint64_t num_written() const;
  std::uint64_t num_failed() const;

 private:
  static constexpr std::size_t kMaxBatch = 512;  // records per transaction
  // A batch's longest wait before it is written. 50 ms rather than 5: a tenth of the fsyncs on a
  // stream of large records, +2-3 % Forward throughput on 2 cores (docs/benchmarks.md).
  static constexpr std::chrono::milliseconds kGatherTime{50};
  static std::size_t bytes_of(const ForwardRecord& r);
  bool batch_due() const;  // with mutex_ held
  bool has_room(std::size_t bytes) const;  // with mutex_ held
  void enqueue(ForwardRecord record, std::size_t bytes);  // with mutex_ held
  void loop();

  RunStore& store_;
  const std::size_t capacity_bytes_;
  ErrorHandler on_error_;
  std::function<void()> on_written_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<ForwardRecord> queue_;
  std::size_t queued_bytes_ = 0;
  bool closing_ = false;
  bool writer_idle_ = false;  // the writer waits for a first record
  std::uint64_t written_ = 0, failed_ = 0;
  std::thread thread_;
};

}  // namespace pnn::daemon::detail

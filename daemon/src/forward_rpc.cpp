// Forward: a batch on the hardware, on the device's worker, recorded (sync or async) in the run
// store. Its reply is recorded for retries only if the hardware ran.
#include <sys/statvfs.h>

#include <filesystem>
#include <thread>

#include "forward_fast_path.hpp"
#include "proto_fill.hpp"
#include "server_impl.hpp"

namespace pnn::daemon {

namespace fs = std::filesystem;
using detail::set_status;

// After a forward record was written (recorder thread or a device worker, never the event
// loop: the store's mutex may be held by a long write). Says once per start that the
// retention limit is deleting old records.
void Server::Impl::note_forward_retention() {
  if (retention_noted.load(std::memory_order_relaxed)) return;
  const ForwardStats f = store->forward_stats();
  if (f.pruned == 0 || retention_noted.exchange(true)) return;
  log_async("warning", "forward records reached store.forward_records_max_bytes (" +
                           std::to_string(f.max_bytes) +
                           " bytes): the oldest are now deleted as new ones arrive (records " +
                           std::to_string(f.oldest_record_id) + ".." +
                           std::to_string(f.newest_record_id) +
                           " kept); raise the limit, or set it to 0 to keep every record");
}

void Server::Impl::forward(const Call& call, v1::Request& request) {
  if (call.client_id.empty()) {
    send_error(call, v1::INVALID_ARGUMENT,
               "Forward needs a client_id: (client_id, request_id) is the idempotency key", kIntake);
    return;
  }
  DeviceSlot* s = writable_device(call, request.forward().device(), request.lease_token());
  if (!s) return;
  if (request.forward().settle_ms() > config.max_settle_ms) {
    send_error(call, v1::INVALID_ARGUMENT,
               "settle_ms " + std::to_string(request.forward().settle_ms()) +
                   " exceeds the maximum of " + std::to_string(config.max_settle_ms) +
                   " ms (forward.max_settle_ms); nothing was sent",
               origin(*s));
    return;
  }
  if (config.forward_recording == ForwardRecording::kSync && store_full && !store_has_room()) {
    send_error(call, v1::STORE_FULL,
               "the run store's disk is full, so this Forward could not be recorded "
               "(store.forward_records: sync); the device was not run. Free space on the "
               "store's file system (" + config.store_path + ") or lower "
               "store.forward_records_max_bytes",
               origin(*s));
    return;
  }
  if (forward_inline(*s, call, request.forward())) return;
  auto job = std::make_shared<v1::ForwardRequest>(std::move(*request.mutable_forward()));
  run_on_device(*s, call, [this, s, call, job] {
    v1::Reply reply;
    bool ran = false;
    try {
      ran = run_forward(*s, call, *job, reply, /*on_event_loop=*/false);
    } catch (const std::exception& e) {
      set_status(reply, v1::INTERNAL, e.what(), origin(*s));
    }
    return [this, s, call, ran, reply = std::move(reply)]() mutable {
      if (ran) ++s->forward_calls;
      send_reply(call, reply, /*record=*/ran);
    };
  });
}

// The Forward fast path: the bare echo's path, with no hand-off to the device's worker and back
// (two thread wake-ups, most of what the daemon added to a small Forward: docs/benchmarks.md,
// rpc-overhead). Taken only when nothing can block the event loop for long: an in-process
// simulated device without injected faults (pure computation, no link to stall), idle (the call
// runs as one of its worker's tasks, so it never overlaps another), recording off or async
// (sync recording waits for the disk), no settle_ms, and a predicted time within
// forward.inline_max_us: the last forward's time per row times this batch's rows, so the first
// forward on a device, and a batch far larger than the last, go to the worker. Returns whether
// the call was answered.
bool Server::Impl::forward_inline(DeviceSlot& s, const Call& call, const v1::ForwardRequest& f) {
  if (!s.inline_capable || config.forward_recording == ForwardRecording::kSync ||
      f.settle_ms() > 0) {
    return false;
  }
  const double rows = f.x().shape_size() == 2 ? static_cast<double>(f.x().shape(0)) : 1.0;
  if (!detail::fits_inline(s.forward_ns_per_row.load(std::memory_order_relaxed), rows,
                           config.inline_forward_max_us)) {
    return false;
  }
  v1::Reply reply;
  bool ran = false;
  const bool done = s.worker->try_run_here([&]() noexcept {
    try {
      ran = run_forward(s, call, f, reply, /*on_event_loop=*/true);
    } catch (const std::exception& e) {
      set_status(reply, v1::INTERNAL, e.what(), origin(s));
    }
  });
  if (!done) return false;  // busy: queued behind its calls as usual
  refresh_device(s);
  if (ran) {
    ++s.forward_calls;
    ++s.inline_forward_calls;
  }
  send_reply(call, reply, /*record=*/ran);
  return true;
}

// Whether the store's file system has room again after a commit failed for lack of it.
bool Server::Impl::store_has_room() {
  struct statvfs fs_info{};
  const fs::path dir = fs::path(config.store_path).has_parent_path()
                           ? fs::path(config.store_path).parent_path()
                           : fs::path(".");
  if (::statvfs(dir.c_str(), &fs_info) != 0) return false;
  const auto free_bytes = static_cast<std::uint64_t>(fs_info.f_bavail) * fs_info.f_frsize;
  if (free_bytes < (std::uint64_t{4} << 20)) return false;
  store_full = false;
  return true;
}

// On the device's worker, or on the event loop (forward_inline: never sync recording, which
// waits for the disk). Returns whether the hardware was driven.
bool Server::Impl::run_forward(DeviceSlot& s, const Call& call, const v1::ForwardRequest& f,
                               v1::Reply& reply, bool on_event_loop) {
  const std::string where = origin(s);
  auto x = from_tensor(f.x(), "forward x");
  if (!x) {
    set_status(reply, v1::SHAPE_MISMATCH, x.error().message, where);
    return false;
  }
  const Vector theta = from_vec(f.theta());
  if (f.settle_ms() > 0) {  // at most forward.max_settle_ms, checked on arrival
    std::this_thread::sleep_for(std::chrono::milliseconds(f.settle_ms()));
  }
  const std::int64_t t_start = detail::wall_ns();
  auto y = s.device->forward(x.value(), theta);
  const std::int64_t t_end = detail::wall_ns();
  s.forward_ns_per_row.store(static_cast<double>(t_end - t_start) /
                                 static_cast<double>(std::max<Index>(x.value().rows(), 1)),
                             std::memory_order_relaxed);
  if (!y) {
    // The driver's code says whether the hardware ran: a refused request (state, shape, a
    // non-finite or out-of-limit value) never reached it; a link or device fault, or non-finite
    // readings, came from a run.
    const auto& error = y.error().code;
    const auto code = status_code(error);
    set_status(reply, code, y.error().message, where);
    return code == v1::DEVICE_TIMEOUT || code == v1::DEVICE_IO || code == v1::DEVICE_FAULT ||
           error == drivers::Errc::kNonFiniteReading;
  }
  auto* out = reply.mutable_forward();
  to_tensor(y.value(), out->mutable_y());
  out->set_t_start_ns(t_start);
  out->set_t_end_ns(t_end);
  if (config.forward_recording == ForwardRecording::kOff) return true;
  ForwardRecord record{0,       call.client_id, call.request_id,      s.device->spec().serial,
                       t_start, t_end,          std::move(x).value(), theta,
                       std::move(y).value()};
  if (config.forward_recording == ForwardRecording::kAsync) {
    // The event loop never waits for room in the recorder's queue: a record that does not fit
    // is pushed by the device's worker instead, ahead of any later call on the device (those
    // queue behind it), so the device's records stay in order.
    if (!on_event_loop) {
      recorder->push(std::move(record));
    } else if (auto rejected = recorder->try_push(std::move(record))) {
      auto pending = std::make_shared<ForwardRecord>(std::move(*rejected));
      if (!s.worker->post([this, pending] { recorder->push(std::move(*pending)); })) {
        recorder->push(std::move(*pending));  // stopping: the worker takes no more tasks
      }
    }
    return true;
  }
  // Sync means acknowledged only once durable: a record that cannot be committed fails the
  // call (the device ran; its output is not returned as a success).
  try {
    out->set_record_id(store->record_forward(record));
    out->set_recorded(true);
    note_forward_retention();
  } catch (const StoreError& e) {
    if (e.disk_full()) store_full = true;
    reply.clear_forward();
    set_status(reply, v1::RECORD_FAILED,
               std::string("the device ran, but its forward record could not be committed "
                           "(store.forward_records: sync), so the call is not acknowledged: ") +
                   e.what() + (e.disk_full() ? "; free space on the store's file system" : ""),
               where);
    log_async("error", "forward record not written: " + std::string(e.what()));
  }
  return true;
}

}  // namespace pnn::daemon

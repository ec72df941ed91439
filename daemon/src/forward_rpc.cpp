// Forward: a batch on the hardware, on the device's worker, recorded (sync or async) in the run
// store. Its reply is recorded for retries only if the hardware ran.
#include <sys/statvfs.h>

#include <filesystem>
#include <thread>

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
  auto job = std::make_shared<v1::ForwardRequest>(std::move(*request.mutable_forward()));
  run_on_device(*s, call, [this, s, call, job] {
    v1::Reply reply;
    bool ran = false;
    try {
      ran = run_forward(*s, call, *job, reply);
    } catch (const std::exception& e) {
      set_status(reply, v1::INTERNAL, e.what(), origin(*s));
    }
    return [this, s, call, ran, reply = std::move(reply)]() mutable {
      if (ran) ++s->forward_calls;
      send_reply(call, reply, /*record=*/ran);
    };
  });
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

// On the device's worker. Returns whether the hardware was driven.
bool Server::Impl::run_forward(DeviceSlot& s, const Call& call, const v1::ForwardRequest& f,
                               v1::Reply& reply) {
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
    recorder->push(std::move(record));
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

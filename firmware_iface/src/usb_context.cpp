// libusb contexts and transfers with absolute deadlines: async submit, event handling on the
// calling thread, cancel at the deadline (usb_link.hpp has the contract).
#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "usb_libusb.hpp"

namespace pnn::firmware_iface::detail {
namespace {

using std::chrono::milliseconds;

extern "C" void on_transfer_done(libusb_transfer* transfer) {
  *static_cast<int*>(transfer->user_data) = 1;
}

// Runs libusb's event handling on this thread until `done`, `until`, or `*gone` (set by the
// hotplug callback when our device leaves).
void pump(libusb_context* ctx, int& done, Clock::time_point until, const bool* gone) {
  while (!done && !(gone && *gone)) {
    const auto now = Clock::now();
    if (now >= until) return;
    const auto left = std::min<Clock::duration>(until - now, milliseconds{100});
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(us / 1000000);
    tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
    const int r = libusb_handle_events_timeout_completed(ctx, &tv, &done);
    // Errors here (e.g. LIBUSB_ERROR_INTERRUPTED) are transient: the loop retries until the
    // deadline, and a transfer that cannot finish is cancelled below.
    if (r < 0 && r != LIBUSB_ERROR_INTERRUPTED) std::this_thread::yield();
  }
}

}  // namespace

std::string error_name(int code) { return libusb_error_name(code); }

TransferPtr alloc_transfer() {
  TransferPtr t(libusb_alloc_transfer(0));
  if (!t) throw std::bad_alloc();
  return t;
}

RawOutcome run_transfer(libusb_context* ctx, libusb_transfer* t, Deadline deadline,
                        milliseconds grace, const bool* gone) {
  int done = 0;
  t->user_data = &done;
  t->callback = &on_transfer_done;
  t->timeout = 0;  // the deadline is ours, not libusb's
  RawOutcome out;
  const int r = libusb_submit_transfer(t);
  if (r != 0) {
    out.result.error = r == LIBUSB_ERROR_NO_DEVICE ? Errc::kDisconnected : Errc::kIo;
    return out;
  }
  pump(ctx, done, deadline, gone);
  if (!done) {
    // At the deadline, or the device left: cancel and wait for the completion (a disconnect
    // completes transfers with NO_DEVICE). Only a transfer that never completes is abandoned
    // by closing the handle, which costs libusb a small leak of its URB bookkeeping.
    const int c = libusb_cancel_transfer(t);  // NOT_FOUND: it is completing anyway
    pump(ctx, done, Clock::now() + grace, nullptr);
    if (!done) {
      out.stuck = true;
      const bool left = (gone && *gone) || c == LIBUSB_ERROR_NO_DEVICE;
      out.result.error = left ? Errc::kDisconnected : Errc::kIo;
      return out;
    }
  }
  out.result.actual = static_cast<std::size_t>(std::max(t->actual_length, 0));
  switch (t->status) {
    case LIBUSB_TRANSFER_COMPLETED:
      break;
    case LIBUSB_TRANSFER_CANCELLED:
    case LIBUSB_TRANSFER_TIMED_OUT:
      out.result.error = Errc::kTimeout;
      break;
    case LIBUSB_TRANSFER_NO_DEVICE:
      out.result.error = Errc::kDisconnected;
      break;
    case LIBUSB_TRANSFER_STALL:
      out.stall = true;
      out.result.error = Errc::kIo;
      break;
    case LIBUSB_TRANSFER_OVERFLOW:
    case LIBUSB_TRANSFER_ERROR:
    default:
      out.result.error = Errc::kIo;
      break;
  }
  return out;
}

const char* status_text(const RawOutcome& o) {
  if (o.stuck) return "cancellation did not complete";
  if (o.stall) return "endpoint stalled";
  if (o.result.error == Errc::kTimeout) return "timed out";
  if (o.result.error == Errc::kDisconnected) return "device gone";
  return "transfer failed";
}

RawOutcome control_transfer(libusb_context* ctx, libusb_device_handle* handle,
                            const usbtmc::ControlSetup& setup, std::span<std::uint8_t> data,
                            Deadline deadline, milliseconds grace, const bool* gone) {
  std::vector<std::uint8_t> buffer(LIBUSB_CONTROL_SETUP_SIZE + setup.length);
  libusb_fill_control_setup(buffer.data(), setup.request_type, setup.request, setup.value,
                            setup.index, setup.length);
  auto t = alloc_transfer();
  libusb_fill_control_transfer(t.get(), handle, buffer.data(), nullptr, nullptr, 0);
  RawOutcome o = run_transfer(ctx, t.get(), deadline, grace, gone);
  if (o.stuck) {
    libusb_close(handle);  // removes the transfer from libusb's books; only then may it be freed
    return o;
  }
  const std::size_t n = std::min({o.result.actual, data.size(), std::size_t{setup.length}});
  std::memcpy(data.data(), libusb_control_transfer_get_data(t.get()), n);
  o.result.actual = n;
  return o;
}

UsbContext::~UsbContext() {
  if (ctx_) libusb_exit(ctx_);
}

bool UsbContext::ensure(std::string& error) {
  if (ctx_) return true;
  const int r = libusb_init(&ctx_);
  if (r != 0) {
    ctx_ = nullptr;
    error = "libusb_init failed (" + error_name(r) +
            "): this system has no usable USB subsystem (is /dev/bus/usb present?)";
    return false;
  }
  return true;
}

}  // namespace pnn::firmware_iface::detail

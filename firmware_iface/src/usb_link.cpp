#include "usb_link.hpp"

#include <libusb.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace pnn::firmware_iface {

UsbDeviceMatch UsbDeviceMatch::parse(std::string_view vid_pid, std::string serial) {
  const auto bad = [&](const char* why) {
    return std::invalid_argument("USB id '" + std::string(vid_pid) + "' " + why +
                                 ": expected VID:PID in hex as lsusb prints it, e.g. 0957:1755");
  };
  const auto colon = vid_pid.find(':');
  if (colon == std::string_view::npos) throw bad("has no ':'");
  const auto hex16 = [&](std::string_view s) {
    if (s.empty() || s.size() > 4) throw bad("needs 1 to 4 hex digits on each side of ':'");
    unsigned value = 0;
    for (char c : s) {
      unsigned digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<unsigned>(c - 'A' + 10);
      } else {
        throw bad("contains a character that is not a hex digit");
      }
      value = value * 16 + digit;
    }
    return static_cast<std::uint16_t>(value);
  };
  UsbDeviceMatch m;
  m.vid = hex16(vid_pid.substr(0, colon));
  m.pid = hex16(vid_pid.substr(colon + 1));
  m.serial = std::move(serial);
  return m;
}

std::string UsbDeviceMatch::to_string() const {
  char id[16];
  std::snprintf(id, sizeof id, "%04x:%04x", vid, pid);
  std::string s = id;
  if (!serial.empty()) s += " serial " + serial;
  return s;
}

namespace detail {
namespace {

using std::chrono::milliseconds;

std::string error_name(int code) { return libusb_error_name(code); }

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v & 0xFFu);
  return buf;
}

struct TransferDeleter {
  void operator()(libusb_transfer* t) const noexcept { libusb_free_transfer(t); }
};
using TransferPtr = std::unique_ptr<libusb_transfer, TransferDeleter>;

TransferPtr alloc_transfer() {
  TransferPtr t(libusb_alloc_transfer(0));
  if (!t) throw std::bad_alloc();
  return t;
}

extern "C" void on_transfer_done(libusb_transfer* transfer) {
  *static_cast<int*>(transfer->user_data) = 1;
}

extern "C" int on_device_left(libusb_context*, libusb_device* device, libusb_hotplug_event,
                              void* user_data) {
  static_cast<UsbLink*>(user_data)->note_device_left(device);
  return 0;  // stay registered
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

struct RawOutcome {
  TransferResult result;
  bool stuck = false;  // still in flight (cancel never completed, or the device left): the
                       // handle must be closed before the transfer is freed
  bool stall = false;
};

// Submits `t`, waits until it completes or `deadline`, then cancels it and waits for the
// cancellation (libusb forbids freeing a transfer in flight). The wait also ends when the
// device leaves (`*gone`, from the hotplug callback): on Linux libusb learns of a disconnect
// from POLLERR on the usbfs descriptor, which not every setup raises promptly.
RawOutcome run_transfer(libusb_context* ctx, libusb_transfer* t, Deadline deadline,
                        milliseconds grace, const bool* gone = nullptr) {
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
                            Deadline deadline, milliseconds grace, const bool* gone = nullptr) {
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

struct DeviceListDeleter {
  void operator()(libusb_device** list) const noexcept { libusb_free_device_list(list, 1); }
};
using DeviceList = std::unique_ptr<libusb_device*, DeviceListDeleter>;

struct HandleCloser {
  void operator()(libusb_device_handle* h) const noexcept { libusb_close(h); }
};
using HandlePtr = std::unique_ptr<libusb_device_handle, HandleCloser>;

struct ConfigDeleter {
  void operator()(libusb_config_descriptor* c) const noexcept { libusb_free_config_descriptor(c); }
};
using ConfigPtr = std::unique_ptr<libusb_config_descriptor, ConfigDeleter>;

// The active configuration, or the first one for a device not configured yet.
ConfigPtr config_of(libusb_device* device) {
  libusb_config_descriptor* cfg = nullptr;
  if (libusb_get_active_config_descriptor(device, &cfg) == 0) return ConfigPtr(cfg);
  if (libusb_get_config_descriptor(device, 0, &cfg) == 0) return ConfigPtr(cfg);
  return nullptr;
}

std::optional<UsbInterfaceInfo> describe_interface(const libusb_interface_descriptor& alt) {
  UsbInterfaceInfo info;
  info.number = alt.bInterfaceNumber;
  info.interface_class = alt.bInterfaceClass;
  info.interface_subclass = alt.bInterfaceSubClass;
  info.interface_protocol = alt.bInterfaceProtocol;
  for (int e = 0; e < alt.bNumEndpoints; ++e) {
    const libusb_endpoint_descriptor& ep = alt.endpoint[e];
    const auto type = ep.bmAttributes & LIBUSB_TRANSFER_TYPE_MASK;
    const bool in = (ep.bEndpointAddress & LIBUSB_ENDPOINT_DIR_MASK) == LIBUSB_ENDPOINT_IN;
    const auto packet = static_cast<std::uint16_t>(ep.wMaxPacketSize & 0x7FF);
    if (type == LIBUSB_TRANSFER_TYPE_BULK && packet > 0) {
      if (in && info.bulk_in == 0) {
        info.bulk_in = ep.bEndpointAddress;
        info.bulk_in_packet = packet;
      } else if (!in && info.bulk_out == 0) {
        info.bulk_out = ep.bEndpointAddress;
        info.bulk_out_packet = packet;
      }
    } else if (type == LIBUSB_TRANSFER_TYPE_INTERRUPT && in && !info.interrupt_in) {
      info.interrupt_in = ep.bEndpointAddress;
    }
  }
  if (info.bulk_in == 0 || info.bulk_out == 0) return std::nullopt;
  return info;
}

std::string interface_list(const libusb_config_descriptor& cfg) {
  std::string s;
  for (int i = 0; i < cfg.bNumInterfaces; ++i) {
    if (cfg.interface[i].num_altsetting < 1) continue;
    const auto& alt = cfg.interface[i].altsetting[0];
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%u (class %02x/%02x/%02x, %u endpoints)",
                  s.empty() ? "" : ", ", alt.bInterfaceNumber, alt.bInterfaceClass,
                  alt.bInterfaceSubClass, alt.bInterfaceProtocol, alt.bNumEndpoints);
    s += buf;
  }
  return s.empty() ? "none" : s;
}

}  // namespace

void check_common_options(const UsbDeviceMatch& match, const UsbTimings& timings,
                          const char* factory) {
  if (match.vid == 0 && match.pid == 0) {
    throw std::invalid_argument(std::string(factory) +
                                ": match.vid and match.pid are both 0; set them to the device's "
                                "VID:PID as lsusb shows it (e.g. 0957:1755)");
  }
  if (timings.cancel_grace.count() <= 0) {
    throw std::invalid_argument(std::string(factory) +
                                ": timings.cancel_grace must be positive (default 500 ms)");
  }
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

Result<std::string> read_string_descriptor(libusb_context* ctx, libusb_device_handle* handle,
                                           std::uint8_t index, std::uint16_t& langid,
                                           Deadline deadline, milliseconds grace,
                                           bool& handle_closed) {
  if (index == 0) return std::string{};
  std::array<std::uint8_t, 255> buf{};
  const auto get = [&](std::uint16_t value, std::uint16_t lang) -> Result<std::size_t> {
    const usbtmc::ControlSetup setup{
        std::uint8_t{LIBUSB_ENDPOINT_IN} | std::uint8_t{LIBUSB_REQUEST_TYPE_STANDARD},
        LIBUSB_REQUEST_GET_DESCRIPTOR, value, lang, 255};
    RawOutcome o = control_transfer(ctx, handle, setup, buf, deadline, grace);
    if (o.stuck) {
      handle_closed = true;
      return Errc::kIo;
    }
    if (o.result.error) return o.result.error;
    return o.result.actual;
  };
  if (langid == 0) {
    auto n = get(LIBUSB_DT_STRING << 8, 0);
    if (!n) return n.error();
    langid = (*n >= 4 && buf[1] == LIBUSB_DT_STRING)
                 ? static_cast<std::uint16_t>(buf[2] | (buf[3] << 8))
                 : std::uint16_t{0x0409};
  }
  auto n = get(static_cast<std::uint16_t>((LIBUSB_DT_STRING << 8) | index), langid);
  if (!n) return n.error();
  if (*n < 2 || buf[1] != LIBUSB_DT_STRING) return Errc::kIo;
  const std::size_t len = std::min<std::size_t>(*n, buf[0]);
  std::string s;
  for (std::size_t i = 2; i + 1 < len; i += 2) {
    const unsigned c = buf[i] | (buf[i + 1] << 8);
    s.push_back(c >= 0x20 && c < 0x7F ? static_cast<char>(c) : '?');
  }
  return s;
}

UsbLink::UsbLink(std::string scheme, UsbDeviceMatch match,
                 std::optional<std::uint8_t> interface_number, UsbInterfaceKind kind,
                 UsbTimings timings)
    : scheme_(std::move(scheme)),
      match_(std::move(match)),
      interface_number_(interface_number),
      kind_(kind),
      timings_(timings) {}

UsbLink::~UsbLink() { close(); }

std::error_code UsbLink::fail(std::error_code code, std::string detail) {
  last_error_ = std::move(detail);
  return code;
}

std::error_code UsbLink::open(Deadline deadline) {
  if (handle_) return {};
  std::string init_error;
  if (!context_.ensure(init_error)) return fail(Errc::kDisconnected, init_error);
  libusb_device** raw = nullptr;
  const ssize_t count = libusb_get_device_list(context_.get(), &raw);
  if (count < 0) {
    return fail(Errc::kIo,
                "enumerating USB devices failed: " + error_name(static_cast<int>(count)));
  }
  DeviceList list(raw);
  const std::string& wanted = match_.serial.empty() ? pinned_serial_ : match_.serial;
  std::vector<std::string> other_serials;
  std::string access_problem;
  for (ssize_t i = 0; i < count; ++i) {
    libusb_device* device = raw[i];
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(device, &desc) != 0) continue;
    if (desc.idVendor != match_.vid || desc.idProduct != match_.pid) continue;
    const auto bus = libusb_get_bus_number(device);
    const auto address = libusb_get_device_address(device);
    libusb_device_handle* h = nullptr;
    const int r = libusb_open(device, &h);
    if (r != 0) {
      if (r == LIBUSB_ERROR_NO_DEVICE) continue;  // went away while we looked
      access_problem = "cannot open " + match_.to_string() + " at bus " + std::to_string(bus) +
                       " device " + std::to_string(address) + ": " + error_name(r);
      if (r == LIBUSB_ERROR_ACCESS) {
        access_problem +=
            " (no permission on /dev/bus/usb: install the udev rule from "
            "docs/protocol.md, or add the user to its group)";
      }
      continue;
    }
    HandlePtr handle(h);
    std::uint16_t langid = 0;
    bool closed = false;
    auto serial = read_string_descriptor(context_.get(), h, desc.iSerialNumber, langid, deadline,
                                         timings_.cancel_grace, closed);
    if (closed) {
      handle.release();  // closed by the transfer that could not be cancelled
      continue;
    }
    if (!serial) {
      if (serial.error() == Errc::kDisconnected) continue;
      if (serial.error() == Errc::kTimeout) {
        return fail(Errc::kTimeout, "reading the serial number of " + match_.to_string() +
                                        " at bus " + std::to_string(bus) + " device " +
                                        std::to_string(address) + " timed out");
      }
      if (!wanted.empty()) continue;
      serial = std::string{};
    }
    if (!wanted.empty() && *serial != wanted) {
      other_serials.push_back(serial->empty() ? "(none)" : *serial);
      continue;
    }
    if (auto ec = claim(device, h)) return ec;
    handle_ = handle.release();
    device_left_ = false;
    if (libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
      watching_ = libusb_hotplug_register_callback(
                      context_.get(), LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT, 0, match_.vid, match_.pid,
                      LIBUSB_HOTPLUG_MATCH_ANY, &on_device_left, this, &hotplug_handle_) == 0;
    }
    serial_ = *serial;
    bus_ = bus;
    address_ = address;
    if (match_.serial.empty() && pinned_serial_.empty()) pinned_serial_ = serial_;
    last_error_.clear();
    return {};
  }
  std::string others;
  for (const auto& s : other_serials) others += (others.empty() ? "" : ", ") + s;
  if (!other_serials.empty() && match_.serial.empty()) {
    return fail(Errc::kIdentityMismatch,
                "the unit opened before (serial " + pinned_serial_ + ") is gone and another " +
                    match_.to_string() + " is present (serial " + others +
                    "): put serial=" + pinned_serial_ + " or the new serial into the address");
  }
  if (!access_problem.empty()) return fail(Errc::kIo, access_problem);
  std::string detail = "no USB device " + match_.to_string();
  if (!wanted.empty() && match_.serial.empty()) detail += " (serial " + wanted + ")";
  detail += " is connected";
  if (!others.empty()) detail += " (same VID:PID with serial " + others + ")";
  return fail(Errc::kDisconnected, detail);
}

std::error_code UsbLink::claim(libusb_device* device, libusb_device_handle* handle) {
  const std::string who = match_.to_string();
  ConfigPtr cfg = config_of(device);
  if (!cfg) return fail(Errc::kIo, who + ": cannot read its configuration descriptor");
  int active = 0;
  if (libusb_get_configuration(handle, &active) == 0 && active == 0) {
    // Not configured yet (no driver set one): select the configuration we read.
    const int r = libusb_set_configuration(handle, cfg->bConfigurationValue);
    if (r != 0) return fail(Errc::kIo, who + ": set_configuration failed: " + error_name(r));
  }
  std::optional<UsbInterfaceInfo> chosen;
  for (int i = 0; i < cfg->bNumInterfaces && !chosen; ++i) {
    if (cfg->interface[i].num_altsetting < 1) continue;
    const libusb_interface_descriptor& alt = cfg->interface[i].altsetting[0];
    if (interface_number_ && alt.bInterfaceNumber != *interface_number_) continue;
    if (kind_ == UsbInterfaceKind::kUsbtmc &&
        !is_usbtmc_class(alt.bInterfaceClass, alt.bInterfaceSubClass, alt.bInterfaceProtocol)) {
      continue;
    }
    chosen = describe_interface(alt);
  }
  if (!chosen) {
    const bool tmc = kind_ == UsbInterfaceKind::kUsbtmc;
    std::string want = interface_number_ ? "interface " + std::to_string(*interface_number_)
                                         : std::string(tmc ? "USBTMC interface" : "interface");
    if (tmc) want += interface_number_ ? " of USBTMC class" : "";
    if (tmc) want += " (class fe/03/00 or fe/03/01)";
    want += " with a bulk IN and a bulk OUT endpoint";
    return fail(Errc::kIo, who + " has no " + want + "; its interfaces: " + interface_list(*cfg) +
                               (tmc ? " (is it a USBTMC instrument? raw boards use usb://)" : ""));
  }
  // A kernel driver (usbtmc, cdc_acm, ...) is detached on claim and re-attached on release.
  libusb_set_auto_detach_kernel_driver(handle, 1);  // NOT_SUPPORTED off Linux: nothing to detach
  const int r = libusb_claim_interface(handle, chosen->number);
  if (r == LIBUSB_ERROR_NO_DEVICE) return fail(Errc::kDisconnected, who + " went away during open");
  if (r != 0) {
    std::string detail = who + ": claiming interface " + std::to_string(chosen->number) +
                         " failed: " + error_name(r);
    if (r == LIBUSB_ERROR_BUSY) {
      detail +=
          " (another program holds it: another pnnd, a VISA library, or a kernel driver "
          "that could not be detached; close that program first)";
    }
    return fail(Errc::kIo, detail);
  }
  interface_ = *chosen;
  return {};
}

void UsbLink::unwatch() noexcept {
  if (watching_) libusb_hotplug_deregister_callback(context_.get(), hotplug_handle_);
  watching_ = false;
}

void UsbLink::note_device_left(libusb_device* device) noexcept {
  if (handle_ && device == libusb_get_device(handle_)) device_left_ = true;
}

void UsbLink::close() noexcept {
  if (!handle_) return;
  unwatch();
  libusb_release_interface(handle_, interface_.number);  // fails harmlessly if the device is gone
  libusb_close(handle_);
  handle_ = nullptr;
}

void UsbLink::abandon(bool handle_closed) noexcept {
  if (!handle_) return;
  unwatch();
  // libusb_close() drops transfers still in flight from libusb's books (the kernel discards
  // their URBs with the descriptor); only after that may they be freed.
  if (!handle_closed) libusb_close(handle_);
  handle_ = nullptr;
}

TransferResult UsbLink::finish(TransferResult r, bool stuck, bool handle_closed,
                               const std::string& what) {
  if (stuck) {
    abandon(handle_closed);
    last_error_ = r.error == Errc::kDisconnected
                      ? what + ": the device went away (unplugged or reset)"
                      : what + ": the cancelled transfer never completed; link closed";
  } else if (r.error == Errc::kDisconnected) {
    close();
    last_error_ = what + ": the device went away (unplugged or reset)";
  }
  return r;
}

TransferResult UsbLink::bulk(std::uint8_t endpoint, std::span<std::uint8_t> buffer,
                             Deadline deadline) {
  if (!handle_) return {Errc::kNotOpen, 0};
  if (device_left_) return finish({Errc::kDisconnected, 0}, false, false, "bulk transfer");
  if (buffer.size() > static_cast<std::size_t>(INT_MAX)) {
    throw std::length_error("USB bulk transfer larger than 2 GiB");
  }
  auto t = alloc_transfer();
  libusb_fill_bulk_transfer(t.get(), handle_, endpoint, buffer.data(),
                            static_cast<int>(buffer.size()), nullptr, nullptr, 0);
  RawOutcome o =
      run_transfer(context_.get(), t.get(), deadline, timings_.cancel_grace, &device_left_);
  const std::string what = std::string("bulk ") +
                           ((endpoint & LIBUSB_ENDPOINT_IN) ? "IN " : "OUT ") + hex_byte(endpoint);
  if (o.stuck) return finish(o.result, true, false, what);  // closes the handle before t is freed
  if (o.stall) {
    const int r = libusb_clear_halt(handle_, endpoint);
    last_error_ = what + " stalled; halt cleared" + (r == 0 ? "" : " failed: " + error_name(r));
  } else if (o.result.error && o.result.error != Errc::kTimeout) {
    last_error_ = what + ": " + status_text(o);
  }
  return finish(o.result, false, false, what);
}

TransferResult UsbLink::control_in(const usbtmc::ControlSetup& setup, std::span<std::uint8_t> data,
                                   Deadline deadline) {
  if (!handle_) return {Errc::kNotOpen, 0};
  if (data.size() < setup.length) throw std::logic_error("control_in: buffer below wLength");
  if (device_left_) return finish({Errc::kDisconnected, 0}, false, false, "control transfer");
  RawOutcome o = control_transfer(context_.get(), handle_, setup, data, deadline,
                                  timings_.cancel_grace, &device_left_);
  const std::string what = "control request " + std::to_string(setup.request) + " (type " +
                           hex_byte(setup.request_type) + ")";
  if (o.result.error && !o.stuck) last_error_ = what + ": " + status_text(o);
  return finish(o.result, o.stuck, true, what);
}

std::error_code UsbLink::clear_halt(std::uint8_t endpoint) {
  if (!handle_) return Errc::kNotOpen;
  const int r = libusb_clear_halt(handle_, endpoint);
  if (r == 0) return {};
  if (r == LIBUSB_ERROR_NO_DEVICE) {
    finish({Errc::kDisconnected, 0}, false, false, "clear halt");
    return Errc::kDisconnected;
  }
  return fail(Errc::kIo,
              "clearing the halt of endpoint " + hex_byte(endpoint) + " failed: " + error_name(r));
}

std::string UsbLink::describe() const {
  UsbDeviceMatch shown = match_;
  if (shown.serial.empty()) shown.serial = handle_ ? serial_ : pinned_serial_;
  std::string s = scheme_ + " " + shown.to_string();
  if (handle_) {
    s += " (bus " + std::to_string(bus_) + " device " + std::to_string(address_) + ", interface " +
         std::to_string(interface_.number) + ")";
  } else {
    s += " (closed)";
  }
  if (!last_error_.empty()) s += "; last error: " + last_error_;
  return s;
}

void ByteBuffer::assign(std::span<const std::uint8_t> bytes) {
  bytes_.assign(bytes.begin(), bytes.end());
  pos_ = 0;
}

std::size_t ByteBuffer::take(std::span<std::uint8_t> out) noexcept {
  const std::size_t n = std::min(out.size(), bytes_.size() - pos_);
  std::memcpy(out.data(), bytes_.data() + pos_, n);
  pos_ += n;
  if (pos_ == bytes_.size()) clear();
  return n;
}

std::size_t deliver(std::span<const std::uint8_t> bytes, std::span<std::uint8_t> out,
                    ByteBuffer& rest) {
  const std::size_t n = std::min(out.size(), bytes.size());
  std::memcpy(out.data(), bytes.data(), n);
  rest.assign(bytes.subspan(n));
  return n;
}

}  // namespace detail
}  // namespace pnn::firmware_iface

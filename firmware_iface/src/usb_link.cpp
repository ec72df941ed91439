#include "usb_link.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "pnn/common/hex.hpp"
#include "usb_libusb.hpp"

namespace pnn::firmware_iface::detail {
namespace {

extern "C" int on_device_left(libusb_context*, libusb_device* device, libusb_hotplug_event,
                              void* user_data) {
  static_cast<UsbLink*>(user_data)->note_device_left(device);
  return 0;  // stay registered
}

}  // namespace

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
                           ((endpoint & LIBUSB_ENDPOINT_IN) ? "IN 0x" : "OUT 0x") +
                           common::hex_byte(endpoint);
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
  const std::string what = "control request " + std::to_string(setup.request) + " (type 0x" +
                           common::hex_byte(setup.request_type) + ")";
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
  return fail(Errc::kIo, "clearing the halt of endpoint 0x" + common::hex_byte(endpoint) +
                             " failed: " + error_name(r));
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

}  // namespace pnn::firmware_iface::detail

#pragma once
// The libusb side both USB transports share (private to firmware_iface; libusb stays out of the
// public headers): one context per link, finding a device by VID:PID and serial, choosing the
// interface and its endpoints from the descriptors, claiming it, and transfers with absolute
// deadlines (async submit, event handling on the calling thread, cancel at the deadline).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "pnn/firmware_iface/transport.hpp"
#include "pnn/firmware_iface/usb_transport.hpp"
#include "pnn/firmware_iface/usbtmc.hpp"

struct libusb_context;
struct libusb_device;
struct libusb_device_handle;
struct libusb_transfer;

namespace pnn::firmware_iface::detail {

enum class UsbInterfaceKind {
  kRawBulk,  ///< any interface with a bulk IN and a bulk OUT endpoint
  kUsbtmc,   ///< bInterfaceClass 0xFE, subclass 0x03, protocol 0x00 or 0x01
};

/// The claimed interface, as its descriptors describe it.
struct UsbInterfaceInfo {
  std::uint8_t number = 0;
  std::uint8_t interface_class = 0;
  std::uint8_t interface_subclass = 0;
  std::uint8_t interface_protocol = 0;
  std::uint8_t bulk_out = 0;          ///< endpoint address, e.g. 0x02
  std::uint8_t bulk_in = 0;           ///< endpoint address, e.g. 0x81
  std::uint16_t bulk_out_packet = 0;  ///< wMaxPacketSize
  std::uint16_t bulk_in_packet = 0;
  std::optional<std::uint8_t> interrupt_in;
};

/// Outcome of one transfer. On kTimeout `actual` counts what moved before the cancel.
struct TransferResult {
  std::error_code error;
  std::size_t actual = 0;
};

/// A context that exists for as long as the link (or one list_usb_devices() call).
class UsbContext {
 public:
  UsbContext() = default;
  ~UsbContext();
  UsbContext(const UsbContext&) = delete;
  UsbContext& operator=(const UsbContext&) = delete;
  /// Initialises on first use; false (with `error` set) if libusb cannot (no USB subsystem).
  bool ensure(std::string& error);
  libusb_context* get() const noexcept { return ctx_; }

 private:
  libusb_context* ctx_ = nullptr;
};

/// Factory argument checks shared by both transports; throw std::invalid_argument.
void check_common_options(const UsbDeviceMatch& match, const UsbTimings& timings,
                          const char* factory);

/// Is this interface descriptor triple a USBTMC one?
constexpr bool is_usbtmc_class(std::uint8_t c, std::uint8_t s, std::uint8_t p) noexcept {
  return c == 0xFE && s == 0x03 && (p == 0x00 || p == 0x01);
}

/// Reads string descriptor `index` (0: none, gives "") through `handle`, as ASCII (other
/// characters become '?'). The language is the device's first one (read once, kept in
/// `langid`, 0 = not read yet). If a transfer could not be cancelled, `handle` has been closed
/// (libusb must forget the transfer before it is freed) and `handle_closed` is set.
Result<std::string> read_string_descriptor(libusb_context* ctx, libusb_device_handle* handle,
                                           std::uint8_t index, std::uint16_t& langid,
                                           Deadline deadline, std::chrono::milliseconds grace,
                                           bool& handle_closed);

class UsbLink {
 public:
  /// `scheme` ("usb", "usbtmc") is for describe().
  UsbLink(std::string scheme, UsbDeviceMatch match, std::optional<std::uint8_t> interface_number,
          UsbInterfaceKind kind, UsbTimings timings);
  ~UsbLink();
  UsbLink(const UsbLink&) = delete;
  UsbLink& operator=(const UsbLink&) = delete;

  /// Enumerates, finds the device (by serial, see usb_transport.hpp), picks the interface,
  /// detaches a kernel driver and claims it. Errors: kDisconnected, kIdentityMismatch, kIo,
  /// kTimeout (reading the serial). Idempotent when open.
  std::error_code open(Deadline deadline);
  /// Releases the interface (a detached kernel driver is re-attached) and closes the handle.
  void close() noexcept;
  bool is_open() const noexcept { return handle_ != nullptr; }
  /// Valid while open.
  const UsbInterfaceInfo& interface_info() const noexcept { return interface_; }
  std::uint16_t vendor_id() const noexcept { return match_.vid; }

  /// Bulk transfer on `endpoint` (direction from bit 7). OUT sends all of `buffer`; IN fills
  /// at most `buffer.size()` bytes. A stall clears the halt and gives kIo; a vanished device
  /// closes the link and gives kDisconnected.
  TransferResult bulk(std::uint8_t endpoint, std::span<std::uint8_t> buffer, Deadline deadline);
  /// Control transfer with an IN data stage of `setup.length` bytes into `data` (which must
  /// be at least that large). A stall gives kIo (control endpoints clear themselves).
  TransferResult control_in(const usbtmc::ControlSetup& setup, std::span<std::uint8_t> data,
                            Deadline deadline);
  /// CLEAR_FEATURE(ENDPOINT_HALT) on `endpoint`.
  std::error_code clear_halt(std::uint8_t endpoint);

  /// Hotplug: `device` left the bus; if it is ours, transfers give up with kDisconnected.
  void note_device_left(libusb_device* device) noexcept;

  /// The reason of the last failure, kept for describe() until clear_error().
  void set_error(std::string detail) { last_error_ = std::move(detail); }
  void clear_error() noexcept { last_error_.clear(); }
  const std::string& last_error() const noexcept { return last_error_; }
  /// "usbtmc 0957:1755 serial MY1234 (bus 1 device 4, interface 0)" and, after a failure,
  /// "; last error: …".
  std::string describe() const;

 private:
  TransferResult finish(TransferResult r, bool stuck, bool handle_closed, const std::string& what);
  // Forgets a handle whose transfer could not be finished (closing it first unless done).
  void abandon(bool handle_closed) noexcept;
  void unwatch() noexcept;
  std::error_code claim(libusb_device* device, libusb_device_handle* handle);
  std::error_code fail(std::error_code code, std::string detail);

  std::string scheme_;
  UsbDeviceMatch match_;
  std::optional<std::uint8_t> interface_number_;
  UsbInterfaceKind kind_;
  UsbTimings timings_;

  UsbContext context_;
  libusb_device_handle* handle_ = nullptr;
  bool device_left_ = false;  // set by the hotplug callback
  bool watching_ = false;     // a hotplug callback is registered
  int hotplug_handle_ = 0;    // libusb_hotplug_callback_handle
  UsbInterfaceInfo interface_;
  std::string pinned_serial_;  // serial of the unit first opened when match_.serial is empty
  std::string serial_;         // serial of the open device
  std::uint8_t bus_ = 0;
  std::uint8_t address_ = 0;
  std::string last_error_;
};

/// Bytes received but not yet handed to the caller (read_some keeps what did not fit).
class ByteBuffer {
 public:
  bool empty() const noexcept { return pos_ == bytes_.size(); }
  void clear() noexcept {
    bytes_.clear();
    pos_ = 0;
  }
  /// Replaces the contents with `bytes`.
  void assign(std::span<const std::uint8_t> bytes);
  /// Moves up to `out.size()` bytes into `out`; returns how many.
  std::size_t take(std::span<std::uint8_t> out) noexcept;

 private:
  std::vector<std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

/// Copies what fits of `bytes` into `out` and keeps the rest in `rest`; returns the count.
std::size_t deliver(std::span<const std::uint8_t> bytes, std::span<std::uint8_t> out,
                    ByteBuffer& rest);

}  // namespace pnn::firmware_iface::detail

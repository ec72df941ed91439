#pragma once
// The libusb pieces shared by usb_context.cpp (transfers with deadlines), usb_device.cpp
// (descriptors) and usb_link.cpp (the link): private to firmware_iface, the only header besides
// the sources that includes libusb.h.
#include <libusb.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "usb_link.hpp"

namespace pnn::firmware_iface::detail {

/// libusb's name of an error code ("LIBUSB_ERROR_PIPE").
std::string error_name(int code);

struct TransferDeleter {
  void operator()(libusb_transfer* t) const noexcept { libusb_free_transfer(t); }
};
using TransferPtr = std::unique_ptr<libusb_transfer, TransferDeleter>;
/// A fresh transfer; throws std::bad_alloc.
TransferPtr alloc_transfer();

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
                        std::chrono::milliseconds grace, const bool* gone = nullptr);

/// What went wrong with a transfer, for last_error ("endpoint stalled", "timed out", …).
const char* status_text(const RawOutcome& o);

/// A control transfer with an IN data stage into `data` (run_transfer's rules). If it is stuck,
/// `handle` has been closed.
RawOutcome control_transfer(libusb_context* ctx, libusb_device_handle* handle,
                            const usbtmc::ControlSetup& setup, std::span<std::uint8_t> data,
                            Deadline deadline, std::chrono::milliseconds grace,
                            const bool* gone = nullptr);

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

ConfigPtr config_of(libusb_device* device);

/// The interface with its bulk IN/OUT (and optional interrupt IN) endpoints, or none if it lacks
/// a bulk pair.
std::optional<UsbInterfaceInfo> describe_interface(const libusb_interface_descriptor& alt);

/// "0 (class fe/03/01, 3 endpoints), 1 (…)" for messages, or "none".
std::string interface_list(const libusb_config_descriptor& cfg);

}  // namespace pnn::firmware_iface::detail

#pragma once
/// USB transports over libusb (PROTOCOLS.md §c; docs/protocol.md "USB transports"):
///   usb://VID:PID?serial=S     our lab-built boards: one bulk OUT and one bulk IN endpoint
///                              carrying the binary frame protocol (frame.hpp) as a byte stream
///   usbtmc://VID:PID?serial=S  commercial SCPI instruments: USBTMC / USB488 class interface
///                              (bInterfaceClass 0xFE, subclass 0x03, protocol 0x00 or 0x01)
/// Both implement `Transport` (transport.hpp): absolute deadlines, link faults as `Errc`.
///
/// Device identity: a device is found by VID:PID and, when given, its serial-number string.
/// With an empty serial the first VID:PID match is taken, and its serial (if it has one) is
/// pinned: after an unplug, open() accepts only that unit again (another unit with the same
/// VID:PID gives kIdentityMismatch, so a driver never swaps instruments silently). Bus
/// addresses are never used to re-find a device; they change on every re-enumeration.
///
/// Endpoints, packet sizes and interface numbers come from the descriptors, never from code.
/// On open the interface is claimed (a kernel driver such as `usbtmc` is detached first and
/// re-attached on close); close() releases it.
///
/// Errors beyond transport.hpp's list: opening a device without permission (no udev rule) or
/// one whose interface another program holds is kIo; describe() then carries the reason and
/// the fix. Bad options are a configuration error: the factories throw std::invalid_argument
/// naming the field and the fix.
///
/// Thread rule as for every Transport: one thread at a time per transport. Each transport owns
/// its own libusb context and runs libusb's event handling on the calling thread while a call
/// waits, so no thread is started and no lock is taken. list_usb_devices() is thread-safe.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pnn/firmware_iface/transport.hpp"

namespace pnn::firmware_iface {

/// Which device to open.
struct UsbDeviceMatch {
  std::uint16_t vid = 0;  ///< idVendor
  std::uint16_t pid = 0;  ///< idProduct
  std::string serial;     ///< iSerialNumber string; empty: the first VID:PID match (then pinned)

  /// Parses "VID:PID" in hex (e.g. "0957:1755", as lsusb prints it), the target part of a
  /// usb:// or usbtmc:// address. Throws std::invalid_argument naming the text and the
  /// expected form.
  static UsbDeviceMatch parse(std::string_view vid_pid, std::string serial = {});
  /// "0957:1755" or "0957:1755 serial MY1234".
  std::string to_string() const;
};

/// Timing of the internal steps that have no caller deadline of their own.
struct UsbTimings {
  /// After a deadline passes, the in-flight transfer is cancelled and its cancellation awaited
  /// (libusb may not free a transfer before that; on Linux it takes well under a millisecond).
  /// If it does not complete within this grace, the handle is closed and the call gives kIo.
  std::chrono::milliseconds cancel_grace{500};
};

/// usb:// raw bulk boards.
struct UsbBulkOptions {
  UsbDeviceMatch match;
  /// bInterfaceNumber to claim; nullopt: the first interface (alternate setting 0) with both a
  /// bulk IN and a bulk OUT endpoint.
  std::optional<std::uint8_t> interface_number;
  /// Size of each bulk IN transfer, rounded up to a multiple of the endpoint's wMaxPacketSize.
  /// Bytes beyond what read_some()'s caller asked for are kept for the next read_some().
  /// A board ends every reply with a short (or zero-length) packet, so a transfer completes as
  /// soon as a reply is in.
  std::size_t read_transfer_bytes = 16384;
  /// clear(): bulk IN is drained until nothing arrives for this long (or the deadline passes).
  std::chrono::milliseconds clear_quiet{20};
  UsbTimings timings;
};

/// usbtmc:// SCPI instruments.
struct UsbtmcOptions {
  UsbDeviceMatch match;
  /// bInterfaceNumber of the USBTMC interface; nullopt: the first one (class FE/03/00|01).
  std::optional<std::uint8_t> interface_number;
  /// Largest DEV_DEP_MSG_OUT transfer (header, payload and padding); longer messages are split
  /// over several transfers with EOM on the last. At least 16.
  std::size_t max_out_transfer_bytes = 4096;
  /// TransferSize asked for in each REQUEST_DEV_DEP_MSG_IN (the IN transfer is this plus the
  /// 12-byte header, rounded up to whole packets, plus one packet). At least 1.
  std::uint32_t max_in_transfer_bytes = 65536;
  /// Ask the device to end IN transfers at this character (REQUEST_DEV_DEP_MSG_IN
  /// TermCharEnabled). Used only if GET_CAPABILITIES advertises TermChar; ignored otherwise.
  std::optional<std::uint8_t> term_char;
  /// CHECK_*_STATUS polls while the device answers PENDING: interval and maximum count; a
  /// device still PENDING after that is treated as failed (and INITIATE_CLEAR follows).
  std::chrono::milliseconds status_poll_interval{5};
  int max_status_polls = 200;
  /// While aborting or clearing, bulk IN is read and discarded until a short packet; each of
  /// those reads waits at most this long (nothing queued is not an error).
  std::chrono::milliseconds drain_read_timeout{50};
  UsbTimings timings;
};

/// A raw bulk transport (usb://). The device is not touched until open(). Throws
/// std::invalid_argument for bad options (VID:PID 0000:0000, read_transfer_bytes 0).
///
/// write(): one bulk OUT transfer carrying all bytes (empty: nothing is sent).
/// read_some(): returns buffered bytes first, else waits for the next bulk IN transfer.
/// clear(): drops buffered bytes and drains bulk IN (see `clear_quiet`).
/// A stalled endpoint is cleared (CLEAR_FEATURE(HALT)) and the call gives kIo.
TransportPtr make_usb_bulk_transport(UsbBulkOptions options);

/// A USBTMC transport (usbtmc://). The device is not touched until open(). Throws
/// std::invalid_argument for bad options.
///
/// open(): claims the interface, then INITIATE_CLEAR and CHECK_CLEAR_STATUS until not PENDING,
///   CLEAR_FEATURE(HALT) on bulk OUT, then GET_CAPABILITIES (kept; TermChar only if advertised).
///   bTags restart at 1 and never take the value 0.
/// write(): one message as DEV_DEP_MSG_OUT transfers (split, 4-byte padding, EOM on the last).
///   An empty message sends nothing.
/// read_some(): buffered bytes first; otherwise REQUEST_DEV_DEP_MSG_IN then bulk IN, header
///   checked (MsgID, bTag and its inverse), TransferSize clamped to what arrived, repeated
///   until EOM or until `buffer.size()` bytes are in; bytes beyond the buffer are kept for the
///   next call. A malformed Bulk-IN header gives kIo (and schedules the abort below).
/// Timeout recovery: a call that hits its deadline cancels the transfer, returns kTimeout at
///   the deadline, and leaves the abort pending. The next write(), read_some() or clear() runs
///   it first, within its own deadline: for a read INITIATE_ABORT_BULK_IN(bTag) → read bulk IN
///   until a short packet → CHECK_ABORT_BULK_IN_STATUS until not PENDING; for a write
///   INITIATE_ABORT_BULK_OUT(bTag) → CHECK_ABORT_BULK_OUT_STATUS → CLEAR_FEATURE(HALT) bulk
///   OUT. If the abort fails: INITIATE_CLEAR → CHECK_CLEAR_STATUS → CLEAR_FEATURE(HALT). A
///   recovery that cannot finish stays pending and its error is returned.
/// clear(): drops buffered bytes, runs a pending abort, then the INITIATE_CLEAR sequence.
/// Quirks by VID: Rigol (0x1ab1) sometimes sends an empty first bulk IN; it is read again once.
TransportPtr make_usbtmc_transport(UsbtmcOptions options);

/// One USB device as enumeration sees it, for discovery (pnnctl).
struct UsbDeviceInfo {
  std::uint16_t vid = 0;
  std::uint16_t pid = 0;
  std::uint8_t bus = 0;      ///< bus number
  std::uint8_t address = 0;  ///< device address on the bus (changes on re-enumeration)
  bool is_usbtmc = false;    ///< has a USBTMC interface in its active configuration
  /// The device could be opened to read its strings. False usually means missing permission
  /// (see the udev rule in docs/protocol.md); the strings below are then empty.
  bool accessible = false;
  std::string serial;  ///< iSerialNumber string, empty if none
  std::string manufacturer;
  std::string product;
};

/// Every USB device present now, in enumeration order. Reading each device's strings waits at
/// most `string_timeout` per device. Returns an empty list when the system has no USB (libusb
/// cannot initialise). Never throws for lab faults.
std::vector<UsbDeviceInfo> list_usb_devices(
    std::chrono::milliseconds string_timeout = std::chrono::milliseconds{200});

}  // namespace pnn::firmware_iface

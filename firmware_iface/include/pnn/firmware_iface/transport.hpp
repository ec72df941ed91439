#pragma once
/// The byte link between a host driver and one instrument, whatever carries it: libusb bulk
/// endpoints (usb://), USBTMC (usbtmc://), a TCP socket (tcp://, SCPI-raw) or an in-process
/// loopback to a device-side endpoint (a simulated instrument's firmware, sim://).
///
/// Every call that waits takes an absolute deadline; nothing blocks past it. Routine link faults
/// are returned as `std::error_code` values of `firmware_iface::Errc`, never thrown:
///   kTimeout       nothing arrived (or the write was not accepted) before the deadline
///   kDisconnected  no device at the address, or it went away (unplugged, powered off)
///   kIo            any other failure (endpoint stall, OS error, protocol violation below us)
///   kNotOpen       the transport is closed
/// After kTimeout a reply may still be in flight: call clear() before the next request, so a
/// late reply is not taken for the answer to the next one (PROTOCOLS.md c.4, pyvisa-py #177).
/// After kDisconnected the transport is closed; open() tries to find the device again (by
/// serial where the address names one, never by bus position alone).
///
/// Thread rule: one thread at a time per transport (the driver serializes its calls). Different
/// transports are independent.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "pnn/firmware_iface/error.hpp"

namespace pnn::firmware_iface {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

/// Deadline `timeout` from now.
inline Deadline deadline_after(std::chrono::milliseconds timeout) { return Clock::now() + timeout; }

class Transport {
 public:
  virtual ~Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  /// Opens the link (or re-opens it after a loss). Idempotent when open.
  /// Errors: kDisconnected (no such device now), kIdentityMismatch, kTimeout, kIo.
  virtual std::error_code open(Deadline deadline) = 0;
  /// Closes the link; pending bytes are dropped. Never fails.
  virtual void close() noexcept = 0;
  virtual bool is_open() const noexcept = 0;

  /// Sends all of `bytes` as one message (USBTMC: one DEV_DEP_MSG_OUT sequence ending in EOM;
  /// streams: the bytes in order). Errors: kTimeout, kDisconnected, kIo, kNotOpen.
  virtual std::error_code write(std::span<const std::uint8_t> bytes, Deadline deadline) = 0;

  /// Waits until at least one byte is available, then copies up to `buffer.size()` bytes.
  /// Returns the number copied (≥ 1). Errors: kTimeout, kDisconnected, kIo, kNotOpen.
  virtual Result<std::size_t> read_some(std::span<std::uint8_t> buffer, Deadline deadline) = 0;

  /// Discards everything in flight in both directions (USBTMC: abort/clear sequence; streams:
  /// drain what has arrived; loopback: drop the queues). Errors as for write().
  virtual std::error_code clear(Deadline deadline) = 0;

  /// For messages and logs, e.g. "usbtmc 0957:1755 serial MY1234 (bus 1 device 4)".
  virtual std::string describe() const = 0;

 protected:
  Transport() = default;
};

using TransportPtr = std::unique_ptr<Transport>;

// --- in-process loopback ------------------------------------------------------------------------

/// Bytes a device endpoint sends back, and when they reach the host side of the link.
struct DeviceOutput {
  std::vector<std::uint8_t> bytes;
  Clock::time_point ready_at;
};

/// The device side of a link: what a simulated instrument's firmware implements. The loopback
/// transport calls it synchronously on the host's thread, so a simulated instrument costs no
/// thread hand-off; an endpoint models latency, stalls and unplugging through `ready_at` and
/// `connected()`. The same endpoint can be served over TCP or an emulated USB device.
///
/// Thread rule: calls are serialized by the transport that owns the link; an endpoint that
/// exposes statistics to other threads protects them itself.
class DeviceEndpoint {
 public:
  virtual ~DeviceEndpoint() = default;
  /// Bytes from the host arrived at `now`. Append replies (possibly none) to `out`.
  virtual void receive(std::span<const std::uint8_t> bytes, Clock::time_point now,
                       std::deque<DeviceOutput>& out) = 0;
  /// False while the device is unplugged or powered off: host calls fail with kDisconnected.
  virtual bool connected(Clock::time_point now) { return (void)now, true; }
  /// The host opened the link (after power-on or a re-plug).
  virtual void on_open(Clock::time_point now) { (void)now; }
  /// The host cleared the link: drop partially received input.
  virtual void on_clear() {}
  /// For describe(), e.g. "SIM-OSC-1".
  virtual std::string name() const = 0;
};

/// An in-process link to `endpoint` (shared: tests keep a handle to inspect the device side).
/// read_some() sleeps until the next reply is ready or the deadline passes.
TransportPtr make_loopback_transport(std::shared_ptr<DeviceEndpoint> endpoint);

}  // namespace pnn::firmware_iface

#pragma once
// Host side of a SCPI link over any firmware_iface::Transport (private to drivers): messages
// out with their '\n', response messages in through the SCPI LineSplitter (so binary blocks that
// contain '\n' are read whole), every call bounded by the link timeout.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pnn/drivers/format.hpp"  // format_decimal: limits are sent and compared exactly
#include "pnn/firmware_iface/scpi.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers {

class ScpiClient {
 public:
  /// `timeout` bounds each write and each response (from when the call starts waiting).
  ScpiClient(firmware_iface::TransportPtr transport, std::chrono::milliseconds timeout);

  std::error_code open();
  void close() noexcept;
  bool is_open() const noexcept { return transport_->is_open(); }

  /// Sends `message` and its terminator. Errors: the transport's.
  std::error_code write(std::string_view message);
  /// The next response message, terminator removed. Errors: the transport's, kMessageTooLong.
  firmware_iface::Result<std::string> read_response();
  /// write() then read_response().
  firmware_iface::Result<std::string> query(std::string_view message);

  /// After a timeout or a garbled reply: drops what is in flight (Transport::clear) and what is
  /// buffered, then sends "*ESE <token>;*ESE?" with a fresh token and discards responses until
  /// the token comes back, so a late reply to an abandoned query is never taken for the answer
  /// to the next one. (*ESE only masks the status byte summary, which this driver does not use.)
  /// Errors: kTimeout if the token does not come back in time, the transport's.
  std::error_code resync();

  std::string describe() const { return transport_->describe(); }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  firmware_iface::Deadline deadline() const { return firmware_iface::deadline_after(timeout_); }

  firmware_iface::TransportPtr transport_;
  std::chrono::milliseconds timeout_;
  firmware_iface::scpi::LineSplitter splitter_;
  std::vector<std::uint8_t> buffer_;
  unsigned token_ = 0;
};

// --- response parsing ----------------------------------------------------------------------------

/// Splits a response message at the ';' between the responses of a compound query (not inside
/// quoted strings).
std::vector<std::string> split_responses(std::string_view message);
/// An integer response (NR1, optional sign); nullopt if it is not one.
std::optional<long long> parse_integer(std::string_view text);
/// A decimal response (NR1/NR2/NR3); nullopt if it is not one.
std::optional<double> parse_decimal(std::string_view text);

}  // namespace pnn::drivers

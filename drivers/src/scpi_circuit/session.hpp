#pragma once
// The electronic-circuit driver's session with its instrument (private to drivers): the SCPI link
// (ScpiClient), the instrument it is bound to, and every exchange of the driver with the
// message its failure carries (docs/protocol.md, "SCPI instruments").
//
// Failures are drivers::Result errors. Whether a failure may be cured by resynchronising and
// trying once more (a timeout or a garbled reply: yes; a refused command or a lost link: no) is
// recorded by the session as it makes the error: every error of an exchange is made here
// (`fail` for the driver's own verdicts), and `last_failure_transient()` tells the retry policy
// about the most recent one. Not thread-safe: the PhysicalSystem's mutex serializes the driver.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "../scpi_client.hpp"
#include "pnn/drivers/result.hpp"

namespace pnn::drivers::scpi_circuit {

/// What a status query found: `<query>;*ESR?;:SYST:ERR?`, the error queue drained.
struct Status {
  std::vector<std::string> raw;   ///< the query's own responses as sent
  std::vector<long long> values;  ///< the same, as (rounded) numbers
  unsigned esr = 0;
  std::vector<firmware_iface::scpi::ErrorEntry> errors;
};

class Session {
 public:
  /// `address` names the instrument in messages until it identified; `expected_serial` ("" =
  /// accept the first instrument that answers, then insist on it).
  Session(firmware_iface::TransportPtr transport, std::chrono::milliseconds timeout,
          std::string address, std::string expected_serial);

  // --- link --------------------------------------------------------------------------------------
  Result<void> open();
  void close() noexcept { client_.close(); }
  bool is_open() const noexcept { return client_.is_open(); }
  /// Drops what is in flight and resynchronises (ScpiClient::resync); `doing` names the step.
  Result<void> resync(const std::string& doing);
  std::string describe() const { return client_.describe(); }

  // --- identity ----------------------------------------------------------------------------------
  /// The serial the instrument must report ("" until the first one identified, unless given).
  const std::string& serial() const { return serial_; }
  void bind_serial(std::string serial) { serial_ = std::move(serial); }

  // --- exchanges ---------------------------------------------------------------------------------
  Result<void> tell(const std::string& message);
  /// `what` names the query in a timeout message (default: the query itself).
  Result<std::string> ask(const std::string& query, const std::string& what = "");
  /// "<query>;*ESR?;:SYST:ERR?" → the `n` numeric responses of `query`, the ESR, then the error
  /// queue drained until 0 (at most 64 entries).
  Result<Status> status(const std::string& query, std::size_t n);

  // --- failures ----------------------------------------------------------------------------------
  /// Records whether `error` may be retried after a resync, and returns it.
  Error fail(Error error, bool transient);
  Error link_failure(std::error_code ec, const std::string& doing);
  /// A reply that cannot be what the instrument sent (shown printable and short).
  Error garbled(const std::string& query, const std::string& reply);
  /// The instrument refused something: its queued errors as one kDeviceFault.
  std::optional<Error> refused(const Status& s, const std::string& doing);
  /// "; its error queue: -222,… | …" for messages ("" without errors).
  static std::string error_list(const std::vector<firmware_iface::scpi::ErrorEntry>& errors);
  /// Whether the most recent failure may be cured by a resync and one more attempt; false after
  /// `clear_failure()`.
  bool last_failure_transient() const { return transient_; }
  void clear_failure() { transient_ = false; }

 private:
  std::string who() const { return serial_.empty() ? address_ : serial_; }

  ScpiClient client_;
  std::string address_;
  std::string serial_;
  bool transient_ = false;
};

}  // namespace pnn::drivers::scpi_circuit

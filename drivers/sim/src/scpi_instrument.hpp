#pragma once
/// Base of the simulated SCPI instruments (device side, private to drivers_sim): newline-terminated
/// program messages in (binary blocks allowed), the IEEE 488.2 common commands, the status
/// registers, the SYSTem:ERRor? queue and fault injection, so that a concrete instrument only
/// implements its own subsystems (docs/protocol.md, "SCPI instruments").
///
/// Message handling, as IEEE 488.2 and SCPI 1999 describe it:
/// - a message is parsed whole; a syntax error is -102 "Syntax error" (a malformed block -161
///   "Invalid block data", a message over the input buffer -223 "Too much data") and nothing of
///   it executes;
/// - commands run in order; an unknown header is -113 "Undefined header" and the rest of the
///   message is skipped (a command error); execution errors (-2xx) do not stop the message;
/// - the responses of the queries of one message go back as one response message, joined by
///   ';' and ended by '\n'; a query that fails gives no response element;
/// - every error sets its bit in the Standard Event Status Register (-1xx CME, -2xx EXE, -3xx
///   and positive DDE, -4xx QYE) and enters the error queue (30 entries, -350 on overflow);
///   `*CLS` clears both, `*RST` neither; power-on clears the queue and sets PON (ESR bit 7).
/// Fault injection (faults.hpp) draws one decision per command: a reset re-runs power-on before
/// the command, a dropped reply drops the response message of the command's message, a corrupt
/// one flips a bit of it, a delay holds it back, a NaN goes into the readings of that command
/// (the subclass applies it), an unplug powers the instrument off (the rest of the message is
/// lost; `connected()` is false until it re-enumerates, power-cycled).
///
/// Thread rule: the DeviceEndpoint calls are serialized by the transport; every call and every
/// accessor takes `mutex_`, so tests may read statistics from another thread.
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "faults.hpp"
#include "pnn/firmware_iface/scpi.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers::sim {

namespace scpi = firmware_iface::scpi;

/// Standard Event Status Register bits (IEEE 488.2 §11.5.1).
inline constexpr unsigned kEsrOperationComplete = 0x01;
inline constexpr unsigned kEsrQueryError = 0x04;
inline constexpr unsigned kEsrDeviceError = 0x08;
inline constexpr unsigned kEsrExecutionError = 0x10;
inline constexpr unsigned kEsrCommandError = 0x20;
inline constexpr unsigned kEsrPowerOn = 0x80;

class ScpiInstrument : public firmware_iface::DeviceEndpoint {
 public:
  struct Options {
    scpi::Identity identity;
    FaultPlan faults;
    /// Longest program message accepted (binary blocks included).
    std::size_t max_message_bytes = std::size_t{1} << 20;
  };

  void receive(std::span<const std::uint8_t> bytes, firmware_iface::Clock::time_point now,
               std::deque<firmware_iface::DeviceOutput>& out) final;
  bool connected(firmware_iface::Clock::time_point now) final;
  void on_open(firmware_iface::Clock::time_point now) final;
  void on_clear() final;
  std::string name() const final;

  const scpi::Identity& identity() const { return options_.identity; }
  FaultStats fault_stats() const { return faults_.stats(); }
  /// Errors raised so far with `code` (whether or not the host read them).
  std::uint64_t num_errors(int code) const;
  /// All errors raised so far.
  std::uint64_t num_errors() const;
  /// Power-ons so far (1 after construction; each injected reset or unplug adds one).
  std::uint64_t num_power_ons() const;

 protected:
  explicit ScpiInstrument(Options options);

  /// What the command being executed produces.
  struct Context {
    bool nan = false;  ///< the fault plan wants a NaN in the readings this command returns
    std::vector<std::string> responses;
    void respond(std::string element) { responses.push_back(std::move(element)); }
  };

  /// Runs an instrument-specific command (common commands and SYSTem are handled here).
  /// Returns false for a header the instrument does not know (the base reports -113).
  virtual bool execute(const scpi::Command& command, Context& context) = 0;
  /// `*TRG`.
  virtual void trigger() = 0;
  /// `*RST` (and power-on): the instrument's settings to their defaults (not the status
  /// registers, the error queue or stored user data).
  virtual void reset_settings() = 0;
  /// Power-on, after reset_settings(): forget what volatile memory held.
  virtual void clear_volatile_memory() {}

  /// Where to put an injected NaN among `n` readings (drawn from the fault plan's stream).
  std::size_t pick_fault_index(std::size_t n) { return faults_.pick(n); }

  /// Enters an error (`text` after "; " gives the detail, e.g. "Data out of range; …").
  void error(int code, std::string_view text);

  // Argument helpers: each reports the SCPI error and returns nullopt/false on a bad argument.
  /// Exactly `n` arguments (-109 "Missing parameter", -108 "Parameter not allowed").
  bool expect_args(const scpi::Command& command, std::size_t n);
  /// A number in [lo, hi] (MIN and MAX accepted); -104 "Data type error", -131 "Invalid
  /// suffix", -222 "Data out of range".
  std::optional<double> number_arg(const scpi::Argument& arg, double lo, double hi);
  /// ON|OFF|1|0; -224 "Illegal parameter value", -104.
  std::optional<bool> bool_arg(const scpi::Argument& arg);
  /// The index of the SCPI mnemonic pattern ("NORMal", "SWAPped", …) that `arg` matches; -224.
  std::optional<std::size_t> choice_arg(const scpi::Argument& arg,
                                        std::initializer_list<std::string_view> patterns);
  /// Shortest decimal text that reads back as exactly `value`.
  static std::string format_number(double value);

  mutable std::mutex mutex_;

 private:
  void power_on();
  bool common(const scpi::Command& command, Context& context);
  void run_message(const std::string& message, firmware_iface::Clock::time_point now,
                   std::deque<firmware_iface::DeviceOutput>& out);

  Options options_;
  FaultInjector faults_;
  scpi::LineSplitter splitter_;
  scpi::ErrorQueue queue_;
  unsigned esr_ = kEsrPowerOn;
  unsigned ese_ = 0;
  unsigned sre_ = 0;
  std::map<int, std::uint64_t> error_counts_;
  std::uint64_t power_ons_ = 1;
};

}  // namespace pnn::drivers::sim

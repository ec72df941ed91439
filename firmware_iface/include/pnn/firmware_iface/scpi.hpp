#pragma once
/// SCPI / IEEE-488.2 text codec (PROTOCOLS.md §c.5). Pure: no I/O.
///
/// Covers what a host driver and a simulated instrument need: splitting a byte stream into
/// newline-terminated messages, parsing program messages (headers with long/short forms,
/// arguments incl. definite- and indefinite-length blocks), the `SYSTem:ERRor?` queue and its
/// `<int>,"<text>"` entries, and `*IDN?` responses. Not covered: relative header paths after
/// `;` (every header of a compound message is taken as absolute), default numeric suffixes.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pnn/firmware_iface/error.hpp"

namespace pnn::firmware_iface::scpi {

// --- stream → messages ---------------------------------------------------------------------------

struct LineSplitterOptions {
  /// Longest message kept (bytes, terminator excluded, block data included).
  std::size_t max_message_bytes = std::size_t{1} << 20;
  /// Skip over the data of definite-length blocks `#<n><len><data>` that start an element (at
  /// message start or after ',', ';', space or tab), so a '\n' inside binary data does not end
  /// the message. Turn off for pure-text streams whose replies may contain such text verbatim.
  bool binary_blocks = true;
};

/// Splits a byte stream into messages terminated by '\n' (a '\r' before it is removed; empty
/// messages are skipped). Feed chunks of any size; `next()` returns messages in order.
/// Memory is bounded by the bytes fed and not yet taken plus one message of at most
/// `max_message_bytes`. Not thread-safe.
class LineSplitter {
 public:
  explicit LineSplitter(LineSplitterOptions options = {});

  void feed(std::span<const std::uint8_t> bytes);
  void feed(std::string_view text);

  /// The next message without its terminator; kMessageTooLong (once) for a message longer than
  /// the maximum, whose bytes up to its terminator are discarded; nullopt if none is complete.
  std::optional<Result<std::string>> next();

  /// Bytes of the incomplete message being assembled.
  std::size_t partial_bytes() const noexcept { return current_.size(); }
  /// Drops the partial message and the queued ones; returns to the start-of-message state.
  void reset();

 private:
  enum class State { kText, kQuote, kBlockDigitCount, kBlockLength, kBlockData, kIndefinite };
  void text_byte(std::uint8_t c);
  void append(const std::uint8_t* data, std::size_t n);
  void end_message();

  LineSplitterOptions options_;
  std::deque<Result<std::string>> ready_;
  std::string current_;
  State state_ = State::kText;
  bool element_start_ = true;
  bool discarding_ = false;
  std::uint8_t quote_ = 0;
  int digits_left_ = 0;
  std::uint64_t block_left_ = 0;
};

// --- program messages ----------------------------------------------------------------------------

/// One program data element (command argument or response value).
struct Argument {
  enum class Kind {
    kNumber,      ///< decimal (1, -2.5e-3, .5) or non-decimal (#H1F, #Q17, #B101), opt. suffix
    kString,      ///< "…" or '…'; `text` holds the content with doubled quotes collapsed
    kBlock,       ///< #<n><len><data> or #0<data>; `text` holds the data bytes
    kCharacter,   ///< a mnemonic: ON, MAX, DEF, INF, NAN, …
    kExpression,  ///< (…) e.g. a channel list (@1,3:5); `text` includes the parentheses
  };
  Kind kind = Kind::kCharacter;
  std::string text;               ///< see Kind; for kNumber/kCharacter the token as written
  double number = 0.0;            ///< kNumber only
  std::string suffix;             ///< kNumber only: unit suffix as written (e.g. "MV"), or ""
  bool indefinite_block = false;  ///< kBlock only: written as #0
  bool operator==(const Argument&) const = default;
};

/// One command (or query) of a program message.
struct Command {
  std::string header;  ///< as written, without a leading ':' and the trailing '?'
  bool query = false;  ///< header ended in '?'
  std::vector<Argument> args;
  bool common() const noexcept { return !header.empty() && header.front() == '*'; }
  bool operator==(const Command&) const = default;
};

/// Parses one message (terminator already removed) that holds exactly one command.
/// Errors: kSyntax (also for a ';' compound message), kBadBlock.
Result<Command> parse_command(std::string_view message);

/// Parses a message of one or more commands separated by ';'. Errors: kSyntax, kBadBlock.
Result<std::vector<Command>> parse_program(std::string_view message);

/// Parses comma-separated data elements, e.g. a query response "+1.5E+00,\"abc\",#13xyz".
/// An empty (or all-blank) input gives no elements. Errors: kSyntax, kBadBlock.
Result<std::vector<Argument>> parse_arguments(std::string_view text);

/// Whether `command` matches `pattern` in SCPI notation: upper-case letters (and digits) form
/// the short form, the whole node the long form; either is accepted, case-insensitively, and
/// nothing in between ("SYSTem:ERRor?" matches "SYST:ERR?", "system:error?", not "SYSTE:ERR?").
/// Nodes in brackets are optional ("SYSTem:ERRor[:NEXT]?", "[SOURce:]FREQuency"). A trailing '?'
/// in the pattern must match the query flag. Common commands ("*IDN?") match literally.
/// Throws std::invalid_argument on a malformed pattern (a programming error).
bool header_matches(std::string_view pattern, const Command& command);

/// Quotes `text` as a SCPI string: "…" with inner '"' doubled.
std::string quote(std::string_view text);
/// Formats `data` as a definite-length block #<n><len><data>. Throws std::length_error at or
/// above 10^9 bytes (the length must fit in 9 digits).
std::string format_block(std::span<const std::uint8_t> data);

// --- error queue ---------------------------------------------------------------------------------

/// One `SYSTem:ERRor?` entry. Negative codes are SCPI-defined (−100s command errors, −200s
/// execution errors, −350 queue overflow); positive codes are device-specific; 0 is "No error".
struct ErrorEntry {
  int code = 0;
  std::string message;
  bool operator==(const ErrorEntry&) const = default;
};

inline constexpr int kQueueOverflowCode = -350;
inline constexpr std::string_view kQueueOverflowMessage = "Queue overflow";
inline constexpr std::string_view kNoErrorMessage = "No error";

/// `<code>,"<message>"`, e.g. -113,"Undefined header" (inner quotes doubled).
std::string format_error(const ErrorEntry& entry);

/// Parses `<int>,"<text>"`, tolerating a leading '+' (`+0,"No error"`), blanks around the
/// fields, a trailing CR/LF, and an unquoted text (taken verbatim, trimmed). Errors: kSyntax.
Result<ErrorEntry> parse_error(std::string_view text);

/// The instrument-side error queue: FIFO of at most `capacity` entries. When full, a push
/// replaces the newest entry with −350 "Queue overflow" (so the oldest errors survive and the
/// reader learns that some were lost). Not thread-safe.
class ErrorQueue {
 public:
  static constexpr std::size_t kDefaultCapacity = 30;
  /// Throws std::invalid_argument if capacity is 0.
  explicit ErrorQueue(std::size_t capacity = kDefaultCapacity);

  /// Throws std::invalid_argument for code 0 (not an error).
  void push(ErrorEntry entry);
  /// The oldest entry, or {0, "No error"} when empty.
  ErrorEntry pop();
  void clear() noexcept { entries_.clear(); }
  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  std::size_t capacity_;
  std::deque<ErrorEntry> entries_;
};

// --- identification ------------------------------------------------------------------------------

/// The `*IDN?` response `Manufacturer,Model,Serial,Firmware`.
struct Identity {
  std::string manufacturer;
  std::string model;
  std::string serial;
  std::string firmware;
  bool operator==(const Identity&) const = default;
};

/// Splits at the first three commas (the firmware field keeps any further commas) and trims
/// blanks and a trailing CR/LF from every field. Errors: kSyntax if there are fewer than four
/// fields or the manufacturer or model is empty.
Result<Identity> parse_identity(std::string_view response);
/// "Manufacturer,Model,Serial,Firmware" (no terminator).
std::string format_identity(const Identity& identity);

}  // namespace pnn::firmware_iface::scpi

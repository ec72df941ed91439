#pragma once
/// Error codes of the firmware interface layer and the small result type its codecs return.
///
/// Routine faults on the wire (a CRC mismatch, a truncated payload, a malformed SCPI line) are
/// returned as `std::error_code` values of `firmware_iface::Errc` inside a `Result<T>`; they never
/// throw. API misuse (reading the value of a failed result, an impossible argument) throws
/// `std::logic_error` / `std::invalid_argument`.
#include <cassert>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace pnn::firmware_iface {

/// Every routine fault the codecs of this layer report. Values are stable (they may be logged
/// and compared across builds); 0 is never an error.
enum class Errc {
  // Generic payload / message faults.
  kTruncated = 1,       ///< input ends before the content its own fields declare
  kTrailingBytes,       ///< bytes left over after a fixed-layout payload
  kBadValue,            ///< a field holds a value outside its domain (enum, flag, NaN limit)
  kInconsistent,        ///< fields contradict each other (block counts vs num_params)
  kUnknownMessageType,  ///< frame type byte not in `MessageType`
  // Frame layer.
  kBadSync,             ///< no sync pattern where a frame must start
  kBadHeader,           ///< header check failed or reserved header bits set
  kOversize,            ///< header announces a payload above the decoder's maximum
  kCrcMismatch,         ///< frame CRC-32C does not match
  kUnsupportedVersion,  ///< valid header of a protocol version this build does not speak
  // USBTMC.
  kBadMsgId,  ///< USBTMC MsgID not the one expected
  kBadTag,    ///< USBTMC bTag/bTagInverse mismatch or answer to another request
  // SCPI.
  kSyntax,          ///< SCPI line does not parse
  kBadBlock,        ///< malformed IEEE-488.2 block
  kMessageTooLong,  ///< SCPI message longer than the splitter's maximum
  // Transports (transport.hpp).
  kTimeout,       ///< nothing (or not everything) arrived / was accepted before the deadline
  kDisconnected,  ///< no device at the address, or it went away (unplugged, powered off, reset)
  kIo,            ///< any other transport failure (stall, protocol error, OS error)
  kNotOpen,       ///< the transport is closed: open() it first
  kIdentityMismatch,  ///< the device at the address is not the one expected (serial differs)
  kDeviceError,       ///< the device answered with an error (frame ErrorReply, SCPI error queue)
};

/// The category of `Errc`, named "pnn.firmware_iface".
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// A value or an error code. A minimal stand-in for `std::expected` (not in GCC 12's C++20),
/// kept dependency-free so the codecs build with nothing but the standard library.
/// Propagate with `if (!r) return r.error();`.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_convertible_v<std::error_code, T>, "ambiguous Result<T>");

 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}    // NOLINT: implicit by design
  Result(std::error_code error) : v_(std::in_place_index<1>, error) {  // NOLINT
    if (!error) throw std::logic_error("Result: an error result needs a non-zero error_code");
  }
  Result(Errc error) : Result(make_error_code(error)) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws std::logic_error (a bug in the caller) if this holds an error.
  T& value() & {
    check();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check();
    return std::get<0>(v_);
  }
  T&& value() && {
    check();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error, or a default (false) error_code when this holds a value.
  std::error_code error() const noexcept {
    return has_value() ? std::error_code{} : std::get<1>(v_);
  }

 private:
  void check() const {
    if (!has_value()) {
      throw std::logic_error("Result::value() on an error: " + std::get<1>(v_).message());
    }
  }
  std::variant<T, std::error_code> v_;
};

}  // namespace pnn::firmware_iface

template <>
struct std::is_error_code_enum<pnn::firmware_iface::Errc> : std::true_type {};

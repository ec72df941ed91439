#pragma once
/// Error codes of the firmware interface layer and the result type its codecs return.
///
/// Routine faults on the wire (a CRC mismatch, a truncated payload, a malformed SCPI line) are
/// returned as `std::error_code` values of `firmware_iface::Errc` inside a `Result<T>`; they never
/// throw. API misuse (reading the value of a failed result, an impossible argument) throws
/// `std::logic_error` / `std::invalid_argument`.
#include <system_error>
#include <type_traits>

#include "pnn/common/result.hpp"

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

/// A value or an error code of this layer: `common::Result<T, std::error_code>`. The codecs
/// return codes only (no message text), so that decoding never builds a string; the drivers
/// above turn a code into a `drivers::Error` with a message. Constructible from an `Errc`
/// (`return Errc::kTruncated;`); an error_code of 0 as an error throws std::logic_error.
/// Propagate with `if (!r) return r.error();`.
template <typename T>
using Result = common::Result<T, std::error_code>;

}  // namespace pnn::firmware_iface

template <>
struct std::is_error_code_enum<pnn::firmware_iface::Errc> : std::true_type {};

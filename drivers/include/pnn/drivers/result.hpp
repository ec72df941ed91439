#pragma once
/// The drivers layer's error codes (`drivers::Errc`, category "pnn.drivers"), and its names for
/// the project's result type (pnn/common/result.hpp): a value, or an `Error` carrying a
/// `std::error_code` plus a human-readable message that names the problem and the fix.
///
/// Why not boost::outcome: its error payload is an error_code (no room for "θ[17] = 1.3 exceeds
/// the hard limit 1.0 V"), and GCC 12 has no std::expected.
#include <string>
#include <system_error>
#include <utility>

#include "pnn/common/result.hpp"

namespace pnn::drivers {

enum class Errc {
  kOk = 0,
  kWrongState = 1,      ///< lifecycle does not allow the call (e.g. forward while INACTIVE)
  kShapeMismatch = 2,   ///< batch or parameter vector has the wrong size
  kNonFiniteRequest = 3,  ///< NaN or Inf in x or θ; nothing was sent
  kOutOfLimits = 4,     ///< a value outside the device's hard limits; nothing was sent
  kTimeout = 5,         ///< the device did not answer before the deadline
  kIo = 6,              ///< transport failure (unplugged, corrupted, reset)
  kDeviceFault = 7,     ///< the device reports a fault
  kBadAddress = 8,      ///< unparseable or unknown device address
  kBatchTooLarge = 9,   ///< more samples than the device accepts per call
  kNonFiniteReading = 10,  ///< the device ran and returned NaN or Inf readings
};

const std::error_category& driver_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), driver_category()}; }

/// A code of this layer and a message naming the problem and the fix.
using Error = common::Error;

inline Error make_error(Errc code, std::string message) { return {make_error_code(code), std::move(message)}; }

/// A value or an `Error` (common::Result): `Result<Matrix>`, `Result<void>`. Accessing the value of
/// an error is a bug: throws logic_error.
template <class T>
using Result = common::Result<T>;

}  // namespace pnn::drivers

template <>
struct std::is_error_code_enum<pnn::drivers::Errc> : std::true_type {};

#pragma once
/// Result type for routine lab faults (HOUSE_STYLE.md, "Errors"): a value, or an `Error` carrying a
/// `std::error_code` plus a human-readable message that names the problem and the fix.
///
/// Why not boost::outcome: its error payload is an error_code (no room for "θ[17] = 1.3 exceeds
/// the hard limit 1.0 V"), and GCC 12 has no std::expected. This is the smallest thing that fits.
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace pnn::drivers {

enum class Errc {
  kOk = 0,
  kWrongState = 1,      ///< lifecycle does not allow the call (e.g. forward while INACTIVE)
  kShapeMismatch = 2,   ///< batch or parameter vector has the wrong size
  kNonFinite = 3,       ///< NaN or Inf in a request or a reading
  kOutOfLimits = 4,     ///< a value outside the device's hard limits; nothing was sent
  kTimeout = 5,         ///< the device did not answer before the deadline
  kIo = 6,              ///< transport failure (unplugged, corrupted, reset)
  kDeviceFault = 7,     ///< the device reports a fault
  kBadAddress = 8,      ///< unparseable or unknown device address
  kBatchTooLarge = 9,   ///< more samples than the device accepts per call
};

const std::error_category& driver_category() noexcept;
inline std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), driver_category()}; }

struct Error {
  std::error_code code;
  std::string message;
};

inline Error make_error(Errc code, std::string message) { return {make_error_code(code), std::move(message)}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// Precondition: has_value(). Accessing the value of an error is a bug: throws logic_error.
  T& value() & { check(); return std::get<0>(v_); }
  const T& value() const& { check(); return std::get<0>(v_); }
  T&& value() && { check(); return std::get<0>(std::move(v_)); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  void check() const {
    if (!has_value()) throw std::logic_error("Result::value() on an error: " + error().message);
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)
  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace pnn::drivers

template <>
struct std::is_error_code_enum<pnn::drivers::Errc> : std::true_type {};

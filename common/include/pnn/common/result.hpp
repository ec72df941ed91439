#pragma once
/// A value or an error: the one result type for routine faults (HOUSE_STYLE.md, "Errors"), a
/// small stand-in for `std::expected<T, E>` (not in GCC 12's C++20).
///
/// `Result<T>` carries an `Error`: a `std::error_code` (each layer keeps its own error enum and
/// category: firmware_iface::Errc, drivers::Errc) plus a message for a person that names the
/// problem and the fix ("θ[17] = 1.3 exceeds the hard limit 1.0 V"). `Result<T, std::error_code>`
/// carries the code alone; the pure wire codecs of firmware_iface use it (firmware_iface::Result),
/// so that decoding a frame never builds a string. `Result<void>` holds nothing or an error.
///
/// Propagate with `if (!r) return r.error();`. Reading the value of an error result is a bug in
/// the caller and throws std::logic_error, as does a code-only error result whose code is 0.
/// Header-only, standard library only (the fuzz targets build the codecs without CMake).
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace pnn::common {

/// Which fault (`code`, in the category of the layer that saw it) and what to tell the user.
struct Error {
  std::error_code code;
  std::string message;
};

namespace detail {

inline std::string error_text(const std::error_code& e) { return e.message(); }
inline std::string error_text(const Error& e) { return e.message; }

// A code-only error must hold a code: an error_code of 0 means "no error" everywhere else.
inline void check_error(const std::error_code& e) {
  if (!e) throw std::logic_error("Result: an error result needs a non-zero error_code");
}
// An Error is taken as given (its message says what happened even where the code is generic).
inline void check_error(const Error&) {}

template <class E>
const E& no_error() noexcept {
  static const E none{};
  return none;
}

}  // namespace detail

/// `T` or `E` (`Error` by default, or `std::error_code`). Not thread-safe for writes; a const
/// Result may be read from many threads.
template <class T, class E = Error>
class [[nodiscard]] Result {
  static_assert(!std::is_convertible_v<E, T>, "ambiguous Result<T>");

 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {  // NOLINT
    detail::check_error(std::get<1>(v_));
  }
  /// A code-only result straight from a layer's enum: `return Errc::kTruncated;`.
  template <class Enum>
    requires(std::is_same_v<E, std::error_code> && std::is_error_code_enum_v<Enum>)
  Result(Enum error) : Result(std::error_code(error)) {}  // NOLINT

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

  /// The error, or an empty one (code 0) when this holds a value.
  const E& error() const noexcept {
    return has_value() ? detail::no_error<E>() : *std::get_if<1>(&v_);
  }

 private:
  void check() const {
    if (!has_value()) {
      throw std::logic_error("Result::value() on an error: " +
                             detail::error_text(*std::get_if<1>(&v_)));
    }
  }
  std::variant<T, E> v_;
};

/// Success (default-constructed) or an error.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(E error) : error_(std::move(error)), ok_(false) {  // NOLINT: implicit by design
    detail::check_error(error_);
  }
  template <class Enum>
    requires(std::is_same_v<E, std::error_code> && std::is_error_code_enum_v<Enum>)
  Result(Enum error) : Result(std::error_code(error)) {}  // NOLINT

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  /// The error, or an empty one (code 0) on success.
  const E& error() const noexcept { return error_; }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace pnn::common

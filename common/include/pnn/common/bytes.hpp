#pragma once
/// Fixed-width fields in byte buffers: the one byte reader/writer of the project (frame and
/// message codecs, checkpoint files, run-store BLOBs).
///
/// Integers are two's complement, floats and doubles their IEEE-754 bit patterns (so NaN
/// payloads and −0.0 round-trip exactly), little-endian unless the name says `_be`. Access goes
/// through memcpy, so unaligned buffers are fine; compilers turn each field into one load or
/// store, and arrays of doubles or floats into one memcpy on little-endian hosts.
///
/// `ByteReader` checks every read against the bytes present: a read past the end returns zeros,
/// reads nothing and makes the reader failed (sticky), and `error()` then says which read wanted
/// how many bytes. A count read from the input is checked before anything is allocated for it.
/// Header-only (the fuzz targets build the codecs without CMake). Not thread-safe; the buffers
/// must outlive the reader/writer.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace pnn::common {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian hosts are not supported");

/// A type with a fixed-width wire form: an integer of 1, 2, 4 or 8 bytes (not bool), float,
/// double.
template <class T>
concept ByteField = (std::is_integral_v<T> || std::is_floating_point_v<T>) &&
                    !std::is_same_v<T, bool> &&
                    (sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);

namespace detail {

template <std::size_t N>
using UnsignedOfSize = std::conditional_t<
    N == 1, std::uint8_t,
    std::conditional_t<N == 2, std::uint16_t,
                       std::conditional_t<N == 4, std::uint32_t, std::uint64_t>>>;

template <class U>
constexpr U byteswap(U v) noexcept {
  if constexpr (sizeof(U) == 1) {
    return v;
  } else if constexpr (sizeof(U) == 2) {
    return static_cast<U>(__builtin_bswap16(v));
  } else if constexpr (sizeof(U) == 4) {
    return static_cast<U>(__builtin_bswap32(v));
  } else {
    return static_cast<U>(__builtin_bswap64(v));
  }
}

template <std::endian Order, ByteField T>
inline T load(const void* p) noexcept {
  UnsignedOfSize<sizeof(T)> bits;
  std::memcpy(&bits, p, sizeof bits);
  if constexpr (std::endian::native != Order) bits = byteswap(bits);
  return std::bit_cast<T>(bits);
}

template <std::endian Order, ByteField T>
inline void store(void* p, T v) noexcept {
  auto bits = std::bit_cast<UnsignedOfSize<sizeof(T)>>(v);
  if constexpr (std::endian::native != Order) bits = byteswap(bits);
  std::memcpy(p, &bits, sizeof bits);
}

}  // namespace detail

/// The little-endian T at `p` (sizeof(T) bytes must be readable).
template <ByteField T>
inline T load_le(const void* p) noexcept {
  return detail::load<std::endian::little, T>(p);
}
/// Writes `v` little-endian at `p` (sizeof(T) bytes must be writable).
template <ByteField T>
inline void store_le(void* p, T v) noexcept {
  detail::store<std::endian::little, T>(p, v);
}
/// The big-endian T at `p`, for foreign formats that use network order (IDX files).
template <ByteField T>
inline T load_be(const void* p) noexcept {
  return detail::load<std::endian::big, T>(p);
}

/// Decodes `out.size()` consecutive little-endian values from `bytes` (which must hold at least
/// out.size() * sizeof(T) bytes): a plain copy on little-endian hosts.
template <ByteField T>
inline void load_le_array(const void* bytes, std::span<T> out) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    if (!out.empty()) std::memcpy(out.data(), bytes, out.size_bytes());
  } else {
    const auto* p = static_cast<const unsigned char*>(bytes);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = load_le<T>(p + i * sizeof(T));
  }
}

/// Appends fields to a byte buffer: `std::vector<std::uint8_t>` or `std::string` (anything with
/// size(), resize(), data(), push_back() of a byte type).
template <class Buffer>
class ByteWriter {
 public:
  explicit ByteWriter(Buffer& out) noexcept : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(static_cast<typename Buffer::value_type>(v)); }
  void u16(std::uint16_t v) { put(v); }
  void u32(std::uint32_t v) { put(v); }
  void u64(std::uint64_t v) { put(v); }
  void i32(std::int32_t v) { put(v); }
  void i64(std::int64_t v) { put(v); }
  void f32(float v) { put(v); }
  void f64(double v) { put(v); }

  /// Any fixed-width field, little-endian.
  template <ByteField T>
  void put(T v) {
    store_le(grow(sizeof v), v);
  }
  /// Overwrites the field at `offset`, written earlier (e.g. a length known only at the end).
  /// Throws std::out_of_range if it does not lie inside what was written (a bug in the caller).
  template <ByteField T>
  void put_at(std::size_t offset, T v) {
    if (offset > out_.size() || out_.size() - offset < sizeof v) {
      throw std::out_of_range("ByteWriter::put_at: offset " + std::to_string(offset) +
                              " is outside the " + std::to_string(out_.size()) +
                              " bytes written");
    }
    store_le(out_.data() + offset, v);
  }
  /// Raw bytes.
  void bytes(const void* data, std::size_t n) {
    if (n != 0) std::memcpy(grow(n), data, n);
  }
  /// Values as consecutive little-endian fields (a plain copy on little-endian hosts).
  template <ByteField T>
  void array(std::span<const T> values) {
    if constexpr (std::endian::native == std::endian::little) {
      bytes(values.data(), values.size_bytes());
    } else {
      for (const T v : values) put(v);
    }
  }
  void f32_array(std::span<const float> values) { array(values); }
  void f64_array(std::span<const double> values) { array(values); }

  std::size_t size() const noexcept { return out_.size(); }

 private:
  // The address of n new bytes at the end. (GCC 12 can report a false -Warray-bounds here when
  // it inlines many writes into a fresh local vector whose every size it knows; writers into a
  // caller's buffer, as the codecs are, do not see it.)
  void* grow(std::size_t n) {
    const std::size_t at = out_.size();
    out_.resize(at + n);
    return out_.data() + at;
  }
  Buffer& out_;
};

/// Reads fields from a byte span, checking each against the bytes left (see the top of file).
/// `what` (optional, a string literal or other text that outlives the reader) names the field
/// in `error()`.
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> in) noexcept : in_(in) {}
  explicit ByteReader(std::string_view in) noexcept
      : in_(reinterpret_cast<const std::uint8_t*>(in.data()), in.size()) {}

  /// False after a read that did not fit; every later read fails too.
  bool ok() const noexcept { return ok_; }
  /// Bytes not read yet (0 once failed).
  std::size_t remaining() const noexcept { return ok_ ? in_.size() - pos_ : 0; }
  bool at_end() const noexcept { return ok_ && pos_ == in_.size(); }
  /// Offset of the next read.
  std::size_t position() const noexcept { return pos_; }

  std::uint8_t u8(const char* what = nullptr) noexcept { return get<std::uint8_t>(what); }
  std::uint16_t u16(const char* what = nullptr) noexcept { return get<std::uint16_t>(what); }
  std::uint32_t u32(const char* what = nullptr) noexcept { return get<std::uint32_t>(what); }
  std::uint64_t u64(const char* what = nullptr) noexcept { return get<std::uint64_t>(what); }
  std::int32_t i32(const char* what = nullptr) noexcept { return get<std::int32_t>(what); }
  std::int64_t i64(const char* what = nullptr) noexcept { return get<std::int64_t>(what); }
  float f32(const char* what = nullptr) noexcept { return get<float>(what); }
  double f64(const char* what = nullptr) noexcept { return get<double>(what); }

  /// Any fixed-width field, little-endian; T{} if it does not fit.
  template <ByteField T>
  T get(const char* what = nullptr) noexcept {
    if (!ok_ || sizeof(T) > in_.size() - pos_) {
      fail(sizeof(T), Unit::kBytes, what);
      return T{};
    }
    const T v = load_le<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }

  /// A view of the next n bytes (empty if fewer are present).
  std::span<const std::uint8_t> take(std::size_t n, const char* what = nullptr) noexcept {
    if (!ok_ || n > in_.size() - pos_) {
      fail(n, Unit::kBytes, what);
      return {};
    }
    const auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  /// The next n bytes as characters (empty if fewer are present).
  std::string_view text(std::size_t n, const char* what = nullptr) noexcept {
    const auto s = take(n, what);
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }

  /// Fills `out` with out.size() consecutive values; false (and `out` untouched) if the bytes
  /// left are fewer.
  template <ByteField T>
  bool array(std::span<T> out, const char* what = nullptr) noexcept {
    if (!ok_ || out.size() > (in_.size() - pos_) / sizeof(T)) {
      fail(out.size(), Unit::kValues, what);
      return false;
    }
    load_le_array(in_.data() + pos_, out);
    pos_ += out.size_bytes();
    return true;
  }
  /// Reads `count` values into `out` (a std::vector or Eigen vector: resized, its capacity
  /// reused). The count is checked against the bytes present before resizing, so a lying count
  /// read from the input never allocates.
  template <ByteField T, class Container>
  bool array(std::size_t count, Container& out, const char* what = nullptr) {
    if (!ok_ || count > (in_.size() - pos_) / sizeof(T)) {
      fail(count, Unit::kValues, what);
      return false;
    }
    out.resize(static_cast<decltype(out.size())>(count));
    return array(std::span<T>(out.data(), count), what);
  }
  template <class Container>
  bool f64_array(std::size_t count, Container& out, const char* what = nullptr) {
    return array<double>(count, out, what);
  }
  template <class Container>
  bool f32_array(std::size_t count, Container& out, const char* what = nullptr) {
    return array<float>(count, out, what);
  }

  /// Why the reader failed: "theta claims 9 values but only 16 bytes remain", "kind needs 4
  /// bytes but only 2 remain" (a read without a name is "the field at byte N"); "" while ok.
  std::string error() const {
    if (ok_) return {};
    const std::string field =
        fail_what_ != nullptr ? fail_what_ : "the field at byte " + std::to_string(pos_);
    if (fail_unit_ == Unit::kValues) {
      return field + " claims " + std::to_string(fail_count_) + " values but only " +
             std::to_string(fail_left_) + " bytes remain";
    }
    return field + " needs " + std::to_string(fail_count_) + " bytes but only " +
           std::to_string(fail_left_) + " remain";
  }

 private:
  enum class Unit : std::uint8_t { kBytes, kValues };

  // Keeps the first failure: later reads of a failed reader only fail.
  void fail(std::size_t count, Unit unit, const char* what) noexcept {
    if (!ok_) return;
    ok_ = false;
    fail_count_ = count;
    fail_left_ = in_.size() - pos_;
    fail_unit_ = unit;
    fail_what_ = what;
  }

  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  Unit fail_unit_ = Unit::kBytes;
  const char* fail_what_ = nullptr;
  std::size_t fail_count_ = 0;
  std::size_t fail_left_ = 0;
};

}  // namespace pnn::common

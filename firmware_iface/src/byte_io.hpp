#pragma once
// Little-endian field access for the codecs (private to firmware_iface). memcpy keeps unaligned
// access defined; compilers turn each into a single load or store.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pnn::firmware_iface::detail {

template <typename T>
constexpr T byteswap(T v) noexcept {
  static_assert(std::is_unsigned_v<T>);
  if constexpr (sizeof(T) == 1) {
    return v;
  } else if constexpr (sizeof(T) == 2) {
    return static_cast<T>(__builtin_bswap16(v));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(v));
  } else {
    return static_cast<T>(__builtin_bswap64(v));
  }
}

template <typename T>
inline T load_le(const std::uint8_t* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = byteswap(v);
  return v;
}

template <typename T>
inline void store_le(std::uint8_t* p, T v) noexcept {
  if constexpr (std::endian::native == std::endian::big) v = byteswap(v);
  std::memcpy(p, &v, sizeof v);
}

/// Appends little-endian fields to a byte vector.
class Writer {
 public:
  explicit Writer(std::vector<std::uint8_t>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) { put(v); }
  void u32(std::uint32_t v) { put(v); }
  void u64(std::uint64_t v) { put(v); }
  void i32(std::int32_t v) { put(static_cast<std::uint32_t>(v)); }
  void f64(double v) { put(std::bit_cast<std::uint64_t>(v)); }
  void bytes(const void* data, std::size_t n) {
    if (n == 0) return;
    const std::size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, data, n);
  }
  /// Doubles as consecutive little-endian IEEE-754 binary64 (a plain copy on LE hosts).
  void f64_array(std::span<const double> v) {
    if constexpr (std::endian::native == std::endian::little) {
      bytes(v.data(), v.size_bytes());
    } else {
      for (double d : v) f64(d);
    }
  }

 private:
  template <typename T>
  void put(T v) {
    const std::size_t at = out_.size();
    out_.resize(at + sizeof v);
    store_le(out_.data() + at, v);
  }
  std::vector<std::uint8_t>& out_;
};

/// Reads little-endian fields from a byte span; every read checks the bytes present and sets a
/// sticky failure flag instead of reading past the end.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  std::size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }

  std::uint8_t u8() { return get<std::uint8_t>(); }
  std::uint16_t u16() { return get<std::uint16_t>(); }
  std::uint32_t u32() { return get<std::uint32_t>(); }
  std::uint64_t u64() { return get<std::uint64_t>(); }
  std::int32_t i32() { return static_cast<std::int32_t>(get<std::uint32_t>()); }
  double f64() { return std::bit_cast<double>(get<std::uint64_t>()); }

  /// A view of the next n bytes (empty and failed if fewer are present).
  std::span<const std::uint8_t> take(std::size_t n) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  /// Reads `count` doubles into `out` (resized; capacity reused). Checks count against the bytes
  /// present before resizing, so a lying count never allocates.
  void f64_array(std::size_t count, std::vector<double>& out) {
    if (!ok_ || count > (in_.size() - pos_) / sizeof(double)) {
      ok_ = false;
      return;
    }
    out.resize(count);
    const auto src = take(count * sizeof(double));
    if constexpr (std::endian::native == std::endian::little) {
      if (count != 0) std::memcpy(out.data(), src.data(), src.size());
    } else {
      for (std::size_t i = 0; i < count; ++i) {
        out[i] = std::bit_cast<double>(load_le<std::uint64_t>(src.data() + 8 * i));
      }
    }
  }

 private:
  template <typename T>
  T get() {
    if (!ok_ || sizeof(T) > in_.size() - pos_) {
      ok_ = false;
      return T{};
    }
    T v = load_le<T>(in_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace pnn::firmware_iface::detail

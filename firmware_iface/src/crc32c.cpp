#include "pnn/firmware_iface/crc32c.hpp"

#include <array>
#include <cstring>

#include "pnn/common/bytes.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define PNN_CRC32C_X86 1
#endif

namespace pnn::firmware_iface {
namespace {

constexpr std::uint32_t kPolyReflected = 0x82F63B78u;

// tables[k][b]: CRC contribution of byte b followed by k zero bytes. Built at compile time.
using Tables = std::array<std::array<std::uint32_t, 256>, 8>;
constexpr Tables make_tables() {
  Tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? kPolyReflected : 0u);
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  }
  return t;
}
constexpr Tables kTables = make_tables();

// Works on the internal (pre-inverted) register value.
std::uint32_t update_portable(std::uint32_t c, const std::uint8_t* p, std::size_t n) noexcept {
  // Slicing-by-8: one table lookup per byte, eight independent lookups per step.
  while (n >= 8) {
    const std::uint32_t lo = common::load_le<std::uint32_t>(p) ^ c;
    const std::uint32_t hi = common::load_le<std::uint32_t>(p + 4);
    c = kTables[7][lo & 0xFF] ^ kTables[6][(lo >> 8) & 0xFF] ^ kTables[5][(lo >> 16) & 0xFF] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xFF] ^ kTables[2][(hi >> 8) & 0xFF] ^
        kTables[1][(hi >> 16) & 0xFF] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xFF];
  return c;
}

#ifdef PNN_CRC32C_X86
__attribute__((target("sse4.2"))) std::uint32_t update_sse42(std::uint32_t c, const std::uint8_t* p,
                                                             std::size_t n) noexcept {
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = _mm_crc32_u64(c64, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c64);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

using UpdateFn = std::uint32_t (*)(std::uint32_t, const std::uint8_t*, std::size_t) noexcept;

UpdateFn choose_update() noexcept {
#ifdef PNN_CRC32C_X86
  __builtin_cpu_init();  // may run before the runtime's own CPU probe (static initialisers)
  if (__builtin_cpu_supports("sse4.2")) return &update_sse42;
#endif
  return &update_portable;
}

// Chosen on first use (a function-local static, so callers from other static initialisers are
// safe); the guard check is one predictable branch per call, not per byte.
UpdateFn update_fn() noexcept {
  static const UpdateFn fn = choose_update();
  return fn;
}

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::uint8_t> data) noexcept {
  return ~update_fn()(~crc, data.data(), data.size());
}

std::uint32_t crc32c(std::span<const std::uint8_t> data) noexcept { return crc32c_extend(0, data); }

std::uint32_t crc32c_extend_portable(std::uint32_t crc,
                                     std::span<const std::uint8_t> data) noexcept {
  return ~update_portable(~crc, data.data(), data.size());
}

bool crc32c_hardware_accelerated() noexcept { return update_fn() != &update_portable; }

}  // namespace pnn::firmware_iface

#pragma once
/// CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value and final XOR
/// 0xFFFFFFFF. The check value is crc32c("123456789") == 0xE3069283.
///
/// Why Castagnoli rather than the zlib CRC-32: better Hamming distance at frame sizes, and
/// x86-64 (SSE4.2) and ARMv8 have an instruction for it, so checking costs little next to a copy.
/// All functions are pure and thread-safe.
#include <cstdint>
#include <span>

namespace pnn::firmware_iface {

/// CRC-32C of `data`.
std::uint32_t crc32c(std::span<const std::uint8_t> data) noexcept;

/// Continues a CRC over more bytes: crc32c_extend(crc32c(a), b) == crc32c(a ++ b), and
/// crc32c_extend(0, a) == crc32c(a). Lets a frame be checked over header and payload spans
/// without joining them.
std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::uint8_t> data) noexcept;

/// The portable table-driven (slicing-by-8) implementation, whatever the CPU. Same results as
/// `crc32c_extend`; exposed so tests can compare the two paths.
std::uint32_t crc32c_extend_portable(std::uint32_t crc,
                                     std::span<const std::uint8_t> data) noexcept;

/// True when `crc32c`/`crc32c_extend` use the CPU's CRC32 instruction (x86-64 with SSE4.2,
/// detected at run time) instead of the table.
bool crc32c_hardware_accelerated() noexcept;

}  // namespace pnn::firmware_iface

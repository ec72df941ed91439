#pragma once
/// Hexadecimal text of bytes and small integers, lower case (one implementation for the whole
/// project: log lines, routing ids, status bytes, CRCs).
#include <cstdint>
#include <string>
#include <string_view>

namespace pnn::common {

/// Two digits per byte: "00ff10".
std::string to_hex(std::string_view bytes);
/// The two digits of one byte (v & 0xff): "0a".
std::string hex_byte(unsigned v);
/// "0x" and eight digits: "0x0000abcd".
std::string hex_u32(std::uint32_t v);

}  // namespace pnn::common

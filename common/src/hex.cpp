#include "pnn/common/hex.hpp"

namespace pnn::common {
namespace {
constexpr char kDigits[] = "0123456789abcdef";
}  // namespace

std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(2 * bytes.size());
  for (const unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string hex_byte(unsigned v) { return {kDigits[(v >> 4) & 15], kDigits[v & 15]}; }

std::string hex_u32(std::uint32_t v) {
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s.push_back(kDigits[(v >> shift) & 15]);
  return s;
}

}  // namespace pnn::common

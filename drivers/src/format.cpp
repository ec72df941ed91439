#include "pnn/drivers/format.hpp"

#include <charconv>

namespace pnn::drivers {

std::string format_shortest(double value) {
  char buf[32];  // the longest shortest form, "-2.2250738585072014e-308", has 24 characters
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, r.ptr);
}

std::string format_decimal(double value) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general);
  return std::string(buf, r.ptr);
}

}  // namespace pnn::drivers

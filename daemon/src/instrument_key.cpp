#include "instrument_key.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "pnn/drivers/registry.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "pnn/firmware_iface/usb_transport.hpp"

namespace pnn::daemon {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "1", "01" and "+1" are one seed; text that is not a number stays as written.
std::string canonical_integer(const std::string& text) {
  const char* begin = text.data() + (!text.empty() && text.front() == '+' ? 1 : 0);
  long long value = 0;
  const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || begin == end) return text;
  return std::to_string(value);
}

std::string tcp_key(const drivers::DeviceAddress& a) {
  const auto target = firmware_iface::TcpOptions::parse(a.target);
  std::string host = lower(target.host);
  if (host == "localhost" || host == "127.0.0.1" || host == "::1") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "tcp://" + host + ":" + std::to_string(target.port);
}

std::string usb_key(const drivers::DeviceAddress& a) {
  const auto match = firmware_iface::UsbDeviceMatch::parse(a.target, a.get("serial", ""));
  char id[16];
  std::snprintf(id, sizeof id, "%04x:%04x", static_cast<unsigned>(match.vid),
                static_cast<unsigned>(match.pid));
  return std::string("usb://") + id + "?serial=" + match.serial;
}

}  // namespace

std::string instrument_key(const std::string& address) {
  try {
    const auto a = drivers::DeviceAddress::parse(address);
    const std::string scheme = lower(a.scheme);
    if (scheme == "sim") {
      if (const auto serial = a.query.find("serial"); serial != a.query.end()) {
        return "sim://" + a.target + "?serial=" + serial->second;
      }
      return "sim://" + a.target + "?seed=" + canonical_integer(a.get("seed", "1"));
    }
    if (scheme == "tcp") return tcp_key(a);
    if (scheme == "usb" || scheme == "usbtmc") return usb_key(a);
  } catch (const std::invalid_argument&) {
    // Malformed: the device reports it when it is opened; here it is only its own text.
  }
  return address;
}

}  // namespace pnn::daemon

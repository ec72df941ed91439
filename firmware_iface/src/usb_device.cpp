// Finding and describing USB devices: VID:PID matches, option checks, configuration and
// interface descriptors, string descriptors.
#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>
#include <string_view>

#include "usb_libusb.hpp"

namespace pnn::firmware_iface {

UsbDeviceMatch UsbDeviceMatch::parse(std::string_view vid_pid, std::string serial) {
  const auto bad = [&](const char* why) {
    return std::invalid_argument("USB id '" + std::string(vid_pid) + "' " + why +
                                 ": expected VID:PID in hex as lsusb prints it, e.g. 0957:1755");
  };
  const auto colon = vid_pid.find(':');
  if (colon == std::string_view::npos) throw bad("has no ':'");
  const auto hex16 = [&](std::string_view s) {
    if (s.empty() || s.size() > 4) throw bad("needs 1 to 4 hex digits on each side of ':'");
    unsigned value = 0;
    for (char c : s) {
      unsigned digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<unsigned>(c - 'A' + 10);
      } else {
        throw bad("contains a character that is not a hex digit");
      }
      value = value * 16 + digit;
    }
    return static_cast<std::uint16_t>(value);
  };
  UsbDeviceMatch m;
  m.vid = hex16(vid_pid.substr(0, colon));
  m.pid = hex16(vid_pid.substr(colon + 1));
  m.serial = std::move(serial);
  return m;
}

std::string UsbDeviceMatch::to_string() const {
  char id[16];
  std::snprintf(id, sizeof id, "%04x:%04x", vid, pid);
  std::string s = id;
  if (!serial.empty()) s += " serial " + serial;
  return s;
}

namespace detail {

using std::chrono::milliseconds;

void check_common_options(const UsbDeviceMatch& match, const UsbTimings& timings,
                          const char* factory) {
  if (match.vid == 0 && match.pid == 0) {
    throw std::invalid_argument(std::string(factory) +
                                ": match.vid and match.pid are both 0; set them to the device's "
                                "VID:PID as lsusb shows it (e.g. 0957:1755)");
  }
  if (timings.cancel_grace.count() <= 0) {
    throw std::invalid_argument(std::string(factory) +
                                ": timings.cancel_grace must be positive (default 500 ms)");
  }
}

ConfigPtr config_of(libusb_device* device) {
  libusb_config_descriptor* cfg = nullptr;
  if (libusb_get_active_config_descriptor(device, &cfg) == 0) return ConfigPtr(cfg);
  if (libusb_get_config_descriptor(device, 0, &cfg) == 0) return ConfigPtr(cfg);
  return nullptr;
}

std::optional<UsbInterfaceInfo> describe_interface(const libusb_interface_descriptor& alt) {
  UsbInterfaceInfo info;
  info.number = alt.bInterfaceNumber;
  info.interface_class = alt.bInterfaceClass;
  info.interface_subclass = alt.bInterfaceSubClass;
  info.interface_protocol = alt.bInterfaceProtocol;
  for (int e = 0; e < alt.bNumEndpoints; ++e) {
    const libusb_endpoint_descriptor& ep = alt.endpoint[e];
    const auto type = ep.bmAttributes & LIBUSB_TRANSFER_TYPE_MASK;
    const bool in = (ep.bEndpointAddress & LIBUSB_ENDPOINT_DIR_MASK) == LIBUSB_ENDPOINT_IN;
    const auto packet = static_cast<std::uint16_t>(ep.wMaxPacketSize & 0x7FF);
    if (type == LIBUSB_TRANSFER_TYPE_BULK && packet > 0) {
      if (in && info.bulk_in == 0) {
        info.bulk_in = ep.bEndpointAddress;
        info.bulk_in_packet = packet;
      } else if (!in && info.bulk_out == 0) {
        info.bulk_out = ep.bEndpointAddress;
        info.bulk_out_packet = packet;
      }
    } else if (type == LIBUSB_TRANSFER_TYPE_INTERRUPT && in && !info.interrupt_in) {
      info.interrupt_in = ep.bEndpointAddress;
    }
  }
  if (info.bulk_in == 0 || info.bulk_out == 0) return std::nullopt;
  return info;
}

std::string interface_list(const libusb_config_descriptor& cfg) {
  std::string s;
  for (int i = 0; i < cfg.bNumInterfaces; ++i) {
    if (cfg.interface[i].num_altsetting < 1) continue;
    const auto& alt = cfg.interface[i].altsetting[0];
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s%u (class %02x/%02x/%02x, %u endpoints)",
                  s.empty() ? "" : ", ", alt.bInterfaceNumber, alt.bInterfaceClass,
                  alt.bInterfaceSubClass, alt.bInterfaceProtocol, alt.bNumEndpoints);
    s += buf;
  }
  return s.empty() ? "none" : s;
}

Result<std::string> read_string_descriptor(libusb_context* ctx, libusb_device_handle* handle,
                                           std::uint8_t index, std::uint16_t& langid,
                                           Deadline deadline, milliseconds grace,
                                           bool& handle_closed) {
  if (index == 0) return std::string{};
  std::array<std::uint8_t, 255> buf{};
  const auto get = [&](std::uint16_t value, std::uint16_t lang) -> Result<std::size_t> {
    const usbtmc::ControlSetup setup{
        std::uint8_t{LIBUSB_ENDPOINT_IN} | std::uint8_t{LIBUSB_REQUEST_TYPE_STANDARD},
        LIBUSB_REQUEST_GET_DESCRIPTOR, value, lang, 255};
    RawOutcome o = control_transfer(ctx, handle, setup, buf, deadline, grace);
    if (o.stuck) {
      handle_closed = true;
      return Errc::kIo;
    }
    if (o.result.error) return o.result.error;
    return o.result.actual;
  };
  if (langid == 0) {
    auto n = get(LIBUSB_DT_STRING << 8, 0);
    if (!n) return n.error();
    langid = (*n >= 4 && buf[1] == LIBUSB_DT_STRING)
                 ? static_cast<std::uint16_t>(buf[2] | (buf[3] << 8))
                 : std::uint16_t{0x0409};
  }
  auto n = get(static_cast<std::uint16_t>((LIBUSB_DT_STRING << 8) | index), langid);
  if (!n) return n.error();
  if (*n < 2 || buf[1] != LIBUSB_DT_STRING) return Errc::kIo;
  const std::size_t len = std::min<std::size_t>(*n, buf[0]);
  std::string s;
  for (std::size_t i = 2; i + 1 < len; i += 2) {
    const unsigned c = buf[i] | (buf[i + 1] << 8);
    s.push_back(c >= 0x20 && c < 0x7F ? static_cast<char>(c) : '?');
  }
  return s;
}

}  // namespace detail
}  // namespace pnn::firmware_iface

#include "mock_usb.hpp"

#include <linux/ioctl.h>
#include <linux/usbdevice_fs.h>
#include <umockdev.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace pnn::test_usb {
namespace {

void put16(std::vector<std::uint8_t>& v, unsigned x) {
  v.push_back(static_cast<std::uint8_t>(x & 0xFF));
  v.push_back(static_cast<std::uint8_t>((x >> 8) & 0xFF));
}

std::vector<std::uint8_t> string_descriptor(const std::string& s) {
  std::vector<std::uint8_t> d{static_cast<std::uint8_t>(2 + 2 * s.size()), 3};
  for (char c : s) put16(d, static_cast<unsigned char>(c));
  return d;
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
  std::string s;
  char buf[4];
  for (auto b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    s += buf;
  }
  return s;
}

std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v & 0xFFu);
  return buf;
}

usbdevfs_urb* urb_of(UMockdevIoctlData* data) {
  return reinterpret_cast<usbdevfs_urb*>(data->data);
}

// Resolves the ioctl argument as a pointer to `size` bytes of client memory.
UMockdevIoctlData* resolve(UMockdevIoctlData* data, std::size_t offset, std::size_t size) {
  GError* error = nullptr;
  UMockdevIoctlData* d = umockdev_ioctl_data_resolve(data, offset, size, &error);
  if (error) {
    const std::string message = error->message;
    g_error_free(error);
    throw std::runtime_error("umockdev_ioctl_data_resolve: " + message);
  }
  return d;
}

unsigned arg_uint(UMockdevIoctlData* arg) {
  UMockdevIoctlData* d = resolve(arg, 0, sizeof(unsigned));
  unsigned v = 0;
  std::memcpy(&v, d->data, sizeof v);
  g_object_unref(d);
  return v;
}

extern "C" gboolean mock_usb_handle_ioctl(UMockdevIoctlBase* /*handler*/,
                                          UMockdevIoctlClient* client, gpointer user_data) {
  auto* device = static_cast<MockUsbDevice*>(user_data);
  try {
    return device->handle_ioctl(client) ? TRUE : FALSE;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mock usb device: %s\n", e.what());
    umockdev_ioctl_client_complete(client, -1, EIO);
    return TRUE;
  }
}

}  // namespace

std::vector<std::uint8_t> device_descriptor(const MockDeviceSpec& spec) {
  std::vector<std::uint8_t> d{18, 1};
  put16(d, 0x0200);                          // bcdUSB
  d.push_back(0);                            // bDeviceClass: per interface
  d.push_back(0);                            // bDeviceSubClass
  d.push_back(0);                            // bDeviceProtocol
  d.push_back(64);                           // bMaxPacketSize0
  put16(d, spec.vid);                        // idVendor
  put16(d, spec.pid);                        // idProduct
  put16(d, 0x0100);                          // bcdDevice
  d.push_back(1);                            // iManufacturer
  d.push_back(2);                            // iProduct
  d.push_back(spec.serial.empty() ? 0 : 3);  // iSerialNumber
  d.push_back(1);                            // bNumConfigurations
  return d;
}

std::vector<std::uint8_t> config_descriptor(const MockDeviceSpec& spec) {
  std::vector<std::uint8_t> body;
  for (const auto& itf : spec.interfaces) {
    body.insert(body.end(),
                {9, 4, itf.number, 0, static_cast<std::uint8_t>(itf.endpoints.size()),
                 itf.interface_class, itf.interface_subclass, itf.interface_protocol, 0});
    for (const auto& ep : itf.endpoints) {
      body.insert(body.end(), {7, 5, ep.address, ep.attributes});
      put16(body, ep.max_packet);
      body.push_back(ep.attributes == 3 ? 1 : 0);  // bInterval
    }
  }
  std::vector<std::uint8_t> d{9, 2};
  put16(d, static_cast<unsigned>(9 + body.size()));  // wTotalLength
  d.push_back(static_cast<std::uint8_t>(spec.interfaces.size()));
  d.insert(d.end(), {1, 0, 0x80, 50});  // bConfigurationValue, iConfiguration, bus powered, 100 mA
  d.insert(d.end(), body.begin(), body.end());
  return d;
}

MockUsbDevice::MockUsbDevice(MockDeviceSpec spec) : spec_(std::move(spec)) {}

MockUsbDevice::~MockUsbDevice() {
  for (auto* list : {&completed_, &pending_in_, &pending_out_}) {
    for (auto& u : *list) g_object_unref(u.data);
  }
}

std::vector<std::string> MockUsbDevice::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

void MockUsbDevice::clear_events() {
  std::lock_guard lock(mutex_);
  events_.clear();
}

std::vector<std::vector<std::uint8_t>> MockUsbDevice::out_transfers() const {
  std::lock_guard lock(mutex_);
  return out_transfers_;
}

std::size_t MockUsbDevice::pending_in_urbs() const {
  std::lock_guard lock(mutex_);
  return pending_in_.size();
}

void MockUsbDevice::set_connected(bool connected) {
  std::lock_guard lock(mutex_);
  connected_ = connected;
  if (!connected) {
    // As the kernel does on disconnect: URBs in flight complete with -ESHUTDOWN and stay
    // reapable (USBDEVFS_CAP_REAP_AFTER_DISCONNECT); every other ioctl fails with ENODEV.
    for (auto* list : {&pending_in_, &pending_out_}) {
      for (auto& u : *list) {
        urb_of(u.data)->status = -ESHUTDOWN;
        completed_.push_back(u);
      }
      list->clear();
    }
  } else {
    for (auto& u : completed_) g_object_unref(u.data);
    completed_.clear();
  }
}

std::uint16_t MockUsbDevice::max_packet(std::uint8_t endpoint) const {
  for (const auto& itf : spec_.interfaces) {
    for (const auto& ep : itf.endpoints) {
      if (ep.address == endpoint) return ep.max_packet;
    }
  }
  return 64;
}

void MockUsbDevice::queue_in(std::uint8_t endpoint, std::vector<std::uint8_t> bytes,
                             Clock::time_point ready_at) {
  auto it = std::find_if(in_queues_.begin(), in_queues_.end(),
                         [&](const auto& q) { return q.first == endpoint; });
  if (it == in_queues_.end()) {
    in_queues_.emplace_back(endpoint, std::deque<InChunk>{});
    it = std::prev(in_queues_.end());
  }
  it->second.push_back(InChunk{std::move(bytes), 0, ready_at});
}

void MockUsbDevice::drop_in(std::uint8_t endpoint) {
  for (auto& q : in_queues_) {
    if (q.first == endpoint) q.second.clear();
  }
}

std::size_t MockUsbDevice::queued_in(std::uint8_t endpoint) const {
  for (const auto& q : in_queues_) {
    if (q.first == endpoint) return q.second.size();
  }
  return 0;
}

bool MockUsbDevice::handle_ioctl(UMockdevIoctlClient* client) {
  std::lock_guard lock(mutex_);
  const gulong request = umockdev_ioctl_client_get_request(client);
  UMockdevIoctlData* arg = umockdev_ioctl_client_get_arg(client);
  if (!connected_) {
    if (request == USBDEVFS_REAPURB || request == USBDEVFS_REAPURBNDELAY) {
      return reap(client, arg);  // completed URBs first, then ENODEV
    }
    umockdev_ioctl_client_complete(client, -1, ENODEV);
    return true;
  }
  switch (request) {
    case USBDEVFS_GET_CAPABILITIES: {
      UMockdevIoctlData* d = resolve(arg, 0, sizeof(std::uint32_t));
      // What an xHCI host reports: with scatter-gather libusb submits each transfer as one URB.
      const std::uint32_t caps = USBDEVFS_CAP_BULK_SCATTER_GATHER | USBDEVFS_CAP_BULK_CONTINUATION |
                                 USBDEVFS_CAP_NO_PACKET_SIZE_LIM |
                                 USBDEVFS_CAP_REAP_AFTER_DISCONNECT | USBDEVFS_CAP_ZERO_PACKET;
      std::memcpy(d->data, &caps, sizeof caps);
      g_object_unref(d);
      umockdev_ioctl_client_complete(client, 0, 0);
      return true;
    }
    case USBDEVFS_CLAIMINTERFACE:
      log("claim " + std::to_string(arg_uint(arg)));
      umockdev_ioctl_client_complete(client, 0, 0);
      return true;
    case USBDEVFS_DISCONNECT_CLAIM: {
      UMockdevIoctlData* d = resolve(arg, 0, sizeof(usbdevfs_disconnect_claim));
      const auto* dc = reinterpret_cast<const usbdevfs_disconnect_claim*>(d->data);
      log("claim " + std::to_string(dc->interface));
      g_object_unref(d);
      umockdev_ioctl_client_complete(client, 0, 0);
      return true;
    }
    case USBDEVFS_RELEASEINTERFACE:
      log("release " + std::to_string(arg_uint(arg)));
      umockdev_ioctl_client_complete(client, 0, 0);
      return true;
    case USBDEVFS_GETDRIVER:
    case USBDEVFS_IOCTL:
      // No kernel driver is bound to the emulated interfaces: nothing to detach or re-attach.
      umockdev_ioctl_client_complete(client, -1, ENODATA);
      return true;
    case USBDEVFS_CLEAR_HALT: {
      const unsigned ep = arg_uint(arg);
      log("clear_halt " + hex_byte(ep));
      on_clear_halt(static_cast<std::uint8_t>(ep));
      umockdev_ioctl_client_complete(client, 0, 0);
      return true;
    }
    case USBDEVFS_RESET:
    case USBDEVFS_RESETEP:
    case USBDEVFS_SETINTERFACE:
    case USBDEVFS_SETCONFIGURATION:
      umockdev_ioctl_client_complete(client, 0, 0);
      return true;
    case USBDEVFS_SUBMITURB:
      return submit(client, arg);
    case USBDEVFS_REAPURB:
    case USBDEVFS_REAPURBNDELAY:
      return reap(client, arg);
    case USBDEVFS_DISCARDURB:
      return discard(client, arg);
    default: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "unhandled ioctl 0x%lx", static_cast<unsigned long>(request));
      log(buf);
      umockdev_ioctl_client_complete(client, -1, ENOTTY);
      return true;
    }
  }
}

bool MockUsbDevice::submit(UMockdevIoctlClient* client, UMockdevIoctlData* arg) {
  UMockdevIoctlData* data = resolve(arg, 0, sizeof(usbdevfs_urb));
  usbdevfs_urb* urb = urb_of(data);
  if (urb->buffer_length > 0) {
    // Makes urb->buffer point at a local copy; the parent keeps the child alive.
    g_object_unref(resolve(data, offsetof(usbdevfs_urb, buffer),
                           static_cast<std::size_t>(urb->buffer_length)));
  }
  Urb u{data, client, 0};
  urb->actual_length = 0;
  urb->status = 0;
  const bool in = urb->endpoint & 0x80;
  switch (urb->type) {
    case USBDEVFS_URB_TYPE_CONTROL:
      complete_control(u);
      completed_.push_back(u);
      break;
    case USBDEVFS_URB_TYPE_BULK:
    case USBDEVFS_URB_TYPE_INTERRUPT:
      if (in) {
        log_in_length(urb->endpoint, urb->buffer_length);
        pending_in_.push_back(u);
      } else {
        const auto* p = static_cast<const std::uint8_t*>(urb->buffer);
        std::span<const std::uint8_t> bytes(p,
                                            p ? static_cast<std::size_t>(urb->buffer_length) : 0);
        out_transfers_.emplace_back(bytes.begin(), bytes.end());
        switch (on_bulk_out(urb->endpoint, bytes)) {
          case OutResult::kAccept:
            urb->actual_length = urb->buffer_length;
            completed_.push_back(u);
            break;
          case OutResult::kNak:
            pending_out_.push_back(u);
            break;
          case OutResult::kStall:
            urb->status = -EPIPE;
            completed_.push_back(u);
            break;
        }
      }
      break;
    default:
      g_object_unref(data);
      umockdev_ioctl_client_complete(client, -1, EINVAL);
      return true;
  }
  umockdev_ioctl_client_complete(client, 0, 0);
  return true;
}

void MockUsbDevice::log_in_length(std::uint8_t endpoint, int length) {
  in_urb_lengths_.emplace_back(endpoint, length);
}

std::vector<std::pair<std::uint8_t, int>> MockUsbDevice::in_urb_lengths() const {
  std::lock_guard lock(mutex_);
  return in_urb_lengths_;
}

void MockUsbDevice::complete_control(Urb& u) {
  usbdevfs_urb* urb = urb_of(u.data);
  auto* buf = static_cast<std::uint8_t*>(urb->buffer);
  if (!buf || urb->buffer_length < 8) {
    urb->status = -EINVAL;
    return;
  }
  Setup s;
  s.request_type = buf[0];
  s.request = buf[1];
  s.value = static_cast<std::uint16_t>(buf[2] | (buf[3] << 8));
  s.index = static_cast<std::uint16_t>(buf[4] | (buf[5] << 8));
  s.length = static_cast<std::uint16_t>(buf[6] | (buf[7] << 8));
  const std::size_t room =
      std::min<std::size_t>(s.length, static_cast<std::size_t>(urb->buffer_length - 8));
  const bool in = s.request_type & 0x80;
  std::span<const std::uint8_t> out(buf + 8, in ? 0 : room);
  const auto response = (s.request_type & 0x60) == 0 ? standard_request(s) : on_control(s, out);
  if (!response) {
    urb->status = -EPIPE;
    return;
  }
  if (in) {
    const std::size_t n = std::min(room, response->size());
    std::memcpy(buf + 8, response->data(), n);
    urb->actual_length = static_cast<int>(n);
  } else {
    urb->actual_length = static_cast<int>(room);
  }
}

std::optional<std::vector<std::uint8_t>> MockUsbDevice::standard_request(const Setup& s) {
  constexpr std::uint8_t kGetDescriptor = 6;
  if (s.request_type == 0x80 && s.request == kGetDescriptor) {
    const unsigned type = s.value >> 8;
    const unsigned index = s.value & 0xFF;
    if (type == 1) return device_descriptor(spec_);
    if (type == 2) return config_descriptor(spec_);
    if (type == 3) {
      if (index == 0) return std::vector<std::uint8_t>{4, 3, 0x09, 0x04};
      if (index == 1) return string_descriptor(spec_.manufacturer);
      if (index == 2) return string_descriptor(spec_.product);
      if (index == 3 && !spec_.serial.empty()) return string_descriptor(spec_.serial);
    }
    return std::nullopt;
  }
  if (s.request_type == 0x00 && s.request == 9) return std::vector<std::uint8_t>{};  // SET_CONFIG
  if ((s.request_type & 0x80) && s.request == 0) return std::vector<std::uint8_t>{0, 0};
  return std::nullopt;
}

std::optional<std::vector<std::uint8_t>> MockUsbDevice::on_control(
    const Setup& setup, std::span<const std::uint8_t> out) {
  (void)out;
  log("control type " + hex_byte(setup.request_type) + " request " + std::to_string(setup.request) +
      " (stalled)");
  return std::nullopt;
}

bool MockUsbDevice::fill_in(Urb& u, Clock::time_point now) {
  usbdevfs_urb* urb = urb_of(u.data);
  auto it = std::find_if(in_queues_.begin(), in_queues_.end(),
                         [&](const auto& q) { return q.first == urb->endpoint; });
  if (it == in_queues_.end() || it->second.empty()) return false;
  InChunk& chunk = it->second.front();
  if (chunk.ready_at > now) return false;
  const std::size_t room = static_cast<std::size_t>(urb->buffer_length);
  const std::size_t left = chunk.bytes.size() - chunk.offset;
  const std::size_t packet = max_packet(urb->endpoint);
  std::size_t n = std::min(room, left);
  if (left > room && room % packet != 0) {
    // The device sends a whole packet that does not fit: babble, as on real hardware.
    urb->status = -EOVERFLOW;
  }
  if (n > 0) std::memcpy(urb->buffer, chunk.bytes.data() + chunk.offset, n);
  urb->actual_length = static_cast<int>(n);
  chunk.offset += n;
  if (chunk.offset >= chunk.bytes.size()) it->second.pop_front();
  return true;
}

bool MockUsbDevice::reap(UMockdevIoctlClient* client, UMockdevIoctlData* arg) {
  const auto give = [&](Urb u) {
    UMockdevIoctlData* holder = resolve(arg, 0, sizeof(void*));
    umockdev_ioctl_data_set_ptr(holder, 0, u.data);
    g_object_unref(holder);
    g_object_unref(u.data);
    umockdev_ioctl_client_complete(client, 0, 0);
    return true;
  };
  for (auto it = completed_.begin(); it != completed_.end(); ++it) {
    if (it->client != client) continue;
    Urb u = *it;
    completed_.erase(it);
    return give(u);
  }
  if (!connected_) {
    umockdev_ioctl_client_complete(client, -1, ENODEV);
    return true;
  }
  const auto now = Clock::now();
  for (auto it = pending_in_.begin(); it != pending_in_.end(); ++it) {
    if (it->client != client) continue;
    on_in_poll(urb_of(it->data)->endpoint, now);
    if (!fill_in(*it, now)) continue;
    Urb u = *it;
    pending_in_.erase(it);
    return give(u);
  }
  umockdev_ioctl_client_complete(client, -1, EAGAIN);
  return true;
}

bool MockUsbDevice::discard(UMockdevIoctlClient* client, UMockdevIoctlData* arg) {
  // DISCARDURB's argument is the URB pointer itself.
  unsigned long address = 0;
  std::memcpy(&address, arg->data, sizeof address);
  for (auto* list : {&pending_in_, &pending_out_}) {
    for (auto it = list->begin(); it != list->end(); ++it) {
      if (it->client != client || it->data->client_addr != address) continue;
      Urb u = *it;
      list->erase(it);
      usbdevfs_urb* urb = urb_of(u.data);
      urb->status = -ENOENT;
      log(std::string("discard ") + ((urb->endpoint & 0x80) ? "IN " : "OUT ") +
          hex_byte(urb->endpoint));
      completed_.push_back(u);
      umockdev_ioctl_client_complete(client, 0, 0);
      return true;
    }
  }
  umockdev_ioctl_client_complete(client, -1, EINVAL);
  return true;
}

// --- bus -----------------------------------------------------------------------------------------

MockUsbBus::MockUsbBus() : testbed_(umockdev_testbed_new()) {
  if (!testbed_) throw std::runtime_error("umockdev_testbed_new failed");
}

MockUsbBus::~MockUsbBus() {
  g_object_unref(testbed_);
  for (auto* list : {&plugged_, &retired_}) {
    for (auto& p : *list) g_object_unref(p.handler);
  }
}

bool MockUsbBus::in_mock_environment() { return umockdev_in_mock_environment(); }

void MockUsbBus::plug(std::shared_ptr<MockUsbDevice> device, int bus, int address) {
  char devnode[64];
  std::snprintf(devnode, sizeof devnode, "/dev/bus/usb/%03d/%03d", bus, address);
  const std::string name = std::to_string(bus) + "-" + std::to_string(address);
  Plugged p;
  p.device = device;
  p.devnode = devnode;
  p.handler = umockdev_ioctl_base_new();
  g_signal_connect(p.handler, "handle-ioctl", G_CALLBACK(mock_usb_handle_ioctl), device.get());
  GError* error = nullptr;
  // Attach first, so the node answers as soon as the add uevent is out.
  if (!umockdev_testbed_attach_ioctl(testbed_, devnode, p.handler, &error)) {
    const std::string message = error ? error->message : "unknown error";
    if (error) g_error_free(error);
    g_object_unref(p.handler);
    throw std::runtime_error("umockdev_testbed_attach_ioctl(" + p.devnode + "): " + message);
  }
  device->set_connected(true);
  const auto& spec = device->spec();
  std::vector<std::uint8_t> descriptors = device_descriptor(spec);
  const auto config = config_descriptor(spec);
  descriptors.insert(descriptors.end(), config.begin(), config.end());
  char ids[64];
  std::snprintf(ids, sizeof ids, "%04x/%04x/100", spec.vid, spec.pid);
  char bus3[8], dev3[8];
  std::snprintf(bus3, sizeof bus3, "%03d", bus);
  std::snprintf(dev3, sizeof dev3, "%03d", address);
  const std::string text =
      "P: /devices/pnn-mock-usb/" + name + "\n" + "N: bus/usb/" + bus3 + "/" + dev3 + "\n" +
      "E: SUBSYSTEM=usb\n"
      "E: DEVTYPE=usb_device\n"
      "E: DRIVER=usb\n"
      "E: PRODUCT=" +
      ids + "\n" + "E: BUSNUM=" + bus3 + "\n" + "E: DEVNUM=" + dev3 + "\n" +
      "E: DEVNAME=" + devnode + "\n" + "A: busnum=" + std::to_string(bus) + "\\n\n" +
      "A: devnum=" + std::to_string(address) + "\\n\n" +
      "A: speed=" + std::to_string(spec.speed_mbps) + "\\n\n" + "A: bConfigurationValue=1\\n\n" +
      "H: descriptors=" + hex(descriptors) + "\n";
  if (!umockdev_testbed_add_from_string(testbed_, text.c_str(), &error)) {
    const std::string message = error ? error->message : "unknown error";
    if (error) g_error_free(error);
    throw std::runtime_error("umockdev_testbed_add_from_string: " + message);
  }
  p.syspath = "/sys/devices/pnn-mock-usb/" + name;
  plugged_.push_back(std::move(p));
}

void MockUsbBus::unplug(const std::shared_ptr<MockUsbDevice>& device) {
  auto it = std::find_if(plugged_.begin(), plugged_.end(),
                         [&](const Plugged& p) { return p.device == device; });
  if (it == plugged_.end()) throw std::logic_error("MockUsbBus::unplug: device not plugged in");
  device->set_connected(false);
  umockdev_testbed_uevent(testbed_, it->syspath.c_str(), "remove");
  umockdev_testbed_remove_device(testbed_, it->syspath.c_str());
  retired_.push_back(std::move(*it));
  plugged_.erase(it);
}

}  // namespace pnn::test_usb

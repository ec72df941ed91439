// list_usb_devices(): what is plugged in, for pnnctl's discovery. A private context per call
// keeps it independent of any open transport.
#include <libusb.h>

#include "pnn/firmware_iface/usb_transport.hpp"
#include "usb_link.hpp"

namespace pnn::firmware_iface {

std::vector<UsbDeviceInfo> list_usb_devices(std::chrono::milliseconds string_timeout) {
  std::vector<UsbDeviceInfo> found;
  detail::UsbContext context;
  std::string error;
  if (!context.ensure(error)) return found;
  libusb_device** list = nullptr;
  const ssize_t count = libusb_get_device_list(context.get(), &list);
  if (count < 0) return found;
  const UsbTimings timings;
  for (ssize_t i = 0; i < count; ++i) {
    libusb_device* device = list[i];
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(device, &desc) != 0) continue;
    UsbDeviceInfo info;
    info.vid = desc.idVendor;
    info.pid = desc.idProduct;
    info.bus = libusb_get_bus_number(device);
    info.address = libusb_get_device_address(device);
    libusb_config_descriptor* cfg = nullptr;
    if (libusb_get_active_config_descriptor(device, &cfg) == 0 ||
        libusb_get_config_descriptor(device, 0, &cfg) == 0) {
      for (int k = 0; k < cfg->bNumInterfaces && !info.is_usbtmc; ++k) {
        for (int a = 0; a < cfg->interface[k].num_altsetting; ++a) {
          const auto& alt = cfg->interface[k].altsetting[a];
          if (detail::is_usbtmc_class(alt.bInterfaceClass, alt.bInterfaceSubClass,
                                      alt.bInterfaceProtocol)) {
            info.is_usbtmc = true;
          }
        }
      }
      libusb_free_config_descriptor(cfg);
    }
    libusb_device_handle* handle = nullptr;
    if (libusb_open(device, &handle) == 0) {
      info.accessible = true;
      const Deadline deadline = deadline_after(string_timeout);
      std::uint16_t langid = 0;
      bool closed = false;
      const auto read = [&](std::uint8_t index, std::string& out) {
        if (closed) return;
        auto s = detail::read_string_descriptor(context.get(), handle, index, langid, deadline,
                                                timings.cancel_grace, closed);
        if (s) out = std::move(*s);
      };
      read(desc.iSerialNumber, info.serial);
      read(desc.iManufacturer, info.manufacturer);
      read(desc.iProduct, info.product);
      if (!closed) libusb_close(handle);
    }
    found.push_back(std::move(info));
  }
  libusb_free_device_list(list, 1);
  return found;
}

}  // namespace pnn::firmware_iface

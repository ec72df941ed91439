#include "pnn/drivers/instrument_device.hpp"

#include <stdexcept>

#include "pnn/drivers/framed_device.hpp"
#include "pnn/drivers/scpi_circuit.hpp"
#include "pnn/drivers/setups.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "pnn/firmware_iface/usb_transport.hpp"

namespace pnn::drivers {
namespace {

// No kind=: a board of protocol 1.1 describes itself (identify + describe, now). Only the link
// options apply; a datasheet option without kind= has nothing to configure.
PhysicalSystemPtr make_described_instrument(const DeviceAddress& address) {
  const std::string& text = address.text;
  DeviceAddress options = address;
  const std::string serial = options.get("serial", "");
  options.query.erase("serial");
  const FramedDeviceOptions driver = take_framed_device_options(options);
  for (const auto& [key, value] : options.query) {
    throw std::invalid_argument(
        "device address '" + text + "': option '" + key + "' needs kind=KIND (without kind= the "
        "board describes itself and only timeout_ms and retries apply; known kinds: " +
        setup_kind_names() + ")");
  }
  firmware_iface::TransportPtr transport;
  try {
    if (address.scheme == "usb") {
      transport = firmware_iface::make_usb_bulk_transport(
          {.match = firmware_iface::UsbDeviceMatch::parse(address.target, serial)});
    } else {
      transport =
          firmware_iface::make_tcp_transport(firmware_iface::TcpOptions::parse(address.target));
    }
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("device address '" + text + "': " + e.what());
  }
  return make_described_device(std::move(transport), driver, text);
}

}  // namespace

PhysicalSystemPtr make_instrument_device(const DeviceAddress& address) {
  const std::string& text = address.text;
  if (address.scheme != "usb" && address.scheme != "usbtmc" && address.scheme != "tcp") {
    throw std::invalid_argument("device address '" + text + "': scheme '" + address.scheme +
                                "' is not an instrument link (usb, usbtmc, tcp)");
  }
  const std::string kind = address.get("kind", "");
  if (kind.empty()) {
    if (address.scheme == "usbtmc") {
      throw std::invalid_argument("device address '" + text + "' needs kind=KIND, the setup the "
                                  "instrument belongs to (one of " + setup_kind_names() + ")");
    }
    return make_described_instrument(address);
  }
  const SetupKind* setup = find_setup_kind(kind);
  if (!setup) {
    throw std::invalid_argument("device address '" + text + "': unknown kind '" + kind +
                                "' (known: " + setup_kind_names() + ")");
  }
  const std::string serial = address.get("serial", "");
  auto usb_match = [&] {
    try {
      return firmware_iface::UsbDeviceMatch::parse(address.target, serial);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("device address '" + text + "': " + e.what());
    }
  };
  auto tcp = [&] {
    try {
      return firmware_iface::make_tcp_transport(firmware_iface::TcpOptions::parse(address.target));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("device address '" + text + "': " + e.what());
    }
  };
  switch (setup->driver) {
    case InstrumentDriver::kNone:
      throw std::invalid_argument("device address '" + text + "': kind '" + kind +
                                  "' has no instrument; it exists only as sim://" + kind);
    case InstrumentDriver::kScpiCircuit:
      if (address.scheme == "tcp") return make_scpi_circuit(address);
      if (address.scheme == "usbtmc") {
        return make_scpi_circuit_over(
            address, firmware_iface::make_usbtmc_transport({.match = usb_match()}));
      }
      throw std::invalid_argument("device address '" + text + "': kind '" + kind +
                                  "' is driven as SCPI instruments: use tcp://HOST:PORT or "
                                  "usbtmc://VID:PID");
    case InstrumentDriver::kFramedBoard:
      break;
  }
  firmware_iface::TransportPtr transport;
  if (address.scheme == "usb") {
    transport = firmware_iface::make_usb_bulk_transport({.match = usb_match()});
  } else if (address.scheme == "tcp") {
    transport = tcp();
  } else {
    throw std::invalid_argument("device address '" + text + "': kind '" + kind +
                                "' is a lab-built board speaking the frame protocol: use "
                                "usb://VID:PID?serial=... or tcp://HOST:PORT");
  }
  DeviceAddress options = address;
  options.query.erase("kind");
  for (const char* key : {"faults", "link"}) {
    if (options.query.count(key)) {
      throw std::invalid_argument("device address '" + text + "': '" + key +
                                  "' exists only for sim:// instruments");
    }
  }
  const FramedDeviceOptions driver = take_framed_device_options(options);
  Datasheet datasheet = setup->datasheet(options);  // the datasheet view; no reality is made
  // The datasheet gives units, sizes and limits; the identity is the board's own.
  if (datasheet.spec.serial.empty()) datasheet.spec.serial = text;
  datasheet.spec.model = "(read from the board when configured)";
  datasheet.spec.firmware = "unknown until configured";
  return make_framed_device(std::move(datasheet.spec), std::move(datasheet.twin),
                            std::move(transport), driver);
}

}  // namespace pnn::drivers

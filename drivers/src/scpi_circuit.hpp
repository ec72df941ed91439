#pragma once
// The electronic-circuit driver (private to drivers; the registry is its only user): the RLC-
// junction circuit driven by a SCPI arbitrary-waveform generator and read by a digitizer, over
// any transport. Addresses:
//   sim://electronic-circuit?seed=S&slots=K[&tolerance=…][&serial=…][&faults=…][&timeout_ms=…][&vmax=…]
//       the simulated instrument (drivers/sim/circuit_instrument.hpp) over the in-process loopback;
//   tcp://HOST:PORT?kind=electronic-circuit&slots=K[&serial=…][&timeout_ms=…][&vmax=…]
//       a real (or pnn-siminst-served) instrument on its scpi-raw socket.
// docs/config.md lists the keys, docs/protocol.md ("SCPI instruments") the commands it sends.
#include "pnn/drivers/registry.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers {

/// Throws std::invalid_argument naming the key, the value and the fix on a bad address.
PhysicalSystemPtr make_scpi_circuit(const DeviceAddress& address);

/// The same driver over `transport` (tests: a loopback to an instrument they keep a handle to).
/// `address` is checked as above and supplies the driver's keys (slots, serial, timeout_ms,
/// vmax); without serial= the first instrument that answers is accepted.
PhysicalSystemPtr make_scpi_circuit_over(const DeviceAddress& address,
                                         firmware_iface::TransportPtr transport);

}  // namespace pnn::drivers

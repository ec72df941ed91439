#pragma once
/// The electronic-circuit driver: the RLC-junction circuit driven by a SCPI arbitrary-waveform
/// generator and read by a digitizer (one AWGDIG-100-style instrument), over any transport. The
/// time multiplexing of (x, θ) into the AWG waveform and the window averaging of the digitizer
/// trace happen in the driver, as they would with bench instruments, so a simulated bench runs
/// exactly the code a real one would. Its datasheet: `pnn/drivers/setups/electronic_circuit.hpp`
/// (the keys); docs/protocol.md ("SCPI instruments") lists the commands it sends.
///
///   tcp://HOST:PORT?kind=electronic-circuit&slots=K[&serial=…][&timeout_ms=…][&vmax=…]
///       a real (or pnn-siminst-served) instrument on its scpi-raw socket;
///   sim://electronic-circuit?… is the simulated instrument over the in-process loopback, wired
///       by pnn::drivers_sim (`pnn/drivers/registry.hpp`) with `make_scpi_circuit_over`.
#include <string>

#include "pnn/drivers/address.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers {

/// The driver over TCP to `address`'s target. Throws std::invalid_argument naming the key, the
/// value and the fix on a bad address.
PhysicalSystemPtr make_scpi_circuit(const DeviceAddress& address);

/// The same driver over `transport` (usbtmc://, the simulated instrument, tests). `address` is
/// checked as above and supplies the driver's keys (slots, serial, timeout_ms, vmax); without
/// serial= the first instrument that answers is accepted.
PhysicalSystemPtr make_scpi_circuit_over(const DeviceAddress& address,
                                         firmware_iface::TransportPtr transport);

/// The same, bound to the instrument with `expected_serial` ("" = the first that answers).
PhysicalSystemPtr make_scpi_circuit_over(const DeviceAddress& address,
                                         firmware_iface::TransportPtr transport,
                                         std::string expected_serial);

}  // namespace pnn::drivers

#pragma once
/// The simulated setups: each takes its kind's datasheet (`pnn/drivers/setups/<kind>.hpp`) and
/// adds what only the instrument knows. Those returning a SimSetup are lab-built boards: the
/// registry serves their reality from a firmware emulator over the frame protocol
/// (firmware_emulator.hpp) to the framed-board driver. The others are instruments with a driver
/// of their own. The table of them is sim_kinds.cpp. Private to drivers_sim.
#include "pnn/drivers/physical_system.hpp"
#include "sim_setup.hpp"

namespace pnn::drivers::sim {

/// sim://mechanical-oscillators?seed=S&n=N&gap=small|large[&eta=η&j_noise=J]
SimSetup make_oscillators(const DeviceAddress& address);
/// sim://power-law?prefactor=A  (reality y = A·x^θ; datasheet/twin prefactor 2.01)
SimSetup make_power_law(const DeviceAddress& address);
/// sim://optical-shg?seed=S&inputs=N&params=P&outputs=M&gap=small|large[&exposure_ms=T]
/// (optical_devices.cpp)
SimSetup make_optical_shg(const DeviceAddress& address);
/// sim://optical-spd?seed=S&inputs=N&outputs=M&photons=N_ph  (optical_devices.cpp)
SimSetup make_optical_spd(const DeviceAddress& address);
/// sim://stno-rnn?seed=S&neurons=N&steps=T&inputs=M[&period_ns=τ&spread=s]  (spintronic_devices.cpp)
SimSetup make_stno_rnn(const DeviceAddress& address);
/// sim://mtj-rf?seed=S&inputs=K&chains=N[&offset_mhz=σ]  (spintronic_devices.cpp)
SimSetup make_mtj_rf(const DeviceAddress& address);
/// sim://resistive-network?seed=S&inputs=N&hidden=H&outputs=M[&mismatch=σ&threshold_spread=s
/// &noise_mv=n&settle_us=t]  (resistive_device.cpp)
SimSetup make_resistive_network(const DeviceAddress& address);
/// sim://spiking-chip?seed=S&features=F&hidden=H&outputs=O&steps=T[&gap=small|large&noise=σ
/// &jitter=s&…]  (spiking_device.cpp; the datasheet lists the rest)
SimSetup make_spiking_chip(const DeviceAddress& address);
/// sim://mechanical-plate?seed=S&slots=K[&spread=1]  (plate_device.cpp)
SimSetup make_speaker_plate(const DeviceAddress& address);
/// sim://electronic-circuit?seed=S&slots=K[&tolerance=…]: the SCPI driver over the in-process
/// loopback to the simulated AWG + digitizer  (circuit_instrument.cpp)
PhysicalSystemPtr make_circuit_device(const DeviceAddress& address);
/// sim://null?inputs=N[&serial=S]: y = x, no parameters  (null_device.cpp)
PhysicalSystemPtr make_null(const DeviceAddress& address);

}  // namespace pnn::drivers::sim

#pragma once
// The drive waveform of the electronic-circuit driver (private to drivers): the time-multiplexed
// levels of a batch (`pnn/digital_twin/time_multiplex.hpp`) as the AWG's 16-bit DAC codes, and
// the program message that uploads them, plays them and acquires the trace (step 1 of a
// forward, docs/protocol.md "SCPI instruments").
#include <string>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::drivers::scpi_circuit {

/// The AWG's conventions: codes ±kDacMaxCode are ±setups::kCircuitFullScaleV.
inline constexpr int kDacMaxCode = 32767;
/// AWG points and digitizer samples per second: one per 1 µs slot.
inline constexpr double kRateSps = 1e6;
/// The name of the driver's waveform in the AWG's volatile memory.
inline constexpr const char* kWaveform = "PNNDRIVE";

/// Volts of a DAC code, exactly as the instrument computes them when checking its limits.
double dac_volts(int code);

/// The largest code whose voltage is within limit_v.
int max_code_within(double limit_v);

/// "SOUR:DATA:VOL:CLE;:SOUR:DATA:ARB:DAC PNNDRIVE,<codes>;:SOUR:FUNC:ARB PNNDRIVE;
///  :ACQ:SEGM:COUN <batch>;:INIT;*TRG;*OPC?" for inputs x (batch × K) and θ (K): row r is run
/// r, [x_r0 | θ_0 | x_r1 | θ_1 | …], one point per slot, each level rounded to the nearest code
/// within ±max_code; little-endian int16 (FORM:BORD SWAP). The volatile memory is cleared first
/// so that a refused upload can never leave the previous batch's waveform to be played instead.
std::string upload_message(const MatrixRef& x, const VectorRef& theta, int max_code);

}  // namespace pnn::drivers::scpi_circuit

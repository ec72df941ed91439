#pragma once
// The measurement of the electronic-circuit driver (private to drivers): the digitizer's trace,
// the reply to WAV:DATA? (a definite-length block of little-endian float32, one sample per 1 µs
// slot, 2K per run), checked and averaged into the K output windows
// (`pnn/digital_twin/time_multiplex.hpp`), as bench software would.
#include <string>

#include "pnn/digital_twin/tensor.hpp"
#include "pnn/drivers/result.hpp"
#include "session.hpp"

namespace pnn::drivers::scpi_circuit {

/// The digitizer's input range ±; a reading beyond it cannot come from the instrument.
inline constexpr double kAdcRangeV = 5.0;

/// batch × K window means in volts. A NaN sample is the instrument's own verdict and is kept
/// (the caller sees kNonFiniteReading). Errors (made by `session`, retryable): a reply that is not one
/// block, of the wrong size, or with a sample beyond the ADC's range (damaged on the way).
Result<Matrix> decode_trace(Session& session, const std::string& reply, Index batch, Index slots);

}  // namespace pnn::drivers::scpi_circuit

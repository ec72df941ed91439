#include "waveform.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "pnn/digital_twin/time_multiplex.hpp"
#include "pnn/drivers/setups/electronic_circuit.hpp"
#include "pnn/firmware_iface/scpi.hpp"

namespace pnn::drivers::scpi_circuit {

using setups::kCircuitFullScaleV;

double dac_volts(int code) { return code * kCircuitFullScaleV / kDacMaxCode; }

int max_code_within(double limit_v) {
  int c = std::clamp(static_cast<int>(std::floor(limit_v / kCircuitFullScaleV * kDacMaxCode)), 0,
                     kDacMaxCode);
  while (c < kDacMaxCode && dac_volts(c + 1) <= limit_v) ++c;
  while (c > 0 && dac_volts(c) > limit_v) --c;
  return c;
}

std::string upload_message(const MatrixRef& x, const VectorRef& theta, int max_code) {
  const Matrix levels = digital_twin::time_multiplexed_levels(x, theta);
  std::vector<std::uint8_t> codes;
  codes.reserve(static_cast<std::size_t>(levels.size() * 2));
  for (Index r = 0; r < levels.rows(); ++r) {
    for (Index s = 0; s < levels.cols(); ++s) {
      const int code =
          std::clamp(static_cast<int>(std::lround(levels(r, s) / kCircuitFullScaleV * kDacMaxCode)),
                     -max_code, max_code);
      const auto u = static_cast<std::uint16_t>(static_cast<std::int16_t>(code));
      codes.push_back(static_cast<std::uint8_t>(u & 0xFF));
      codes.push_back(static_cast<std::uint8_t>(u >> 8));
    }
  }
  return std::string("SOUR:DATA:VOL:CLE;:SOUR:DATA:ARB:DAC ") + kWaveform + "," +
         firmware_iface::scpi::format_block(codes) + ";:SOUR:FUNC:ARB " + kWaveform +
         ";:ACQ:SEGM:COUN " + std::to_string(x.rows()) + ";:INIT;*TRG;*OPC?";
}

}  // namespace pnn::drivers::scpi_circuit

#include "trace.hpp"

#include <bit>
#include <cmath>
#include <cstdint>

#include "pnn/digital_twin/time_multiplex.hpp"
#include "pnn/firmware_iface/scpi.hpp"

namespace pnn::drivers::scpi_circuit {

Result<Matrix> decode_trace(Session& session, const std::string& reply, Index batch,
                            Index slots) {
  namespace scpi = firmware_iface::scpi;
  const auto block = scpi::parse_arguments(reply);
  if (!block || block->size() != 1 || block->front().kind != scpi::Argument::Kind::kBlock) {
    return session.garbled("WAV:DATA?", reply);
  }
  const std::string& bytes = block->front().text;
  const Index per_run = 2 * slots;  // samples: one per slot at 1 MS/s
  if (bytes.size() != static_cast<std::size_t>(batch * per_run * 4)) {
    return session.garbled("WAV:DATA?", std::to_string(bytes.size()) + " bytes for " +
                                            std::to_string(batch * per_run) + " float32 samples");
  }
  Matrix samples(batch, per_run);
  for (Index r = 0; r < batch; ++r) {
    for (Index j = 0; j < per_run; ++j) {
      const std::size_t at = static_cast<std::size_t>((r * per_run + j) * 4);
      std::uint32_t u = 0;
      for (int b = 3; b >= 0; --b) {
        u = (u << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(b)]);
      }
      const double v = std::bit_cast<float>(u);
      if (!std::isnan(v) && !(std::abs(v) <= kAdcRangeV * 1.001)) {
        return session.garbled("WAV:DATA?", "a sample of " + format_decimal(v) + " V");
      }
      samples(r, j) = v;
    }
  }
  // Window k: the samples of its data slot and its parameter slot.
  return digital_twin::window_means(samples, slots);
}

}  // namespace pnn::drivers::scpi_circuit

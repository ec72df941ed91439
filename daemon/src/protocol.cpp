#include "pnn/daemon/protocol.hpp"

#include "pnn/firmware_iface/error.hpp"

namespace pnn::daemon {

v1::StatusCode status_code(const std::error_code& code) {
  using drivers::Errc;
  if (code.category() == firmware_iface::error_category()) {
    // A link or board fault a driver passed through as it came.
    switch (static_cast<firmware_iface::Errc>(code.value())) {
      case firmware_iface::Errc::kTimeout: return v1::DEVICE_TIMEOUT;
      case firmware_iface::Errc::kDeviceError: return v1::DEVICE_FAULT;
      default: return v1::DEVICE_IO;  // disconnected, identity mismatch, damaged replies, ...
    }
  }
  if (code.category() != drivers::driver_category()) return v1::INTERNAL;
  switch (static_cast<Errc>(code.value())) {
    case Errc::kOk: return v1::OK;
    case Errc::kWrongState: return v1::WRONG_STATE;
    case Errc::kShapeMismatch: return v1::SHAPE_MISMATCH;
    case Errc::kNonFiniteRequest:
    case Errc::kNonFiniteReading: return v1::NON_FINITE;
    case Errc::kOutOfLimits: return v1::OUT_OF_LIMITS;
    case Errc::kTimeout: return v1::DEVICE_TIMEOUT;
    case Errc::kIo: return v1::DEVICE_IO;
    case Errc::kDeviceFault: return v1::DEVICE_FAULT;
    case Errc::kBadAddress: return v1::INVALID_ARGUMENT;
    case Errc::kBatchTooLarge: return v1::BATCH_TOO_LARGE;
  }
  return v1::INTERNAL;
}

}  // namespace pnn::daemon

#pragma once
/// The daemon's side of the wire codec: the mapping of driver and link errors to status codes.
/// The codec itself (protocol frame, versions, tensors) is pnn/proto/wire.hpp, shared with the
/// clients; its names are visible here as pnn::daemon::... for the daemon's code.
#include <system_error>

#include "pnn/drivers/result.hpp"
#include "pnn/proto/wire.hpp"

namespace pnn::daemon {

namespace v1 = ::pnn::v1;
using wire::decode_protocol_frame;
using wire::encode_protocol_frame;
using wire::from_tensor;
using wire::from_vec;
using wire::kProtocolFrameSize;
using wire::kProtocolMajor;
using wire::kProtocolMinor;
using wire::to_tensor;
using wire::to_vec;
using wire::to_string;

/// The status code for a driver error (kShapeMismatch → SHAPE_MISMATCH, kTimeout →
/// DEVICE_TIMEOUT, ...); INTERNAL for codes of other categories.
v1::StatusCode status_code(const std::error_code& code);

}  // namespace pnn::daemon

#pragma once
/// The wire codec of the daemon API (proto/pnn.proto), shared by the daemon and its clients: the
/// protocol frame, the version constants and tensor conversion. Pure functions, no I/O,
/// thread-safe.
///
/// Every RPC message is two frames: [protocol frame] [Request or Reply protobuf]. The protocol
/// frame is the 4 bytes "PNND" then the major version as a big-endian u16.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pnn/common/result.hpp"
#include "pnn/common/tensor.hpp"
#include "pnn/proto/pnn.pb.h"

namespace pnn::wire {

namespace v1 = ::pnn::v1;

inline constexpr std::uint16_t kProtocolMajor = 1;
/// Minor 1: DeviceInfo.forward_calls/twin_calibrated/calibration_id, ForwardReply.recorded,
/// JobInfo progress fields, RunInfo.message. Minor 2: DeviceInfo.health_message. Minor 3:
/// LifecycleRequest.RECOVER. Minor 4: RECORD_FAILED, STORE_FULL, JOB_FINISHED, LEASE_RELEASED,
/// ParamBlock/DeviceSpec float32 bounds. Minor 5: BUSY. Minor 6: DeviceInfo.no_twin.
/// Minor 7: DeviceInfo.drift. Minor 8: FitTwin, ListTwins, GetTwin, UseTwin, DeviceInfo.twin_id.
/// Minor 9: DeviceInfo.inline_forward_calls.
inline constexpr std::uint32_t kProtocolMinor = 9;
inline constexpr std::size_t kProtocolFrameSize = 6;

/// "PNND" + major (big-endian).
std::string encode_protocol_frame(std::uint16_t major = kProtocolMajor);
/// The major version, or nullopt if `frame` is not a protocol frame (wrong size or magic).
std::optional<std::uint16_t> decode_protocol_frame(std::string_view frame);

/// A row-major float tensor of shape [rows, cols] (values rounded to float).
void to_tensor(const MatrixRef& m, v1::Tensor* out);
v1::Tensor to_tensor(const MatrixRef& m);

/// A batch from a tensor. Requires shape [batch, features] with batch ≥ 1 and
/// data size = batch·features; otherwise an error (std::errc::invalid_argument) naming `what`
/// and the shapes.
common::Result<Matrix> from_tensor(const v1::Tensor& t, const std::string& what);

void to_vec(const VectorRef& v, v1::Vec* out);
Vector from_vec(const v1::Vec& v);

/// Readable name of a status code, e.g. "LEASE_REQUIRED".
std::string to_string(v1::StatusCode code);

}  // namespace pnn::wire

#include "intake.hpp"

#include "pnn/common/hex.hpp"
#include "wire_text.hpp"

namespace pnn::daemon::detail {

void identify(Call& call, zmq::message_t& frame, bool curve_enabled) {
  call.identity = "conn:" + common::to_hex(call.routing_id);
  if (!curve_enabled) {
    call.role = Role::kOperator;  // and may control every job: may_control()
    return;
  }
  call.role = Role::kReadOnly;  // the connection identity above is unreachable with a working ZAP
  try {
    const char* user = frame.gets("User-Id");
    if (!user) return;
    const std::string_view u(user);
    const auto space = u.find(' ');
    const std::string_view role = u.substr(0, space);
    if (role == "operator") call.role = Role::kOperator;
    if (role == "admin") call.role = Role::kAdmin;
    if (space != std::string_view::npos) call.identity = "key:" + std::string(u.substr(space + 1));
  } catch (const zmq::error_t&) {
  }
}

std::optional<Failure> take_request(std::vector<zmq::message_t>& frames, const IntakeLimits& limits,
                                    Call& call, v1::Request& request) {
  std::size_t total = 0;
  for (std::size_t i = 1; i < frames.size(); ++i) total += frames[i].size();
  call.request_bytes = total;
  if (total > limits.max_message_bytes) {
    return Failure{v1::TOO_LARGE, "request of " + std::to_string(total) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(limits.max_message_bytes) +
                                      " bytes (rpc.max_message_bytes); split the batch"};
  }
  if (frames.size() != 3) {
    return Failure{v1::MALFORMED, "expected 2 frames [protocol \"PNND\"+u16 major][Request], got " +
                                      std::to_string(frames.size() - 1)};
  }
  const auto major = decode_protocol_frame(frames[1].to_string_view());
  if (!major) {
    return Failure{v1::MALFORMED,
                   "the first frame is not a protocol frame (\"PNND\" + u16 major, 6 bytes)"};
  }
  if (*major != kProtocolMajor) {
    return Failure{v1::UNSUPPORTED_PROTOCOL,
                   "protocol major " + std::to_string(*major) + " is not served; this daemon "
                   "speaks major " + std::to_string(kProtocolMajor) + " (upgrade the client)"};
  }
  const std::string_view bytes = frames[2].to_string_view();
  const auto digest = request_digest(bytes);
  if (!digest || !request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Failure{v1::MALFORMED,
                   "the request frame is not a valid pnn.v1.Request (every string field must be "
                   "UTF-8; send bytes fields for binary data)"};
  }
  call.request_id = request.request_id();
  call.digest = *digest;
  if (auto problem = client_id_problem(request.client_id())) {
    return Failure{v1::INVALID_ARGUMENT, *problem};
  }
  call.client_id = request.client_id();
  call.deadline_ms =
      request.deadline_ms() != 0 ? request.deadline_ms() : limits.default_deadline_ms;
  call.deadline = Clock::now() + std::chrono::milliseconds(call.deadline_ms);
  return std::nullopt;
}

}  // namespace pnn::daemon::detail

#pragma once
// Request intake: the checks every request passes, in order, before a handler sees it (size,
// frame count, protocol version, decode, client_id, deadline), and the caller's role and
// identity. No I/O: the caller sends the refusal.
#include <zmq.hpp>

#include <optional>
#include <vector>

#include "call.hpp"

namespace pnn::daemon::detail {

struct IntakeLimits {
  std::size_t max_message_bytes;
  std::uint32_t default_deadline_ms;
};

/// Role and identity from the connection. With CURVE, ZAP set User-Id to "ROLE KEY" (the
/// client's Z85 public key); without it every client is an operator and its identity is its
/// connection (routing id; the shipped clients pick a random one, kept across reconnects).
void identify(Call& call, zmq::message_t& frame, bool curve_enabled);

/// Checks and decodes `frames` ([routing id][protocol][Request]) into `call` and `request`, or
/// says why it is refused (TOO_LARGE, MALFORMED, UNSUPPORTED_PROTOCOL, INVALID_ARGUMENT).
/// `call.routing_id` and the identity must be set already.
std::optional<Failure> take_request(std::vector<zmq::message_t>& frames, const IntakeLimits& limits,
                                    Call& call, v1::Request& request);

}  // namespace pnn::daemon::detail

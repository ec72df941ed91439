#pragma once
// One RPC as the daemon handles it: who is calling, when it must be done, how its reply is
// recorded; and the small vocabulary every handler shares (status, write RPCs, names).
#include <chrono>
#include <cstdint>
#include <string>

#include "pnn/daemon/config.hpp"
#include "pnn/daemon/protocol.hpp"

namespace pnn::daemon::detail {

using Clock = std::chrono::steady_clock;

// Where an error that is not a device's or a job's was raised.
inline constexpr const char* kIntake = "pnnd request intake";
inline constexpr const char* kDaemon = "pnnd";

struct Call {
  std::string routing_id;
  Role role = Role::kOperator;
  // Who is calling, as far as pnnd can tell: the CURVE public key when CURVE is on, else the
  // connection (its routing id). Leases, cached replies and jobs belong to an identity, never
  // to a client_id alone (client_ids are public: ListDevices shows lease holders).
  std::string identity;
  std::uint64_t request_id = 0;
  std::string client_id;
  std::uint32_t deadline_ms = 0;
  Clock::time_point deadline;
  // Set for writes with a request id: the reply is recorded under this key, so a retry of the
  // same request gets it instead of a second run.
  std::string idempotency_key;
  std::uint64_t digest = 0;
  // A Forward's reply is recorded only if the hardware ran; its refusals (no lease, past the
  // deadline, bad settle_ms, store full) are not, so a retry is checked again.
  bool is_forward = false;
  std::size_t request_bytes = 0;  // the frames' size, for the bound on queued compute work
};

// A failed call, carried to the reply.
struct Failure {
  v1::StatusCode code;
  std::string message;
};

void set_status(v1::Reply& reply, v1::StatusCode code, const std::string& message,
                const std::string& origin = kDaemon);
// Lifecycle, Acquire, Renew, Release, Forward, Calibrate, SubmitJob, CancelJob: these need the
// operator role and pass the idempotency gate.
bool is_write(v1::Request::BodyCase body);
const char* rpc_name(v1::Request::BodyCase body);

}  // namespace pnn::daemon::detail

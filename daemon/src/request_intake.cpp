// Request intake and the one reply path: frames → Call (intake.hpp), role, the idempotency gate
// of every write, dispatch to the handlers, replies through the bounded outbox, and the compute
// pool's admission (compute_queue.hpp).
#include "intake.hpp"
#include "pnn/common/hex.hpp"
#include "server_impl.hpp"
#include "wire_text.hpp"

namespace pnn::daemon {

using common::to_hex;
using detail::set_status;


void Server::Impl::on_rpc(std::vector<zmq::message_t>& frames) {
  Call call;
  call.routing_id = frames[0].to_string();
  if (frames.size() < 2) return;
  if (outbox.saturated(call.routing_id)) return note_dropped_request(call.routing_id);
  detail::identify(call, frames[1], config.security.curve_enabled());
  v1::Request request;
  const detail::IntakeLimits limits{config.max_message_bytes, config.default_deadline_ms};
  if (auto refused = detail::take_request(frames, limits, call, request)) {
    send_error(call, refused->code, refused->message, kIntake);
    return;
  }
  try {
    dispatch(call, request);
  } catch (const std::exception& e) {
    send_error(call, v1::INTERNAL,
               std::string(detail::rpc_name(request.body_case())) + " failed: " + e.what());
  }
}

void Server::Impl::dispatch(Call& call, v1::Request& request) {
  const auto body = request.body_case();
  if (body == v1::Request::BODY_NOT_SET) {
    send_error(call, v1::MALFORMED, "the request has no body (set one RPC field)");
    return;
  }
  const bool write = detail::is_write(body);
  if (write && call.role == Role::kReadOnly) {
    send_error(call, v1::PERMISSION_DENIED,
               std::string(detail::rpc_name(body)) + " needs the operator role; this client's key "
               "is read-only (ask the lab admin to list it as operator in security.clients)",
               kIntake);
    return;
  }
  if (!write || call.client_id.empty() || call.request_id == 0) return dispatch_body(call, request);
  using Verdict = detail::IdempotencyGate::Verdict;
  const auto admission = gate.admit(call);
  switch (admission.verdict) {
    case Verdict::kAnswered:
      send_body(call.routing_id, *admission.cached);
      return;
    case Verdict::kJoined:
      return;
    case Verdict::kReused:
      send_error(call, v1::INVALID_ARGUMENT,
                 "request_id " + std::to_string(call.request_id) + " of client '" +
                     call.client_id + "' was already used for a different request; use a new "
                     "request id for every new call (retries resend the same request)",
                 kIntake);
      return;
    case Verdict::kRun:
      break;
  }
  call.is_forward = body == v1::Request::kForward;
  try {
    dispatch_body(call, request);
  } catch (const std::exception& e) {  // answered (and recorded) here, so no waiter hangs
    send_error(call, v1::INTERNAL, std::string(detail::rpc_name(body)) + " failed: " + e.what());
  }
}

void Server::Impl::dispatch_body(const Call& call, v1::Request& request) {
  const auto body = request.body_case();
  const bool starts_work = body == v1::Request::kLifecycle || body == v1::Request::kAcquire ||
                           body == v1::Request::kForward || body == v1::Request::kCalibrate ||
                           body == v1::Request::kFitTwin ||
                           body == v1::Request::kSubmitJob;
  if (starts_work && phase != Phase::kServing) {
    send_error(call, v1::SHUTTING_DOWN, "pnnd is shutting down and accepts no new work");
    return;
  }
  switch (body) {
    case v1::Request::kHello: return hello(call);
    case v1::Request::kListDevices: return list_devices(call);
    case v1::Request::kDescribe: return describe(call, request.describe());
    case v1::Request::kLifecycle: return lifecycle(call, request);
    case v1::Request::kAcquire: return acquire(call, request.acquire());
    case v1::Request::kRenew: return renew(call, request);
    case v1::Request::kRelease: return release(call, request);
    case v1::Request::kForward: return forward(call, request);
    case v1::Request::kTwinForward:
    case v1::Request::kTwinVjp: return twin(call, request);
    case v1::Request::kCalibrate: return calibrate(call, request);
    case v1::Request::kSubmitJob: return submit_job(call, request.submit_job());
    case v1::Request::kJobStatus: return job_status(call, request.job_status());
    case v1::Request::kCancelJob: return cancel_job(call, request.cancel_job());
    case v1::Request::kListRuns:
    case v1::Request::kGetRun: return runs(call, request);
    case v1::Request::kSnapshot: return snapshot(call);
    case v1::Request::kFitTwin: return fit_twin(call, request);
    case v1::Request::kUseTwin: return use_twin(call, request);
    case v1::Request::kListTwins:
    case v1::Request::kGetTwin: return twins(call, request);
    case v1::Request::BODY_NOT_SET: break;
  }
}

// ---- replies ---------------------------------------------------------------------------------

// Never blocks: a reply to a peer whose pipe is full waits in the bounded outbox.
void Server::Impl::send_body(const std::string& routing_id, std::string body) {
  if (phase == Phase::kStopped) return;
  outbox.send(routing_id, std::move(body));
  if (outbox.has_queued()) arm_outbox_flush();
  if (router_reader) router_reader->after_send();
}

void Server::Impl::arm_outbox_flush() {
  if (outbox_timer_armed) return;
  outbox_timer_armed = true;
  outbox_timer.expires_after(std::chrono::milliseconds(1));
  outbox_timer.async_wait([this](const boost::system::error_code& ec) {
    outbox_timer_armed = false;
    if (ec || phase == Phase::kStopped) return;
    outbox.flush();
    if (router_reader) router_reader->after_send();
    if (outbox.has_queued()) arm_outbox_flush();
  });
}

// Counted per reason and logged at powers of two: a thousand clients that vanish, or one that
// never reads, show in the log without flooding it.
void Server::Impl::note_dropped_reply(const std::string& routing, std::size_t bytes, const char* why) {
  const std::uint64_t n = ++drops_by_reason[why];
  if ((n & (n - 1)) == 0) {
    log("warning", "dropped a reply of " + std::to_string(bytes) + " bytes to client connection " +
                       to_hex(routing) + ": " + why + " (" + std::to_string(n) +
                       " replies dropped for this reason since start)");
  }
}

// Requests from a peer whose reply queue is at its bound are dropped unread: their replies
// could not be delivered, and working on them is what a flood that never reads wants.
void Server::Impl::note_dropped_request(const std::string& routing) {
  const std::uint64_t n = ++requests_dropped_unread;
  if ((n & (n - 1)) == 0) {
    log("warning", "dropped a request from client connection " + to_hex(routing) +
                       " unread: it is not reading its replies and its reply queue is full "
                       "(rpc.max_queued_reply_bytes_per_peer); " + std::to_string(n) +
                       " requests dropped since start");
  }
}

void Server::Impl::send_reply(const Call& call, v1::Reply& reply, bool record) {
  reply.set_request_id(call.request_id);
  if (!reply.has_status()) reply.mutable_status()->set_code(v1::OK);
  if (reply.status().code() != v1::OK && reply.status().origin().empty()) {
    reply.mutable_status()->set_origin(kDaemon);
  }
  detail::make_strings_valid_utf8(reply);
  std::string body = reply.SerializeAsString();
  if (call.idempotency_key.empty()) {
    send_body(call.routing_id, std::move(body));
    return;
  }
  // Everyone waiting on this key (the caller and any retries that arrived meanwhile).
  for (const auto& routing : gate.complete(call)) send_body(routing, body);
  if (record) gate.record(call, std::move(body));
}

void Server::Impl::send_error(const Call& call, v1::StatusCode code, const std::string& message,
                              const std::string& origin) {
  v1::Reply reply;
  set_status(reply, code, message, origin);
  send_reply(call, reply, /*record=*/!call.is_forward);
}

// ---- compute pool ----------------------------------------------------------------------------

void Server::Impl::on_compute(const Call& call, std::function<void(v1::Reply&)> fn, std::string origin) {
  auto task = [this, call, origin, fn = std::move(fn)]() mutable {
    v1::Reply reply;
    if (Clock::now() > call.deadline) {
      set_status(reply, v1::DEADLINE_EXCEEDED,
                 "the request waited past its deadline (" + std::to_string(call.deadline_ms) +
                     " ms) for a compute thread; it was not run",
                 origin);
    } else {
      try {
        fn(reply);
      } catch (const std::invalid_argument& e) {
        set_status(reply, v1::SHAPE_MISMATCH, e.what(), origin);
      } catch (const std::exception& e) {
        set_status(reply, v1::INTERNAL, e.what(), origin);
      }
    }
    if (reply.status().code() != v1::OK && reply.status().origin().empty()) {
      reply.mutable_status()->set_origin(origin);
    }
    asio::post(io, [this, call, reply = std::move(reply)]() mutable {
      compute.done(call.identity, call.request_bytes);
      send_reply(call, reply);
    });
  };
  if (auto busy = compute.submit(call.identity, call.request_bytes, std::move(task))) {
    send_error(call, v1::BUSY, *busy, kIntake);
  }
}

}  // namespace pnn::daemon

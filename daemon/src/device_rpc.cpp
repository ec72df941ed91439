// The device RPCs that need no compute: Hello, ListDevices, Describe, Lifecycle, and the lease
// RPCs Acquire, Renew, Release.
#include <string>

#include "pnn/common/version.hpp"
#include "proto_fill.hpp"
#include "server_impl.hpp"

namespace pnn::daemon {

using detail::set_status;

void Server::Impl::hello(const Call& call) {
  v1::Reply reply;
  auto* h = reply.mutable_hello();
  h->set_server_version(std::string("pnnd ") + pnn::kVersion);
  h->add_protocol_majors(kProtocolMajor);
  h->set_protocol_minor(kProtocolMinor);
  for (const char* c : {"leases", "forward", "twin", "calibrate", "jobs", "runs", "telemetry",
                        "snapshot", "learned-twins"}) {
    h->add_capabilities(c);
  }
  h->add_capabilities(std::string("forward-records:") + to_string(config.forward_recording));
  if (config.security.curve_enabled()) h->add_capabilities("curve");
  // Where to subscribe: the bound endpoint (a "*" port resolved), so clients need not be told.
  h->add_capabilities("telemetry=" + telemetry_endpoint);
  h->set_instance_id(telemetry.instance_id());
  h->set_role(to_string(call.role));
  h->set_max_message_bytes(config.max_message_bytes);
  send_reply(call, reply);
}

void Server::Impl::list_devices(const Call& call) {
  v1::Reply reply;
  for (const auto& [name, s] : devices) fill_device(*s, reply.mutable_list_devices()->add_devices());
  send_reply(call, reply);
}

void Server::Impl::describe(const Call& call, const v1::DescribeRequest& r) {
  DeviceSlot* s = find_device(r.device());
  if (!s) return unknown_device(call, r.device());
  v1::Reply reply;
  fill_device(*s, reply.mutable_describe()->mutable_device());
  send_reply(call, reply);
}

void Server::Impl::lifecycle(const Call& call, const v1::Request& request) {
  const auto& r = request.lifecycle();
  DeviceSlot* s = writable_device(call, r.device(), request.lease_token());
  if (!s) return;
  using T = v1::LifecycleRequest;
  const auto transition = r.transition();
  if (transition != T::CONFIGURE && transition != T::ACTIVATE && transition != T::DEACTIVATE &&
      transition != T::CLEANUP && transition != T::RECOVER) {
    send_error(call, v1::INVALID_ARGUMENT,
               "transition must be CONFIGURE, ACTIVATE, DEACTIVATE, CLEANUP or RECOVER", origin(*s));
    return;
  }
  run_on_device(*s, call, [this, s, call, transition] {
    std::optional<Failure> failure;
    drivers::Result<void> r;
    switch (transition) {
      case T::CONFIGURE: r = s->device->configure(); break;
      case T::ACTIVATE: r = s->device->activate(); break;
      case T::DEACTIVATE: r = s->device->deactivate(); break;
      case T::RECOVER: r = s->device->recover(); break;
      default: r = s->device->cleanup(); break;
    }
    if (!r) failure = Failure{status_code(r.error().code), r.error().message};
    return [this, s, call, failure] {
      v1::Reply reply;
      if (failure) {
        set_status(reply, failure->code, failure->message, origin(*s));
      } else {
        fill_device(*s, reply.mutable_lifecycle()->mutable_device());
      }
      send_reply(call, reply);
    };
  });
}

void Server::Impl::acquire(const Call& call, const v1::AcquireRequest& r) {
  DeviceSlot* s = find_device(r.device());
  if (!s) return unknown_device(call, r.device());
  if (call.client_id.empty()) {
    send_error(call, v1::INVALID_ARGUMENT, "Acquire needs a client_id (the lease holder)", origin(*s));
    return;
  }
  if (r.ttl_ms() != 0 && r.ttl_ms() < config.lease_min_ttl_ms) {
    send_error(call, v1::INVALID_ARGUMENT,
               "ttl_ms " + std::to_string(r.ttl_ms()) + " is below the minimum of " +
                   std::to_string(config.lease_min_ttl_ms) +
                   " ms (leases.min_ttl_ms); ask for a longer lease and renew it",
               origin(*s));
    return;
  }
  // Held by a job, or by another identity (naming the holder's client_id is not enough).
  if (s->job_id != 0 ||
      (!s->holder.empty() && (s->holder != call.client_id || s->holder_identity != call.identity))) {
    auto f = check_lease(*s, "");
    send_error(call, f->code, f->message, origin(*s));
    return;
  }
  const std::uint32_t ttl = std::min(r.ttl_ms() == 0 ? config.lease_default_ttl_ms : r.ttl_ms(),
                                     config.lease_max_ttl_ms);
  // The same client on the same identity acquiring again keeps its token.
  if (s->holder.empty()) s->token = detail::random_bytes(16);
  s->holder = call.client_id;
  s->holder_identity = call.identity;
  s->ttl_ms = ttl;
  arm_lease(*s);
  publish_device(*s);
  v1::Reply reply;
  reply.mutable_acquire()->set_lease_token(s->token);
  reply.mutable_acquire()->set_ttl_ms(ttl);
  send_reply(call, reply);
}

void Server::Impl::renew(const Call& call, const v1::Request& request) {
  DeviceSlot* s = writable_device(call, request.renew().device(), request.lease_token());
  if (!s) return;
  arm_lease(*s);
  v1::Reply reply;
  reply.mutable_renew()->set_ttl_ms(s->ttl_ms);
  send_reply(call, reply);
}

void Server::Impl::release(const Call& call, const v1::Request& request) {
  DeviceSlot* s = writable_device(call, request.release().device(), request.lease_token());
  if (!s) return;
  // Releasing leaves the lifecycle as it is: only an expired lease (a vanished client) forces
  // the safe state.
  s->released_token = s->token;
  clear_lease(*s);
  publish_device(*s);
  v1::Reply reply;
  reply.mutable_release();
  send_reply(call, reply);
}

}  // namespace pnn::daemon

// Leases: a device is written by the client holding its lease (token, TTL, renewals) or by the
// job that owns it. An expired lease drives the device to its safe state.
#include "server_impl.hpp"

namespace pnn::daemon {

std::optional<Failure> Server::Impl::check_lease(const DeviceSlot& s, const std::string& token,
                                                 const Call* call) const {
  if (s.job_id != 0) {
    return Failure{v1::LEASE_HELD, "device " + s.config.name + " is in use by job " +
                                       std::to_string(s.job_id) + " (cancel it or wait)"};
  }
  if (!token.empty() && token == s.released_token && token != s.token) {
    return Failure{v1::LEASE_RELEASED,
                   "the lease on " + s.config.name + " with this token was released by its "
                   "holder (the device was left in its state, not driven safe); acquire it again"};
  }
  if (!s.holder.empty()) {
    if (!token.empty() && token == s.token) return std::nullopt;
    if (token.empty() && call && call->client_id == s.holder && call->identity == s.holder_identity) {
      return Failure{v1::LEASE_REQUIRED, "you hold the lease on " + s.config.name +
                                             " but sent no lease token: send the token "
                                             "Acquire returned with this request"};
    }
    if (!token.empty() && token == s.expired_token) {
      return Failure{v1::LEASE_EXPIRED, "your lease on " + s.config.name +
                                            " expired and the device was driven to its safe "
                                            "state; acquire it again"};
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.expires - Clock::now());
    return Failure{v1::LEASE_HELD, "device " + s.config.name + " is leased by '" + s.holder +
                                       "' for another " + std::to_string(left.count()) + " ms"};
  }
  if (!token.empty() && token == s.expired_token) {
    return Failure{v1::LEASE_EXPIRED, "your lease on " + s.config.name +
                                          " expired and the device was driven to its safe "
                                          "state; acquire it again (and renew before the TTL)"};
  }
  return Failure{v1::LEASE_REQUIRED,
                 "device " + s.config.name + " needs a lease for this call: Acquire it first "
                 "and send the lease token with the request"};
}

void Server::Impl::arm_lease(DeviceSlot& s) {
  const auto generation = ++s.lease_generation;
  s.expires = Clock::now() + std::chrono::milliseconds(s.ttl_ms);
  s.lease_timer->expires_at(s.expires);
  s.lease_timer->async_wait([this, &s, generation](const boost::system::error_code& ec) {
    if (ec || generation != s.lease_generation) return;
    if (s.lease_calls.load() > 0) return arm_lease(s);  // the holder waits for a long call
    expire_lease(s);
  });
}

void Server::Impl::clear_lease(DeviceSlot& s) {
  ++s.lease_generation;
  s.lease_timer->cancel();
  s.holder.clear();
  s.holder_identity.clear();
  s.token.clear();
}

void Server::Impl::expire_lease(DeviceSlot& s) {
  const std::string holder = s.holder;
  s.expired_token = s.token;
  clear_lease(s);
  publish_device(s);
  // Queued behind any call already accepted under the lease, so that call completes first.
  on_device(s, [this, &s, holder]() -> std::function<void()> {
    if (s.job_id != 0) return [] {};  // a job took the device since: it is the job's now
    std::string what = "device was not ACTIVE";
    if (s.device->state() == Lifecycle::kActive) {
      auto r = s.device->deactivate();
      what = r ? "device driven to its safe state (INACTIVE)"
               : "driving it to its safe state failed: " + r.error().message;
    }
    return [this, &s, holder, what] {
      log("warning", "lease of " + s.config.name + " held by '" + holder + "' expired; " + what);
    };
  });
}

DeviceSlot* Server::Impl::writable_device(const Call& call, const std::string& name,
                                          const std::string& token) {
  DeviceSlot* s = find_device(name);
  if (!s) {
    unknown_device(call, name);
    return nullptr;
  }
  if (auto f = check_lease(*s, token, &call)) {
    send_error(call, f->code, f->message, origin(*s));
    return nullptr;
  }
  return s;
}

}  // namespace pnn::daemon

#include "idempotency.hpp"

namespace pnn::daemon::detail {

IdempotencyGate::Admission IdempotencyGate::admit(Call& call) {
  const std::string key = ReplyCache::key(call.identity, call.client_id, call.request_id);
  if (const auto* cached = cache_.find(key)) {
    if (cached->digest != call.digest) return {Verdict::kReused};
    return {Verdict::kAnswered, &cached->body};
  }
  if (auto it = in_flight_.find(key); it != in_flight_.end()) {
    if (it->second.digest != call.digest) return {Verdict::kReused};
    it->second.waiting.push_back(call.routing_id);
    return {Verdict::kJoined};
  }
  in_flight_[key] = {call.digest, {call.routing_id}};
  call.idempotency_key = key;
  return {Verdict::kRun};
}

std::vector<std::string> IdempotencyGate::complete(const Call& call) {
  std::vector<std::string> to;
  auto it = in_flight_.find(call.idempotency_key);
  if (it == in_flight_.end()) {
    to.push_back(call.routing_id);
  } else {
    to = std::move(it->second.waiting);
    in_flight_.erase(it);
  }
  return to;
}

}  // namespace pnn::daemon::detail

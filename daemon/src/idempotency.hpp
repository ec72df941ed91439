#pragma once
// The one idempotency gate of every write RPC (Forward included): a retried write (lost reply,
// lazy pirate) gets the recorded answer, never a second run (a batch measured twice, two jobs for
// one SubmitJob, a lifecycle step applied twice). The key is the caller's identity, client_id
// and request id; the request body must be the same, or the id was reused by mistake. Request
// id 0 is never cached: each such call runs. Event loop thread only.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "call.hpp"
#include "reply_cache.hpp"

namespace pnn::daemon::detail {

class IdempotencyGate {
 public:
  IdempotencyGate(std::size_t max_entries, std::size_t max_bytes) : cache_(max_entries, max_bytes) {}
  void set_limits(std::size_t max_entries, std::size_t max_bytes) { cache_.set_limits(max_entries, max_bytes); }

  enum class Verdict {
    kRun,       ///< new: run it (call.idempotency_key is set); complete() answers everyone
    kAnswered,  ///< a retry of a finished call: send `cached`
    kJoined,    ///< a retry of a call in progress: it gets that call's reply
    kReused,    ///< the id was used for a different request
  };
  struct Admission {
    Verdict verdict;
    const std::string* cached = nullptr;  ///< the recorded reply for kAnswered
  };
  /// Whether `call` (a write with a client_id and a request id) runs; sets its key.
  Admission admit(Call& call);
  /// Who gets the reply of a keyed call: the caller and the retries that joined it.
  std::vector<std::string> complete(const Call& call);
  /// Records `body` as the reply of a completed keyed call, for later retries.
  void record(const Call& call, std::string body) { cache_.put(call.idempotency_key, call.digest, std::move(body)); }

 private:
  struct InFlight {
    std::uint64_t digest;
    std::vector<std::string> waiting;  // routing ids of the caller and of its retries
  };
  ReplyCache cache_;
  std::map<std::string, InFlight> in_flight_;
};

}  // namespace pnn::daemon::detail

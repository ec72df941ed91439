// The daemon's request intake in isolation: the checks before a handler runs, the idempotency
// gate, and the compute queue's admission (daemon/src/intake.hpp, idempotency.hpp,
// compute_queue.hpp). The same behaviour end to end is in contract_test and idempotency_test.
#include <doctest/doctest.h>

#include <future>

#include "../../daemon/src/compute_queue.hpp"
#include "../../daemon/src/idempotency.hpp"
#include "../../daemon/src/intake.hpp"

namespace pnn::daemon::detail {
namespace {

std::vector<zmq::message_t> frames_of(const std::vector<std::string>& parts) {
  std::vector<zmq::message_t> f;
  for (const auto& p : parts) f.emplace_back(p.data(), p.size());
  return f;
}

std::string request_bytes(std::uint64_t id, const std::string& client) {
  v1::Request r;
  r.set_request_id(id);
  r.set_client_id(client);
  r.mutable_hello();
  return r.SerializeAsString();
}

}  // namespace

TEST_CASE("intake: size, frames, version and decode are refused in that order, each named") {
  const IntakeLimits limits{1000, 5000};
  auto refuse = [&](const std::vector<std::string>& parts) {
    auto f = frames_of(parts);
    Call call;
    v1::Request request;
    return take_request(f, limits, call, request);
  };
  const std::string good = request_bytes(7, "c1");
  auto big = refuse({"id", encode_protocol_frame(), std::string(2000, 'x')});
  REQUIRE(big);
  CHECK(big->code == v1::TOO_LARGE);
  CHECK(big->message.find("rpc.max_message_bytes") != std::string::npos);
  auto one = refuse({"id", good});
  REQUIRE(one);
  CHECK(one->code == v1::MALFORMED);
  auto version = refuse({"id", encode_protocol_frame(9), good});
  REQUIRE(version);
  CHECK(version->code == v1::UNSUPPORTED_PROTOCOL);
  auto garbage = refuse({"id", encode_protocol_frame(), std::string("\xff\xff\xff", 3)});
  REQUIRE(garbage);
  CHECK(garbage->code == v1::MALFORMED);

  auto f = frames_of({"id", encode_protocol_frame(), good});
  Call call;
  v1::Request request;
  CHECK_FALSE(take_request(f, limits, call, request));
  CHECK(call.request_id == 7);
  CHECK(call.client_id == "c1");
  CHECK(call.deadline_ms == 5000);  // the default when the request names none
  CHECK(request.has_hello());
}

TEST_CASE("idempotency gate: a retry joins or gets the recorded reply, a reused id is refused") {
  IdempotencyGate gate(16, 1 << 20);
  Call first{.routing_id = "r1", .identity = "conn:1", .request_id = 5, .client_id = "c", .digest = 42};
  CHECK(gate.admit(first).verdict == IdempotencyGate::Verdict::kRun);
  CHECK_FALSE(first.idempotency_key.empty());
  Call retry = first;
  retry.routing_id = "r2";
  retry.idempotency_key.clear();
  CHECK(gate.admit(retry).verdict == IdempotencyGate::Verdict::kJoined);
  Call other = first;
  other.digest = 43;
  other.idempotency_key.clear();
  CHECK(gate.admit(other).verdict == IdempotencyGate::Verdict::kReused);
  // The reply goes to the caller and the retry that joined; later retries get it recorded.
  CHECK(gate.complete(first) == std::vector<std::string>{"r1", "r2"});
  gate.record(first, "reply");
  Call late = first;
  late.idempotency_key.clear();
  const auto again = gate.admit(late);
  REQUIRE(again.verdict == IdempotencyGate::Verdict::kAnswered);
  CHECK(*again.cached == "reply");
  // Another identity with the same client_id and request id is another call.
  Call stranger = first;
  stranger.identity = "conn:2";
  stranger.idempotency_key.clear();
  CHECK(gate.admit(stranger).verdict == IdempotencyGate::Verdict::kRun);
  // Not recorded (a Forward that never ran): its retry runs again.
  CHECK(gate.complete(stranger) == std::vector<std::string>{"r1"});
  stranger.idempotency_key.clear();
  CHECK(gate.admit(stranger).verdict == IdempotencyGate::Verdict::kRun);
}

TEST_CASE("compute queue: a client over its byte bound is BUSY, a client with nothing waiting never") {
  ComputeQueue queue(1);
  queue.set_limits(100, 150);
  std::promise<void> gate;
  auto open = gate.get_future().share();
  std::atomic<int> ran{0};
  auto task = [&, open] {
    open.wait();
    ++ran;
  };
  CHECK_FALSE(queue.submit("a", 1000, task));  // nothing waiting: admitted whatever its size
  const auto busy = queue.submit("a", 10, task);
  REQUIRE(busy);
  CHECK(busy->find("rpc.max_pending_request_bytes_per_peer") != std::string::npos);
  CHECK_FALSE(queue.submit("b", 60, task));
  CHECK_FALSE(queue.submit("c", 60, task));  // b and c: 120 of 150 in all
  CHECK_FALSE(queue.submit("d", 60, task));  // d has nothing waiting: admitted
  const auto total = queue.submit("b", 40, task);
  REQUIRE(total);
  CHECK(total->find("rpc.max_pending_request_bytes =") != std::string::npos);
  gate.set_value();
  for (const char* who : {"a", "b", "c", "d"}) queue.done(who, who[0] == 'a' ? 1000 : 60);
  queue.join();
  CHECK(ran == 4);
}

}  // namespace pnn::daemon::detail

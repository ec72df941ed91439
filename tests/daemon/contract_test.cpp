// The client contract as a client written from the docs sees it (issues 11 and 19): request ids,
// identities and leases, deadlines, limits, job ids and events, error origins, UTF-8.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "../../daemon/src/fair_queue.hpp"
#include "../../daemon/src/wire_text.hpp"
#include "daemon_test_util.hpp"

namespace pnn::daemon::test {

namespace {

v1::Request with_id(v1::Request r, std::uint64_t id) {
  r.set_request_id(id);
  return r;
}

v1::Request twin_forward(const std::string& device, float x, const std::vector<double>& theta,
                         int rows = 1) {
  v1::Request r;
  auto* t = r.mutable_twin_forward();
  t->set_device(device);
  t->mutable_x()->add_shape(static_cast<std::uint32_t>(rows));
  t->mutable_x()->add_shape(1);
  for (int i = 0; i < rows; ++i) t->mutable_x()->add_data(x);
  for (double v : theta) t->mutable_theta()->add_data(v);
  return r;
}

std::uint64_t forward_calls(Client& c, const std::string& device) {
  return describe_device(c, device).forward_calls();
}

const char* kPower = "sim://power-law?prefactor=2";

}  // namespace

TEST_CASE("contract: a reused request id with another body is refused, a retry of the same body is answered from the cache") {
  TempDir dir("contract-reuse");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("power", kPower));
  c.devices.push_back(device("power2", "sim://power-law?prefactor=3&serial=SIM-POW-2"));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "reuser");
  const std::string token = acquire_token(*client, "power");
  const std::string token2 = acquire_token(*client, "power2");

  const v1::Reply first = client->call(with_id(forward("power", token, 1, 1, 1.0f, {2.0}), 7));
  REQUIRE_MESSAGE(first.status().code() == v1::OK, status_text(first));
  const float y1 = first.forward().y().data(0);
  for (float x : {2.0f, 3.0f}) {
    const v1::Reply r = client->call(with_id(forward("power", token, 1, 1, x, {2.0}), 7));
    CHECK_MESSAGE(r.status().code() == v1::INVALID_ARGUMENT, status_text(r));
    CHECK(r.status().message().find("request_id 7") != std::string::npos);
    CHECK_FALSE(r.status().origin().empty());
  }
  // The same (client_id, request_id) on another device is another request too.
  const v1::Reply other = client->call(with_id(forward("power2", token2, 1, 1, 1.0f, {2.0}), 7));
  CHECK_MESSAGE(other.status().code() == v1::INVALID_ARGUMENT, status_text(other));
  // A faithful retry (same body) gets the first answer; the device ran once.
  const v1::Reply retry = client->call(with_id(forward("power", token, 1, 1, 1.0f, {2.0}), 7));
  REQUIRE(retry.status().code() == v1::OK);
  CHECK(retry.forward().y().data(0) == y1);
  CHECK(forward_calls(*client, "power") == 1);
  CHECK(forward_calls(*client, "power2") == 0);
}

TEST_CASE("contract: naming the lease holder's client_id from another connection takes nothing") {
  TempDir dir("contract-lease");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("power", kPower));
  RunningServer s(c);
  auto alice = make_client(s.rpc(), "alice");
  auto mallory = make_client(s.rpc(), "alice");  // same client_id, another connection
  const v1::Reply acquired = alice->call(with_id(acquire("power", 60000), 41));
  REQUIRE(acquired.status().code() == v1::OK);
  const std::string token = acquired.acquire().lease_token();

  const v1::Reply stolen = mallory->call(acquire("power", 50));
  CHECK_MESSAGE(stolen.status().code() == v1::LEASE_HELD, status_text(stolen));
  CHECK(stolen.acquire().lease_token().empty());
  // Replaying alice's (client_id, request_id) gets mallory's own answer, never alice's token.
  const v1::Reply replay = mallory->call(with_id(acquire("power", 60000), 41));
  CHECK(replay.status().code() == v1::LEASE_HELD);
  CHECK(replay.acquire().lease_token() != token);
  const v1::Reply f = mallory->call(forward("power", "", 1, 1, 1.0f, {2.0}));
  CHECK(f.status().code() != v1::OK);
  const v1::Reply rel = mallory->call(release("power", ""));
  CHECK(rel.status().code() != v1::OK);
  // Alice still holds it, with her token.
  CHECK(alice->call(forward("power", token, 1, 1, 1.0f, {2.0})).status().code() == v1::OK);
  CHECK(describe_device(*alice, "power").lease_holder() == "alice");
}

TEST_CASE("contract: a released token is LEASE_RELEASED, and too short a TTL is refused") {
  TempDir dir("contract-released");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("power", kPower));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "releaser");
  const v1::Reply tiny = client->call(acquire("power", 1));
  CHECK_MESSAGE(tiny.status().code() == v1::INVALID_ARGUMENT, status_text(tiny));
  CHECK(tiny.status().message().find("leases.min_ttl_ms") != std::string::npos);
  const std::string token = acquire_token(*client, "power");
  REQUIRE(client->call(release("power", token)).status().code() == v1::OK);
  const v1::Reply r = client->call(forward("power", token, 1, 1, 1.0f, {2.0}));
  CHECK_MESSAGE(r.status().code() == v1::LEASE_RELEASED, status_text(r));
  CHECK(r.status().message().find("released") != std::string::npos);
  CHECK(r.status().message().find("expired") == std::string::npos);
}

TEST_CASE("contract: settle_ms over forward.max_settle_ms and twin requests outside the domain are INVALID_ARGUMENT") {
  TempDir dir("contract-domain");
  DaemonConfig c = test_config(dir);
  c.twin_max_batch_rows = 16;
  c.devices.push_back(device("power", kPower));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "domain");
  const std::string token = acquire_token(*client, "power");
  v1::Request settle = forward("power", token, 1, 1, 1.0f, {2.0});
  settle.mutable_forward()->set_settle_ms(60000);
  const v1::Reply sr = client->call(settle);
  CHECK_MESSAGE(sr.status().code() == v1::INVALID_ARGUMENT, status_text(sr));
  CHECK(sr.status().message().find("forward.max_settle_ms") != std::string::npos);
  CHECK(forward_calls(*client, "power") == 0);

  const v1::DeviceInfo info = describe_device(*client, "power");
  const auto& spec = info.spec();
  const v1::Reply low = client->call(twin_forward("power", static_cast<float>(spec.input_min() - 1), {2.0}));
  CHECK_MESSAGE(low.status().code() == v1::INVALID_ARGUMENT, status_text(low));
  CHECK_FALSE(low.status().origin().empty());
  const double too_big = spec.params(0).hard_max() + 1.0;
  const v1::Reply theta = client->call(twin_forward("power", 1.0f, {too_big}));
  CHECK_MESSAGE(theta.status().code() == v1::INVALID_ARGUMENT, status_text(theta));
  const v1::Reply big = client->call(twin_forward("power", 1.0f, {2.0}, 17));
  CHECK_MESSAGE(big.status().code() == v1::BATCH_TOO_LARGE, status_text(big));
  CHECK(big.status().message().find("twin.max_batch_rows") != std::string::npos);
  const v1::Reply ok = client->call(twin_forward("power", 1.0f, {2.0}, 16));
  CHECK_MESSAGE(ok.status().code() == v1::OK, status_text(ok));
  for (float y : ok.twin_forward().y().data()) CHECK(std::isfinite(y));
}

TEST_CASE("contract: Describe publishes float32 limits inside the double limits") {
  TempDir dir("contract-f32");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("osc", "sim://mechanical-oscillators?seed=1&n=8"));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "f32");
  const auto spec = describe_device(*client, "osc").spec();
  REQUIRE(spec.params_size() > 0);
  for (const auto& p : spec.params()) {
    CHECK(static_cast<double>(p.hard_min_f32()) >= p.hard_min());
    CHECK(static_cast<double>(p.hard_max_f32()) <= p.hard_max());
    CHECK(p.hard_min_f32() < p.hard_max_f32());
  }
  CHECK(static_cast<double>(spec.input_min_f32()) >= spec.input_min());
  CHECK(static_cast<double>(spec.input_max_f32()) <= spec.input_max());
}

TEST_CASE("contract: a call queued behind a slow one is answered DEADLINE_EXCEEDED at its deadline and never runs") {
  TempDir dir("contract-deadline");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("power", kPower));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "deadline");
  const std::string token = acquire_token(*client, "power");
  v1::Request slow = with_id(forward("power", token, 1, 1, 1.0f, {2.0}), 100);
  slow.mutable_forward()->set_settle_ms(1500);
  v1::Request quick = with_id(forward("power", token, 1, 1, 2.0f, {2.0}), 101);
  quick.set_deadline_ms(100);
  client->send(slow);
  client->send(quick);
  auto first = client->receive(10s);
  REQUIRE(first);
  // The quick call's answer comes first: at its deadline, while the slow one still settles.
  CHECK(first->request_id() == 101);
  CHECK_MESSAGE(first->status().code() == v1::DEADLINE_EXCEEDED, status_text(*first));
  CHECK_FALSE(first->status().origin().empty());
  auto second = client->receive(10s);
  REQUIRE(second);
  CHECK(second->request_id() == 100);
  CHECK(second->status().code() == v1::OK);
  CHECK(forward_calls(*client, "power") == 1);  // the expired call never ran
}

TEST_CASE("contract: every error names its origin, and invalid client_ids and non-UTF-8 text are handled") {
  TempDir dir("contract-origin");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("power", kPower));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "origins");
  const v1::Reply unknown = client->call(describe("nope"));
  CHECK(unknown.status().code() == v1::UNKNOWN_DEVICE);
  CHECK_FALSE(unknown.status().origin().empty());
  v1::Request job;
  job.mutable_job_status()->set_job_id(999);
  const v1::Reply uj = client->call(job);
  CHECK(uj.status().code() == v1::UNKNOWN_JOB);
  CHECK_FALSE(uj.status().origin().empty());
  v1::Request run;
  run.mutable_get_run()->set_run_id(999);
  const v1::Reply ur = client->call(run);
  CHECK(ur.status().code() == v1::UNKNOWN_RUN);
  CHECK_FALSE(ur.status().origin().empty());
  v1::Request cancel;
  cancel.mutable_cancel_job()->set_job_id(999);
  const v1::Reply uc = client->call(cancel);
  CHECK(uc.status().code() == v1::UNKNOWN_JOB);
  CHECK_FALSE(uc.status().origin().empty());

  for (const std::string& bad : {std::string("two\nlines"), std::string(300, 'x')}) {
    v1::Request r = hello();
    r.set_client_id(bad);
    const v1::Reply reply = client->call(r);
    CHECK_MESSAGE(reply.status().code() == v1::INVALID_ARGUMENT, status_text(reply));
    CHECK_FALSE(reply.status().origin().empty());
  }

  // A job config with a byte that is not UTF-8 in it: the error that echoes it is valid UTF-8.
  v1::Request submit;
  submit.mutable_submit_job()->set_config_yaml("name: bad\nnetwork: 9\nxx: \"\xc3(\"\n");
  const v1::Reply sj = client->call(submit);
  // (libprotobuf refuses the invalid string itself: MALFORMED; either way the text is UTF-8)
  CHECK((sj.status().code() == v1::INVALID_ARGUMENT || sj.status().code() == v1::MALFORMED));
  CHECK(detail::is_valid_utf8(sj.status().message()));
  CHECK_FALSE(sj.status().origin().empty());
}

TEST_CASE("contract: job ids are unique across restarts, CancelJob of a finished job says JOB_FINISHED, and progress events are well-formed") {
  TempDir dir("contract-jobs");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("osc", "sim://mechanical-oscillators?seed=1&n=64"));
  const std::string yaml =
      "name: contract\n"
      "data: {name: digits, max_train: 96, max_test: 32}\n"
      "devices: {osc: osc}\n"
      "network:\n  - physical: osc\n  - slice: {first: 0, count: 10, gain: 3.0}\n"
      "training: {method: pat, batch_size: 32, epochs: 2}\n"
      "compare: {in_silico: true}\n";
  std::uint64_t first_job = 0;
  {
    RunningServer s(c);
    auto client = make_client(s.rpc(), "jobs");
    Subscriber sub(s.telemetry(), {"job/"});
    std::this_thread::sleep_for(200ms);  // the subscription reaches pnnd before the job starts
    v1::Request submit;
    submit.mutable_submit_job()->set_config_yaml(yaml);
    const v1::Reply r = client->call(submit);
    REQUIRE_MESSAGE(r.status().code() == v1::OK, status_text(r));
    first_job = r.submit_job().job_id();
    // Every progress event: a phase, a batch within 1..num_batches, epochs monotonic per phase.
    std::map<std::string, std::uint32_t> last_epoch;
    bool done = false;
    int events = 0;
    const auto end = std::chrono::steady_clock::now() + 60s;
    while (!done && std::chrono::steady_clock::now() < end) {
      auto e = sub.next(1s);
      if (!e || !e->second.has_job()) continue;
      const v1::JobInfo& j = e->second.job();
      ++events;
      CHECK_FALSE(j.phase().empty());
      if (j.num_batches() > 0) {
        CHECK(j.batch() >= 1);
        CHECK(j.batch() <= j.num_batches());
      }
      CHECK(j.epoch() >= last_epoch[j.phase()]);
      last_epoch[j.phase()] = j.epoch();
      done = j.state() != v1::RUNNING;
    }
    REQUIRE(done);
    CHECK(events > 2);
    v1::Request cancel;
    cancel.mutable_cancel_job()->set_job_id(first_job);
    const v1::Reply cr = client->call(cancel);
    CHECK_MESSAGE(cr.status().code() == v1::JOB_FINISHED, status_text(cr));
    CHECK(cr.cancel_job().job().state() == v1::SUCCEEDED);
  }
  RunningServer again(c);
  auto client = make_client(again.rpc(), "jobs");
  v1::Request status;
  status.mutable_job_status()->set_job_id(first_job);
  CHECK(client->call(status).status().code() == v1::UNKNOWN_JOB);
  v1::Request submit;
  submit.mutable_submit_job()->set_config_yaml(yaml);
  const v1::Reply r = client->call(submit);
  REQUIRE_MESSAGE(r.status().code() == v1::OK, status_text(r));
  CHECK(r.submit_job().job_id() > first_job);
}

TEST_CASE("wire text: UTF-8 repair, request digests, fair queue order") {
  CHECK(detail::is_valid_utf8("θ ok ✓"));
  CHECK_FALSE(detail::is_valid_utf8("\xc3("));
  CHECK_FALSE(detail::is_valid_utf8("\xed\xa0\x80"));  // a surrogate
  CHECK(detail::to_valid_utf8("a\xc3(b") == "a\xEF\xBF\xBD(b");
  CHECK(detail::is_valid_utf8(detail::to_valid_utf8("\xff\xfe\xf0\x9f")));

  v1::Request a = forward("power", "tok", 1, 1, 1.0f, {2.0});
  a.set_client_id("c");
  a.set_request_id(5);
  v1::Request retry = a;
  retry.set_request_id(5);
  retry.set_deadline_ms(999);      // a faithful retry may change these
  retry.set_lease_token("other");
  v1::Request changed = a;
  changed.mutable_forward()->mutable_x()->set_data(0, 2.0f);
  const auto d = detail::request_digest(a.SerializeAsString());
  REQUIRE(d);
  CHECK(detail::request_digest(retry.SerializeAsString()) == d);
  CHECK(detail::request_digest(changed.SerializeAsString()) != d);
  CHECK_FALSE(detail::request_digest(std::string("\x0a\xff", 2)));

  detail::FairQueue<int> q;
  for (int i = 0; i < 3; ++i) q.push("flood", i);
  q.push("quiet", 100);
  std::vector<int> order;
  while (auto t = q.pop()) order.push_back(*t);
  CHECK(order == std::vector<int>{0, 100, 1, 2});
}

TEST_CASE("contract: pipelined twin work past rpc.max_pending_request_bytes_per_peer is BUSY, and every request gets one reply") {
  TempDir dir("contract-busy");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("power", kPower));
  c.max_pending_request_bytes_per_peer = 1u << 20;  // 1 MiB: ~60 requests of 16 KB
  RunningServer s(c);
  auto flooder = make_client(s.rpc(), "flooder");
  constexpr int kRequests = 400;
  std::set<std::uint64_t> ids;
  for (int i = 0; i < kRequests; ++i) ids.insert(flooder->send(twin_forward("power", 1.5f, {2.0}, 4096)));
  // A one-at-a-time client is served while the flood waits (its queue is empty: admitted).
  auto polite = make_client(s.rpc(), "polite");
  const v1::Reply one = polite->call(twin_forward("power", 1.5f, {2.0}));
  CHECK_MESSAGE(one.status().code() == v1::OK, status_text(one));
  int ok = 0, busy = 0;
  while (!ids.empty()) {
    auto r = flooder->receive(std::chrono::seconds(30));
    REQUIRE_MESSAGE(r.has_value(), ids.size() << " requests got no reply");
    REQUIRE(ids.erase(r->request_id()) == 1);  // exactly one reply per request
    if (r->status().code() == v1::OK) {
      ++ok;
      CHECK(r->twin_forward().y().shape(0) == 4096);
    } else {
      REQUIRE_MESSAGE(r->status().code() == v1::BUSY, status_text(*r));
      CHECK(r->status().message().find("rpc.max_pending_request_bytes_per_peer") !=
            std::string::npos);
      CHECK_FALSE(r->status().origin().empty());
      ++busy;
    }
  }
  CHECK(ok > 0);
  CHECK(busy > 0);
  // Once the replies are read, the same client is admitted again.
  const v1::Reply after = flooder->call(twin_forward("power", 1.5f, {2.0}, 4096));
  CHECK_MESSAGE(after.status().code() == v1::OK, status_text(after));
}

}  // namespace pnn::daemon::test

// Every write RPC is idempotent under retries: the same (client_id, request_id) gets the reply
// that was recorded the first time and never runs twice (PROTOCOLS.md b.2, lazy pirate).
#include <doctest/doctest.h>

#include "daemon_test_util.hpp"

namespace pnn::daemon::test {

namespace {
v1::Request with_id(v1::Request r, std::uint64_t id) {
  r.set_request_id(id);
  return r;
}
}  // namespace

TEST_CASE("daemon idempotency: a retried Lifecycle step returns the first answer, not a second step") {
  TempDir dir("idem-lifecycle");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("power", "sim://power-law?prefactor=2"));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "idem-client");
  const std::string token = acquire_token(*client, "power");
  const v1::Request deactivate =
      with_id(lifecycle("power", v1::LifecycleRequest::DEACTIVATE, token), 9001);
  const v1::Reply first = client->call(deactivate);
  REQUIRE_MESSAGE(first.status().code() == v1::OK, status_text(first));
  const v1::Reply retry = client->call(deactivate);  // the same request again
  CHECK(retry.status().code() == v1::OK);
  CHECK(retry.SerializeAsString() == first.SerializeAsString());
  // A new request id is a new request: deactivating an INACTIVE device is refused.
  const v1::Reply fresh =
      client->call(with_id(lifecycle("power", v1::LifecycleRequest::DEACTIVATE, token), 9002));
  CHECK(fresh.status().code() == v1::WRONG_STATE);
  // The same request id from another client is that client's own request.
  auto other = make_client(s.rpc(), "other-client");
  CHECK(other->call(with_id(hello(), 9001)).status().code() == v1::OK);
}

TEST_CASE("daemon idempotency: a retried SubmitJob starts one job, and its retry names that job") {
  TempDir dir("idem-job");
  DaemonConfig c = test_config(dir);
  c.devices.push_back(device("osc", "sim://mechanical-oscillators?seed=1&n=64"));
  RunningServer s(c);
  auto client = make_client(s.rpc(), "idem-jobs");
  v1::Request submit;
  submit.mutable_submit_job()->set_config_yaml(
      "name: idem\n"
      "data: {name: digits, max_train: 64, max_test: 32}\n"
      "devices: {osc: osc}\n"
      "network:\n  - physical: osc\n  - slice: {first: 0, count: 10, gain: 3.0}\n"
      "training: {method: pat, batch_size: 32, epochs: 1}\n"
      "compare: {in_silico: false}\n");
  submit = with_id(submit, 77);
  // Pipelined, as a client that timed out and resent before the first reply arrived.
  client->send(submit);
  client->send(submit);
  auto a = client->receive(10s);
  auto b = client->receive(10s);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE_MESSAGE(a->status().code() == v1::OK, status_text(*a));
  CHECK(b->submit_job().job_id() == a->submit_job().job_id());
  CHECK(b->submit_job().run_id() == a->submit_job().run_id());
  const v1::Reply late = client->call(submit);  // and once more, later
  CHECK(late.submit_job().job_id() == a->submit_job().job_id());
  v1::Request status;
  status.mutable_job_status();
  CHECK(client->call(status).job_status().jobs_size() == 1);
}

}  // namespace pnn::daemon::test

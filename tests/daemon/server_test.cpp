// The daemon over tcp://127.0.0.1, driven by raw DEALER clients: RPCs, leases, idempotent
// Forward, typed errors for bad input, concurrency, telemetry, reload and graceful stop.
#include "pnn/daemon/server.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include "daemon/daemon_test_util.hpp"
#include "pnn/common/version.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon::test {
namespace {

using T = v1::LifecycleRequest;
constexpr const char* kPower = "sim://power-law?prefactor=2";
constexpr const char* kSmallOsc = "sim://mechanical-oscillators?seed=1&n=4";

DaemonConfig lab(const TempDir& dir) {
  DaemonConfig c = test_config(dir);
  c.devices = {device("power", kPower), device("osc", kSmallOsc),
               device("cold", "sim://power-law?prefactor=2&serial=SIM-POW-COLD", false)};
  return c;
}

// θ for the 4-oscillator device: 16 couplings + 4 drives, all zero.
std::vector<double> osc_theta() { return std::vector<double>(20, 0.0); }

}  // namespace

TEST_CASE("daemon: Hello reports versions, capabilities, the instance id and the operator role") {
  TempDir dir("hello");
  RunningServer s(lab(dir));
  auto client = make_client(s.rpc());
  const v1::Reply reply = client->call(hello());
  REQUIRE(reply.status().code() == v1::OK);
  CHECK(reply.request_id() != 0);
  const auto& h = reply.hello();
  CHECK(h.protocol_majors_size() == 1);
  CHECK(h.protocol_majors(0) == kProtocolMajor);
  CHECK(h.protocol_minor() == kProtocolMinor);
  CHECK(h.server_version() == std::string("pnnd ") + pnn::kVersion);  // the project's version
  CHECK(h.instance_id() == s.server().instance_id());
  CHECK(h.role() == "operator");  // loopback without keys
  CHECK(h.max_message_bytes() == DaemonConfig{}.max_message_bytes);
  CHECK(std::find(h.capabilities().begin(), h.capabilities().end(), "forward-records:async") !=
        h.capabilities().end());
}

TEST_CASE("daemon: ListDevices and Describe show spec, lifecycle, health and lease") {
  TempDir dir("list");
  RunningServer s(lab(dir));
  auto client = make_client(s.rpc());
  v1::Request list;
  list.mutable_list_devices();
  const v1::Reply reply = client->call(list);
  REQUIRE(reply.status().code() == v1::OK);
  std::map<std::string, v1::DeviceInfo> by_name;
  for (const auto& d : reply.list_devices().devices()) by_name[d.name()] = d;
  REQUIRE(by_name.size() == 3);
  CHECK(by_name["power"].state() == v1::ACTIVE);  // autostart
  CHECK(by_name["cold"].state() == v1::UNCONFIGURED);
  CHECK(by_name["power"].health() == v1::HEALTH_OK);
  CHECK(by_name["power"].address() == kPower);
  CHECK(by_name["osc"].spec().num_inputs() == 4);
  CHECK(by_name["osc"].spec().num_params() == 20);
  CHECK(by_name["osc"].spec().params_size() == 2);
  CHECK(by_name["osc"].spec().serial() == "SIM-OSC-1");

  const std::string token = acquire_token(*client, "power", 5000);
  const v1::DeviceInfo d = describe_device(*client, "power");
  CHECK(d.lease_holder() == client->client_id());
  CHECK(d.lease_expires_in_ms() > 0);
  CHECK(d.lease_expires_in_ms() <= 5000);
  CHECK(d.spec().params(0).hard_max() == 3.0);

  const v1::Reply unknown = client->call(describe("nope"));
  CHECK(unknown.status().code() == v1::UNKNOWN_DEVICE);
  CHECK(unknown.status().message().find("power") != std::string::npos);  // lists the devices
}

TEST_CASE("daemon: lifecycle transitions need a lease and follow the state machine") {
  TempDir dir("lifecycle");
  RunningServer s(lab(dir));
  auto client = make_client(s.rpc());

  CHECK(client->call(lifecycle("cold", T::CONFIGURE, "")).status().code() == v1::LEASE_REQUIRED);
  const std::string token = acquire_token(*client, "cold");

  v1::Reply r = client->call(lifecycle("cold", T::ACTIVATE, token));
  CHECK(r.status().code() == v1::WRONG_STATE);
  CHECK(r.status().message().find("UNCONFIGURED") != std::string::npos);
  CHECK(client->call(lifecycle("cold", T::TRANSITION_UNSPECIFIED, token)).status().code() ==
        v1::INVALID_ARGUMENT);

  r = client->call(lifecycle("cold", T::CONFIGURE, token));
  REQUIRE(r.status().code() == v1::OK);
  CHECK(r.lifecycle().device().state() == v1::INACTIVE);

  // Outputs are driven only in ACTIVE.
  r = client->call(forward("cold", token, 1, 1, 1.0f, {1.0}));
  CHECK(r.status().code() == v1::WRONG_STATE);

  r = client->call(lifecycle("cold", T::ACTIVATE, token));
  REQUIRE(r.status().code() == v1::OK);
  CHECK(r.lifecycle().device().state() == v1::ACTIVE);
  r = client->call(forward("cold", token, 1, 1, 2.0f, {1.0}));
  REQUIRE(r.status().code() == v1::OK);
  CHECK(r.forward().y().data(0) == doctest::Approx(4.0));

  CHECK(client->call(lifecycle("cold", T::CLEANUP, token)).status().code() == v1::WRONG_STATE);
  CHECK(client->call(lifecycle("cold", T::DEACTIVATE, token)).status().code() == v1::OK);
  r = client->call(lifecycle("cold", T::CLEANUP, token));
  REQUIRE(r.status().code() == v1::OK);
  CHECK(r.lifecycle().device().state() == v1::UNCONFIGURED);
}

TEST_CASE("daemon: leases are required, exclusive, renewable, and expiry drives the device safe") {
  TempDir dir("lease");
  RunningServer s(lab(dir));
  auto alice = make_client(s.rpc(), "alice");
  auto bob = make_client(s.rpc(), "bob");
  Subscriber states(s.telemetry(), {"state/power"});

  CHECK(alice->call(forward("power", "", 1, 1, 1.0f, {1.0})).status().code() ==
        v1::LEASE_REQUIRED);
  const std::string token = acquire_token(*alice, "power", 400);
  // Acquiring again as the same client keeps the token.
  CHECK(acquire_token(*alice, "power", 400) == token);

  v1::Reply r = bob->call(acquire("power"));
  CHECK(r.status().code() == v1::LEASE_HELD);
  CHECK(r.status().message().find("alice") != std::string::npos);
  CHECK(bob->call(forward("power", "forged", 1, 1, 1.0f, {1.0})).status().code() ==
        v1::LEASE_HELD);
  // The token is the proof, not the client id.
  CHECK(bob->call(forward("power", token, 1, 1, 1.0f, {1.0})).status().code() == v1::OK);

  v1::Request renew;
  renew.mutable_renew()->set_device("power");
  r = alice->call(with_token(renew, token));
  CHECK(r.status().code() == v1::OK);
  CHECK(r.renew().ttl_ms() == 400);

  // Nobody renews: the lease expires and the daemon drives the device to its safe state.
  CHECK(eventually([&] { return describe_device(*alice, "power").state() == v1::INACTIVE; }));
  const v1::DeviceInfo d = describe_device(*alice, "power");
  CHECK(d.lease_holder().empty());
  r = alice->call(forward("power", token, 1, 1, 1.0f, {1.0}));
  CHECK(r.status().code() == v1::LEASE_EXPIRED);

  // Telemetry showed the expiry: a state event with the device INACTIVE and no holder.
  bool saw_inactive = false;
  while (auto ev = states.next(2000ms)) {
    if (ev->second.device_state().state() == v1::INACTIVE) {
      saw_inactive = ev->second.device_state().lease_holder().empty();
      break;
    }
  }
  CHECK(saw_inactive);

  // Bob can take it now; releasing frees it without changing the lifecycle.
  const std::string bobs = acquire_token(*bob, "power");
  CHECK(bob->call(lifecycle("power", T::ACTIVATE, bobs)).status().code() == v1::OK);
  CHECK(alice->call(release("power", bobs + "x")).status().code() == v1::LEASE_HELD);
  CHECK(bob->call(release("power", bobs)).status().code() == v1::OK);
  CHECK(describe_device(*bob, "power").lease_holder().empty());
  CHECK(describe_device(*bob, "power").state() == v1::ACTIVE);
}

TEST_CASE("daemon: a retried Forward returns the recorded reply and never re-runs the device") {
  TempDir dir("idempotent");
  RunningServer s(lab(dir));
  auto client = make_client(s.rpc(), "retrier");
  const std::string token = acquire_token(*client, "osc");
  const auto calls_before = describe_device(*client, "osc").forward_calls();

  v1::Request req = forward("osc", token, 8, 4, 0.3f, osc_theta());
  req.set_request_id(4242);
  const v1::Reply first = client->call(req);
  REQUIRE(first.status().code() == v1::OK);
  REQUIRE(first.forward().y().data_size() == 32);
  const v1::Reply second = client->call(req);
  CHECK(second.SerializeAsString() == first.SerializeAsString());  // timestamps included
  CHECK(describe_device(*client, "osc").forward_calls() == calls_before + 1);

  // A retry sent while the first attempt still runs waits for it instead of running again.
  req.set_request_id(4243);
  client->send(req);
  client->send(req);
  std::vector<v1::Reply> replies;
  for (int i = 0; i < 2; ++i) {
    auto r = client->receive(8000ms);
    REQUIRE(r);
    replies.push_back(*r);
  }
  CHECK(replies[0].request_id() == 4243);
  CHECK(replies[0].SerializeAsString() == replies[1].SerializeAsString());
  CHECK(describe_device(*client, "osc").forward_calls() == calls_before + 2);

  // The key is (client_id, request_id): the same id from another client is another call.
  auto other = make_client(s.rpc(), "someone-else");
  v1::Request theirs = forward("osc", token, 8, 4, 0.3f, osc_theta());
  theirs.set_request_id(4242);
  CHECK(other->call(theirs).status().code() == v1::OK);
  CHECK(describe_device(*client, "osc").forward_calls() == calls_before + 3);
}

TEST_CASE("daemon: malformed, foreign, oversized and invalid requests get typed errors") {
  TempDir dir("bad-input");
  DaemonConfig config = lab(dir);
  config.max_message_bytes = 64 * 1024;
  RunningServer s(std::move(config));
  auto client = make_client(s.rpc(), "fuzzer");
  const std::string token = acquire_token(*client, "power");
  auto still_serving = [&] { return client->call(hello()).status().code() == v1::OK; };
  auto raw = [&](const std::vector<std::string>& frames) {
    client->send_frames(frames);
    auto reply = client->receive(5000ms);
    REQUIRE(reply);
    return *reply;
  };
  std::string body;
  REQUIRE(hello().SerializeToString(&body));

  SUBCASE("malformed frames") {
    CHECK(raw({encode_protocol_frame()}).status().code() == v1::MALFORMED);
    CHECK(raw({"PNNX\x00\x01", body}).status().code() == v1::MALFORMED);
    CHECK(raw({"PN", body}).status().code() == v1::MALFORMED);
    CHECK(raw({encode_protocol_frame(), body, "extra"}).status().code() == v1::MALFORMED);
    CHECK(raw({encode_protocol_frame(), std::string("\xff\xff\xff\xff garbage", 12)})
              .status()
              .code() == v1::MALFORMED);
    v1::Request empty;
    empty.set_request_id(9);
    const v1::Reply r = client->call(empty);
    CHECK(r.status().code() == v1::MALFORMED);
    CHECK(r.request_id() == 9);
  }
  SUBCASE("unknown protocol major, checked before the body is parsed") {
    const v1::Reply r = raw({encode_protocol_frame(2), "not even protobuf"});
    CHECK(r.status().code() == v1::UNSUPPORTED_PROTOCOL);
    CHECK(r.status().message().find("major 2") != std::string::npos);
  }
  SUBCASE("oversized message") {
    v1::Request big = forward("power", token, 20000, 1, 1.0f, {1.0});  // ~80 KB of floats
    std::string bytes;
    REQUIRE(big.SerializeToString(&bytes));
    const v1::Reply r = raw({encode_protocol_frame(), bytes});
    CHECK(r.status().code() == v1::TOO_LARGE);
  }
  SUBCASE("wrong shapes") {
    v1::Reply r = client->call(forward("power", token, 2, 3, 1.0f, {1.0}));
    CHECK(r.status().code() == v1::SHAPE_MISMATCH);
    v1::Request lying = forward("power", token, 2, 1, 1.0f, {1.0});
    lying.mutable_forward()->mutable_x()->add_data(1.0f);  // 3 values for shape [2, 1]
    CHECK(client->call(lying).status().code() == v1::SHAPE_MISMATCH);
    r = client->call(forward("power", token, 2, 1, 1.0f, {1.0, 2.0}));
    CHECK(r.status().code() == v1::SHAPE_MISMATCH);
  }
  SUBCASE("NaN and Inf") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    v1::Reply r = client->call(forward("power", token, 2, 1, nan, {1.0}));
    CHECK(r.status().code() == v1::NON_FINITE);
    r = client->call(forward("power", token, 2, 1, 1.0f, {std::numeric_limits<double>::infinity()}));
    CHECK(r.status().code() == v1::NON_FINITE);
    CHECK(r.status().message().find("exponent") != std::string::npos);
  }
  SUBCASE("θ outside the hard limits is refused before reaching the device") {
    const auto before = describe_device(*client, "power").forward_calls();
    const v1::Reply r = client->call(forward("power", token, 1, 1, 1.0f, {3.5}));
    CHECK(r.status().code() == v1::OUT_OF_LIMITS);
    CHECK(r.status().message().find("exponent") != std::string::npos);
    CHECK(r.status().origin().find("power") != std::string::npos);
    CHECK(describe_device(*client, "power").forward_calls() == before);
  }
  SUBCASE("unknown device") {
    CHECK(client->call(forward("nope", token, 1, 1, 1.0f, {1.0})).status().code() ==
          v1::UNKNOWN_DEVICE);
    v1::Request job;
    job.mutable_job_status()->set_job_id(77);
    CHECK(client->call(job).status().code() == v1::UNKNOWN_JOB);
    v1::Request run;
    run.mutable_get_run()->set_run_id(77);
    CHECK(client->call(run).status().code() == v1::UNKNOWN_RUN);
  }
  SUBCASE("a Forward without client_id cannot be made idempotent") {
    v1::Request r = forward("power", token, 1, 1, 1.0f, {1.0});
    r.set_client_id("");
    client->send_frames({encode_protocol_frame(), r.SerializeAsString()});
    auto reply = client->receive(5000ms);
    REQUIRE(reply);
    CHECK(reply->status().code() == v1::INVALID_ARGUMENT);
  }
  CHECK(still_serving());
  CHECK(client->call(forward("power", token, 1, 1, 2.0f, {2.0})).status().code() == v1::OK);
}

TEST_CASE("daemon: a request that waited past its deadline is not run") {
  TempDir dir("deadline");
  DaemonConfig config = lab(dir);
  config.devices.push_back(device("big", "sim://mechanical-oscillators?seed=3&n=64"));
  RunningServer s(std::move(config));
  auto client = make_client(s.rpc(), "hurried");
  const std::string token = acquire_token(*client, "big");
  const std::vector<double> theta(64 * 64 + 64, 0.0);
  const auto before = describe_device(*client, "big").forward_calls();
  // The first batch keeps the device busy for far longer than the second one's 1 ms deadline.
  const auto slow = client->send(forward("big", token, 2048, 64, 0.1f, theta));
  v1::Request quick = forward("big", token, 1, 64, 0.1f, theta);
  quick.set_deadline_ms(1);
  const auto hurried = client->send(quick);
  std::map<std::uint64_t, v1::StatusCode> codes;
  for (int i = 0; i < 2; ++i) {
    auto r = client->receive(8000ms);
    REQUIRE(r);
    codes[r->request_id()] = r->status().code();
  }
  CHECK(codes[slow] == v1::OK);
  CHECK(codes[hurried] == v1::DEADLINE_EXCEEDED);
  CHECK(describe_device(*client, "big").forward_calls() == before + 1);
}

TEST_CASE("daemon: TwinForward and TwinVjp evaluate the device's twin") {
  TempDir dir("twin");
  RunningServer s(lab(dir));
  auto client = make_client(s.rpc());
  v1::Request r;
  auto* tf = r.mutable_twin_forward();
  tf->set_device("power");
  tf->mutable_x()->add_shape(2);
  tf->mutable_x()->add_shape(1);
  tf->mutable_x()->add_data(2.0f);
  tf->mutable_x()->add_data(3.0f);
  tf->mutable_theta()->add_data(2.0);
  v1::Reply reply = client->call(r);  // no lease needed: the twin is not the hardware
  REQUIRE_MESSAGE(reply.status().code() == v1::OK, status_text(reply));
  REQUIRE(reply.twin_forward().y().data_size() == 2);
  CHECK(reply.twin_forward().y().data(0) == doctest::Approx(2.01 * 4.0));
  CHECK(reply.twin_forward().y().data(1) == doctest::Approx(2.01 * 9.0));

  v1::Request v;
  auto* tv = v.mutable_twin_vjp();
  tv->set_device("power");
  *tv->mutable_x() = tf->x();
  *tv->mutable_theta() = tf->theta();
  tv->mutable_y_bar()->add_shape(2);
  tv->mutable_y_bar()->add_shape(1);
  tv->mutable_y_bar()->add_data(1.0f);
  tv->mutable_y_bar()->add_data(0.0f);
  reply = client->call(v);
  REQUIRE_MESSAGE(reply.status().code() == v1::OK, status_text(reply));
  // d/dx a·x^θ = a·θ·x^(θ−1) = 2.01·2·2 at x = 2; d/dθ = a·x^θ·ln x = 2.01·4·ln 2.
  CHECK(reply.twin_vjp().x_bar().data(0) == doctest::Approx(2.01 * 2 * 2));
  CHECK(reply.twin_vjp().x_bar().data(1) == doctest::Approx(0.0));
  REQUIRE(reply.twin_vjp().theta_bar().data_size() == 1);
  CHECK(reply.twin_vjp().theta_bar().data(0) == doctest::Approx(2.01 * 4 * std::log(2.0)));

  tv->mutable_theta()->add_data(1.0);  // two entries for a one-parameter twin
  CHECK(client->call(v).status().code() == v1::SHAPE_MISMATCH);
}

TEST_CASE("daemon: Calibrate fits the twin, stores the calibration, and the twin keeps it") {
  TempDir dir("calibrate");
  double fitted = 0.0;
  std::uint64_t calibration_id = 0;
  {
    RunningServer s(lab(dir));
    auto client = make_client(s.rpc());
    const std::string token = acquire_token(*client, "power");
    v1::Request r;
    r.mutable_calibrate()->set_device("power");
    CHECK(client->call(r).status().code() == v1::LEASE_REQUIRED);
    v1::Reply reply = client->call(with_token(r, token));
    REQUIRE_MESSAGE(reply.status().code() == v1::OK, status_text(reply));
    CHECK(reply.calibrate().mse_after() <= reply.calibrate().mse_before());
    REQUIRE(reply.calibrate().phi().data_size() == 1);
    fitted = reply.calibrate().phi().data(0);
    CHECK(fitted == doctest::Approx(2.0).epsilon(0.01));  // the simulated reality's prefactor
    calibration_id = reply.calibrate().calibration_id();
    CHECK(calibration_id != 0);
    const v1::DeviceInfo d = describe_device(*client, "power");
    CHECK(d.twin_calibrated());
    CHECK(d.calibration_id() == calibration_id);
    CHECK(d.forward_calls() == 3);
  }
  // A restarted daemon serves the stored calibration.
  RunningServer again(lab(dir));
  auto client = make_client(again.rpc());
  CHECK(describe_device(*client, "power").calibration_id() == calibration_id);
  v1::Request r;
  auto* tf = r.mutable_twin_forward();
  tf->set_device("power");
  tf->mutable_x()->add_shape(1);
  tf->mutable_x()->add_shape(1);
  tf->mutable_x()->add_data(3.0f);
  tf->mutable_theta()->add_data(1.0);
  const v1::Reply reply = client->call(r);
  REQUIRE(reply.status().code() == v1::OK);
  CHECK(reply.twin_forward().y().data(0) == doctest::Approx(fitted * 3.0));

  v1::Request osc;
  osc.mutable_calibrate()->set_device("cold");
  const std::string token = acquire_token(*client, "cold");
  CHECK(client->call(with_token(osc, token)).status().code() == v1::WRONG_STATE);
}

TEST_CASE("daemon: a graceful stop flushes queued forward records and leaves devices safe") {
  TempDir dir("flush");
  DaemonConfig config = lab(dir);
  const std::string store_path = config.store_path;
  std::vector<v1::DeviceInfo> final_states;
  {
    RunningServer s(std::move(config));
    auto client = make_client(s.rpc(), "recorder");
    Subscriber states(s.telemetry(), {"state/"});
    const std::string token = acquire_token(*client, "power");
    for (int i = 1; i <= 200; ++i) {
      v1::Request r = forward("power", token, 3, 1, static_cast<float>(i), {1.0});
      r.set_request_id(static_cast<std::uint64_t>(1000 + i));  // ids Acquire did not use
      const v1::Reply reply = client->call(r);
      REQUIRE(reply.status().code() == v1::OK);
      CHECK_FALSE(reply.forward().recorded());  // async: the reply does not wait for the disk
    }
    s.stop();
    while (auto ev = states.next(1000ms)) final_states.push_back(ev->second.device_state());
  }
  // The devices that were ACTIVE were driven to INACTIVE before the daemon exited.
  std::set<std::string> safe;
  for (const auto& d : final_states) {
    if (d.state() == v1::INACTIVE) safe.insert(d.name());
  }
  CHECK(safe.count("power") == 1);
  CHECK(safe.count("osc") == 1);
  RunStore store(store_path);
  CHECK(store.integrity_ok());
  std::set<std::uint64_t> request_ids;
  for (std::uint64_t id = 1; id <= 200; ++id) {
    const auto rec = store.get_forward(id);
    REQUIRE(rec);
    CHECK(rec->client_id == "recorder");
    CHECK(rec->device_serial == "SIM-POW-1");
    CHECK(rec->x.rows() == 3);
    CHECK(rec->y(0, 0) == doctest::Approx(2.0 * static_cast<double>(rec->request_id - 1000)));
    request_ids.insert(rec->request_id);
  }
  CHECK(request_ids.size() == 200);
}

TEST_CASE("daemon: sync recording returns the committed record id") {
  TempDir dir("sync-record");
  DaemonConfig config = lab(dir);
  config.forward_recording = ForwardRecording::kSync;
  const std::string store_path = config.store_path;
  std::uint64_t record_id = 0;
  {
    RunningServer s(std::move(config));
    auto client = make_client(s.rpc());
    const std::string token = acquire_token(*client, "power");
    const v1::Reply reply = client->call(forward("power", token, 2, 1, 3.0f, {2.0}));
    REQUIRE(reply.status().code() == v1::OK);
    CHECK(reply.forward().recorded());
    record_id = reply.forward().record_id();
    CHECK(record_id != 0);
  }
  RunStore store(store_path);
  const auto rec = store.get_forward(record_id);
  REQUIRE(rec);
  CHECK(rec->theta[0] == 2.0);
  CHECK(rec->y(1, 0) == doctest::Approx(18.0));
}

TEST_CASE("daemon: telemetry carries the instance id and a gapless seq, and Snapshot syncs late joiners") {
  TempDir dir("telemetry");
  RunningServer s(lab(dir));
  Subscriber sub(s.telemetry(), {});
  auto client = make_client(s.rpc());
  std::vector<v1::Event> events;
  std::uint64_t last_seq = 0;
  bool gapless = true;
  int heartbeats = 0;
  // Skip the slow-joiner start: take events until three heartbeats were seen.
  while (heartbeats < 3) {
    auto ev = sub.next(3000ms);
    REQUIRE(ev);
    CHECK(ev->second.instance_id() == s.server().instance_id());
    if (last_seq != 0 && ev->second.seq() != last_seq + 1) gapless = false;
    last_seq = ev->second.seq();
    if (ev->first == "hb") {
      ++heartbeats;
      CHECK(ev->second.heartbeat().protocol_major() == kProtocolMajor);
      CHECK(ev->second.heartbeat().devices_digest().size() == 16);
    }
  }
  CHECK(gapless);
  v1::Request snap;
  snap.mutable_snapshot();
  const v1::Reply reply = client->call(snap);
  REQUIRE(reply.status().code() == v1::OK);
  CHECK(reply.snapshot().instance_id() == s.server().instance_id());
  CHECK(reply.snapshot().seq() >= last_seq);
  CHECK(reply.snapshot().devices_size() == 3);
  // Events after the snapshot continue from its seq.
  auto ev = sub.next(3000ms);
  REQUIRE(ev);
  CHECK(ev->second.seq() > last_seq);
}

TEST_CASE("daemon: reload adds new devices and reports what it could not apply") {
  TempDir dir("reload");
  const std::string path = dir.file("lab.yaml");
  auto write = [&](const std::string& extra) {
    std::ofstream out(path);
    out << "rpc: {bind: 'tcp://127.0.0.1:*'}\n"
        << "telemetry: {bind: 'tcp://127.0.0.1:*'}\n"
        << "store: {path: " << dir.file("s/pnnd.sqlite") << ", runs_dir: " << dir.file("runs")
        << "}\n"
        << "devices:\n  power: {address: '" << kPower << "', autostart: true}\n"
        << extra;
  };
  write("");
  std::vector<std::string> logs;
  std::mutex logs_mutex;
  ServerOptions options;
  options.config_path = path;
  options.on_log = [&](const std::string&, const std::string& text) {
    std::lock_guard lock(logs_mutex);
    logs.push_back(text);
  };
  RunningServer s(load_daemon_config(path), options);
  auto client = make_client(s.rpc());
  write("  extra: {address: 'sim://power-law?serial=SIM-POW-9', autostart: true}\n"
        "leases: {default_ttl_ms: 1234}\n");
  s.server().request_reload();
  CHECK(eventually([&] {
    const v1::Reply r = client->call(describe("extra"));
    return r.status().code() == v1::OK && r.describe().device().state() == v1::ACTIVE;
  }));
  v1::Reply r = client->call(acquire("power"));
  REQUIRE(r.status().code() == v1::OK);
  CHECK(r.acquire().ttl_ms() == 1234);
  std::lock_guard lock(logs_mutex);
  bool reported = false;
  for (const auto& l : logs) {
    reported |= l.find("[applied] added device extra") != std::string::npos &&
                l.find("[applied] leases.default_ttl_ms changed") != std::string::npos;
  }
  CHECK(reported);
}

TEST_CASE("daemon: the forward-record retention limit keeps the store bounded and says so once") {
  TempDir dir("retention");
  DaemonConfig config = lab(dir);
  config.forward_recording = ForwardRecording::kSync;
  config.forward_records_max_bytes = 4096;  // a few small power-law records
  const std::string store_path = config.store_path;
  std::vector<std::string> warnings;
  std::mutex logs_mutex;
  ServerOptions options;
  options.on_log = [&](const std::string& level, const std::string& text) {
    std::lock_guard lock(logs_mutex);
    if (level == "warning") warnings.push_back(text);
  };
  std::vector<std::uint64_t> ids;
  {
    RunningServer s(std::move(config), options);
    auto client = make_client(s.rpc());
    const std::string token = acquire_token(*client, "power");
    for (int i = 1; i <= 60; ++i) {
      const v1::Reply reply =
          client->call(forward("power", token, 16, 1, static_cast<float>(i), {1.0}));
      REQUIRE(reply.status().code() == v1::OK);
      REQUIRE(reply.forward().recorded());
      ids.push_back(reply.forward().record_id());
    }
  }
  std::size_t retention_notes = 0;
  for (const auto& w : warnings) {
    if (w.find("store.forward_records_max_bytes") != std::string::npos) ++retention_notes;
  }
  CHECK(retention_notes == 1);
  RunStore store(store_path);
  const ForwardStats f = store.forward_stats();
  CHECK(f.bytes <= 4096);
  CHECK(f.records < 60);
  CHECK(f.newest_record_id == ids.back());
  CHECK_FALSE(store.get_forward(ids.front()).has_value());
  CHECK(store.get_forward(ids.back()).has_value());
  CHECK(store.integrity_ok());
}

}  // namespace pnn::daemon::test

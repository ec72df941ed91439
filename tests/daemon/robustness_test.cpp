// The daemon under load and abuse, over tcp://127.0.0.1: many concurrent clients, retried
// requests, every kind of bad input mixed with good requests, and CURVE roles.
//
// PNN_STRESS_CALLS sets the Forward calls per client of the concurrency test (default 1000, the
// issue's 16 × 1000: about 0.5 s in Release and 1 s under ASan+UBSan on 2 cores).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "daemon/daemon_test_util.hpp"

namespace pnn::daemon::test {
namespace {

using T = v1::LifecycleRequest;
constexpr int kNullInputs = 8;

int stress_calls() {
  if (const char* env = std::getenv("PNN_STRESS_CALLS"); env && *env) {
    return std::max(1, std::atoi(env));
  }
  return 1000;
}

DaemonConfig null_lab(const TempDir& dir) {
  DaemonConfig c = test_config(dir);
  c.devices = {device("null", "sim://null?inputs=" + std::to_string(kNullInputs)),
               device("power", "sim://power-law?prefactor=2")};
  return c;
}

// A Forward on the null device whose input encodes who sent it: [client, id, client·id, ...].
v1::Request tagged_forward(const std::string& token, int client, std::uint64_t id) {
  v1::Request r;
  r.set_request_id(id);
  r.set_lease_token(token);
  auto* x = r.mutable_forward()->mutable_x();
  r.mutable_forward()->set_device("null");
  x->add_shape(1);
  x->add_shape(kNullInputs);
  for (int i = 0; i < kNullInputs; ++i) {
    x->add_data(static_cast<float>(i == 0 ? client : i == 1 ? id : client * 1000 + i));
  }
  return r;
}

// The null device returns its input: the reply must carry the tag of this client and this id.
bool reply_matches(const v1::Reply& reply, int client) {
  if (reply.status().code() != v1::OK) return false;
  const auto& y = reply.forward().y();
  if (y.data_size() != kNullInputs) return false;
  for (int i = 0; i < kNullInputs; ++i) {
    const double want = i == 0   ? client
                        : i == 1 ? static_cast<double>(reply.request_id())
                                 : client * 1000 + i;
    if (y.data(i) != want) return false;
  }
  return true;
}

std::uint64_t forward_calls(Client& client, const std::string& device) {
  return describe_device(client, device).forward_calls();
}

}  // namespace

TEST_CASE("daemon: 16 concurrent clients x 1000 Forward calls each get exactly their own replies") {
  TempDir dir("swarm");
  RunningServer s(null_lab(dir));
  auto owner = make_client(s.rpc(), "swarm-owner");
  const std::string token = acquire_token(*owner, "null", 120000);
  const int calls = stress_calls();
  constexpr int kClients = 16, kWindow = 16;
  std::vector<std::map<std::uint64_t, int>> seen(kClients);
  std::vector<int> wrong(kClients, 0), lost(kClients, 0);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      // Every client uses the ids 1..calls: the idempotency key is (client_id, request_id), so
      // equal ids of different clients are different calls. The lease token is shared.
      auto client = make_client(s.rpc(), "swarm-" + std::to_string(c));
      const bool pipelined = c % 2 == 0;  // half pipeline kWindow requests, half wait for each
      const int window = pipelined ? kWindow : 1;
      int sent = 0, received = 0;
      while (received < calls) {
        while (sent < calls && sent - received < window) {
          ++sent;
          client->send(tagged_forward(token, c, static_cast<std::uint64_t>(sent)));
        }
        auto reply = client->receive(15000ms);
        if (!reply) {
          lost[c] = sent - received;
          break;
        }
        ++received;
        ++seen[c][reply->request_id()];
        if (!reply_matches(*reply, c)) ++wrong[c];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int c = 0; c < kClients; ++c) {
    CAPTURE(c);
    CHECK(lost[c] == 0);
    CHECK(wrong[c] == 0);
    CHECK(seen[c].size() == static_cast<std::size_t>(calls));
    CHECK(seen[c].begin()->first == 1);
    CHECK(seen[c].rbegin()->first == static_cast<std::uint64_t>(calls));
    CHECK(
        std::all_of(seen[c].begin(), seen[c].end(), [](const auto& kv) { return kv.second == 1; }));
  }
  CHECK(forward_calls(*owner, "null") == static_cast<std::uint64_t>(kClients * calls));
  // Still serving, and the cache holds no stale answer for a new id.
  CHECK(owner->call(hello()).status().code() == v1::OK);
  const v1::Reply after = owner->call(tagged_forward(token, 99, 5000000));
  CHECK(reply_matches(after, 99));
}

TEST_CASE("daemon: the same request_id retried from several connections runs the device once") {
  TempDir dir("retries");
  DaemonConfig config = null_lab(dir);
  config.devices.push_back(device("osc", "sim://mechanical-oscillators?seed=5&n=64"));
  RunningServer s(std::move(config));
  auto owner = make_client(s.rpc(), "retrier");
  const std::string token = acquire_token(*owner, "null", 120000);

  SUBCASE("one client sends each of 200 ids four times, pipelined and shuffled") {
    // (Each connection is its own identity since issue 11: a client's retries come from its
    // own connection, or from a reconnect that keeps its routing id, as the clients do.)
    constexpr int kCopies = 4, kIds = 200;
    const auto before = forward_calls(*owner, "null");
    std::vector<std::uint64_t> ids;
    for (int k = 0; k < kCopies; ++k) {
      for (int i = 0; i < kIds; ++i) ids.push_back(7000 + static_cast<std::uint64_t>(i));
    }
    std::shuffle(ids.begin(), ids.end(), std::mt19937_64(3));
    for (auto id : ids) owner->send(tagged_forward(token, 1, id));
    std::map<std::uint64_t, std::vector<std::string>> replies;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto reply = owner->receive(15000ms);
      if (!reply) break;
      replies[reply->request_id()].push_back(reply->SerializeAsString());
    }
    REQUIRE(replies.size() == static_cast<std::size_t>(kIds));
    for (const auto& [id, bodies] : replies) {
      CAPTURE(id);
      REQUIRE(bodies.size() == static_cast<std::size_t>(kCopies));  // one reply per copy sent
      for (const auto& b : bodies) CHECK(b == bodies.front());     // the one recorded reply
      v1::Reply r;
      REQUIRE(r.ParseFromString(bodies.front()));
      CHECK(reply_matches(r, 1));
    }
    CHECK(forward_calls(*owner, "null") == before + kIds);
  }

  SUBCASE("retries while the first attempt still runs wait for it (pipelined and lazy pirate)") {
    const std::string osc_token = acquire_token(*owner, "osc", 120000);
    const auto before = forward_calls(*owner, "osc");
    // A batch that keeps the device busy; the copies arrive while it runs.
    v1::Request slow =
        forward("osc", osc_token, 1024, 64, 0.2f, std::vector<double>(64 * 64 + 64, 0.0));
    slow.set_request_id(424242);
    auto a = make_client(s.rpc(), "retrier");
    auto b = make_client(s.rpc(), "retrier");
    for (int i = 0; i < 3; ++i) {
      a->send(slow);
      b->send(slow);
    }
    // Each connection is its own identity (issue 11): its three copies run once, and the same
    // request id on the other connection is that connection's own request.
    for (auto* conn : {a.get(), b.get()}) {
      std::vector<std::string> bodies;
      for (int i = 0; i < 3; ++i) {
        auto r = conn->receive(30000ms);
        REQUIRE(r);
        CHECK(r->request_id() == 424242);
        CHECK(r->status().code() == v1::OK);
        bodies.push_back(r->SerializeAsString());
      }
      CHECK(std::all_of(bodies.begin(), bodies.end(),
                        [&](const std::string& x) { return x == bodies[0]; }));
    }
    CHECK(forward_calls(*owner, "osc") == before + 2);

    // The client's own retry loop: it times out after 20 ms (the batch takes longer), reopens
    // its socket and sends the same request_id again while the device works on the first try.
    ClientOptions o;
    o.endpoint = s.rpc();
    o.client_id = "retrier";
    o.timeout = 20ms;
    o.retries = 10000;
    Client pirate(o);
    slow.set_request_id(424243);
    const v1::Reply r = pirate.call(slow);
    CHECK(r.status().code() == v1::OK);
    CHECK(r.request_id() == 424243);
    CHECK(forward_calls(*owner, "osc") == before + 3);
  }
}

TEST_CASE("daemon: bad requests pipelined among good ones each get their typed error") {
  TempDir dir("bad-mix");
  DaemonConfig config = null_lab(dir);
  config.devices.push_back(device("brief", "sim://power-law?serial=SIM-POW-BRIEF"));
  RunningServer s(std::move(config));
  auto client = make_client(s.rpc(), "mixer");
  const std::string token = acquire_token(*client, "power", 120000);
  const std::string null_token = acquire_token(*client, "null", 120000);

  // An expired lease: acquired with a short TTL and not renewed.
  const std::string stale = acquire_token(*client, "brief", 30);
  REQUIRE(eventually([&] { return describe_device(*client, "brief").state() == v1::INACTIVE; }));

  const auto power_before = forward_calls(*client, "power");
  const auto null_before = forward_calls(*client, "null");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<std::pair<v1::Request, v1::StatusCode>> cases;
  auto add = [&](v1::Request r, v1::StatusCode code) { cases.emplace_back(std::move(r), code); };
  auto good = [&] { add(forward("power", token, 2, 1, 3.0f, {2.0}), v1::OK); };

  good();
  add(forward("nope", token, 1, 1, 1.0f, {1.0}), v1::UNKNOWN_DEVICE);
  add(forward("power", token, 2, 3, 1.0f, {1.0}), v1::SHAPE_MISMATCH);       // 3 inputs, not 1
  add(forward("power", token, 2, 1, 1.0f, {1.0, 1.0}), v1::SHAPE_MISMATCH);  // 2 θ, not 1
  {
    v1::Request r = forward("power", token, 2, 1, 1.0f, {1.0});
    r.mutable_forward()->mutable_x()->add_data(1.0f);  // 3 values for shape [2, 1]
    add(r, v1::SHAPE_MISMATCH);
    r = forward("power", token, 1, 1, 1.0f, {1.0});
    r.mutable_forward()->mutable_x()->clear_shape();
    r.mutable_forward()->mutable_x()->add_shape(1);  // rank 1
    add(r, v1::SHAPE_MISMATCH);
    r = forward("power", token, 1, 1, 1.0f, {1.0});
    r.mutable_forward()->mutable_x()->set_shape(0, 0);  // an empty batch
    r.mutable_forward()->mutable_x()->clear_data();
    add(r, v1::SHAPE_MISMATCH);
  }
  good();
  add(forward("power", token, 2, 1, nan, {1.0}), v1::NON_FINITE);
  add(forward("power", token, 2, 1, inf, {1.0}), v1::NON_FINITE);
  add(forward("power", token, 2, 1, 1.0f, {std::numeric_limits<double>::quiet_NaN()}),
      v1::NON_FINITE);
  add(forward("power", token, 1, 1, 1.0f, {3.5}), v1::OUT_OF_LIMITS);   // θ above 3
  add(forward("power", token, 1, 1, 1.0f, {-0.1}), v1::OUT_OF_LIMITS);  // θ below 0
  add(forward("power", token, 1, 1, -1.0f, {1.0}), v1::OUT_OF_LIMITS);  // input below 1e-12
  add(forward("null", null_token, (1 << 16) + 1, 1, 1.0f, {}),
      v1::SHAPE_MISMATCH);  // 1 input, not 8
  add(forward("null", null_token, (1 << 16) + 1, kNullInputs, 1.0f, {}), v1::BATCH_TOO_LARGE);
  add(forward("power", "", 1, 1, 1.0f, {1.0}), v1::LEASE_REQUIRED);
  add(forward("power", "forged-token", 1, 1, 1.0f, {1.0}), v1::LEASE_HELD);
  add(forward("brief", stale, 1, 1, 1.0f, {1.0}), v1::LEASE_EXPIRED);
  {
    v1::Request r;
    r.mutable_renew()->set_device("brief");
    add(with_token(r, stale), v1::LEASE_EXPIRED);
    r.mutable_renew()->set_device("power");
    add(r, v1::LEASE_REQUIRED);
  }
  good();
  add(lifecycle("power", T::TRANSITION_UNSPECIFIED, token), v1::INVALID_ARGUMENT);
  add(lifecycle("power", T::CLEANUP, token), v1::WRONG_STATE);  // ACTIVE: deactivate first
  add(lifecycle("nope", T::CONFIGURE, token), v1::UNKNOWN_DEVICE);
  {
    v1::Request r;
    r.mutable_acquire()->set_device("nope");
    add(r, v1::UNKNOWN_DEVICE);
    v1::Request cal;
    cal.mutable_calibrate()->set_device("null");  // the identity has nothing to calibrate
    add(with_token(cal, null_token), v1::INVALID_ARGUMENT);
  }
  {
    v1::Request r;
    auto* tf = r.mutable_twin_forward();
    tf->set_device("power");
    tf->mutable_x()->add_shape(1);
    tf->mutable_x()->add_shape(1);
    tf->mutable_x()->add_data(nan);
    tf->mutable_theta()->add_data(1.0);
    add(r, v1::NON_FINITE);
    v1::Request v;
    auto* tv = v.mutable_twin_vjp();
    tv->set_device("power");
    *tv->mutable_x() = r.twin_forward().x();
    tv->mutable_x()->set_data(0, 2.0f);
    tv->mutable_theta()->add_data(1.0);
    tv->mutable_y_bar()->add_shape(1);
    tv->mutable_y_bar()->add_shape(2);  // two outputs, the twin has one
    tv->mutable_y_bar()->add_data(1.0f);
    tv->mutable_y_bar()->add_data(1.0f);
    add(v, v1::SHAPE_MISMATCH);
    tf->set_device("nope");
    add(r, v1::UNKNOWN_DEVICE);
  }
  {
    v1::Request r;
    r.mutable_job_status()->set_job_id(99);
    add(r, v1::UNKNOWN_JOB);
    v1::Request c;
    c.mutable_cancel_job()->set_job_id(99);
    add(c, v1::UNKNOWN_JOB);
    v1::Request g;
    g.mutable_get_run()->set_run_id(99);
    add(g, v1::UNKNOWN_RUN);
    v1::Request j;
    j.mutable_submit_job()->set_config_yaml("name: [unclosed");
    add(j, v1::INVALID_ARGUMENT);
    j.mutable_submit_job()->set_config_yaml(
        "devices: {osc: not-a-daemon-device}\nnetwork:\n  - physical: osc\n");
    add(j, v1::UNKNOWN_DEVICE);
    j.mutable_submit_job()->set_config_yaml("");
    j.mutable_submit_job()->set_resume_run_id(12345);
    add(j, v1::UNKNOWN_RUN);
    v1::Request empty;  // no body
    add(empty, v1::MALFORMED);
  }
  good();

  std::map<std::uint64_t, v1::StatusCode> expected;
  std::map<std::uint64_t, std::string> what;
  for (auto& [request, code] : cases) {
    const std::uint64_t id = client->send(request);
    expected[id] = code;
    what[id] = request.ShortDebugString().substr(0, 160);
  }
  std::map<std::uint64_t, v1::Reply> got;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    auto reply = client->receive(15000ms);
    REQUIRE(reply);
    CHECK(got.count(reply->request_id()) == 0);
    got[reply->request_id()] = *reply;
  }
  CHECK_FALSE(client->receive(200ms));  // nothing more: one reply per request
  for (const auto& [id, code] : expected) {
    CAPTURE(what[id]);
    REQUIRE(got.count(id) == 1);
    const v1::Reply& r = got[id];
    CHECK_MESSAGE(r.status().code() == code, status_text(r));
    if (code != v1::OK) CHECK_FALSE(r.status().message().empty());  // names problem and fix
  }
  // Only the good ones reached a device; the daemon keeps serving.
  CHECK(forward_calls(*client, "power") == power_before + 4);
  CHECK(forward_calls(*client, "null") == null_before);
  CHECK(forward_calls(*client, "brief") == 0);
  CHECK(client->call(hello()).status().code() == v1::OK);
}

TEST_CASE("daemon: malformed and oversized frames get typed errors or a dropped connection") {
  TempDir dir("bad-frames");
  DaemonConfig config = null_lab(dir);
  config.max_message_bytes = 64 * 1024;
  RunningServer s(std::move(config));
  auto client = make_client(s.rpc(), "framer");
  auto raw = [&](const std::vector<std::string>& frames) {
    client->send_frames(frames);
    auto reply = client->receive(5000ms);
    REQUIRE(reply);
    CHECK(reply->request_id() == 0);  // nothing could be parsed to echo
    return *reply;
  };
  const std::string body = hello().SerializeAsString();
  const std::string frame = encode_protocol_frame();

  CHECK(raw({""}).status().code() == v1::MALFORMED);     // one empty frame
  CHECK(raw({frame}).status().code() == v1::MALFORMED);  // no request frame
  CHECK(raw({body}).status().code() == v1::MALFORMED);   // no protocol frame
  CHECK(raw({frame, body, body}).status().code() == v1::MALFORMED);
  CHECK(raw({"PNND\x00", body}).status().code() == v1::MALFORMED);  // 5 bytes
  CHECK(raw({"pnnd\x00\x01", body}).status().code() == v1::MALFORMED);
  CHECK(raw({frame, std::string("\x0a\xff\xff\xff\xff\xff", 6)}).status().code() == v1::MALFORMED);
  for (std::uint16_t major : {0, 2, 65535}) {
    CAPTURE(major);
    const v1::Reply r = raw({encode_protocol_frame(major), "\xde\xad"});
    CHECK(r.status().code() == v1::UNSUPPORTED_PROTOCOL);
    CHECK(r.status().message().find("major " + std::to_string(major)) != std::string::npos);
  }
  // Above the configured limit: TOO_LARGE, naming the limit and the key.
  const std::string token = acquire_token(*client, "null");
  const std::string big = forward("null", token, 2100, kNullInputs, 1.0f, {}).SerializeAsString();
  REQUIRE(big.size() > 64 * 1024);
  const v1::Reply too_large = raw({frame, big});
  CHECK(too_large.status().code() == v1::TOO_LARGE);
  CHECK(too_large.status().message().find("65536") != std::string::npos);
  CHECK(too_large.status().message().find("rpc.max_message_bytes") != std::string::npos);

  // Far above it (beyond libzmq's cap) the daemon drops the connection without buffering the
  // message; other clients are served, and the client itself once it has reconnected.
  std::string huge(3 << 20, 'x');
  client->send_frames({frame, huge});
  CHECK_FALSE(client->receive(500ms));
  auto other = make_client(s.rpc(), "bystander");
  CHECK(other->call(hello()).status().code() == v1::OK);
  CHECK(eventually([&] {
    client->send_frames({frame, body});
    return client->receive(500ms).has_value();
  }));
  CHECK(describe_device(*client, "null").forward_calls() == 0);
}

TEST_CASE("daemon: with CURVE a read-only key may read, every write is denied, unknown keys fail") {
  TempDir dir("curve");
  const CurveKeyPair server_keys = make_curve_keypair();
  const CurveKeyPair reader = make_curve_keypair(), op = make_curve_keypair(),
                     stranger = make_curve_keypair();
  DaemonConfig config = null_lab(dir);
  config.security.server_secret_key = server_keys.secret_key;
  config.security.clients = {{reader.public_key, Role::kReadOnly, "reader"},
                             {op.public_key, Role::kOperator, "operator"}};
  RunningServer s(std::move(config));
  REQUIRE(s.server().public_key() == server_keys.public_key);
  auto keys = [&](const CurveKeyPair& k) {
    return CurveClientKeys{server_keys.public_key, k.public_key, k.secret_key};
  };
  auto ro = make_client(s.rpc(), "reader", keys(reader));
  auto operator_client = make_client(s.rpc(), "operator", keys(op));

  v1::Reply r = ro->call(hello());
  REQUIRE(r.status().code() == v1::OK);
  CHECK(r.hello().role() == "read-only");
  CHECK(std::find(r.hello().capabilities().begin(), r.hello().capabilities().end(), "curve") !=
        r.hello().capabilities().end());
  CHECK(operator_client->call(hello()).hello().role() == "operator");
  const std::string token = acquire_token(*operator_client, "null");

  // Reads work for the read-only key.
  CHECK(describe_device(*ro, "null").lease_holder() == "operator");
  v1::Request list;
  list.mutable_list_runs();
  CHECK(ro->call(list).status().code() == v1::OK);
  v1::Request twin;
  twin.mutable_twin_forward()->set_device("null");
  twin.mutable_twin_forward()->mutable_x()->add_shape(1);
  twin.mutable_twin_forward()->mutable_x()->add_shape(kNullInputs);
  for (int i = 0; i < kNullInputs; ++i) twin.mutable_twin_forward()->mutable_x()->add_data(1.0f);
  CHECK(ro->call(twin).status().code() == v1::OK);

  // Every write is refused before anything else is looked at (even with a valid token).
  std::vector<v1::Request> writes;
  writes.push_back(lifecycle("null", T::DEACTIVATE, token));
  writes.push_back(acquire("power"));
  {
    v1::Request w;
    w.mutable_renew()->set_device("null");
    writes.push_back(with_token(w, token));
  }
  writes.push_back(release("null", token));
  writes.push_back(forward("null", token, 1, kNullInputs, 1.0f, {}));
  {
    v1::Request w;
    w.mutable_calibrate()->set_device("power");
    writes.push_back(w);
    w.mutable_submit_job()->set_config_yaml("name: x");
    writes.push_back(w);
    w.mutable_cancel_job()->set_job_id(1);
    writes.push_back(w);
  }
  for (const auto& w : writes) {
    CAPTURE(w.ShortDebugString().substr(0, 120));
    const v1::Reply denied = ro->call(w);
    CHECK(denied.status().code() == v1::PERMISSION_DENIED);
    CHECK(denied.status().message().find("operator") != std::string::npos);
  }
  CHECK(forward_calls(*ro, "null") == 0);
  CHECK(describe_device(*ro, "null").state() == v1::ACTIVE);

  // The operator's writes go through.
  const v1::Reply y = operator_client->call(forward("null", token, 1, kNullInputs, 4.0f, {}));
  REQUIRE(y.status().code() == v1::OK);
  CHECK(y.forward().y().data(0) == 4.0f);

  // A key that is not listed never gets a session: no reply, and the daemon keeps serving.
  ClientOptions o;
  o.endpoint = s.rpc();
  o.client_id = "stranger";
  o.timeout = 500ms;
  o.curve = keys(stranger);
  Client intruder(o);
  CHECK_THROWS_AS(intruder.call(hello()), ClientError);
  // Nor does a plain (non-CURVE) client.
  o.curve = {};
  Client plain(o);
  CHECK_THROWS_AS(plain.call(hello()), ClientError);
  CHECK(ro->call(hello()).status().code() == v1::OK);
}

}  // namespace pnn::daemon::test

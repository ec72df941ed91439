// Device supervision in the daemon: a board lost mid-use goes FAULT, is reconnected in the
// background with back-off, re-identified by serial, and lands INACTIVE, never ACTIVE.
#include <doctest/doctest.h>

#include "daemon_test_util.hpp"

namespace pnn::daemon::test {

namespace {

// Captures pnnd's log lines.
struct LogCapture {
  std::vector<std::string> lines;
  std::mutex mutex;
  ServerOptions options() {
    ServerOptions o;
    o.on_log = [this](const std::string&, const std::string& text) {
      std::lock_guard lock(mutex);
      lines.push_back(text);
    };
    return o;
  }
  bool contains(const std::string& part) {
    std::lock_guard lock(mutex);
    for (const auto& l : lines) {
      if (l.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

// Forwards on the power-law device until one fails (the injected unplug); that reply.
v1::Reply forward_until_error(Client& client, const std::string& token, int* ok = nullptr) {
  v1::Reply r;
  for (int i = 0; i < 10; ++i) {
    r = client.call(forward("power", token, 1, 1, 2.0f, {1.0}));
    if (r.status().code() != v1::OK) break;
    if (ok) ++*ok;
  }
  return r;
}

}  // namespace

TEST_CASE("daemon supervision: an unplugged board is reconnected to INACTIVE, then re-activated") {
  TempDir dir("supervision");
  DaemonConfig c = test_config(dir);
  c.reconnect_initial_ms = 20;
  c.reconnect_max_ms = 100;
  // The board disappears at its 12th command and re-enumerates 300 ms later.
  c.devices.push_back(device("power", "sim://power-law?prefactor=2&faults=unplug_after:12,"
                                      "unplug_ms:300&timeout_ms=20"));
  LogCapture logs;
  RunningServer s(c, logs.options());
  auto client = make_client(s.rpc(), "sup-client");
  Subscriber sub(s.telemetry(), {"state/power"});
  const std::string token = acquire_token(*client, "power");
  int ok = 0;
  v1::Reply r = forward_until_error(*client, token, &ok);
  REQUIRE(r.status().code() == v1::DEVICE_IO);
  CHECK(r.status().message().find("disconnected") != std::string::npos);
  CHECK(ok >= 1);
  // Recovered in the background: INACTIVE, health OK, same serial, the fault on record.
  CHECK(eventually([&] {
    const v1::DeviceInfo d = describe_device(*client, "power");
    return d.state() == v1::INACTIVE && d.health() == v1::HEALTH_OK;
  }));
  const v1::DeviceInfo d = describe_device(*client, "power");
  CHECK(d.spec().serial() == "SIM-POW-1");
  CHECK(d.lease_holder() == "sup-client");  // the lease survives; only the device was reset
  // Nothing is driven until the lease holder activates it again.
  r = client->call(forward("power", token, 1, 1, 2.0f, {1.0}));
  CHECK(r.status().code() == v1::WRONG_STATE);
  REQUIRE(client->call(lifecycle("power", v1::LifecycleRequest::ACTIVATE, token)).status().code() ==
          v1::OK);
  r = client->call(forward("power", token, 1, 1, 2.0f, {1.0}));
  REQUIRE_MESSAGE(r.status().code() == v1::OK, status_text(r));
  CHECK(r.forward().y().data(0) == doctest::Approx(4.0));
  // Telemetry showed the FAULT on the way.
  bool saw_fault = false;
  while (auto ev = sub.next(200ms)) {
    saw_fault |= ev->second.device_state().health() == v1::HEALTH_FAULT &&
                 ev->second.device_state().health_message().find("disconnected") !=
                     std::string::npos;
  }
  CHECK(saw_fault);
  CHECK(logs.contains("recovered"));
}

TEST_CASE("daemon supervision: a device absent at start is found later and left INACTIVE") {
  TempDir dir("supervision-late");
  DaemonConfig c = test_config(dir);
  c.reconnect_initial_ms = 20;
  c.reconnect_max_ms = 50;
  // Unplugged at the first command (identify during autostart) for 300 ms.
  c.devices.push_back(device("power", "sim://power-law?prefactor=2&faults=unplug_after:1,"
                                      "unplug_ms:300&timeout_ms=20"));
  RunningServer s(c);
  auto client = make_client(s.rpc());
  const v1::DeviceInfo first = describe_device(*client, "power");
  CHECK(first.state() == v1::UNCONFIGURED);
  CHECK(first.health() == v1::HEALTH_FAULT);
  CHECK(eventually([&] { return describe_device(*client, "power").state() == v1::INACTIVE; }));
  CHECK(describe_device(*client, "power").health() == v1::HEALTH_OK);
}


TEST_CASE("daemon supervision: with reconnect off a stuck FAULT device is brought back by RECOVER") {
  TempDir dir("supervision-recover");
  DaemonConfig c = test_config(dir);
  DeviceConfig d = device("power", "sim://power-law?prefactor=2&faults=unplug_after:12,"
                                   "unplug_ms:200&timeout_ms=20");
  d.reconnect = false;
  c.devices.push_back(d);
  RunningServer s(c);
  auto client = make_client(s.rpc(), "recover-client");
  const std::string token = acquire_token(*client, "power");
  v1::Reply r = forward_until_error(*client, token);
  REQUIRE(r.status().code() == v1::DEVICE_IO);
  // The board is gone: the safe state cannot be commanded, so DEACTIVATE says so and the device
  // stays ACTIVE with health FAULT (forward refused); CLEANUP needs INACTIVE.
  r = client->call(lifecycle("power", v1::LifecycleRequest::DEACTIVATE, token));
  CHECK(r.status().code() != v1::OK);
  v1::DeviceInfo info = describe_device(*client, "power");
  CHECK(info.health() == v1::HEALTH_FAULT);
  CHECK(client->call(lifecycle("power", v1::LifecycleRequest::CLEANUP, token)).status().code() ==
        v1::WRONG_STATE);
  // RECOVER reconnects once the board is back, and lands INACTIVE, never ACTIVE.
  CHECK(eventually([&] {
    return client->call(lifecycle("power", v1::LifecycleRequest::RECOVER, token)).status().code() ==
           v1::OK;
  }));
  info = describe_device(*client, "power");
  CHECK(info.state() == v1::INACTIVE);
  CHECK(info.health() == v1::HEALTH_OK);
  CHECK(info.spec().serial() == "SIM-POW-1");
  REQUIRE(client->call(lifecycle("power", v1::LifecycleRequest::ACTIVATE, token)).status().code() ==
          v1::OK);
  r = client->call(forward("power", token, 1, 1, 2.0f, {1.0}));
  REQUIRE_MESSAGE(r.status().code() == v1::OK, status_text(r));
  CHECK(r.forward().y().data(0) == doctest::Approx(4.0));
}

TEST_CASE("daemon supervision: a queued recovery does nothing once a client has brought the device back") {
  TempDir dir("supervision-queued");
  DaemonConfig c = test_config(dir);
  c.reconnect_initial_ms = 1500;  // the client's RECOVER comes first
  c.reconnect_max_ms = 1500;
  c.devices.push_back(device("power", "sim://power-law?prefactor=2&faults=unplug_after:12,"
                                      "unplug_ms:100&timeout_ms=20"));
  LogCapture logs;
  RunningServer s(c, logs.options());
  auto client = make_client(s.rpc(), "queued-client");
  const std::string token = acquire_token(*client, "power");
  v1::Reply r = forward_until_error(*client, token);
  REQUIRE(r.status().code() == v1::DEVICE_IO);
  CHECK(eventually([&] {
    return client->call(lifecycle("power", v1::LifecycleRequest::RECOVER, token)).status().code() ==
           v1::OK;
  }));
  REQUIRE(client->call(lifecycle("power", v1::LifecycleRequest::ACTIVATE, token)).status().code() ==
          v1::OK);
  // Past the supervision timer: the device was left alone, still ACTIVE and serving.
  std::this_thread::sleep_for(2000ms);
  const v1::DeviceInfo info = describe_device(*client, "power");
  CHECK(info.state() == v1::ACTIVE);
  r = client->call(forward("power", token, 1, 1, 2.0f, {1.0}));
  CHECK_MESSAGE(r.status().code() == v1::OK, status_text(r));
  CHECK_FALSE(logs.contains("recovered after"));
}

}  // namespace pnn::daemon::test

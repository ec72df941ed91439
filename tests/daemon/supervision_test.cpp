// Device supervision in the daemon: a board lost mid-use goes FAULT, is reconnected in the
// background with back-off, re-identified by serial, and lands INACTIVE, never ACTIVE.
#include <doctest/doctest.h>

#include "daemon_test_util.hpp"

namespace pnn::daemon::test {

TEST_CASE("daemon supervision: an unplugged board is reconnected to INACTIVE, then re-activated") {
  TempDir dir("supervision");
  DaemonConfig c = test_config(dir);
  c.reconnect_initial_ms = 20;
  c.reconnect_max_ms = 100;
  // The board disappears at its 12th command and re-enumerates 300 ms later.
  c.devices.push_back(device("power", "sim://power-law?prefactor=2&faults=unplug_after:12,"
                                      "unplug_ms:300&timeout_ms=20"));
  std::vector<std::string> logs;
  std::mutex logs_mutex;
  ServerOptions options;
  options.on_log = [&](const std::string&, const std::string& text) {
    std::lock_guard lock(logs_mutex);
    logs.push_back(text);
  };
  RunningServer s(c, options);
  auto client = make_client(s.rpc(), "sup-client");
  Subscriber sub(s.telemetry(), {"state/power"});
  const std::string token = acquire_token(*client, "power");
  v1::Reply r;
  int ok = 0;
  for (int i = 0; i < 10; ++i) {
    r = client->call(forward("power", token, 1, 1, 2.0f, {1.0}));
    if (r.status().code() != v1::OK) break;
    ++ok;
  }
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
  std::lock_guard lock(logs_mutex);
  bool logged = false;
  for (const auto& l : logs) logged |= l.find("recovered") != std::string::npos;
  CHECK(logged);
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

}  // namespace pnn::daemon::test

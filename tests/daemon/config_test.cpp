// pnnd's lab config (daemon/src/config.cpp): every mistake is a ConfigError naming the file, the
// line, the dotted key and the fix; the shipped configs parse.
#include <doctest/doctest.h>

#include <string>

#include "pnn/daemon/config.hpp"

namespace {

using pnn::daemon::ConfigError;
using pnn::daemon::parse_daemon_config;

// The message of the ConfigError that parsing `yaml` throws ("" if it does not throw).
std::string error_of(const std::string& yaml) {
  try {
    (void)parse_daemon_config(yaml, "lab.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("daemon config: a minimal config parses with loopback defaults") {
  const auto c = parse_daemon_config("version: 1\ndevices:\n  power: sim://power-law\n", "lab.yaml");
  REQUIRE(c.devices.size() == 1);
  CHECK(c.devices[0].name == "power");
  CHECK(c.devices[0].address == "sim://power-law");
  CHECK(pnn::daemon::is_loopback_endpoint(c.rpc_bind));
  CHECK(pnn::daemon::is_loopback_endpoint(c.telemetry_bind));
}

TEST_CASE("daemon config: the shipped lab configs parse") {
  for (const char* path : {"configs/lab.yaml", "configs/lab-all.yaml"}) {
    CAPTURE(path);
    const std::string full = std::string(PNN_SOURCE_DIR) + "/" + path;
    CHECK_NOTHROW((void)pnn::daemon::load_daemon_config(full));
  }
}

TEST_CASE("daemon config: an unknown key names file and line and suggests the closest key") {
  const std::string e =
      error_of("version: 1\ndevices:\n  osc:\n    adress: sim://power-law\n    autostart: true\n");
  INFO(e);
  CHECK(contains(e, "lab.yaml:4:"));
  CHECK(contains(e, "'devices.osc.adress'"));
  CHECK(contains(e, "did you mean 'address'?"));
  CHECK(contains(e, "allowed here: address, autostart, reconnect"));

  const std::string top = error_of("version: 1\nleasess:\n  default_ttl_ms: 10\n");
  INFO(top);
  CHECK(contains(top, "lab.yaml:2:"));
  CHECK(contains(top, "did you mean 'leases'?"));
}

TEST_CASE("daemon config: wrong types, out-of-range counts and bad values are named") {
  const std::string type = error_of("version: 1\nleases:\n  default_ttl_ms: soon\n");
  INFO(type);
  CHECK(contains(type, "lab.yaml:3:"));
  CHECK(contains(type, "'leases.default_ttl_ms'"));
  CHECK(contains(type, "got 'soon'"));

  const std::string range = error_of("version: 1\nstore:\n  forward_queue_bytes: 12\n");
  INFO(range);
  CHECK(contains(range, "'store.forward_queue_bytes'"));
  CHECK(contains(range, "must be in 1024.."));

  const auto kept = parse_daemon_config(
      "version: 1\nstore:\n  forward_records_max_bytes: 0\n", "lab.yaml");  // 0: keep all
  CHECK(kept.forward_records_max_bytes == 0);
  CHECK(parse_daemon_config("version: 1\n", "lab.yaml").forward_records_max_bytes ==
        std::uint64_t{8} << 30);
  CHECK(contains(error_of("version: 1\nstore:\n  forward_records_max_bytes: -1\n"),
                 "'store.forward_records_max_bytes'"));

  const std::string mode = error_of("version: 1\nstore:\n  forward_records: sometimes\n");
  INFO(mode);
  CHECK(contains(mode, "'store.forward_records'"));

  CHECK(contains(error_of("version: 2\n"), "version 1"));
  CHECK(contains(error_of("version: 1\ndevices:\n  a/b: sim://power-law\n"), "no '/'"));
  CHECK(contains(error_of("version: [1\n"), "lab.yaml:"));  // YAML syntax, with its line
}

TEST_CASE("daemon config: a bind reachable from other machines needs CURVE security") {
  const std::string e = error_of("version: 1\nrpc:\n  bind: tcp://0.0.0.0:7700\n");
  INFO(e);
  CHECK(contains(e, "'rpc.bind'"));
  CHECK(contains(e, "refuses to start without CURVE"));
  CHECK(contains(e, "tcp://127.0.0.1"));
}

TEST_CASE("daemon config: a missing file names the path and the default") {
  try {
    (void)pnn::daemon::load_daemon_config("/nonexistent/lab.yaml");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(contains(e.what(), "/nonexistent/lab.yaml"));
    CHECK(contains(e.what(), "configs/lab.yaml"));
  }
}

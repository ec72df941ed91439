// pnnd's lab config (daemon/src/config.cpp): every mistake is a ConfigError naming the file, the
// line, the dotted key and the fix; the shipped configs parse.
#include "pnn/daemon/config.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../../daemon/src/instrument_key.hpp"
#include "pnn/client/client.hpp"

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
  for (const char* path : {"configs/daemon/lab.yaml", "configs/daemon/lab-all.yaml"}) {
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
    CHECK(contains(e.what(), "configs/daemon/lab.yaml"));
  }
}

TEST_CASE("daemon config: connection, reply-queue, twin, settle and lease-minimum keys") {
  const auto c = parse_daemon_config(
      "version: 1\n"
      "rpc:\n"
      "  max_connections: 200\n"
      "  max_connections_per_peer: 20\n"
      "  max_queued_reply_bytes: 67108864\n"
      "  max_queued_reply_bytes_per_peer: 2097152\n"
      "  max_pending_request_bytes: 33554432\n"
      "  max_pending_request_bytes_per_peer: 3145728\n"
      "twin: {max_batch_rows: 512}\n"
      "forward: {max_settle_ms: 600000, inline_max_us: 0}\n"
      "leases: {default_ttl_ms: 5000, max_ttl_ms: 60000, min_ttl_ms: 5000}\n",
      "lab.yaml");
  CHECK(c.max_connections == 200);
  CHECK(c.max_connections_per_peer == 20);
  CHECK(c.max_queued_reply_bytes == 64u << 20);
  CHECK(c.max_queued_reply_bytes_per_peer == 2u << 20);
  CHECK(c.max_pending_request_bytes == 32u << 20);
  CHECK(c.max_pending_request_bytes_per_peer == 3u << 20);
  CHECK(c.twin_max_batch_rows == 512);
  CHECK(c.max_settle_ms == 600000);
  CHECK(c.inline_forward_max_us == 0);
  CHECK(c.lease_min_ttl_ms == 5000);

  // Left out: the header's defaults; a per-peer limit or minimum left out follows a smaller
  // total or default rather than failing on a key the file does not have.
  const pnn::daemon::DaemonConfig defaults;
  const auto d = parse_daemon_config("version: 1\n", "lab.yaml");
  CHECK(d.max_connections == defaults.max_connections);
  CHECK(d.max_connections_per_peer == defaults.max_connections_per_peer);
  CHECK(d.max_queued_reply_bytes == defaults.max_queued_reply_bytes);
  CHECK(d.max_queued_reply_bytes_per_peer == defaults.max_queued_reply_bytes_per_peer);
  CHECK(d.max_pending_request_bytes == defaults.max_pending_request_bytes);
  CHECK(d.max_pending_request_bytes_per_peer == defaults.max_pending_request_bytes_per_peer);
  CHECK(d.twin_max_batch_rows == defaults.twin_max_batch_rows);
  CHECK(d.max_settle_ms == defaults.max_settle_ms);
  CHECK(d.inline_forward_max_us == defaults.inline_forward_max_us);
  CHECK(d.lease_min_ttl_ms == defaults.lease_min_ttl_ms);
  const auto small = parse_daemon_config(
      "version: 1\nrpc: {max_connections: 10, max_queued_reply_bytes: 1048576}\n"
      "leases: {default_ttl_ms: 10}\n",
      "lab.yaml");
  CHECK(small.max_connections_per_peer == 10);
  CHECK(small.max_queued_reply_bytes_per_peer == 1u << 20);
  CHECK(small.lease_min_ttl_ms == 10);  // the default (20) lowered to default_ttl_ms
  CHECK(
      parse_daemon_config("version: 1\nforward: {max_settle_ms: 0}\n", "lab.yaml").max_settle_ms ==
      0);
}

TEST_CASE("daemon config: the new limits are range-checked like the other keys") {
  struct Case {
    const char* yaml;
    const char* key;
    const char* problem;
  };
  const Case cases[] = {
      {"rpc: {max_connections: 0}", "'rpc.max_connections'", "must be in 1.."},
      {"rpc: {max_connections: many}", "'rpc.max_connections'",
       "expected a whole number, got 'many'"},
      {"rpc: {max_connections_per_peer: 0}", "'rpc.max_connections_per_peer'", "must be in 1.."},
      {"rpc: {max_connections: 10, max_connections_per_peer: 11}", "'rpc.max_connections_per_peer'",
       "must not exceed rpc.max_connections (10)"},
      {"rpc: {max_queued_reply_bytes: 1048575}", "'rpc.max_queued_reply_bytes'",
       "must be in 1048576.."},
      {"rpc: {max_queued_reply_bytes_per_peer: 1000}", "'rpc.max_queued_reply_bytes_per_peer'",
       "must be in 1048576.."},
      {"rpc: {max_queued_reply_bytes: 2097152, max_queued_reply_bytes_per_peer: 4194304}",
       "'rpc.max_queued_reply_bytes_per_peer'",
       "must not exceed rpc.max_queued_reply_bytes (2097152)"},
      {"rpc: {max_pending_request_bytes: 1000}", "'rpc.max_pending_request_bytes'",
       "must be in 1048576.."},
      {"rpc: {max_pending_request_bytes: 2097152, max_pending_request_bytes_per_peer: 4194304}",
       "'rpc.max_pending_request_bytes_per_peer'",
       "must not exceed rpc.max_pending_request_bytes (2097152)"},
      {"twin: {max_batch_rows: 0}", "'twin.max_batch_rows'", "must be in 1.."},
      {"twin: {max_batch_rows: [1]}", "'twin.max_batch_rows'",
       "expected a whole number, got a list"},
      {"forward: {max_settle_ms: 600001}", "'forward.max_settle_ms'", "must be in 0..600000"},
      {"forward: {max_settle_ms: -1}", "'forward.max_settle_ms'", "must be in 0..600000"},
      {"forward: {inline_max_us: 100001}", "'forward.inline_max_us'", "must be in 0..100000"},
      {"leases: {min_ttl_ms: 0}", "'leases.min_ttl_ms'", "must be in 1.."},
      {"leases: {default_ttl_ms: 100, min_ttl_ms: 101}", "'leases.min_ttl_ms'",
       "must not exceed leases.default_ttl_ms (100)"},
      {"leases: {default_ttl_ms: 100, max_ttl_ms: 100, min_ttl_ms: 200}", "'leases.min_ttl_ms'",
       "must not exceed leases.max_ttl_ms (100)"},
  };
  for (const Case& k : cases) {
    const std::string yaml = std::string("version: 1\n") + k.yaml + "\n";
    const std::string e = error_of(yaml);
    CAPTURE(yaml);
    INFO(e);
    CHECK(contains(e, "lab.yaml:2:"));
    CHECK(contains(e, k.key));
    CHECK(contains(e, k.problem));
  }
}

TEST_CASE("daemon config: did-you-mean knows the new keys") {
  struct Case {
    const char* yaml;
    const char* hint;
  };
  const Case cases[] = {
      {"rpc: {max_conections: 5}", "did you mean 'max_connections'?"},
      {"rpc: {max_connection_per_peer: 5}", "did you mean 'max_connections_per_peer'?"},
      {"rpc: {max_queued_reply_byte: 5}", "did you mean 'max_queued_reply_bytes'?"},
      {"rpc: {max_queued_reply_byte_per_peer: 5}",
       "did you mean 'max_queued_reply_bytes_per_peer'?"},
      {"twins: {max_batch_rows: 5}", "did you mean 'twin'?"},
      {"twin: {max_batch_row: 5}", "did you mean 'max_batch_rows'?"},
      {"foward: {max_settle_ms: 5}", "did you mean 'forward'?"},
      {"forward: {max_setle_ms: 5}", "did you mean 'max_settle_ms'?"},
      {"leases: {min_tll_ms: 5}", "did you mean 'min_ttl_ms'?"},
  };
  for (const Case& k : cases) {
    const std::string yaml = std::string("version: 1\n") + k.yaml + "\n";
    const std::string e = error_of(yaml);
    CAPTURE(yaml);
    INFO(e);
    CHECK(contains(e, "unknown key"));
    CHECK(contains(e, k.hint));
  }
}

TEST_CASE("daemon config: roles read-only, operator and admin") {
  using pnn::daemon::Role;
  CHECK(std::string(to_string(Role::kReadOnly)) == "read-only");
  CHECK(std::string(to_string(Role::kOperator)) == "operator");
  CHECK(std::string(to_string(Role::kAdmin)) == "admin");

  const auto server = pnn::client::make_curve_keypair();
  const auto a = pnn::client::make_curve_keypair(), b = pnn::client::make_curve_keypair(),
             c = pnn::client::make_curve_keypair();
  auto yaml = [&](const std::string& last_role) {
    return "version: 1\nsecurity:\n  server_secret_key: '" + server.secret_key +
           "'\n  clients:\n"
           "    - {public_key: '" +
           a.public_key +
           "', role: admin, name: lab-admin}\n"
           "    - {public_key: '" +
           b.public_key +
           "', role: operator}\n"
           "    - {public_key: '" +
           c.public_key + "', role: " + last_role + "}\n";
  };
  const auto config = parse_daemon_config(yaml("read-only"), "lab.yaml");
  REQUIRE(config.security.clients.size() == 3);
  CHECK(config.security.clients[0].role == Role::kAdmin);
  CHECK(config.security.clients[0].name == "lab-admin");
  CHECK(config.security.clients[1].role == Role::kOperator);
  CHECK(config.security.clients[2].role == Role::kReadOnly);

  const std::string e = error_of(yaml("root"));
  INFO(e);
  CHECK(contains(e, "lab.yaml:7:"));
  CHECK(contains(e, "'security.clients[2].role'"));
  CHECK(contains(e, "unknown role 'root' (use read-only, operator or admin)"));
}

TEST_CASE("daemon config: two device names for one instrument are refused") {
  struct Case {
    const char* first;
    const char* second;
  };
  const Case same[] = {
      {"sim://mechanical-oscillators?seed=1&n=64", "sim://mechanical-oscillators?seed=1&n=64"},
      // Another size or gap is another configuration of the same simulated instrument.
      {"sim://mechanical-oscillators?seed=1&n=64", "sim://mechanical-oscillators?n=8&seed=01"},
      {"sim://mechanical-oscillators?n=64", "sim://mechanical-oscillators?seed=1&gap=large"},
      {"sim://electronic-circuit?serial=RLC-7&vmax=1",
       "sim://electronic-circuit?serial=RLC-7&vmax=10"},
      {"sim://power-law?prefactor=2", "sim://power-law?prefactor=3"},
      {"tcp://localhost:5025?kind=electronic-circuit&vmax=1",
       "tcp://127.0.0.1:5025?kind=electronic-circuit&vmax=10"},
      {"tcp://[::1]:5025?kind=electronic-circuit", "tcp://LOCALHOST:5025?kind=electronic-circuit"},
      {"tcp://Lab-Bench:7000?kind=mechanical-oscillators",
       "tcp://lab-bench:07000?kind=mechanical-oscillators"},
      {"usb://1209:0001?serial=B7&kind=mechanical-oscillators&n=64",
       "usb://1209:1?kind=mechanical-oscillators&serial=B7&n=8"},
      {"usbtmc://0957:1755?serial=MY1&kind=electronic-circuit",
       "usbtmc://0957:1755?serial=MY1&kind=electronic-circuit&vmax=5"},
      {"not an address", "not an address"},
  };
  for (const Case& k : same) {
    CAPTURE(k.first);
    CAPTURE(k.second);
    const std::string yaml = std::string("version: 1\ndevices:\n") +  //
                             "  safe:\n    address: '" + k.first + "'\n" + "  wide: {address: '" +
                             k.second + "', autostart: true}\n";
    const std::string e = error_of(yaml);
    INFO(e);
    CHECK(contains(e, "lab.yaml:5: 'devices.wide'"));
    CHECK(contains(e, "is the same instrument as device 'safe' (line 3"));
    CHECK(contains(e, k.first));
    CHECK(contains(e, k.second));
    CHECK(contains(e, "Remove one of the two entries"));
    CHECK(pnn::daemon::instrument_key(k.first) == pnn::daemon::instrument_key(k.second));
  }

  const Case different[] = {
      {"sim://mechanical-oscillators?seed=1&n=64", "sim://mechanical-oscillators?seed=2&n=64"},
      {"sim://mechanical-oscillators?seed=1", "sim://optical-shg?seed=1"},
      {"sim://power-law?prefactor=2", "sim://power-law?prefactor=2&serial=SIM-POW-COLD"},
      {"sim://electronic-circuit?serial=A", "sim://electronic-circuit?serial=B"},
      {"tcp://127.0.0.1:5025?kind=electronic-circuit",
       "tcp://127.0.0.1:5026?kind=electronic-circuit"},
      {"tcp://10.0.0.5:5025?kind=electronic-circuit",
       "tcp://10.0.0.6:5025?kind=electronic-circuit"},
      {"usb://1209:0001?serial=B7&kind=mechanical-oscillators",
       "usb://1209:0001?serial=B8&kind=mechanical-oscillators"},
      {"usb://1209:0001?serial=B7&kind=mechanical-oscillators",
       "usb://1209:0002?serial=B7&kind=mechanical-oscillators"},
  };
  for (const Case& k : different) {
    CAPTURE(k.first);
    CAPTURE(k.second);
    const std::string yaml = std::string("version: 1\ndevices:\n") + "  a: '" + k.first + "'\n" +
                             "  b: '" + k.second + "'\n";
    CHECK(error_of(yaml).empty());
    CHECK(pnn::daemon::instrument_key(k.first) != pnn::daemon::instrument_key(k.second));
  }
  // The shipped configs have one name per instrument.
  CHECK(error_of("version: 1\ndevices:\n  osc-a: sim://mechanical-oscillators?seed=1&n=64\n"
                 "  osc-b: sim://mechanical-oscillators?seed=2&n=74\n  power: sim://power-law\n")
            .empty());
}

TEST_CASE("daemon config: a list or mapping where a name or scalar is expected is a config error") {
  // yaml-cpp's own exceptions must not escape (pnnd would report them as internal errors).
  const std::string key = error_of("version: 1\ndevices:\n  [a, b]: sim://power-law\n");
  INFO(key);
  CHECK(contains(key, "lab.yaml:3:"));
  CHECK(contains(key, "'devices'"));
  CHECK(contains(key, "expected a key name, got a list"));
  const std::string bind = error_of("version: 1\nrpc: {bind: {a: 1}}\n");
  INFO(bind);
  CHECK(contains(bind, "'rpc.bind': expected an endpoint, got a mapping"));
  const std::string top = error_of("version: 1\n? [x]\n: 1\n");
  INFO(top);
  CHECK(contains(top, "expected a key name"));
}

TEST_CASE("daemon config: relative store paths live in store.dir, never the working directory") {
  const auto explicit_dir = parse_daemon_config(
      "version: 1\nstore: {dir: /srv/pnn, path: lab.sqlite, runs_dir: out}\n", "lab.yaml");
  CHECK(explicit_dir.store_path == "/srv/pnn/lab.sqlite");
  CHECK(explicit_dir.runs_dir == "/srv/pnn/out");
  const auto absolute = parse_daemon_config(
      "version: 1\nstore: {dir: /srv/pnn, path: /data/s.sqlite, runs_dir: /data/runs}\n", "lab.yaml");
  CHECK(absolute.store_path == "/data/s.sqlite");
  CHECK(absolute.runs_dir == "/data/runs");
  const char* saved = std::getenv("PNN_STATE_DIR");
  const std::string before = saved ? saved : "";
  ::setenv("PNN_STATE_DIR", "/tmp/pnn-state-test", 1);
  const auto from_env = parse_daemon_config("version: 1\n", "lab.yaml");
  CHECK(from_env.store_path == "/tmp/pnn-state-test/pnnd.sqlite");
  CHECK(from_env.runs_dir == "/tmp/pnn-state-test/runs");
  ::unsetenv("PNN_STATE_DIR");
  const char* xdg = std::getenv("XDG_STATE_HOME");
  const std::string xdg_before = xdg ? xdg : "";
  ::setenv("XDG_STATE_HOME", "/tmp/xdg-test", 1);
  CHECK(pnn::daemon::default_state_dir() == "/tmp/xdg-test/pnn-hil");
  if (xdg) {
    ::setenv("XDG_STATE_HOME", xdg_before.c_str(), 1);
  } else {
    ::unsetenv("XDG_STATE_HOME");
  }
  if (saved) ::setenv("PNN_STATE_DIR", before.c_str(), 1);
  CHECK(contains(error_of("version: 1\nstore: {dir: ''}\n"), "store.dir"));
}

TEST_CASE("daemon config: devices.NAME.drift is off, on or a mapping with checked values") {
  const std::string head = "version: 1\ndevices:\n  power:\n    address: sim://power-law\n";
  const auto on = parse_daemon_config(head + "    drift: {every_ms: 50, window: 8, max_rows: 16, warn_nmse: 0.2}\n", "lab.yaml");
  REQUIRE(on.devices.size() == 1);
  CHECK(on.devices[0].drift.enabled);
  CHECK(on.devices[0].drift.every_ms == 50);
  CHECK(on.devices[0].drift.window == 8);
  CHECK(on.devices[0].drift.max_rows == 16);
  CHECK(on.devices[0].drift.warn_nmse == doctest::Approx(0.2));
  CHECK_FALSE(parse_daemon_config(head + "    drift: false\n", "lab.yaml").devices[0].drift.enabled);
  const auto dflt = parse_daemon_config(head, "lab.yaml").devices[0].drift;
  CHECK(dflt.enabled);
  CHECK(dflt.warn_nmse == 0.0);  // never warns unless a bound is configured
  CHECK(contains(error_of(head + "    drift: {window: 0}\n"), "devices.power.drift"));
  CHECK(contains(error_of(head + "    drift: {warn_nmse: -1}\n"), "must be ≥ 0"));
  CHECK(contains(error_of(head + "    drift: {warn_nmse: .nan}\n"), "warn_nmse"));
  CHECK(contains(error_of(head + "    drift: {windw: 4}\n"), "did you mean 'window'"));
  CHECK(contains(error_of(head + "    drift: [1, 2]\n"), "drift"));
}

TEST_CASE("daemon config: lab names the registry for jobs across daemons, checked at load") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("pnn-lab-config-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  const std::string plain = write("plain.yaml", "daemons:\n  - {name: far, rpc: 'tcp://127.0.0.1:7800'}\n");
  const std::string curve = write(
      "curve.yaml", "daemons:\n  - name: far\n    rpc: tcp://127.0.0.1:7800\n"
                    "    server_key: \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n");
  const std::string source = (dir / "pnnd.yaml").string();
  // A relative path is relative to the config file.
  const auto c = parse_daemon_config("version: 1\nlab: plain.yaml\n", source);
  CHECK(c.lab == (dir / "plain.yaml").string());
  CHECK(parse_daemon_config("version: 1\nlab: " + plain + "\n", source).lab == plain);
  std::string m;
  try {
    (void)parse_daemon_config("version: 1\nlab: missing.yaml\n", source);
  } catch (const ConfigError& e) {
    m = e.what();
  }
  CHECK(contains(m, "'lab'"));
  CHECK(contains(m, "missing.yaml: cannot open the lab registry"));
  // A daemon that needs CURVE, and no key pair of this daemon's to present.
  m.clear();
  try {
    (void)parse_daemon_config("version: 1\nlab: " + curve + "\n", source);
  } catch (const ConfigError& e) {
    m = e.what();
  }
  CHECK(contains(m, "needs CURVE"));
  CHECK(contains(m, "security.server_secret_key"));
  fs::remove_all(dir);
}

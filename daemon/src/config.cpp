#include "pnn/daemon/config.hpp"

#include "pnn/client/lab.hpp"

#include <yaml-cpp/yaml.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <type_traits>

#include "instrument_key.hpp"
#include "pnn/common/yaml_reader.hpp"

namespace pnn::daemon {

const char* to_string(Role role) {
  switch (role) {
    case Role::kReadOnly: return "read-only";
    case Role::kOperator: return "operator";
    case Role::kAdmin: return "admin";
  }
  return "?";
}

const char* to_string(ForwardRecording mode) {
  switch (mode) {
    case ForwardRecording::kAsync: return "async";
    case ForwardRecording::kSync: return "sync";
    case ForwardRecording::kOff: return "off";
  }
  return "?";
}

bool is_loopback_endpoint(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string host = endpoint.substr(6);
  // A source address ("tcp://src;dst") is not a bind form; treat anything unusual as remote.
  if (host.find(';') != std::string::npos) return false;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    return close != std::string::npos && host.substr(1, close - 1) == "::1";
  }
  host = host.substr(0, host.rfind(':'));
  if (host == "localhost") return true;
  // 127.0.0.0/8, written as a dotted quad.
  int a = 0, b = 0, c = 0, d = 0;
  char tail = 0;
  if (std::sscanf(host.c_str(), "%d.%d.%d.%d%c", &a, &b, &c, &d, &tail) == 4) {
    return a == 127 && b >= 0 && b < 256 && c >= 0 && c < 256 && d >= 0 && d < 256;
  }
  return false;
}

bool is_loopback_host_port(const std::string& host_port) {
  return is_loopback_endpoint("tcp://" + host_port);
}

namespace {

using Reader = common::YamlReader<ConfigError>;

bool is_z85_key(const std::string& key) {
  if (key.size() != 40) return false;
  std::array<std::uint8_t, 32> raw{};
  return zmq_z85_decode(raw.data(), key.c_str()) != nullptr;
}

std::string endpoint_check(const std::string& endpoint) {
  for (const char* scheme : {"tcp://", "ipc://", "inproc://"}) {
    if (endpoint.rfind(scheme, 0) == 0 && endpoint.size() > std::string(scheme).size()) return "";
  }
  return "'" + endpoint + "' is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:7700)";
}

// http.bind must be HOST:PORT with a numeric port (0: ephemeral); IPv6 hosts in brackets.
bool is_host_port(const std::string& bind) {
  const auto colon = bind.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == bind.size()) return false;
  const std::string port = bind.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return false;
  }
  if (std::stoi(port) > 65535) return false;
  const std::string host = bind.substr(0, colon);
  if (host.front() == '[') return host.back() == ']' && host.size() > 2;
  return host.find_first_of(":/ ") == std::string::npos;
}

// devices.NAME.drift: false (off), or {every_ms, window, max_rows, warn_nmse}.
DriftConfig read_drift(const Reader& r, const YAML::Node& node, const std::string& where) {
  DriftConfig d;
  if (node.IsScalar()) {
    d.enabled = r.scalar_as<bool>(node, where, "true, false or a mapping {every_ms, window, max_rows, warn_nmse}");
    return d;
  }
  if (!node.IsMap()) r.fail(node, where, "expected true, false or {every_ms, window, max_rows, warn_nmse}");
  r.only_keys(node, where, {"enabled", "every_ms", "window", "max_rows", "warn_nmse"});
  d.enabled = r.get<bool>(node, where, "enabled", true, "true or false");
  d.every_ms = static_cast<std::uint32_t>(r.get_count(node, where, "every_ms", d.every_ms, 0, 3600000));
  d.window = static_cast<std::uint32_t>(r.get_count(node, where, "window", d.window, 1, 100000));
  d.max_rows = static_cast<std::uint32_t>(r.get_count(node, where, "max_rows", d.max_rows, 1, 65536));
  d.warn_nmse = r.get<double>(node, where, "warn_nmse", 0.0, "a number ≥ 0");
  if (d.warn_nmse < 0.0) {
    r.fail(node["warn_nmse"], where + ".warn_nmse",
           "must be ≥ 0 (0: never warn); e.g. 0.1 warns once the twin explains less than 90 % of "
           "the measured variance");
  }
  return d;
}

void parse_http(const Reader& r, const YAML::Node& http, HttpConfig& h) {
  r.only_keys(http, "http", {"bind", "token", "token_file", "max_connections", "max_header_bytes",
                             "idle_timeout_ms", "write_timeout_ms"});
  h.bind = r.get<std::string>(http, "http", "bind", "", "HOST:PORT");
  if (!h.bind.empty() && !is_host_port(h.bind)) {
    r.fail(http["bind"], "http.bind",
           "'" + h.bind + "' is not HOST:PORT (e.g. 127.0.0.1:8080; port 0 picks a free one)");
  }
  h.token = r.get<std::string>(http, "http", "token", "", "a string");
  const auto token_file = r.get<std::string>(http, "http", "token_file", "", "a path");
  if (!token_file.empty()) {
    if (!h.token.empty()) r.fail(http["token_file"], "http.token_file", "give http.token or http.token_file, not both");
    std::ifstream in(token_file);
    if (!in) r.fail(http["token_file"], "http.token_file", "cannot read '" + token_file + "'");
    std::getline(in, h.token);
    while (!h.token.empty() && (h.token.back() == '\r' || h.token.back() == ' ')) h.token.pop_back();
  }
  const auto token_node = token_file.empty() ? http["token"] : http["token_file"];
  if (!h.token.empty()) {
    const bool printable = std::all_of(h.token.begin(), h.token.end(),
                                       [](char ch) { return ch > ' ' && ch < 127 && ch != ';' && ch != ','; });
    if (h.token.size() < 16 || !printable) {
      r.fail(token_node, token_file.empty() ? "http.token" : "http.token_file",
             "a token must be at least 16 printable characters without spaces, ';' or ',' "
             "(e.g. `head -c 24 /dev/urandom | base64`)");
    }
  }
  h.max_connections = static_cast<std::uint32_t>(
      r.get_count(http, "http", "max_connections", h.max_connections, 1, 100000));
  h.max_header_bytes = static_cast<std::uint32_t>(
      r.get_count(http, "http", "max_header_bytes", h.max_header_bytes, 1024, 1u << 20));
  h.idle_timeout_ms = static_cast<std::uint32_t>(
      r.get_count(http, "http", "idle_timeout_ms", h.idle_timeout_ms, 100, 3600000));
  h.write_timeout_ms = static_cast<std::uint32_t>(
      r.get_count(http, "http", "write_timeout_ms", h.write_timeout_ms, 100, 3600000));
  if (h.enabled() && !is_loopback_host_port(h.bind) && h.token.empty()) {
    r.fail(http["bind"], "http.bind",
           "'" + h.bind + "' is reachable from other machines, so pnnd refuses to serve the "
           "dashboard there without a token: set http.token (or http.token_file), or bind to "
           "127.0.0.1");
  }
}

DaemonConfig parse_checked(const std::string& yaml_text, const std::string& source_name) {
  const Reader r(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source_name + ":" + std::to_string(e.mark.line + 1) +
                      ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) throw ConfigError(source_name + ": expected a YAML mapping at the top level");
  r.only_keys(root, "", {"version", "rpc", "telemetry", "leases", "store", "jobs", "supervision",
                         "twin", "forward", "devices", "security", "http", "lab"});
  DaemonConfig c;
  c.source = source_name;
  if (r.get<int>(root, "", "version", 1, "a whole number") != 1) {
    r.fail(root["version"], "version", "this pnnd reads lab config version 1");
  }
  constexpr std::uint64_t kMaxU32 = std::numeric_limits<std::uint32_t>::max();

  if (const auto rpc = root["rpc"]; rpc.IsDefined()) {
    r.only_keys(rpc, "rpc", {"bind", "max_message_bytes", "default_deadline_ms",
                             "reply_cache_entries", "reply_cache_bytes", "max_connections",
                             "max_connections_per_peer", "max_queued_reply_bytes_per_peer",
                             "max_queued_reply_bytes", "max_pending_request_bytes_per_peer",
                             "max_pending_request_bytes"});
    c.rpc_bind = r.get<std::string>(rpc, "rpc", "bind", c.rpc_bind, "an endpoint");
    c.max_message_bytes = r.get_count(rpc, "rpc", "max_message_bytes", c.max_message_bytes, 1024,
                                      std::uint64_t{1} << 31);
    c.default_deadline_ms = static_cast<std::uint32_t>(
        r.get_count(rpc, "rpc", "default_deadline_ms", c.default_deadline_ms, 1, kMaxU32));
    c.reply_cache_entries =
        r.get_count(rpc, "rpc", "reply_cache_entries", c.reply_cache_entries, 1, 1u << 24);
    c.reply_cache_bytes = r.get_count(rpc, "rpc", "reply_cache_bytes", c.reply_cache_bytes, 1024,
                                      std::uint64_t{1} << 40);
    // A limit in all and the same per client: a per-peer limit left out follows a smaller total,
    // so that lowering the total alone is not an error about a key the file does not have.
    auto total_and_per_peer = [&](const char* key, auto& total, auto& per_peer,
                                  std::uint64_t lo, std::uint64_t hi) {
      using T = std::remove_reference_t<decltype(total)>;
      const std::string per_key = std::string(key) + "_per_peer";
      total = static_cast<T>(r.get_count(rpc, "rpc", key, total, lo, hi));
      per_peer = static_cast<T>(r.get_count(rpc, "rpc", per_key.c_str(),
                                            std::min(per_peer, total), lo, hi));
      if (per_peer > total) {
        r.fail(rpc[per_key], "rpc." + per_key,
               "must not exceed rpc." + std::string(key) + " (" + std::to_string(total) + ")");
      }
    };
    constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
    total_and_per_peer("max_connections", c.max_connections, c.max_connections_per_peer, 1,
                       kMaxU32);
    total_and_per_peer("max_queued_reply_bytes", c.max_queued_reply_bytes,
                       c.max_queued_reply_bytes_per_peer, kMiB, std::uint64_t{1} << 40);
    total_and_per_peer("max_pending_request_bytes", c.max_pending_request_bytes,
                       c.max_pending_request_bytes_per_peer, kMiB, std::uint64_t{1} << 40);
  }
  if (const auto tel = root["telemetry"]; tel.IsDefined()) {
    r.only_keys(tel, "telemetry", {"bind", "heartbeat_ms"});
    c.telemetry_bind = r.get<std::string>(tel, "telemetry", "bind", c.telemetry_bind, "an endpoint");
    c.heartbeat_ms = static_cast<std::uint32_t>(
        r.get_count(tel, "telemetry", "heartbeat_ms", c.heartbeat_ms, 10, 3600000));
  }
  if (const auto leases = root["leases"]; leases.IsDefined()) {
    r.only_keys(leases, "leases", {"default_ttl_ms", "max_ttl_ms", "min_ttl_ms"});
    c.lease_default_ttl_ms = static_cast<std::uint32_t>(
        r.get_count(leases, "leases", "default_ttl_ms", c.lease_default_ttl_ms, 10, kMaxU32));
    c.lease_max_ttl_ms = static_cast<std::uint32_t>(
        r.get_count(leases, "leases", "max_ttl_ms", c.lease_max_ttl_ms, 10, kMaxU32));
    if (c.lease_default_ttl_ms > c.lease_max_ttl_ms) {
      r.fail(leases, "leases", "default_ttl_ms must not exceed max_ttl_ms");
    }
    // Left out, the minimum follows a shorter default TTL (as the per-peer rpc limits do).
    c.lease_min_ttl_ms = static_cast<std::uint32_t>(
        r.get_count(leases, "leases", "min_ttl_ms",
                    std::min(c.lease_min_ttl_ms, c.lease_default_ttl_ms), 1, kMaxU32));
    if (c.lease_min_ttl_ms > c.lease_max_ttl_ms) {
      r.fail(leases["min_ttl_ms"], "leases.min_ttl_ms",
             "must not exceed leases.max_ttl_ms (" + std::to_string(c.lease_max_ttl_ms) + ")");
    }
    if (c.lease_min_ttl_ms > c.lease_default_ttl_ms) {
      r.fail(leases["min_ttl_ms"], "leases.min_ttl_ms",
             "must not exceed leases.default_ttl_ms (" + std::to_string(c.lease_default_ttl_ms) +
                 "), the TTL of an Acquire that asks for none");
    }
  }
  if (const auto twin = root["twin"]; twin.IsDefined()) {
    r.only_keys(twin, "twin", {"max_batch_rows"});
    c.twin_max_batch_rows = static_cast<std::uint32_t>(
        r.get_count(twin, "twin", "max_batch_rows", c.twin_max_batch_rows, 1, kMaxU32));
  }
  if (const auto fwd = root["forward"]; fwd.IsDefined()) {
    r.only_keys(fwd, "forward", {"max_settle_ms", "inline_max_us"});
    c.max_settle_ms = static_cast<std::uint32_t>(
        r.get_count(fwd, "forward", "max_settle_ms", c.max_settle_ms, 0, 600000));
    c.inline_forward_max_us = static_cast<std::uint32_t>(
        r.get_count(fwd, "forward", "inline_max_us", c.inline_forward_max_us, 0, 100000));
  }
  if (const auto store = root["store"]; store.IsDefined()) {
    r.only_keys(store, "store",
                {"dir", "path", "runs_dir", "forward_records", "forward_queue_bytes",
                 "forward_records_max_bytes"});
    c.state_dir = r.get<std::string>(store, "store", "dir", c.state_dir, "a path");
    if (c.state_dir.empty()) r.fail(store["dir"], "store.dir", "must not be empty");
    c.store_path = r.get<std::string>(store, "store", "path", c.store_path, "a path");
    c.runs_dir = r.get<std::string>(store, "store", "runs_dir", c.runs_dir, "a path");
    const auto mode = r.get<std::string>(store, "store", "forward_records", "async", "a string");
    if (mode == "async") {
      c.forward_recording = ForwardRecording::kAsync;
    } else if (mode == "sync") {
      c.forward_recording = ForwardRecording::kSync;
    } else if (mode == "off") {
      c.forward_recording = ForwardRecording::kOff;
    } else {
      r.fail(store["forward_records"], "store.forward_records",
             "unknown mode '" + mode + "' (use async, sync or off)");
    }
    c.forward_queue_bytes = r.get_count(store, "store", "forward_queue_bytes",
                                        c.forward_queue_bytes, 1024, std::uint64_t{1} << 40);
    c.forward_records_max_bytes =
        r.get_count(store, "store", "forward_records_max_bytes", c.forward_records_max_bytes, 0,
                    std::uint64_t{1} << 50);
    if (c.store_path.empty()) r.fail(store["path"], "store.path", "must not be empty");
    if (c.runs_dir.empty()) r.fail(store["runs_dir"], "store.runs_dir", "must not be empty");
  }
  if (const auto jobs = root["jobs"]; jobs.IsDefined()) {
    r.only_keys(jobs, "jobs", {"stop_timeout_ms"});
    c.job_stop_timeout_ms = static_cast<std::uint32_t>(
        r.get_count(jobs, "jobs", "stop_timeout_ms", c.job_stop_timeout_ms, 0, kMaxU32));
  }

  if (const auto sup = root["supervision"]; sup.IsDefined()) {
    r.only_keys(sup, "supervision", {"reconnect_initial_ms", "reconnect_max_ms"});
    c.reconnect_initial_ms = static_cast<std::uint32_t>(r.get_count(
        sup, "supervision", "reconnect_initial_ms", c.reconnect_initial_ms, 10, 3600000));
    c.reconnect_max_ms = static_cast<std::uint32_t>(
        r.get_count(sup, "supervision", "reconnect_max_ms", c.reconnect_max_ms, 10, 3600000));
    if (c.reconnect_initial_ms > c.reconnect_max_ms) {
      r.fail(sup, "supervision", "reconnect_initial_ms must not exceed reconnect_max_ms");
    }
  }

  const auto devices = root["devices"];
  if (devices.IsDefined() && !devices.IsNull()) {
    if (!devices.IsMap()) {
      r.fail(devices, "devices", "expected a mapping NAME: ADDRESS or NAME: {address, autostart}");
    }
    std::set<std::string> names;
    std::map<std::string, std::size_t> by_instrument;  // instrument_key -> index in c.devices
    for (const auto& kv : devices) {
      DeviceConfig d;
      d.name = r.key_text(kv.first, "devices");
      const std::string where = "devices." + d.name;
      d.line = kv.first.Mark().line + 1;
      if (d.name.empty() || d.name.find('/') != std::string::npos) {
        r.fail(kv.first, where, "device names must be non-empty and contain no '/'");
      }
      if (!names.insert(d.name).second) r.fail(kv.first, where, "duplicate device name");
      if (kv.second.IsScalar()) {
        d.address = kv.second.Scalar();
      } else if (kv.second.IsMap()) {
        r.only_keys(kv.second, where, {"address", "autostart", "reconnect", "drift"});
        d.address = r.get<std::string>(kv.second, where, "address", "", "a device address");
        d.autostart = r.get<bool>(kv.second, where, "autostart", false, "true or false");
        d.reconnect = r.get<bool>(kv.second, where, "reconnect", true, "true or false");
        if (const auto drift = kv.second["drift"]; drift.IsDefined()) {
          d.drift = read_drift(r, drift, where + ".drift");
        }
      } else {
        r.fail(kv.second, where, "expected an address or {address: ..., autostart: true}");
      }
      if (d.address.empty()) {
        r.fail(kv.second, where + ".address",
               "required, e.g. sim://mechanical-oscillators?seed=1&n=64");
      }
      const auto [it, fresh] = by_instrument.emplace(instrument_key(d.address), c.devices.size());
      if (!fresh) {
        const DeviceConfig& first = c.devices[it->second];
        r.fail(kv.first, where,
               "address '" + d.address + "' is the same instrument as device '" + first.name +
                   "' (line " + std::to_string(first.line) + ", address '" + first.address +
                   "'): one instrument may have only one device name, since each name has its "
                   "own limits, lease and worker. Remove one of the two entries (job configs can "
                   "name the remaining device), or point this one at another instrument (another "
                   "seed= or serial= for a simulated one)");
      }
      c.devices.push_back(std::move(d));
    }
  }

  if (const auto sec = root["security"]; sec.IsDefined()) {
    r.only_keys(sec, "security", {"server_secret_key", "clients"});
    c.security.server_secret_key =
        r.get<std::string>(sec, "security", "server_secret_key", "", "a Z85 key");
    if (c.security.curve_enabled() && !is_z85_key(c.security.server_secret_key)) {
      r.fail(sec["server_secret_key"], "security.server_secret_key",
             "not a 40-character Z85 CURVE key (generate one with `pnnd --keygen`)");
    }
    if (const auto clients = sec["clients"]; clients.IsDefined()) {
      if (!clients.IsSequence()) {
        r.fail(clients, "security.clients", "expected a list of {public_key, role, name}");
      }
      for (std::size_t i = 0; i < clients.size(); ++i) {
        const std::string where = "security.clients[" + std::to_string(i) + "]";
        const auto entry = clients[i];
        r.only_keys(entry, where, {"public_key", "role", "name"});
        ClientKey k;
        k.public_key = r.get<std::string>(entry, where, "public_key", "", "a Z85 key");
        if (!is_z85_key(k.public_key)) {
          r.fail(entry, where + ".public_key", "required: a 40-character Z85 CURVE public key");
        }
        const auto role = r.get<std::string>(entry, where, "role", "read-only", "a string");
        if (role == "operator") {
          k.role = Role::kOperator;
        } else if (role == "read-only") {
          k.role = Role::kReadOnly;
        } else if (role == "admin") {
          k.role = Role::kAdmin;
        } else {
          r.fail(entry["role"], where + ".role",
                 "unknown role '" + role + "' (use read-only, operator or admin)");
        }
        k.name = r.get<std::string>(entry, where, "name", "", "a string");
        c.security.clients.push_back(std::move(k));
      }
    }
    if (!c.security.curve_enabled() && !c.security.clients.empty()) {
      r.fail(sec, "security.server_secret_key",
             "client keys are listed but CURVE is off; set server_secret_key");
    }
  }

  if (const auto http = root["http"]; http.IsDefined()) parse_http(r, http, c.http);

  for (const auto& [key, endpoint, node] :
       {std::tuple{"rpc.bind", c.rpc_bind, root["rpc"]},
        std::tuple{"telemetry.bind", c.telemetry_bind, root["telemetry"]}}) {
    if (const auto problem = endpoint_check(endpoint); !problem.empty()) {
      r.fail(node, key, problem);
    }
    if (!is_loopback_endpoint(endpoint) && !c.security.curve_enabled()) {
      r.fail(node, key,
             "'" + endpoint + "' is reachable from other machines, so pnnd refuses to start "
             "without CURVE security: set security.server_secret_key and list the client keys "
             "under security.clients, or bind to tcp://127.0.0.1");
    }
  }
  // Two ephemeral-port binds ("...:*") resolve to different ports, so only equal fixed
  // endpoints clash.
  const bool ephemeral = c.rpc_bind.size() >= 2 && c.rpc_bind.compare(c.rpc_bind.size() - 2, 2, ":*") == 0;
  if (c.rpc_bind == c.telemetry_bind && !ephemeral) {
    r.fail(root["telemetry"], "telemetry.bind",
           "must differ from rpc.bind (use another port, e.g. 7701 beside 7700)");
  }
  if (const auto lab = root["lab"]; lab.IsDefined() && !lab.IsNull()) {
    c.lab = r.scalar_as<std::string>(lab, "lab", "a path");
    if (std::filesystem::path(c.lab).is_relative()) {
      c.lab = (std::filesystem::path(source_name).parent_path() / c.lab).string();
    }
    try {
      const auto registry = client::Lab::load(c.lab);
      for (const auto& d : registry.daemons()) {
        if (!d.server_key.empty() && !c.security.curve_enabled()) {
          r.fail(lab, "lab",
                 "the registry's daemon '" + d.name + "' (" + registry.source() + " line " +
                     std::to_string(d.line) + ") needs CURVE, and this daemon has no key pair to "
                     "present: set security.server_secret_key (and list its public key in that "
                     "daemon's security.clients)");
        }
      }
    } catch (const client::LabError& e) {
      r.fail(lab, "lab", e.what());
    }
  }
  // Runtime output lives in the state directory, never where pnnd happens to be started (e.g. a
  // source tree): relative store paths are relative to store.dir.
  const std::filesystem::path dir(c.state_dir);
  if (std::filesystem::path(c.store_path).is_relative()) c.store_path = (dir / c.store_path).string();
  if (std::filesystem::path(c.runs_dir).is_relative()) c.runs_dir = (dir / c.runs_dir).string();
  return c;
}

}  // namespace

std::string default_state_dir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v && *v ? v : "";
  };
  if (auto d = env("PNN_STATE_DIR"); !d.empty()) return d;
  if (auto d = env("XDG_STATE_HOME"); !d.empty()) return d + "/pnn-hil";
  if (auto d = env("HOME"); !d.empty()) return d + "/.local/state/pnn-hil";
  return "/var/lib/pnn-hil";
}

DaemonConfig parse_daemon_config(const std::string& yaml_text, const std::string& source_name) {
  return common::parse_yaml_config<ConfigError>(yaml_text, source_name, parse_checked);
}

DaemonConfig load_daemon_config(const std::string& path) {
  return common::load_yaml_config<ConfigError>(
      path, "the daemon config (check the path; the default is configs/daemon/lab.yaml)",
      parse_checked);
}

}  // namespace pnn::daemon

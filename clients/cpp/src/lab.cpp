#include "pnn/client/lab.hpp"

#include <yaml-cpp/yaml.h>
#include <zmq.h>

#include <map>

#include "pnn/common/yaml_reader.hpp"

namespace pnn::client {
namespace {

using Reader = common::YamlReader<LabError>;

bool valid_daemon_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_endpoint(const std::string& e) {
  if (e.rfind("ipc://", 0) == 0) return e.size() > 6;
  if (e.rfind("tcp://", 0) != 0) return false;
  const auto colon = e.rfind(':');
  if (colon == std::string::npos || colon <= 6 || colon + 1 >= e.size()) return false;
  for (std::size_t i = colon + 1; i < e.size(); ++i) {
    if (e[i] < '0' || e[i] > '9') return false;
  }
  const long port = std::stol(e.substr(colon + 1, 6));
  return port >= 1 && port <= 65535;
}

bool valid_z85_key(const std::string& key) {
  if (key.size() != 40) return false;
  unsigned char raw[32];
  return zmq_z85_decode(raw, key.c_str()) != nullptr;
}

}  // namespace

Lab Lab::parse(const std::string& yaml_text, const std::string& source) {
  Lab lab;
  lab.source_ = source;
  const Reader r(source);
  common::with_yaml_errors(
      source,
      [&] {
        const YAML::Node root = YAML::Load(yaml_text);
        if (!root.IsMap()) {
          r.fail(root, "", "a lab registry is a mapping with a 'daemons' list (see docs/lab.md)");
        }
        r.only_keys(root, "", {"daemons", "description"});
        const YAML::Node list = root["daemons"];
        if (!list || !list.IsSequence() || list.size() == 0) {
          r.fail(list ? list : root, "daemons",
                 "expected a non-empty list of daemons (- name: ..., rpc: tcp://HOST:PORT)");
        }
        std::map<std::string, int> seen;
        for (const auto& node : list) {
          const std::string where = "daemons[" + std::to_string(lab.daemons_.size()) + "]";
          if (!node.IsMap()) r.fail(node, where, "expected a mapping with name and rpc");
          r.only_keys(node, where, {"name", "rpc", "telemetry", "server_key", "description"});
          LabDaemon d;
          d.line = node.Mark().line + 1;
          d.name = r.get<std::string>(node, where, "name", "", "a daemon name");
          if (d.name.empty()) r.fail(node, where, "every daemon needs a name (name: optics)");
          if (!valid_daemon_name(d.name)) {
            r.fail(node["name"] ? node["name"] : node, Reader::join(where, "name"),
                   "'" + d.name + "' is not a daemon name: 1-64 of A-Z a-z 0-9 . _ - (no '/': "
                   "devices are named DAEMON/DEVICE)");
          }
          if (const auto [it, fresh] = seen.emplace(d.name, d.line); !fresh) {
            r.fail(node["name"], Reader::join(where, "name"),
                   "daemon '" + d.name + "' is listed twice (first at line " +
                       std::to_string(it->second) + "); names must be unique");
          }
          d.rpc = r.get<std::string>(node, where, "rpc", "", "an endpoint");
          if (d.rpc.empty()) {
            r.fail(node, Reader::join(where, "rpc"),
                   "daemon '" + d.name + "' needs rpc: tcp://HOST:PORT (where pnnd listens)");
          }
          if (!valid_endpoint(d.rpc)) {
            r.fail(node["rpc"] ? node["rpc"] : node, Reader::join(where, "rpc"),
                   "'" + d.rpc + "' is not an RPC endpoint: tcp://HOST:PORT (pnnd's rpc.bind, "
                   "with the host the clients reach it at) or ipc://PATH");
          }
          d.telemetry = r.get<std::string>(node, where, "telemetry", "", "an endpoint");
          if (!d.telemetry.empty() && !valid_endpoint(d.telemetry)) {
            r.fail(node["telemetry"], Reader::join(where, "telemetry"),
                   "'" + d.telemetry + "' is not an endpoint: tcp://HOST:PORT or ipc://PATH");
          }
          d.server_key = r.get<std::string>(node, where, "server_key", "", "a Z85 key");
          if (!d.server_key.empty() && !valid_z85_key(d.server_key)) {
            r.fail(node["server_key"], Reader::join(where, "server_key"),
                   "not a 40-character Z85 CURVE public key (the daemon's: pnnd prints it at "
                   "start-up and `pnnd --keygen` makes one; quote it, Z85 has YAML characters)");
          }
          d.description = r.get<std::string>(node, where, "description", "", "text");
          lab.daemons_.push_back(std::move(d));
        }
      },
      [](const std::string& m) { throw LabError(m); });
  return lab;
}

Lab Lab::load(const std::string& path) {
  const auto text = common::read_text_file(path);
  if (!text) {
    throw LabError(path + ": cannot open the lab registry (check the path given by --lab or "
                   "PNN_LAB; docs/lab.md shows the format)");
  }
  return parse(*text, path);
}

const LabDaemon& Lab::daemon(const std::string& name) const {
  std::string known;
  for (const auto& d : daemons_) {
    if (d.name == name) return d;
    known += (known.empty() ? "" : ", ") + d.name;
  }
  throw LabError(source_ + ": no daemon '" + name + "' in the lab registry (it lists: " + known +
                 "); add it there or fix the name");
}

std::string Lab::entry(const LabDaemon& daemon) const {
  return daemon.name + " (" + source_ + " line " + std::to_string(daemon.line) + ")";
}

LabTarget Lab::resolve(const std::string& qualified) const {
  const auto slash = qualified.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == qualified.size() ||
      qualified.find('/', slash + 1) != std::string::npos) {
    throw LabError("'" + qualified + "' is not a lab device name: DAEMON/DEVICE, e.g. optics/shg-a "
                   "(daemons in " + source_ + ")");
  }
  return {&daemon(qualified.substr(0, slash)), qualified.substr(slash + 1)};
}

}  // namespace pnn::client

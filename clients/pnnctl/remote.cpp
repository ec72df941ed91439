#include "remote.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "errors.hpp"
#include "pnn/proto/wire.hpp"

namespace pnnctl {

namespace {

struct HostPort {
  std::string host;
  std::string port;
};

// "tcp://HOST:PORT" (HOST may be [v6]); nullopt for other transports.
std::optional<HostPort> split_tcp(const std::string& endpoint) {
  const std::string prefix = "tcp://";
  if (endpoint.rfind(prefix, 0) != 0) return std::nullopt;
  const std::string rest = endpoint.substr(prefix.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return HostPort{host, rest.substr(colon + 1)};
}

std::string join_tcp(const std::string& host, const std::string& port) {
  const bool v6 = host.find(':') != std::string::npos;
  return "tcp://" + (v6 ? "[" + host + "]" : host) + ":" + port;
}

// Result of a plain TCP connect to the daemon's port.
enum class Probe { kOpen, kRefused, kUnknown };

// ZeroMQ connects lazily and retries silently, so a stopped daemon would only show up as a
// timeout. A direct connect tells "nothing listens there" at once.
Probe probe_tcp(const HostPort& hp, std::string& why) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &found); rc != 0) {
    why = "cannot resolve '" + hp.host + "': " + ::gai_strerror(rc);
    return Probe::kRefused;
  }
  Probe result = Probe::kRefused;
  for (addrinfo* a = found; a != nullptr && result != Probe::kOpen; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      result = Probe::kUnknown;
      continue;
    }
    int err = 0;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, 1000) == 1) {
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
    }
    ::close(fd);
    if (err == 0) {
      result = Probe::kOpen;
    } else if (err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH) {
      why = std::strerror(err);
    } else {
      result = Probe::kUnknown;  // e.g. a slow network: let the RPC timeout decide
    }
  }
  ::freeaddrinfo(found);
  return result;
}

std::string trim_quotes(std::string v) {
  const auto b = v.find_first_not_of(" \t\r");
  const auto e = v.find_last_not_of(" \t\r");
  v = b == std::string::npos ? "" : v.substr(b, e - b + 1);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    v = v.substr(1, v.size() - 2);
  }
  return v;
}

// The key pair as `pnnd --keygen` prints it: `public_key: "..."` and `secret_key: "..."`.
pnn::client::CurveClientKeys read_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    throw UsageError("--key-file " + path + ": cannot read it (create one with: pnnd --keygen > " +
                     path + ")");
  }
  pnn::client::CurveClientKeys keys;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    // Whole-line comments only: '#' is a Z85 digit, so it may appear inside a key.
    if (const auto first = line.find_first_not_of(" \t");
        first != std::string::npos && line[first] == '#') {
      continue;
    }
    const auto colon = line.find(':');
    if (trim_quotes(line).empty()) continue;
    if (colon == std::string::npos) {
      throw UsageError("--key-file " + path + ":" + std::to_string(number) +
                       ": expected 'public_key: \"…\"' or 'secret_key: \"…\"'");
    }
    const std::string key = trim_quotes(line.substr(0, colon));
    const std::string value = trim_quotes(line.substr(colon + 1));
    if (key == "public_key") {
      keys.public_key = value;
    } else if (key == "secret_key") {
      keys.secret_key = value;
    } else {
      throw UsageError("--key-file " + path + ":" + std::to_string(number) + ": unknown key '" +
                       key + "' (expected public_key and secret_key)");
    }
  }
  if (keys.secret_key.empty()) {
    throw UsageError("--key-file " + path + ": no secret_key (the file `pnnd --keygen` prints)");
  }
  std::string derived;
  try {
    derived = pnn::client::curve_public_key(keys.secret_key);
  } catch (const std::invalid_argument&) {
    throw UsageError("--key-file " + path +
                     ": secret_key is not a 40-character Z85 CURVE key (make one with pnnd "
                     "--keygen)");
  }
  if (!keys.public_key.empty() && keys.public_key != derived) {
    throw UsageError("--key-file " + path + ": public_key does not belong to secret_key");
  }
  keys.public_key = derived;
  return keys;
}

}  // namespace

void add_remote_options(CLI::App& app, RemoteOptions& o) {
  const std::string group = "Daemon connection";
  app.add_option("--endpoint", o.endpoint, "pnnd RPC endpoint")
      ->envname("PNN_ENDPOINT")
      ->capture_default_str()
      ->group(group);
  app.add_option("--telemetry", o.telemetry,
                 "pnnd telemetry endpoint (default: the one pnnd announces in Hello)")
      ->envname("PNN_TELEMETRY")
      ->group(group);
  app.add_option("--server-key", o.server_key, "the daemon's CURVE public key (Z85), remote labs")
      ->envname("PNN_SERVER_KEY")
      ->group(group);
  app.add_option("--key-file", o.key_file, "this client's CURVE key pair (pnnd --keygen output)")
      ->envname("PNN_KEY_FILE")
      ->group(group);
  app.add_option("--client-id", o.client_id, "stable client id (default: host-pid-random)")
      ->envname("PNN_CLIENT_ID")
      ->group(group);
  app.add_option("--timeout-ms", o.timeout_ms, "per attempt")
      ->capture_default_str()
      ->check(CLI::PositiveNumber)
      ->group(group);
  app.add_option("--retries", o.retries, "extra attempts for calls that are safe to repeat")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber)
      ->group(group);
  app.add_option("--lab", o.lab,
                 "the lab registry (YAML, docs/lab.md): devices as DAEMON/DEVICE; `devices` "
                 "lists every daemon's")
      ->envname("PNN_LAB")
      ->group(group);
  app.add_flag("--json", o.json, "machine-readable output: one JSON object per line");
}

pnn::client::Lab load_lab(const RemoteOptions& options) {
  try {
    return pnn::client::Lab::load(options.lab);
  } catch (const pnn::client::LabError& e) {
    throw UsageError(e.what());
  }
}

RemoteOptions options_for(const RemoteOptions& options, const pnn::client::Lab& lab,
                          const pnn::client::LabDaemon& daemon) {
  RemoteOptions o = options;
  o.endpoint = daemon.rpc;
  o.telemetry = daemon.telemetry;
  o.server_key = daemon.server_key;
  if (o.server_key.empty()) o.key_file.clear();  // a plain daemon: no CURVE, whatever is set
  o.lab_entry = lab.entry(daemon);
  return o;
}

DeviceTarget resolve_device(const RemoteOptions& options, const std::string& name) {
  if (!pnn::client::is_lab_name(name)) return {options, name};
  if (options.lab.empty()) {
    throw UsageError("device '" + name + "': a name DAEMON/DEVICE needs the lab registry that "
                     "says where DAEMON is (--lab FILE or PNN_LAB=FILE, docs/lab.md)");
  }
  const pnn::client::Lab lab = load_lab(options);
  try {
    const auto target = lab.resolve(name);
    return {options_for(options, lab, *target.daemon), target.device};
  } catch (const pnn::client::LabError& e) {
    throw UsageError(std::string("device '") + name + "': " + e.what());
  }
}


std::string from_hex(const std::string& text, const std::string& what) {
  auto nibble = [&](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw UsageError(what + ": '" + text + "' is not a hex lease token (use the text pnnctl " +
                     "acquire printed)");
  };
  if (text.size() % 2 != 0) {
    throw UsageError(what + ": '" + text + "' has an odd number of hex digits (use the text " +
                     "pnnctl acquire printed)");
  }
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(text[i]) * 16 + nibble(text[i + 1])));
  }
  return out;
}

Remote::Remote(const RemoteOptions& options) : options_(options) {
  if (!options_.server_key.empty() || !options_.key_file.empty()) {
    if (options_.server_key.empty() || options_.key_file.empty()) {
      throw UsageError(
          "CURVE needs both --server-key (the daemon's public key) and --key-file (this "
          "client's key pair, listed in the daemon's security.clients)");
    }
    curve_ = read_key_file(options_.key_file);
    if (options_.server_key.size() != 40) {
      throw UsageError("--server-key: expected the daemon's 40-character Z85 public key, got " +
                       std::to_string(options_.server_key.size()) + " characters");
    }
    curve_.server_public_key = options_.server_key;
  }
}

Remote::~Remote() = default;

void Remote::check_reachable() {
  if (probed_) return;
  probed_ = true;
  const auto hp = split_tcp(options_.endpoint);
  if (!hp) return;
  std::string why;
  if (probe_tcp(*hp, why) == Probe::kRefused) {
    throw Unreachable("cannot connect to pnnd at " + options_.endpoint + ": " + why + "; " +
                      (options_.lab_entry.empty()
                           ? std::string(kStartHint)
                           : "the lab registry's daemon " + options_.lab_entry +
                                 " is down or its rpc endpoint there is wrong"));
  }
}

pnn::client::Client& Remote::client(Retry retry) {
  auto& slot = retry == Retry::kSafe ? safe_ : once_;
  if (!slot) {
    pnn::client::ClientOptions o = client_options();
    // Both sockets speak for the same client (leases, idempotency keys).
    if (o.client_id.empty() && (safe_ || once_)) o.client_id = (safe_ ? safe_ : once_)->client_id();
    if (retry == Retry::kNever) o.retries = 0;
    slot = std::make_unique<pnn::client::Client>(std::move(o));
  }
  return *slot;
}

pnn::client::ClientOptions Remote::client_options() const {
  pnn::client::ClientOptions o;
  o.endpoint = options_.endpoint;
  o.client_id = options_.client_id;
  o.timeout = std::chrono::milliseconds(options_.timeout_ms);
  o.retries = options_.retries;
  o.curve = curve_;
  return o;
}

std::string Remote::client_id() { return client(Retry::kSafe).client_id(); }

v1::Reply Remote::call(v1::Request request, Retry retry) {
  check_reachable();
  v1::Reply reply;
  try {
    reply = client(retry).call(std::move(request));
  } catch (const pnn::client::NoReplyError& e) {
    std::string text = e.what();
    if (const auto p = text.find(" (request"); p != std::string::npos) text.resize(p);
    if (!curve_.server_public_key.empty()) {
      text += " (with CURVE, also check --server-key and that this client's public key " +
              curve_.public_key + " is in the daemon's security.clients)";
    }
    if (!options_.lab_entry.empty()) {
      throw Unreachable(text + "; " + pnn::client::unreachable_hint(options_.lab_entry));
    }
    throw Unreachable(text + "; " + kStartHint);
  } catch (const pnn::client::ClientError& e) {
    throw DaemonError("PROTOCOL", std::string(e.what()) + " (is that endpoint a pnnd?)", "");
  }
  if (reply.status().code() != v1::OK) {
    throw DaemonError(pnn::wire::to_string(reply.status().code()), reply.status().message(),
                      reply.status().origin());
  }
  return reply;
}

const v1::HelloReply& Remote::hello() {
  if (!hello_) {
    v1::Request r;
    r.mutable_hello();
    hello_ = std::make_unique<v1::HelloReply>(call(std::move(r)).hello());
  }
  return *hello_;
}

std::string Remote::telemetry_endpoint() {
  if (!options_.telemetry.empty()) return options_.telemetry;
  const auto rpc = split_tcp(options_.endpoint);
  for (const auto& c : hello().capabilities()) {
    if (c.rfind("telemetry=", 0) != 0) continue;
    const std::string announced = c.substr(10);
    const auto hp = split_tcp(announced);
    if (hp && rpc && (hp->host == "0.0.0.0" || hp->host == "*" || hp->host == "::")) {
      return join_tcp(rpc->host, hp->port);  // bound to every interface: use the host we reach
    }
    return announced;
  }
  if (rpc) return join_tcp(rpc->host, "7701");
  throw UsageError("the daemon does not announce its telemetry endpoint: pass --telemetry");
}

void add_lease_option(CLI::App& cmd, std::string& lease) {
  cmd.add_option("--lease", lease,
                 "lease token from pnnctl acquire (default: lease the device for this command)")
      ->envname("PNN_LEASE");
}

LeaseScope::LeaseScope(Remote& remote, std::string device, const std::string& token_hex,
                       std::uint32_t ttl_ms)
    : remote_(remote), device_(std::move(device)) {
  if (!token_hex.empty()) {
    token_ = from_hex(token_hex, "--lease");
    return;
  }
  v1::Request r;
  r.mutable_acquire()->set_device(device_);
  r.mutable_acquire()->set_ttl_ms(ttl_ms);
  try {
    token_ = remote_.call(std::move(r)).acquire().lease_token();
  } catch (const DaemonError& e) {
    if (e.code_name() != "LEASE_HELD") throw;
    throw DaemonError(e.code_name(),
                      std::string(e.what()) +
                          " (if that lease is yours, pass its token: --lease TOKEN or "
                          "PNN_LEASE=TOKEN)",
                      e.origin());
  }
  one_shot_ = true;
}

LeaseScope::~LeaseScope() {
  if (!one_shot_) return;
  try {
    v1::Request r;
    r.set_lease_token(token_);
    r.mutable_release()->set_device(device_);
    remote_.call(std::move(r), Retry::kNever);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnnctl: warning: releasing the lease on %s failed: %s\n",
                 device_.c_str(), e.what());
  }
}

v1::Request LeaseScope::request() const {
  v1::Request r;
  r.set_lease_token(token_);
  return r;
}

}  // namespace pnnctl

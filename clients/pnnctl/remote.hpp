#pragma once
// The connection of pnnctl to a daemon: endpoint and CURVE options (shared by every remote
// verb), request/reply with typed errors, and telemetry endpoint discovery.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "pnn/client/client.hpp"
#include "pnn/client/lab.hpp"
#include "pnn/common/hex.hpp"

namespace pnnctl {

namespace v1 = ::pnn::v1;

inline constexpr const char* kDefaultEndpoint = "tcp://127.0.0.1:7700";
inline constexpr const char* kStartHint =
    "is pnnd running? start it with: pnnd --config configs/daemon/lab.yaml (or point --endpoint / "
    "PNN_ENDPOINT at the daemon)";

struct RemoteOptions {
  std::string endpoint = kDefaultEndpoint;
  std::string telemetry;   ///< "" = the one the daemon announces in Hello
  std::string server_key;  ///< Z85 CURVE public key of the daemon ("" = plain loopback)
  std::string key_file;    ///< this client's key pair, as `pnnd --keygen` prints it
  std::string client_id;   ///< "" = generated per process
  int timeout_ms = 5000;   ///< per attempt
  int retries = 1;         ///< extra attempts for calls that are safe to repeat
  bool json = false;       ///< one JSON object per line / per result
  std::string lab;         ///< the lab registry (--lab / PNN_LAB; "" = none), docs/lab.md
  /// Set by resolve_device for a daemon of the lab: "optics (lab.yaml line 4)", named in
  /// unreachable errors so the user knows which registry entry to check.
  std::string lab_entry;
};

/// Adds --endpoint, --telemetry, --server-key, --key-file, --client-id, --timeout-ms, --retries,
/// --lab and --json to `app` (the environment variables PNN_ENDPOINT, PNN_TELEMETRY,
/// PNN_SERVER_KEY, PNN_KEY_FILE, PNN_CLIENT_ID, PNN_LAB give defaults).
void add_remote_options(CLI::App& app, RemoteOptions& options);

/// The lab registry of `options.lab`; UsageError (exit 2) for one that cannot be read or is
/// malformed, naming the file and line.
pnn::client::Lab load_lab(const RemoteOptions& options);

/// The options that reach `daemon` of the lab: its rpc and telemetry endpoints and CURVE key
/// (this client's key pair stays --key-file's; without a key in the registry, plain).
RemoteOptions options_for(const RemoteOptions& options, const pnn::client::Lab& lab,
                          const pnn::client::LabDaemon& daemon);

/// Where a device verb sends its request: a name DAEMON/DEVICE resolves through the lab
/// registry (UsageError without one, or for an unknown daemon); any other name goes to
/// --endpoint as given.
struct DeviceTarget {
  RemoteOptions options;
  std::string device;
};
DeviceTarget resolve_device(const RemoteOptions& options, const std::string& name);

/// Whether a failed attempt may be sent again with the same request_id. Reads, Forward (the
/// daemon de-duplicates it), Acquire and Renew are safe; SubmitJob, Lifecycle, Calibrate and
/// Release are not (a lost reply would make the retry run twice or fail confusingly).
enum class Retry { kSafe, kNever };

/// Hex text of a lease token (the token is 16 raw bytes on the wire) and back. from_hex throws
/// UsageError naming `what` for text that is not hex.
using pnn::common::to_hex;
std::string from_hex(const std::string& text, const std::string& what);

class Remote {
 public:
  /// Reads the key file (UsageError for a missing or malformed one). Connects lazily.
  explicit Remote(const RemoteOptions& options);
  ~Remote();
  Remote(const Remote&) = delete;
  Remote& operator=(const Remote&) = delete;

  /// Sends the request and returns the OK reply. Throws Unreachable (no connection or no reply
  /// after the retries `retry` allows) or DaemonError (any other status, with its name).
  v1::Reply call(v1::Request request, Retry retry = Retry::kSafe);

  /// Hello, asked once and cached.
  const v1::HelloReply& hello();
  /// --telemetry if given, else the endpoint the daemon announces in Hello (a wildcard host
  /// replaced by the RPC endpoint's host), else the RPC host with port 7701.
  std::string telemetry_endpoint();
  const pnn::client::CurveClientKeys& curve() const { return curve_; }
  const RemoteOptions& options() const { return options_; }
  /// These options as the C++ client takes them (endpoint, --client-id, timeout, retries for
  /// calls safe to repeat, CURVE keys), for a connection of its own (e.g. a RemoteDevice).
  pnn::client::ClientOptions client_options() const;
  std::string client_id();

 private:
  pnn::client::Client& client(Retry retry);
  void check_reachable();

  RemoteOptions options_;
  pnn::client::CurveClientKeys curve_;
  std::unique_ptr<pnn::client::Client> safe_, once_;
  bool probed_ = false;
  std::unique_ptr<v1::HelloReply> hello_;
};

/// Adds --lease TOKEN (environment PNN_LEASE) to a device write's sub-command.
void add_lease_option(CLI::App& cmd, std::string& lease);

/// The lease a device write is sent with: the token given (--lease / PNN_LEASE), or a lease
/// acquired for this one command (TTL `ttl_ms`) and released when it is done.
class LeaseScope {
 public:
  static constexpr std::uint32_t kOneShotTtlMs = 60000;
  LeaseScope(Remote& remote, std::string device, const std::string& token_hex,
             std::uint32_t ttl_ms = kOneShotTtlMs);
  ~LeaseScope();
  LeaseScope(const LeaseScope&) = delete;
  LeaseScope& operator=(const LeaseScope&) = delete;

  /// A request carrying the lease token.
  v1::Request request() const;

 private:
  Remote& remote_;
  std::string device_;
  std::string token_;
  bool one_shot_ = false;
};

}  // namespace pnnctl

#pragma once
/// The daemon's configuration (`pnnd --config lab.yaml`; docs/daemon.md is the key reference).
///
/// Every key has a default except `devices`; unknown keys, wrong types and bad values throw
/// ConfigError naming the file, the line, the key and the fix. Paths are used as written:
/// relative ones resolve against the working directory of pnnd (like job configs).
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pnn::daemon {

/// A config problem at startup or on reload. The message names file, line, key and fix.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a client may do. Read-only clients may query everything but get PERMISSION_DENIED on
/// every write (Lifecycle, Acquire/Renew/Release, Forward, Calibrate, SubmitJob, CancelJob).
/// Admin may also cancel and resume other clients' jobs (with CURVE; without CURVE every
/// loopback client is an admin: docs/daemon.md, "Identity and who may do what").
enum class Role { kReadOnly, kOperator, kAdmin };
const char* to_string(Role role);

/// The drift monitor of a device (docs/config.md `devices.NAME.drift`): a rolling normalised
/// residual between the device's twin and what the device measured, over sampled forwards.
struct DriftConfig {
  bool enabled = true;
  std::uint32_t every_ms = 1000;  ///< at most one forward sampled per this interval
  std::uint32_t window = 20;      ///< the rolling window, in sampled forwards
  std::uint32_t max_rows = 64;    ///< rows of a sampled forward that the twin re-evaluates
  double warn_nmse = 0.0;         ///< health WARNING past this rolling NMSE (0: never)
  bool operator==(const DriftConfig&) const = default;
};

struct DeviceConfig {
  std::string name;     ///< the name clients and job configs use
  std::string address;  ///< driver address, e.g. sim://power-law?prefactor=2
  bool autostart = false;  ///< configure + activate when the daemon starts (or the device is added)
  /// After a fault (lost, timed out, refused to configure), recover it in the background with
  /// back-off: cleanup, reconnect, re-identify by serial, INACTIVE. Never re-activated by itself.
  bool reconnect = true;
  DriftConfig drift;
  int line = 0;            ///< 1-based line in the config file, for messages
};

struct ClientKey {
  std::string public_key;  ///< Z85 CURVE public key (40 characters)
  Role role = Role::kReadOnly;
  std::string name;        ///< for logs, e.g. "alice@lab-pc"
};

/// CURVE security. Enabled when `server_secret_key` is set; then every client must present a
/// public key from `clients` (ZAP allowlist), and its role comes from that entry.
struct SecurityConfig {
  std::string server_secret_key;  ///< Z85 (40 characters); the public key is derived from it
  std::vector<ClientKey> clients;
  bool curve_enabled() const { return !server_secret_key.empty(); }
};

/// How Forward calls are recorded in the run store (x, θ, y, timestamps, device serial).
enum class ForwardRecording {
  kAsync,  ///< queued to a recorder thread; the reply does not wait for the disk (default)
  kSync,   ///< committed before the reply is sent; the reply carries the record id
  kOff,    ///< not recorded
};
const char* to_string(ForwardRecording mode);

/// Where pnnd keeps its run store and run directories unless the config says otherwise:
/// $PNN_STATE_DIR, else $XDG_STATE_HOME/pnn-hil, else ~/.local/state/pnn-hil (/var/lib/pnn-hil
/// without a HOME). Never the working directory, so a pnnd started in a source tree leaves it
/// clean.
std::string default_state_dir();

/// The read-only web dashboard (docs/dashboard.md). Off unless http.bind is set.
struct HttpConfig {
  /// HOST:PORT to listen on, e.g. 127.0.0.1:8080 (port 0: ephemeral); empty: no dashboard.
  std::string bind;
  /// Shared secret a browser presents once (?token=...) and then as a cookie; required for a bind
  /// other machines can reach (http.token or http.token_file).
  std::string token;
  std::uint32_t max_connections = 64;       ///< past it a new connection gets 503 and is closed
  std::uint32_t max_header_bytes = 8192;    ///< larger request heads get 431
  std::uint32_t idle_timeout_ms = 15000;    ///< a request head must arrive within this
  std::uint32_t write_timeout_ms = 10000;   ///< a client that reads nothing for this long is dropped
  bool enabled() const { return !bind.empty(); }
};

struct DaemonConfig {
  std::string source = "<defaults>";  ///< the file the config came from

  // rpc:
  std::string rpc_bind = "tcp://127.0.0.1:7700";  ///< ROUTER endpoint; port "*" = ephemeral
  std::uint64_t max_message_bytes = 16u << 20;    ///< larger requests get TOO_LARGE
  std::uint32_t default_deadline_ms = 30000;      ///< for requests with deadline_ms = 0
  std::size_t reply_cache_entries = 4096;         ///< idempotency cache of Forward replies
  std::size_t reply_cache_bytes = 256u << 20;
  /// Connections (rpc.max_connections / rpc.max_connections_per_peer): past them a new
  /// connection is shut down as soon as it is accepted, and the refusal is logged.
  std::uint32_t max_connections = 1000;
  std::uint32_t max_connections_per_peer = 64;  ///< per client IP address
  /// Replies waiting for a client that does not read (rpc.max_queued_reply_bytes_per_peer,
  /// rpc.max_queued_reply_bytes): past them the reply is dropped (a retry of a write still gets
  /// it from the idempotency cache) and the drop is logged.
  std::uint64_t max_queued_reply_bytes_per_peer = 16u << 20;
  std::uint64_t max_queued_reply_bytes = 256u << 20;
  /// Compute requests (twin, run-store reads) waiting for the pool, in request bytes
  /// (rpc.max_pending_request_bytes_per_peer, rpc.max_pending_request_bytes): past them a request
  /// gets BUSY at once. One request is always admitted when its caller has nothing waiting.
  std::uint64_t max_pending_request_bytes_per_peer = 16u << 20;
  std::uint64_t max_pending_request_bytes = 128u << 20;
  /// twin.max_batch_rows: TwinForward / TwinVjp with more rows get BATCH_TOO_LARGE.
  std::uint32_t twin_max_batch_rows = 4096;
  /// forward.max_settle_ms: a Forward asking for a longer settle_ms gets INVALID_ARGUMENT.
  std::uint32_t max_settle_ms = 10000;
  /// forward.inline_max_us: a Forward on an in-process simulated device (sim:// without
  /// faults=) runs on the event loop itself, with no thread hand-off, when the device is idle
  /// and its last forward, scaled to this batch's rows, predicts at most this many microseconds
  /// (docs/daemon.md, "The Forward fast path"). 0: every Forward runs on the device's worker.
  std::uint32_t inline_forward_max_us = 200;

  // telemetry:
  std::string telemetry_bind = "tcp://127.0.0.1:7701";  ///< PUB endpoint
  std::uint32_t heartbeat_ms = 1000;

  // leases:
  std::uint32_t lease_default_ttl_ms = 10000;
  std::uint32_t lease_max_ttl_ms = 300000;
  std::uint32_t lease_min_ttl_ms = 20;  ///< Acquire with a shorter ttl_ms gets INVALID_ARGUMENT

  // store:
  /// store.dir: the state directory; relative store.path and store.runs_dir are inside it.
  std::string state_dir = default_state_dir();
  std::string store_path = "pnnd.sqlite";  ///< absolute once parsed
  std::string runs_dir = "runs";           ///< one directory per run: checkpoint, plot
  ForwardRecording forward_recording = ForwardRecording::kAsync;
  std::size_t forward_queue_bytes = 256u << 20;  ///< async: Forward waits when the queue is full
  /// Retention: once the forward records' bytes exceed this, the oldest are deleted (the store
  /// file stops growing); 0 keeps everything. Runs, metrics and checkpoints are never deleted.
  std::uint64_t forward_records_max_bytes = std::uint64_t{8} << 30;

  // jobs:
  std::uint32_t job_stop_timeout_ms = 60000;  ///< shutdown waits this long for jobs to stop

  // supervision: reconnect attempts after a device fault wait initial, 2·initial, ... up to max.
  std::uint32_t reconnect_initial_ms = 500;
  std::uint32_t reconnect_max_ms = 30000;

  std::vector<DeviceConfig> devices;
  /// The lab registry (docs/lab.md) through which a job's DAEMON/DEVICE devices reach other
  /// daemons; "" = jobs use this daemon's devices only. Absolute once parsed (a relative path is
  /// relative to the config file). This daemon presents its own key pair
  /// (security.server_secret_key) to a daemon the registry gives a server_key for.
  std::string lab;
  SecurityConfig security;
  HttpConfig http;
};

/// Throws ConfigError (missing file, YAML syntax, unknown key, wrong type, bad value, duplicate
/// device, a non-loopback bind without CURVE keys, a malformed key).
DaemonConfig load_daemon_config(const std::string& path);
DaemonConfig parse_daemon_config(const std::string& yaml_text, const std::string& source_name);

/// True for endpoints only this machine can reach: tcp://127.x.x.x, tcp://localhost,
/// tcp://[::1], ipc://, inproc://.
bool is_loopback_endpoint(const std::string& endpoint);
/// The same for an http.bind HOST:PORT (127.x.x.x, localhost, [::1]).
bool is_loopback_host_port(const std::string& host_port);

}  // namespace pnn::daemon

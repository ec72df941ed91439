#pragma once
/// The lab daemon: one Boost.Asio io_context for signals, timers and the ZeroMQ ROUTER (RPC) and
/// PUB (telemetry) sockets; one worker thread per device for blocking device I/O; a thread per
/// training job; a recorder thread for Forward records. docs/daemon.md describes the behaviour a
/// client sees (RPCs, leases, telemetry, failure handling).
///
/// Thread rule: construct, run() and destroy on one thread; request_stop() and request_reload()
/// may be called from any thread (e.g. a test, or a signal handler outside the daemon).
#include <functional>
#include <memory>
#include <string>

#include "pnn/daemon/config.hpp"

namespace pnn::daemon {

struct ServerOptions {
  /// Handle SIGINT/SIGTERM (graceful stop) and SIGHUP (reload) inside run(). Off for servers
  /// embedded in tests.
  bool handle_signals = true;
  /// The file SIGHUP / request_reload() re-reads; empty: reload only reports that it cannot.
  std::string config_path;
  /// Called (on the io thread) with every log line the daemon emits; default: stderr.
  std::function<void(const std::string& level, const std::string& text)> on_log;
};

/// Call first in main(), before any thread exists: blocks SIGINT, SIGTERM and SIGHUP in the
/// calling thread and so in every thread started after it (ZeroMQ's, the devices' workers, the
/// compute pool). A server with handle_signals catches them from its construction on and lets
/// them through once run() is serving, so a signal during start-up is never lost or fatal.
/// Also routes libprotobuf's log lines away from stderr (they are counted, not printed).
void block_signals();
/// The inverse of block_signals() for the calling thread (run() calls it).
void unblock_signals();

class Server {
 public:
  /// Opens the run store (marking runs a crash left RUNNING as ABORTED), creates the devices
  /// (autostart ones are configured and activated before this returns), binds the sockets.
  /// Throws ConfigError for a bad device address or an endpoint that cannot be bound, and
  /// StoreError if the store cannot be opened.
  Server(DaemonConfig config, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Serves until a graceful stop completes: jobs stopped after their current batch (runs marked
  /// ABORTED, resumable), every ACTIVE device driven to its safe state, the store flushed.
  void run();
  /// Starts the graceful stop. Thread-safe; idempotent.
  void request_stop();
  /// Re-reads the config file (as SIGHUP does). Thread-safe.
  void request_reload();

  /// The endpoints actually bound (a "*" port resolved), e.g. tcp://127.0.0.1:41235.
  const std::string& rpc_endpoint() const;
  const std::string& telemetry_endpoint() const;
  /// The dashboard's address, e.g. http://127.0.0.1:8080; empty when http.bind is not set.
  const std::string& http_url() const;
  /// Changes on every start; carried by every event and by Hello.
  const std::string& instance_id() const;
  /// The server's CURVE public key (Z85), empty without CURVE.
  const std::string& public_key() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pnn::daemon

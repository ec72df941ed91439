#pragma once
/// Test and benchmark support: a `pnnd` started as a child process, for benchmarks and tests that need a real daemon process
/// (kill -9 crash recovery, the memory of an idle daemon) and for tools that start a local one.
///
/// The constructor spawns `executable --config config_path` and waits for the one line pnnd
/// prints on stdout once it serves ("pnnd ready rpc=... telemetry=... instance=..."); pnnd's
/// stderr (its log) goes to `log_path`, or is inherited when that is empty.
///
/// Thread rule: one thread at a time per DaemonProcess. Ownership: the child belongs to this
/// object; the destructor kills it (SIGKILL) and reaps it if it is still running.
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

namespace pnn::bench {

/// The daemon could not be started: the binary is missing, exited before it was ready (the
/// message has its exit status and the tail of its log), or was not ready in time.
class DaemonProcessError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DaemonProcessOptions {
  std::string executable;   ///< path to the pnnd binary
  std::string config_path;  ///< passed as --config
  std::string log_path;     ///< pnnd's stderr is appended here; "" = inherit this process's
  std::chrono::milliseconds ready_timeout{60000};
};

class DaemonProcess {
 public:
  /// Throws DaemonProcessError (see above).
  explicit DaemonProcess(DaemonProcessOptions options);
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  int pid() const { return pid_; }
  /// From the ready line: the endpoints actually bound ("*" ports resolved) and the instance id.
  const std::string& rpc_endpoint() const { return rpc_endpoint_; }
  const std::string& telemetry_endpoint() const { return telemetry_endpoint_; }
  const std::string& instance_id() const { return instance_id_; }

  /// Sends `signo` (e.g. SIGTERM for a graceful stop, SIGKILL for a crash). No-op once reaped.
  void signal(int signo);
  /// Waits up to `timeout` for the child to exit and reaps it. Returns its wait status (as
  /// waitpid gives it: use WIFEXITED/WEXITSTATUS/WIFSIGNALED/WTERMSIG), or nullopt on timeout.
  /// After the child was reaped, returns the same status again.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  /// True until the child was seen to exit.
  bool running();

  /// The last `max_bytes` of the log file ("" without a log_path), for failure messages.
  std::string log_tail(std::size_t max_bytes = 2000) const;

 private:
  DaemonProcessOptions options_;
  int pid_ = -1;
  int stdout_fd_ = -1;
  std::optional<int> status_;
  std::string rpc_endpoint_, telemetry_endpoint_, instance_id_;
};

}  // namespace pnn::bench
